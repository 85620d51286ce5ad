//! Requests an `AgentActor` answers.

use super::AgentActor;
use crate::actors::task_board::TaskBoard;
use crate::domain::agent::AgentPatch;
use crate::domain::message::{self as mail, InboxFilter, MessageDraft, Recipient};
use crate::domain::query::PageRequest;
use crate::domain::{Agent, AgentStatus, Principal};
use crate::error::AppResult;
use actix::{Addr, Message};
use serde::Serialize;
use std::time::Duration;
use tokio::sync::mpsc;
use utoipa::ToSchema;

#[derive(Message)]
#[rtype(result = "Agent")]
pub struct GetAgent;

/// Change profile fields. Org-chart fields (level, lead) and suspension need the admin; `lead_id` has been
/// resolved to an existing agent's id by the directory.
#[derive(Message)]
#[rtype(result = "AppResult<Agent>")]
pub struct UpdateAgent {
    pub patch: AgentPatch,
    pub by: Principal,
}

/// "I am alive": refreshes `lastHeartbeatAt`, sets the status (default `active`) and the current task.
#[derive(Message)]
#[rtype(result = "AppResult<Agent>")]
pub struct Heartbeat {
    pub status: Option<AgentStatus>,
    pub current_task_id: Option<String>,
    pub by: Principal,
}

/// The heartbeat monitor's check, sent on every tick. Replies whether the agent just went offline.
#[derive(Message)]
#[rtype(result = "AppResult<bool>")]
pub struct CheckHeartbeat;

/// The agent's lead was deleted: forget it.
#[derive(Message)]
#[rtype(result = "AppResult<()>")]
pub struct ForgetLead {
    pub lead_id: String,
}

/// The agent was deleted and its row is gone; stop the actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Retire;

// ---- Messaging -------------------------------------------------------------------------------------------

/// First hop of a send, in the sender's actor: permission, validation, rate window and idempotency; then
/// the recipient's actor stores and delivers.
#[derive(Message)]
#[rtype(result = "AppResult<Sent>")]
pub struct SendMessage {
    pub draft: MessageDraft,
    pub recipient: Recipient,
    pub recipient_addr: Addr<AgentActor>,
    pub board: Addr<TaskBoard>,
    pub by: Principal,
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Sent {
    pub message: mail::Message,
    /// True when an earlier send with the same `Idempotency-Key` is being returned.
    pub replayed: bool,
}

/// The message first sent with this idempotency key by this agent, if the key is remembered (waits for a
/// send still in flight). A send that must do work before it reaches the sender's actor (rendering a
/// template) asks this first, so that a retry replays even when that work would now fail.
#[derive(Message)]
#[rtype(result = "AppResult<Option<Sent>>")]
pub struct Replay {
    pub key: String,
    pub by: Principal,
}

/// Second hop, in the recipient's actor: give the message its id, commit it with its activity row, hold it
/// in the open inbox and push it to waiters. Replies with the stored message.
#[derive(Message)]
#[rtype(result = "AppResult<mail::Message>")]
pub struct Deliver {
    pub message: mail::Message,
    pub by: Principal,
}

/// A message already committed by another owner (a reply written with its acknowledgement): hold and push.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Delivered(pub mail::Message);

/// A page of the inbox with the open counts.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InboxPage {
    pub items: Vec<mail::Message>,
    pub next_cursor: Option<String>,
    pub unread_count: usize,
    pub unacknowledged_count: usize,
}

/// The inbox, newest first. With `wait` and nothing matching on the first page, the actor keeps the
/// request until a matching message is delivered or the wait ends.
#[derive(Message)]
#[rtype(result = "AppResult<InboxPage>")]
pub struct ListInbox {
    pub filter: InboxFilter,
    pub page: PageRequest,
    pub wait: Option<Duration>,
    pub by: Principal,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReadReceipt {
    /// How many messages were marked read now.
    pub marked: usize,
    pub marked_ids: Vec<String>,
    /// Ids that were not marked: already read, not in this inbox, or unknown.
    pub skipped: Vec<String>,
}

#[derive(Message)]
#[rtype(result = "AppResult<ReadReceipt>")]
pub struct MarkRead {
    pub ids: Vec<String>,
    pub by: Principal,
}

/// Marks one message read and returns it (an already-read message is returned as it is).
#[derive(Message)]
#[rtype(result = "AppResult<mail::Message>")]
pub struct ReadOne {
    pub message_id: String,
    pub by: Principal,
}

/// Who sent an open message of this inbox: the directory asks before an acknowledgement with a reply, so
/// that it can hand the recipient the original sender's address.
#[derive(Message)]
#[rtype(result = "AppResult<Option<String>>")]
pub struct SenderOf {
    pub message_id: String,
    pub by: Principal,
}

/// Where an acknowledgement's reply goes.
#[derive(Clone)]
pub struct ReplyTarget {
    pub addr: Addr<AgentActor>,
    pub id: String,
    pub name: String,
}

#[derive(Message)]
#[rtype(result = "AppResult<Acknowledged>")]
pub struct Acknowledge {
    pub message_id: String,
    pub response: Option<String>,
    pub action_taken: Option<String>,
    pub reply_to: Option<ReplyTarget>,
    pub by: Principal,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Acknowledged {
    pub message: mail::Message,
    /// The `coordination` reply sent to the original sender, when a response was given.
    pub reply: Option<mail::Message>,
}

/// Subscribes a WebSocket stream to every message delivered from now on.
#[derive(Message)]
#[rtype(result = "AppResult<Stream>")]
pub struct OpenStream {
    pub by: Principal,
}

pub struct Stream {
    pub agent: Agent,
    pub messages: mpsc::Receiver<mail::Message>,
    pub unread_count: usize,
    pub unacknowledged_count: usize,
}

/// The tick's acknowledgement-deadline check: marks every overdue open message escalated (once) and
/// replies with them, for the escalation path to act on.
#[derive(Message)]
#[rtype(result = "AppResult<Overdue>")]
pub struct EscalateOverdue;

#[derive(Debug, Clone)]
pub struct Overdue {
    pub agent: Agent,
    pub messages: Vec<mail::Message>,
    /// The `ack_deadline` escalation of each message, committed with its `escalatedAt`.
    pub escalations: Vec<crate::domain::escalation::Escalation>,
    /// The alert of each escalation, committed with it, for the dispatcher.
    pub outbox: Vec<crate::domain::outbox::OutboxItem>,
}

/// Expired messages were deleted from the store: drop them from memory.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ForgetMessages(pub Vec<String>);

/// What an agent sees on waking: its most urgent unread messages and the open counts.
#[derive(Message)]
#[rtype(result = "AppResult<WakeInbox>")]
pub struct PeekUnread {
    pub limit: usize,
    pub by: Principal,
}

#[derive(Debug, Clone)]
pub struct WakeInbox {
    pub messages: Vec<mail::Message>,
    pub unread_count: usize,
    pub unacknowledged_count: usize,
}
