-- Escalation rules, cached in the EscalationScheduler. Triggers, actions and applicability are JSON.
CREATE TABLE escalation_rules (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    priority INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 100),
    cooldown_ms BIGINT NOT NULL,
    applies_to TEXT NOT NULL,
    triggers TEXT NOT NULL,
    actions TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Escalation history: one row per firing. An open row (resolved_at NULL) is a rung of a rule's ladder for a
-- task; rule_id is NULL for the built-in escalations (acknowledgement deadlines, SLO breaches).
CREATE TABLE escalations (
    id TEXT PRIMARY KEY NOT NULL,
    rule_id TEXT,
    rule_name TEXT NOT NULL,
    task_id TEXT NOT NULL,
    level INTEGER NOT NULL,
    trigger_kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    actions TEXT NOT NULL,
    triggered_at BIGINT NOT NULL,
    resolved_at BIGINT,
    useful BOOLEAN,
    rated_at BIGINT
);

CREATE INDEX escalations_open ON escalations (resolved_at, task_id);
CREATE INDEX escalations_task ON escalations (task_id, id);
CREATE INDEX escalations_rule ON escalations (rule_id, id);

-- The default rules every installation starts with; an operator may change or delete them.
INSERT INTO escalation_rules VALUES
    ('0196a000-0000-7000-8000-000000000101', 'task stuck in progress',
     'In progress for more than 2 hours: tell the assignee, then climb the ladder.', TRUE, 80, 1800000,
     '{}', '[{"kind":"time_in_status","status":"in_progress","durationMs":7200000}]',
     '[{"kind":"notify_assignee","subject":"Still working on this?","body":"This task has been in progress for a long time. Post an update, ask for help, or hand it back."},{"kind":"escalate","to":"lead"}]',
     1795219200000, 1795219200000),
    ('0196a000-0000-7000-8000-000000000102', 'task blocked too long',
     'Blocked for more than 30 minutes: tell the assignee, then climb the ladder.', TRUE, 85, 1800000,
     '{}', '[{"kind":"blocker_duration","durationMs":1800000}]',
     '[{"kind":"notify_assignee","subject":"Blocked for a while","body":"This task has been blocked for over 30 minutes. Can a blocker be removed or worked around?"},{"kind":"escalate","to":"lead"}]',
     1795219200000, 1795219200000),
    ('0196a000-0000-7000-8000-000000000103', 'SLO approaching',
     '75% of the SLO used: warn the assignee.', TRUE, 90, 1800000,
     '{}', '[{"kind":"slo_consumed","percent":75}]',
     '[{"kind":"notify_assignee","subject":"SLO deadline approaching","body":"Three quarters of this task''s SLO are used. Finish it, or say what is in the way."}]',
     1795219200000, 1795219200000),
    ('0196a000-0000-7000-8000-000000000104', 'P0 task in review too long',
     'A P0 task waiting in review for more than an hour goes up the ladder.', TRUE, 95, 1800000,
     '{"priorities":["P0"]}', '[{"kind":"time_in_status","status":"review","durationMs":3600000}]',
     '[{"kind":"escalate","to":"lead"}]',
     1795219200000, 1795219200000),
    ('0196a000-0000-7000-8000-000000000105', 'too many failed attempts',
     'Three failed attempts: escalate and give the task to someone else.', TRUE, 88, 1800000,
     '{}', '[{"kind":"attempts_exceeded","attempts":3}]',
     '[{"kind":"escalate","to":"lead"},{"kind":"reassign","strategy":"balanced"}]',
     1795219200000, 1795219200000),
    ('0196a000-0000-7000-8000-000000000106', 'assignee silent',
     'The assignee of a task in progress has not been heard from for 10 minutes: reassign it (the old assignee is told why).', TRUE, 92, 1800000,
     '{}', '[{"kind":"no_heartbeat","durationMs":600000}]',
     '[{"kind":"reassign","strategy":"balanced"}]',
     1795219200000, 1795219200000);
