DROP INDEX escalations_message;
DELETE FROM escalations WHERE task_id IS NULL;
ALTER TABLE escalations DROP COLUMN message_id;
ALTER TABLE escalations ALTER COLUMN task_id SET NOT NULL;
