DROP INDEX messages_idempotency;
DROP TABLE outbox;
