//! The action outbox: every side effect that leaves its owner — a system message to an agent, a webhook, a
//! page to a human — is a row written in the same journal batch as the change that caused it, and delivered
//! at least once by the `Dispatcher`.
//!
//! - A row's `dedupeKey` is unique: writing the same effect twice (a firing planned again after a crash, a
//!   notice for the same unblocking) keeps the first row.
//! - A delivery attempt that fails is retried after an exponential backoff with jitter; after
//!   `max_attempts` the row is `dead` and waits for an operator's retry.
//! - Agent messages carry the row's id as their idempotency key, so a redelivery after a crash finds the
//!   message already stored and makes no second one; webhooks carry it as the `Idempotency-Key` header.

use super::escalation::{ActionResult, ActionStatus};
use super::message::MessageDraft;
use super::text_enum::text_enum;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// The first retry waits about this long; each next one twice as long, up to [`MAX_BACKOFF_MS`].
pub const FIRST_BACKOFF_MS: i64 = 5_000;
pub const MAX_BACKOFF_MS: i64 = 15 * 60_000;
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;

text_enum! {
    pub enum OutboxKind {
        AgentMessage => "agent_message",
        Webhook => "webhook",
        HumanPage => "human_page",
    }
}

text_enum! {
    /// `pending` until delivered; `dead` after the last failed attempt (an operator may retry it).
    pub enum OutboxStatus { Pending => "pending", Delivered => "delivered", Dead => "dead" }
}

/// Who receives an outbox message, resolved when it is delivered (so a lead changed in between is the one
/// alerted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum Recipients {
    /// One agent, by id or name.
    Agent { agent: String },
    /// `agent`'s lead (`depth` 1) or that lead's lead (`depth` 2). When there is none, or it cannot take the
    /// message (suspended, deleted), every lead-level agent other than `agent` and the leads tried.
    LeadOf { agent: Option<String>, depth: u32 },
}

/// What a row delivers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum Effect {
    /// A system message; the draft's `toAgentId` is filled in for each recipient at delivery.
    AgentMessage { to: Recipients, draft: MessageDraft },
    /// A JSON POST. `url: null` means `MC_ESCALATION_WEBHOOK_URL` at delivery.
    Webhook {
        url: Option<String>,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        body: serde_json::Value,
    },
    /// A person must look: the `escalated_to_human` entry is already in the admin feed; this POSTs the page
    /// to `MC_ESCALATION_WEBHOOK_URL` when one is set, and is delivered without it otherwise.
    HumanPage {
        /// The line in the admin activity feed.
        summary: String,
        /// The agent the page is about (the task's assignee), for the feed.
        agent_id: Option<String>,
        body: serde_json::Value,
    },
}

impl Effect {
    pub fn kind(&self) -> OutboxKind {
        match self {
            Effect::AgentMessage { .. } => OutboxKind::AgentMessage,
            Effect::Webhook { .. } => OutboxKind::Webhook,
            Effect::HumanPage { .. } => OutboxKind::HumanPage,
        }
    }
}

/// One outbox row.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutboxItem {
    pub id: String,
    pub kind: OutboxKind,
    pub dedupe_key: String,
    pub effect: Effect,
    /// The escalation whose action this is, if any, and the action's position in its list.
    pub escalation_id: Option<String>,
    pub action_index: Option<u32>,
    pub task_id: Option<String>,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    /// What the delivery did, in words ("alerted ada", "POST …: HTTP 200").
    pub result: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
    pub dead_at: Option<i64>,
}

impl OutboxItem {
    /// A new pending row, due at once.
    pub fn new(id: String, dedupe_key: String, effect: Effect, now: i64) -> OutboxItem {
        OutboxItem {
            id,
            kind: effect.kind(),
            dedupe_key,
            effect,
            escalation_id: None,
            action_index: None,
            task_id: None,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            result: None,
            created_at: now,
            delivered_at: None,
            dead_at: None,
        }
    }

    pub fn for_escalation(mut self, escalation_id: &str, action_index: usize, task_id: Option<&str>) -> Self {
        self.escalation_id = Some(escalation_id.to_string());
        self.action_index = u32::try_from(action_index).ok();
        self.task_id = task_id.map(str::to_string);
        self
    }

    pub fn status(&self) -> OutboxStatus {
        match (self.delivered_at, self.dead_at) {
            (Some(_), _) => OutboxStatus::Delivered,
            (None, Some(_)) => OutboxStatus::Dead,
            (None, None) => OutboxStatus::Pending,
        }
    }

    /// Whether the dispatcher should try it now.
    pub fn is_due(&self, now: i64) -> bool {
        self.status() == OutboxStatus::Pending && self.next_attempt_at <= now
    }

    /// The row after a successful attempt.
    pub fn delivered(mut self, result: String, now: i64) -> Self {
        self.attempts += 1;
        self.result = Some(result);
        self.delivered_at = Some(now);
        self
    }

    /// The row after a failed attempt: retried after [`backoff_ms`], or dead after the last attempt or when
    /// the failure is permanent. `jitter` is a number in `[0, 1)`.
    pub fn failed(mut self, error: String, permanent: bool, max_attempts: u32, jitter: f64, now: i64) -> Self {
        self.attempts += 1;
        self.last_error = Some(error);
        if permanent || self.attempts >= max_attempts {
            self.dead_at = Some(now);
        } else {
            self.next_attempt_at = now + backoff_ms(self.attempts, jitter);
        }
        self
    }

    /// An operator's retry of a dead (or pending) row: due now, with a fresh set of attempts.
    pub fn revived(mut self, now: i64) -> Self {
        self.dead_at = None;
        self.attempts = 0;
        self.next_attempt_at = now;
        self
    }

    /// The row as an API reader sees it: webhook header values are write-only.
    pub fn redacted(mut self) -> Self {
        if let Effect::Webhook { headers, .. } = &mut self.effect {
            for value in headers.values_mut() {
                *value = "***".into();
            }
        }
        self
    }
}

/// Shows each action delivered through the outbox as its row stands: `executed` once delivered, `failed`
/// while retrying, `dead` once given up, `pending` before the first attempt; the detail recorded when the
/// action ran is followed by what the delivery did.
pub fn overlay(actions: &mut [ActionResult], rows: &[OutboxItem]) {
    for action in actions.iter_mut() {
        let Some(row) = action
            .outbox_id
            .as_ref()
            .and_then(|id| rows.iter().find(|r| &r.id == id))
        else {
            continue;
        };
        let (status, outcome) = match row.status() {
            OutboxStatus::Delivered => (ActionStatus::Executed, row.result.clone().unwrap_or_default()),
            OutboxStatus::Dead => (
                ActionStatus::Dead,
                format!(
                    "gave up after {} attempts: {}",
                    row.attempts,
                    row.last_error.as_deref().unwrap_or("unknown error")
                ),
            ),
            OutboxStatus::Pending if row.attempts == 0 => (ActionStatus::Pending, "queued".to_string()),
            OutboxStatus::Pending => (
                ActionStatus::Failed,
                format!(
                    "attempt {} failed: {}; retrying at {} ms",
                    row.attempts,
                    row.last_error.as_deref().unwrap_or("unknown error"),
                    row.next_attempt_at
                ),
            ),
        };
        action.status = status;
        let recorded = std::mem::take(&mut action.detail);
        action.detail = [recorded, outcome]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
    }
}

/// The wait before the next attempt after `attempts` failed ones: `FIRST_BACKOFF_MS · 2^(attempts−1)`, capped at
/// `MAX_BACKOFF_MS`, of which the upper half is jitter (`jitter` in `[0, 1)`), so retries of many rows that
/// failed together spread out instead of arriving at the same instant.
pub fn backoff_ms(attempts: u32, jitter: f64) -> i64 {
    let exponent = attempts.saturating_sub(1).min(20);
    let full = FIRST_BACKOFF_MS.saturating_mul(1_i64 << exponent).min(MAX_BACKOFF_MS);
    let half = full / 2;
    half + (half as f64 * jitter.clamp(0.0, 1.0)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook() -> OutboxItem {
        let effect = Effect::Webhook {
            url: Some("http://127.0.0.1:9/hook".into()),
            headers: BTreeMap::from([("Authorization".to_string(), "Bearer secret".to_string())]),
            body: serde_json::json!({"event": "escalation"}),
        };
        OutboxItem::new("o1".into(), "esc:e1:0".into(), effect, 1_000)
    }

    #[test]
    fn backoff_doubles_from_five_seconds_and_stops_at_fifteen_minutes() {
        let upper: Vec<i64> = (1..=10).map(|n| backoff_ms(n, 0.999_999)).collect();
        let lower: Vec<i64> = (1..=10).map(|n| backoff_ms(n, 0.0)).collect();
        assert_eq!(lower[0], 2_500);
        assert!((4_999..=5_000).contains(&upper[0]), "{upper:?}");
        assert_eq!(lower[1], 5_000);
        assert_eq!(lower[2], 10_000);
        assert_eq!(lower[8], MAX_BACKOFF_MS / 2, "capped: {lower:?}");
        assert!(upper.iter().all(|&ms| ms <= MAX_BACKOFF_MS));
        assert!(lower.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(
            backoff_ms(u32::MAX, 0.5),
            backoff_ms(30, 0.5),
            "huge counts do not overflow"
        );
    }

    #[test]
    fn a_failed_attempt_is_retried_later_until_the_last_one() {
        let mut row = webhook();
        for attempt in 1..DEFAULT_MAX_ATTEMPTS {
            row = row.failed("HTTP 500".into(), false, DEFAULT_MAX_ATTEMPTS, 0.0, 10_000);
            assert_eq!(row.attempts, attempt);
            assert_eq!(row.status(), OutboxStatus::Pending);
            assert_eq!(row.next_attempt_at, 10_000 + backoff_ms(attempt, 0.0));
            assert!(!row.is_due(10_000) && row.is_due(row.next_attempt_at));
        }
        let row = row.failed("HTTP 500".into(), false, DEFAULT_MAX_ATTEMPTS, 0.0, 20_000);
        assert_eq!(row.status(), OutboxStatus::Dead);
        assert_eq!(row.dead_at, Some(20_000));
        assert!(!row.is_due(i64::MAX), "a dead row waits for an operator");
        let revived = row.revived(30_000);
        assert_eq!((revived.status(), revived.attempts), (OutboxStatus::Pending, 0));
        assert!(revived.is_due(30_000));
    }

    #[test]
    fn a_permanent_failure_is_dead_at_once() {
        let row = webhook().failed("unknown agent".into(), true, DEFAULT_MAX_ATTEMPTS, 0.3, 5);
        assert_eq!((row.status(), row.attempts), (OutboxStatus::Dead, 1));
    }

    #[test]
    fn delivery_is_final_and_counts_its_attempt() {
        let row = webhook().failed("timeout".into(), false, 3, 0.0, 2_000);
        let row = row.delivered("HTTP 200".into(), 9_000);
        assert_eq!((row.status(), row.attempts), (OutboxStatus::Delivered, 2));
        assert!(!row.is_due(i64::MAX));
        assert_eq!(
            row.last_error.as_deref(),
            Some("timeout"),
            "the history of the failure stays"
        );
    }

    #[test]
    fn readers_never_see_header_values() {
        let Effect::Webhook { headers, .. } = webhook().redacted().effect else {
            panic!("a webhook");
        };
        assert_eq!(headers.get("Authorization").map(String::as_str), Some("***"));
    }

    #[test]
    fn actions_show_their_rows_delivery_state() {
        let action = |id: &str| ActionResult {
            kind: "escalate".into(),
            status: ActionStatus::Pending,
            detail: "priority P2 → P1".into(),
            outbox_id: Some(id.into()),
        };
        let queued = webhook();
        let mut retrying = webhook().failed("HTTP 500".into(), false, 8, 0.0, 1_000);
        retrying.id = "o2".into();
        let mut delivered = webhook().delivered("alerted ada".into(), 2_000);
        delivered.id = "o3".into();
        let mut dead = webhook().failed("HTTP 404".into(), true, 8, 0.0, 3_000);
        dead.id = "o4".into();
        let mut actions = vec![action("o1"), action("o2"), action("o3"), action("o4"), action("gone")];
        let untouched = ActionResult {
            kind: "set_priority".into(),
            status: ActionStatus::Executed,
            detail: "priority P2 → P0".into(),
            outbox_id: None,
        };
        actions.push(untouched.clone());
        overlay(&mut actions, &[queued, retrying, delivered, dead]);
        let statuses: Vec<ActionStatus> = actions.iter().map(|a| a.status).collect();
        assert_eq!(
            statuses,
            [
                ActionStatus::Pending,
                ActionStatus::Failed,
                ActionStatus::Executed,
                ActionStatus::Dead,
                ActionStatus::Pending,
                ActionStatus::Executed
            ]
        );
        assert_eq!(actions[2].detail, "priority P2 → P1; alerted ada");
        assert!(
            actions[1].detail.contains("attempt 1 failed: HTTP 500"),
            "{:?}",
            actions[1]
        );
        assert!(
            actions[3].detail.contains("gave up after 1 attempts: HTTP 404"),
            "{:?}",
            actions[3]
        );
        assert_eq!(actions[5], untouched);
    }

    #[test]
    fn effects_round_trip_through_json() {
        let effect = Effect::AgentMessage {
            to: Recipients::LeadOf {
                agent: Some("bob".into()),
                depth: 2,
            },
            draft: MessageDraft {
                subject: "Escalation".into(),
                ..MessageDraft::default()
            },
        };
        let text = serde_json::to_string(&effect).expect("serialize");
        let back: Effect = serde_json::from_str(&text).expect("deserialize");
        assert_eq!(back, effect);
        assert_eq!(back.kind(), OutboxKind::AgentMessage);
    }
}
