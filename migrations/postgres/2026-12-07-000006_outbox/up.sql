-- The action outbox: side effects written in the same batch as the change that caused them, delivered at
-- least once by the Dispatcher. dedupe_key makes writing the same effect twice keep the first row.
CREATE TABLE outbox (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('agent_message', 'webhook', 'human_page')),
    dedupe_key TEXT NOT NULL UNIQUE,
    effect TEXT NOT NULL,
    escalation_id TEXT,
    action_index INTEGER,
    task_id TEXT,
    attempts INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    result TEXT,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT,
    dead_at BIGINT
);
CREATE INDEX outbox_due ON outbox (delivered_at, dead_at, next_attempt_at);
CREATE INDEX outbox_escalation ON outbox (escalation_id);

-- A redelivered outbox message is found by its idempotency key before a second one is made.
CREATE INDEX messages_idempotency ON messages (idempotency_key) WHERE idempotency_key IS NOT NULL;
