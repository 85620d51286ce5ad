-- Agent-to-agent messages. The recipient's open messages (unread or unacknowledged) are also held in its
-- actor's memory; everything else is read from here.
CREATE TABLE messages (
    id TEXT PRIMARY KEY NOT NULL,
    sender_kind TEXT NOT NULL CHECK (sender_kind IN ('agent', 'system')),
    from_agent_id TEXT,
    from_agent_name TEXT NOT NULL,
    to_agent_id TEXT NOT NULL,
    to_agent_name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('task_update', 'help_request', 'blocker_resolved', 'status_query',
        'coordination', 'handoff', 'alert', 'need_input')),
    priority TEXT NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'critical')),
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    task_id TEXT,
    related_task_ids TEXT NOT NULL,
    data TEXT,
    read_at BIGINT,
    acknowledged_at BIGINT,
    action_taken TEXT,
    ack_deadline_at BIGINT,
    escalation_action TEXT,
    escalated_at BIGINT,
    reply_to_id TEXT,
    idempotency_key TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX messages_recipient ON messages (to_agent_id, id);
CREATE INDEX messages_sender ON messages (from_agent_id, id);
CREATE INDEX messages_sender_created ON messages (from_agent_id, created_at);
CREATE INDEX messages_task ON messages (task_id);
CREATE INDEX messages_expiry ON messages (expires_at);

CREATE TABLE message_templates (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('task_update', 'help_request', 'blocker_resolved', 'status_query',
        'coordination', 'handoff', 'alert', 'need_input')),
    priority TEXT NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'critical')),
    subject_template TEXT NOT NULL,
    body_template TEXT NOT NULL,
    required_vars TEXT NOT NULL,
    optional_vars TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Defaults every installation starts with; an operator may change or delete them like any other template.
INSERT INTO message_templates VALUES
    ('0196a000-0000-7000-8000-000000000001', 'help_request', 'help_request', 'high',
     'Help needed: {taskTitle}',
     '{agentName} needs help with "{taskTitle}": {reason}

Expected resolution: {expectedResolution}',
     '["taskTitle","agentName","reason"]', '["expectedResolution"]', 1795219200000, 1795219200000),
    ('0196a000-0000-7000-8000-000000000002', 'blocker_resolved', 'blocker_resolved', 'high',
     'Unblocked: {taskTitle}',
     '"{taskTitle}" is ready to continue: {blockerTitle} is done. {note}',
     '["taskTitle","blockerTitle"]', '["note"]', 1795219200000, 1795219200000),
    ('0196a000-0000-7000-8000-000000000003', 'handoff', 'handoff', 'normal',
     'Handoff: {taskTitle}',
     '{fromName} is handing "{taskTitle}" over to you.

State: {state}
Next steps: {nextSteps}',
     '["taskTitle","fromName","state"]', '["nextSteps"]', 1795219200000, 1795219200000);
