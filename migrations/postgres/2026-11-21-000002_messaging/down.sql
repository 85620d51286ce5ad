DROP TABLE message_templates;
DROP TABLE messages;
