//! Agent-to-agent messages: what a valid message is, how the inbox filters and orders them, and the send-rate
//! window. Templates live in [`super::template`].

use super::text_enum::text_enum;
use super::{check_text, RuleViolation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::VecDeque;
use utoipa::ToSchema;

text_enum! {
    pub enum MessageType {
        TaskUpdate => "task_update", HelpRequest => "help_request", BlockerResolved => "blocker_resolved",
        StatusQuery => "status_query", Coordination => "coordination", Handoff => "handoff", Alert => "alert",
        NeedInput => "need_input"
    }
}

text_enum! {
    /// The derived ordering sorts `low` first; [`MessagePriority::urgency`] gives the wake order.
    pub enum MessagePriority { Low => "low", Normal => "normal", High => "high", Critical => "critical" }
}

text_enum! {
    /// Who sent a message: an agent, or the runtime itself (escalations, dependency notices).
    pub enum SenderKind { Agent => "agent", System => "system" }
}

pub const MAX_SUBJECT: usize = 200;
pub const MAX_BODY: usize = 20_000;
pub const MAX_DATA_BYTES: usize = 64 * 1024;
pub const MAX_RELATED_TASKS: usize = 50;
pub const MAX_ESCALATION_ACTION: usize = 200;
pub const MAX_ACK_TEXT: usize = 20_000;
pub const MAX_IDEMPOTENCY_KEY: usize = 200;
/// How long a sender's `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 3_600_000;

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    pub sender_kind: SenderKind,
    /// The sending agent; null for system messages.
    pub from_agent_id: Option<String>,
    /// The sender's name at send time (`system` for system messages).
    pub from_agent_name: String,
    pub to_agent_id: String,
    pub to_agent_name: String,
    #[serde(rename = "type")]
    pub kind: MessageType,
    pub priority: MessagePriority,
    pub subject: String,
    pub body: String,
    pub task_id: Option<String>,
    pub related_task_ids: Vec<String>,
    pub data: Option<Value>,
    pub read_at: Option<i64>,
    pub acknowledged_at: Option<i64>,
    /// What the recipient did about it, given with the acknowledgement.
    pub action_taken: Option<String>,
    pub ack_deadline_at: Option<i64>,
    pub escalation_action: Option<String>,
    pub escalated_at: Option<i64>,
    /// On a reply: the message it answers.
    pub reply_to_id: Option<String>,
    #[serde(skip)]
    pub idempotency_key: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

impl Message {
    /// Open messages still need the recipient's attention; they live in the recipient actor's memory.
    pub fn is_open(&self) -> bool {
        self.read_at.is_none() || self.acknowledged_at.is_none()
    }

    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at <= now
    }

    /// Past its acknowledgement deadline, unacknowledged and not yet escalated.
    pub fn is_overdue(&self, now: i64) -> bool {
        self.acknowledged_at.is_none() && self.escalated_at.is_none() && self.ack_deadline_at.is_some_and(|d| d <= now)
    }
}

/// What a sender asks for. Recipient and tasks are resolved by the actors before [`compose`] runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessageDraft {
    /// The recipient's id or name.
    pub to_agent_id: String,
    #[serde(rename = "type")]
    pub kind: Option<MessageType>,
    pub subject: String,
    #[serde(default)]
    pub body: String,
    pub priority: Option<MessagePriority>,
    pub task_id: Option<String>,
    #[serde(default)]
    pub related_task_ids: Vec<String>,
    /// Any JSON object, at most 64 KiB serialized.
    pub data: Option<Value>,
    /// Absolute deadline for the acknowledgement (epoch ms). Give this or `ackWithinMs`, not both.
    pub ack_deadline_at: Option<i64>,
    /// Deadline for the acknowledgement, relative to now.
    pub ack_within_ms: Option<i64>,
    /// Free text recorded with the escalation if the deadline passes.
    pub escalation_action: Option<String>,
}

/// The sender of a message being composed.
#[derive(Debug, Clone)]
pub enum Sender {
    Agent { id: String, name: String },
    System,
}

/// The recipient, as resolved by the directory.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub id: String,
    pub name: String,
}

/// Validates a draft and builds the message. `ttl_ms` is the configured lifetime.
pub fn compose(
    draft: MessageDraft,
    id: String,
    sender: Sender,
    recipient: Recipient,
    now: i64,
    ttl_ms: i64,
) -> Result<Message, RuleViolation> {
    let kind = draft
        .kind
        .ok_or_else(|| RuleViolation::invalid("type", "is required"))?;
    if let Sender::Agent { id: from, .. } = &sender {
        if *from == recipient.id {
            return Err(RuleViolation::invalid("toAgentId", "an agent cannot message itself"));
        }
    }
    let subject = check_text("subject", &draft.subject, 1, MAX_SUBJECT)?;
    let body_len = draft.body.chars().count();
    if body_len > MAX_BODY {
        return Err(RuleViolation::invalid(
            "body",
            format!("must be at most {MAX_BODY} characters (got {body_len})"),
        ));
    }
    let data = match draft.data {
        None | Some(Value::Null) => None,
        Some(value @ Value::Object(_)) => {
            let size = serde_json::to_string(&value).map(|s| s.len()).unwrap_or(usize::MAX);
            if size > MAX_DATA_BYTES {
                return Err(RuleViolation::invalid(
                    "data",
                    format!("must be at most {MAX_DATA_BYTES} bytes of JSON (got {size})"),
                ));
            }
            Some(value)
        }
        Some(_) => return Err(RuleViolation::invalid("data", "must be a JSON object")),
    };
    if draft.related_task_ids.len() > MAX_RELATED_TASKS {
        return Err(RuleViolation::invalid(
            "relatedTaskIds",
            format!("at most {MAX_RELATED_TASKS} entries"),
        ));
    }
    let mut related_task_ids: Vec<String> = Vec::with_capacity(draft.related_task_ids.len());
    for task in draft.related_task_ids {
        let task = check_text("relatedTaskIds", &task, 1, 100)?;
        if !related_task_ids.contains(&task) {
            related_task_ids.push(task);
        }
    }
    let ack_deadline_at = match (draft.ack_deadline_at, draft.ack_within_ms) {
        (Some(_), Some(_)) => {
            return Err(RuleViolation::invalid(
                "ackWithinMs",
                "give ackDeadlineAt or ackWithinMs, not both",
            ))
        }
        (Some(at), None) if at <= now => return Err(RuleViolation::invalid("ackDeadlineAt", "must be in the future")),
        (None, Some(within)) if within <= 0 => return Err(RuleViolation::invalid("ackWithinMs", "must be positive")),
        (Some(at), None) => Some(at),
        (None, Some(within)) => Some(now.saturating_add(within)),
        (None, None) => None,
    };
    let escalation_action = draft
        .escalation_action
        .map(|text| check_text("escalationAction", &text, 1, MAX_ESCALATION_ACTION))
        .transpose()?;
    if escalation_action.is_some() && ack_deadline_at.is_none() {
        return Err(RuleViolation::invalid(
            "escalationAction",
            "needs an acknowledgement deadline (ackDeadlineAt or ackWithinMs)",
        ));
    }
    let task_id = draft
        .task_id
        .map(|task| check_text("taskId", &task, 1, 100))
        .transpose()?;
    let (sender_kind, from_agent_id, from_agent_name) = match sender {
        Sender::Agent { id, name } => (SenderKind::Agent, Some(id), name),
        Sender::System => (SenderKind::System, None, "system".to_string()),
    };
    Ok(Message {
        id,
        sender_kind,
        from_agent_id,
        from_agent_name,
        to_agent_id: recipient.id,
        to_agent_name: recipient.name,
        kind,
        priority: draft.priority.unwrap_or(MessagePriority::Normal),
        subject,
        body: draft.body,
        task_id,
        related_task_ids,
        data,
        read_at: None,
        acknowledged_at: None,
        action_taken: None,
        ack_deadline_at,
        escalation_action,
        escalated_at: None,
        reply_to_id: None,
        idempotency_key: None,
        created_at: now,
        expires_at: now.saturating_add(ttl_ms),
    })
}

/// The subject of a reply: `RE: <subject>`, cut to the subject limit.
pub fn reply_subject(original: &str) -> String {
    let subject = if original.starts_with("RE: ") {
        original.to_string()
    } else {
        format!("RE: {original}")
    };
    subject.chars().take(MAX_SUBJECT).collect()
}

/// Checks the free text given with an acknowledgement.
pub fn check_ack_text(field: &'static str, text: Option<String>) -> Result<Option<String>, RuleViolation> {
    text.map(|t| check_text(field, &t, 1, MAX_ACK_TEXT)).transpose()
}

/// Checks an `Idempotency-Key` header value.
pub fn check_idempotency_key(key: &str) -> Result<String, RuleViolation> {
    let key = check_text("Idempotency-Key", key, 1, MAX_IDEMPOTENCY_KEY)?;
    if key.chars().any(char::is_control) {
        return Err(RuleViolation::invalid(
            "Idempotency-Key",
            "must not contain control characters",
        ));
    }
    Ok(key)
}

/// Inbox filters. A flag set to `true` keeps only the matching messages; `false` keeps only the others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboxFilter {
    pub unread: Option<bool>,
    pub unacknowledged: Option<bool>,
    pub kind: Option<MessageType>,
    pub priority: Option<MessagePriority>,
    pub task_id: Option<String>,
    /// The sender's id or name.
    pub from_agent: Option<String>,
    /// Only messages created at or after this time (epoch ms).
    pub since: Option<i64>,
}

impl InboxFilter {
    /// The same predicate the store applies in SQL, for messages held in memory (long polls, streams).
    pub fn matches(&self, message: &Message) -> bool {
        self.unread.is_none_or(|u| u == message.read_at.is_none())
            && self
                .unacknowledged
                .is_none_or(|u| u == message.acknowledged_at.is_none())
            && self.kind.is_none_or(|k| k == message.kind)
            && self.priority.is_none_or(|p| p == message.priority)
            && self
                .task_id
                .as_ref()
                .is_none_or(|t| message.task_id.as_ref() == Some(t))
            && self.from_agent.as_ref().is_none_or(|from| {
                message.from_agent_id.as_ref() == Some(from) || message.from_agent_name.eq_ignore_ascii_case(from)
            })
            && self.since.is_none_or(|since| message.created_at >= since)
    }
}

impl MessagePriority {
    /// Higher is more urgent.
    pub fn urgency(self) -> u8 {
        match self {
            MessagePriority::Low => 0,
            MessagePriority::Normal => 1,
            MessagePriority::High => 2,
            MessagePriority::Critical => 3,
        }
    }
}

/// Totals over one agent's inbox.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InboxStats {
    pub total: i64,
    pub unread: i64,
    pub unacknowledged: i64,
    /// Count per message type; every type is listed.
    pub by_type: std::collections::BTreeMap<String, i64>,
    /// Count per priority; every priority is listed.
    pub by_priority: std::collections::BTreeMap<String, i64>,
    pub acknowledged: i64,
    /// Mean time from delivery to acknowledgement, in seconds (one decimal); null until one is acknowledged.
    pub average_ack_seconds: Option<f64>,
}

impl InboxStats {
    /// Starts with every type and priority at zero, so clients see the full set.
    pub fn empty() -> Self {
        InboxStats {
            by_type: MessageType::ALL.iter().map(|t| (t.as_str().to_string(), 0)).collect(),
            by_priority: MessagePriority::ALL
                .iter()
                .map(|p| (p.as_str().to_string(), 0))
                .collect(),
            ..InboxStats::default()
        }
    }
}

/// The order an agent handles its unread messages on waking: most urgent first, then newest first.
pub fn wake_order(messages: &mut [Message]) {
    messages.sort_by(|a, b| {
        b.priority
            .urgency()
            .cmp(&a.priority.urgency())
            .then_with(|| b.id.cmp(&a.id))
    });
}

/// A sliding one-minute window of send times: at most `limit` sends in any 60 s. A limit of 0 disables it.
#[derive(Debug, Clone, Default)]
pub struct RateWindow {
    sends: VecDeque<i64>,
}

pub const RATE_WINDOW_MS: i64 = 60_000;

impl RateWindow {
    /// Records a send at `now`, or says how many whole seconds until the next send is allowed.
    pub fn try_acquire(&mut self, limit: u32, now: i64) -> Result<(), u64> {
        if limit == 0 {
            return Ok(());
        }
        while self.sends.front().is_some_and(|&at| at <= now - RATE_WINDOW_MS) {
            self.sends.pop_front();
        }
        if self.sends.len() >= limit as usize {
            let oldest = self.sends.front().copied().unwrap_or(now);
            let wait_ms = (oldest + RATE_WINDOW_MS - now).max(1);
            return Err(u64::try_from((wait_ms + 999) / 1000).unwrap_or(1));
        }
        self.sends.push_back(now);
        Ok(())
    }

    /// Gives back a send that did not happen (the delivery failed), so failures don't count.
    pub fn release(&mut self, at: i64) {
        if let Some(pos) = self.sends.iter().rposition(|&t| t == at) {
            self.sends.remove(pos);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> MessageDraft {
        MessageDraft {
            to_agent_id: "bob".into(),
            kind: Some(MessageType::HelpRequest),
            subject: "Need a hand".into(),
            body: "with the parser".into(),
            ..MessageDraft::default()
        }
    }

    fn alice() -> Sender {
        Sender::Agent {
            id: "a".into(),
            name: "alice".into(),
        }
    }

    fn bob() -> Recipient {
        Recipient {
            id: "b".into(),
            name: "bob".into(),
        }
    }

    fn compose_at(draft: MessageDraft, now: i64) -> Result<Message, RuleViolation> {
        compose(draft, "m1".into(), alice(), bob(), now, 1_000)
    }

    fn field_of(violation: RuleViolation) -> &'static str {
        match violation {
            RuleViolation::Invalid { field, .. } => field,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_valid_draft_gets_defaults() {
        let m = compose_at(draft(), 10).unwrap();
        assert_eq!(m.priority, MessagePriority::Normal);
        assert_eq!(m.sender_kind, SenderKind::Agent);
        assert_eq!(m.expires_at, 1_010);
        assert!(m.is_open());
        let system = compose(draft(), "m2".into(), Sender::System, bob(), 10, 1_000).unwrap();
        assert_eq!(system.from_agent_name, "system");
        assert_eq!(system.from_agent_id, None);
    }

    #[test]
    fn bad_drafts_name_the_field() {
        let cases: Vec<(MessageDraft, &str)> = vec![
            (
                MessageDraft {
                    subject: " ".into(),
                    ..draft()
                },
                "subject",
            ),
            (
                MessageDraft {
                    subject: "x".repeat(201),
                    ..draft()
                },
                "subject",
            ),
            (
                MessageDraft {
                    body: "x".repeat(20_001),
                    ..draft()
                },
                "body",
            ),
            (MessageDraft { kind: None, ..draft() }, "type"),
            (
                MessageDraft {
                    data: Some(serde_json::json!([1])),
                    ..draft()
                },
                "data",
            ),
            (
                MessageDraft {
                    data: Some(serde_json::json!({ "blob": "x".repeat(70_000) })),
                    ..draft()
                },
                "data",
            ),
            (
                MessageDraft {
                    ack_deadline_at: Some(5),
                    ..draft()
                },
                "ackDeadlineAt",
            ),
            (
                MessageDraft {
                    ack_within_ms: Some(0),
                    ..draft()
                },
                "ackWithinMs",
            ),
            (
                MessageDraft {
                    ack_within_ms: Some(5),
                    ack_deadline_at: Some(50),
                    ..draft()
                },
                "ackWithinMs",
            ),
            (
                MessageDraft {
                    escalation_action: Some("page".into()),
                    ..draft()
                },
                "escalationAction",
            ),
        ];
        for (bad, field) in cases {
            assert_eq!(field_of(compose_at(bad, 10).unwrap_err()), field);
        }
        let to_self = compose(
            draft(),
            "m".into(),
            alice(),
            Recipient {
                id: "a".into(),
                name: "alice".into(),
            },
            10,
            1,
        );
        assert_eq!(field_of(to_self.unwrap_err()), "toAgentId");
    }

    #[test]
    fn relative_deadlines_count_from_now() {
        let m = compose_at(
            MessageDraft {
                ack_within_ms: Some(300),
                ..draft()
            },
            10,
        )
        .unwrap();
        assert_eq!(m.ack_deadline_at, Some(310));
        assert!(!m.is_overdue(309));
        assert!(m.is_overdue(310));
        let mut escalated = m.clone();
        escalated.escalated_at = Some(310);
        assert!(!escalated.is_overdue(400));
    }

    #[test]
    fn filters_match_like_the_store() {
        let mut m = compose_at(draft(), 10).unwrap();
        assert!(InboxFilter::default().matches(&m));
        let unread = InboxFilter {
            unread: Some(true),
            ..InboxFilter::default()
        };
        assert!(unread.matches(&m));
        m.read_at = Some(11);
        assert!(!unread.matches(&m));
        let by_name = InboxFilter {
            from_agent: Some("ALICE".into()),
            ..InboxFilter::default()
        };
        assert!(by_name.matches(&m));
        let since = InboxFilter {
            since: Some(11),
            ..InboxFilter::default()
        };
        assert!(!since.matches(&m));
    }

    #[test]
    fn wake_order_is_most_urgent_then_newest() {
        let mut a = compose_at(draft(), 1).unwrap();
        a.id = "1".into();
        a.priority = MessagePriority::Critical;
        let mut b = a.clone();
        b.id = "2".into();
        b.priority = MessagePriority::Low;
        let mut c = a.clone();
        c.id = "3".into();
        c.priority = MessagePriority::Normal;
        let mut all = vec![b, a, c];
        wake_order(&mut all);
        let ids: Vec<_> = all.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["1", "3", "2"]);
    }

    #[test]
    fn the_rate_window_slides() {
        let mut window = RateWindow::default();
        for i in 0..3 {
            window.try_acquire(3, i * 1000).unwrap();
        }
        assert_eq!(window.try_acquire(3, 2_500), Err(58));
        window.try_acquire(3, 60_000).unwrap();
        assert!(window.try_acquire(3, 60_001).is_err());
        window.release(60_000);
        window.try_acquire(3, 60_001).unwrap();
        let mut unlimited = RateWindow::default();
        for i in 0..100 {
            unlimited.try_acquire(0, i).unwrap();
        }
    }

    #[test]
    fn replies_say_re_once() {
        assert_eq!(reply_subject("Deploy"), "RE: Deploy");
        assert_eq!(reply_subject("RE: Deploy"), "RE: Deploy");
        assert_eq!(reply_subject(&"x".repeat(200)).chars().count(), 200);
    }
}
