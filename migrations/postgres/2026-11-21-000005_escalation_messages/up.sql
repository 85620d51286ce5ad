-- Acknowledgement-deadline escalations of messages without a task join the history: a row names its task,
-- its message, or both.
ALTER TABLE escalations ALTER COLUMN task_id DROP NOT NULL;
ALTER TABLE escalations ADD COLUMN message_id TEXT;
CREATE INDEX escalations_message ON escalations (message_id);
