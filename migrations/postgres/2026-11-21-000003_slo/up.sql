-- SLO breaches: one row per task and kind, ever. The unique key is what makes "never twice" hold across
-- restarts and concurrent detections.
CREATE TABLE slo_breaches (
    id TEXT PRIMARY KEY NOT NULL,
    task_id TEXT NOT NULL,
    task_title TEXT NOT NULL,
    agent_id TEXT,
    kind TEXT NOT NULL CHECK (kind IN ('deadline_missed', 'in_progress_timeout', 'blocked_too_long')),
    sla_tier TEXT CHECK (sla_tier IN ('critical', 'urgent', 'normal', 'backlog')),
    slo_ms BIGINT NOT NULL,
    deadline_at BIGINT NOT NULL,
    detected_at BIGINT NOT NULL,
    escalated_at BIGINT,
    UNIQUE (task_id, kind)
);

CREATE INDEX slo_breaches_detected ON slo_breaches (detected_at, id);
CREATE INDEX slo_breaches_agent ON slo_breaches (agent_id, detected_at);

-- The SLO report counts finished tasks that met or missed their deadline.
CREATE INDEX tasks_completed_deadline ON tasks (status, slo_deadline_at);
