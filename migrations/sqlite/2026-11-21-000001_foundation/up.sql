-- Foundation schema. Portable types only (DESIGN §1.6): TEXT ids (UUIDv7), BIGINT epoch milliseconds,
-- INTEGER counts, JSON stored as TEXT, enums as TEXT with a CHECK. Keep in step with migrations/postgres.

CREATE TABLE agents (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    level TEXT NOT NULL CHECK (level IN ('lead', 'specialist', 'intern')),
    kind TEXT NOT NULL CHECK (kind IN ('external', 'llm')),
    status TEXT NOT NULL CHECK (status IN ('idle', 'active', 'blocked', 'offline', 'suspended')),
    lead_id TEXT,
    specializations TEXT NOT NULL,
    constraints TEXT NOT NULL,
    max_concurrent_tasks INTEGER NOT NULL,
    max_minutes_per_day INTEGER NOT NULL,
    current_task_id TEXT,
    last_heartbeat_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('admin', 'agent')),
    agent_id TEXT UNIQUE REFERENCES agents (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    CHECK ((kind = 'admin' AND agent_id IS NULL) OR (kind = 'agent' AND agent_id IS NOT NULL))
);

CREATE TABLE tasks (
    id TEXT PRIMARY KEY NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('backlog', 'ready', 'in_progress', 'review', 'done', 'blocked', 'cancelled')),
    priority TEXT NOT NULL CHECK (priority IN ('P0', 'P1', 'P2', 'P3')),
    assignee_id TEXT,
    parent_id TEXT,
    mission_id TEXT,
    pillar_id TEXT,
    tags TEXT NOT NULL,
    sla_tier TEXT CHECK (sla_tier IN ('critical', 'urgent', 'normal', 'backlog')),
    slo_ms BIGINT,
    slo_deadline_at BIGINT,
    estimated_minutes INTEGER,
    actual_minutes INTEGER,
    requirements TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    failures TEXT NOT NULL,
    escalation_level INTEGER NOT NULL,
    escalated_at BIGINT,
    completion_notes TEXT,
    status_changed_at BIGINT NOT NULL,
    started_at BIGINT,
    completed_at BIGINT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX tasks_status ON tasks (status);
CREATE INDEX tasks_assignee ON tasks (assignee_id);
CREATE INDEX tasks_parent ON tasks (parent_id);
CREATE INDEX tasks_mission ON tasks (mission_id);

CREATE TABLE task_dependencies (
    task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    blocker_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (task_id, blocker_id)
);

CREATE INDEX task_dependencies_blocker ON task_dependencies (blocker_id);

CREATE TABLE activities (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    actor_kind TEXT NOT NULL CHECK (actor_kind IN ('admin', 'agent', 'system')),
    actor_id TEXT,
    agent_id TEXT,
    task_id TEXT,
    message TEXT NOT NULL,
    before_json TEXT,
    after_json TEXT,
    created_at BIGINT NOT NULL
);

CREATE INDEX activities_agent ON activities (agent_id);
CREATE INDEX activities_actor ON activities (actor_id);
CREATE INDEX activities_task ON activities (task_id);
CREATE INDEX activities_kind ON activities (kind);
