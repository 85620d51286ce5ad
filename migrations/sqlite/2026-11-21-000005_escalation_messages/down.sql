CREATE TABLE escalations_old (
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
INSERT INTO escalations_old
    SELECT id, rule_id, rule_name, task_id, level, trigger_kind, reason, actions, triggered_at, resolved_at,
           useful, rated_at
    FROM escalations WHERE task_id IS NOT NULL;
DROP TABLE escalations;
ALTER TABLE escalations_old RENAME TO escalations;
CREATE INDEX escalations_open ON escalations (resolved_at, task_id);
CREATE INDEX escalations_task ON escalations (task_id, id);
CREATE INDEX escalations_rule ON escalations (rule_id, id);
