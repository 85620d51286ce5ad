-- Acknowledgement-deadline escalations of messages without a task join the history: a row names its task,
-- its message, or both. SQLite cannot relax NOT NULL in place, so the table is rebuilt.
CREATE TABLE escalations_new (
    id TEXT PRIMARY KEY NOT NULL,
    rule_id TEXT,
    rule_name TEXT NOT NULL,
    task_id TEXT,
    level INTEGER NOT NULL,
    trigger_kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    actions TEXT NOT NULL,
    triggered_at BIGINT NOT NULL,
    resolved_at BIGINT,
    useful BOOLEAN,
    rated_at BIGINT,
    message_id TEXT
);
INSERT INTO escalations_new
    SELECT id, rule_id, rule_name, task_id, level, trigger_kind, reason, actions, triggered_at, resolved_at,
           useful, rated_at, NULL
    FROM escalations;
DROP TABLE escalations;
ALTER TABLE escalations_new RENAME TO escalations;
CREATE INDEX escalations_open ON escalations (resolved_at, task_id);
CREATE INDEX escalations_task ON escalations (task_id, id);
CREATE INDEX escalations_rule ON escalations (rule_id, id);
CREATE INDEX escalations_message ON escalations (message_id);
