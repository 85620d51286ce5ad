//! Requests the `AgentDirectory` answers. Agent-specific requests name the agent by id or name; the directory
//! resolves it and forwards to that agent's actor.

use super::super::task_board::TaskBoard;
use crate::actors::agent::messages::{Acknowledged, InboxPage, Overdue, ReadReceipt, Sent, Stream};
use crate::domain::agent::{AgentDraft, AgentPatch};
use crate::domain::message::{self as mail, InboxFilter, InboxStats, MessageDraft};
use crate::domain::query::{Page, PageRequest};
use crate::domain::{Agent, AgentLevel, AgentStatus, Principal, Task};
use crate::error::AppResult;
use actix::{Addr, Message};
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

/// An agent and its token. The token is shown only here: at registration and at rotation.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentWithToken {
    pub agent: Agent,
    pub token: String,
}

#[derive(Message)]
#[rtype(result = "AppResult<AgentWithToken>")]
pub struct Register {
    pub draft: AgentDraft,
    pub by: Principal,
}

/// Looks an agent up by id or name.
#[derive(Message)]
#[rtype(result = "AppResult<Agent>")]
pub struct Resolve {
    pub key: String,
}

#[derive(Debug, Clone, Default)]
pub struct AgentFilter {
    pub status: Option<AgentStatus>,
    pub level: Option<AgentLevel>,
    pub specialization: Option<String>,
}

#[derive(Message)]
#[rtype(result = "AppResult<Page<Agent>>")]
pub struct ListAgents {
    pub filter: AgentFilter,
    pub page: PageRequest,
}

#[derive(Message)]
#[rtype(result = "AppResult<Agent>")]
pub struct Update {
    pub key: String,
    pub patch: AgentPatch,
    pub by: Principal,
}

#[derive(Message)]
#[rtype(result = "AppResult<Agent>")]
pub struct Heartbeat {
    pub key: String,
    pub status: Option<AgentStatus>,
    pub current_task_id: Option<String>,
    pub by: Principal,
}

#[derive(Message)]
#[rtype(result = "AppResult<AgentWithToken>")]
pub struct RotateToken {
    pub key: String,
    pub by: Principal,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeletedAgent {
    pub agent: Agent,
    /// Open tasks that were returned to `ready`, unassigned (only with `force`).
    pub released_task_ids: Vec<String>,
}

#[derive(Message)]
#[rtype(result = "AppResult<DeletedAgent>")]
pub struct Delete {
    pub key: String,
    pub force: bool,
    pub by: Principal,
}

/// Who holds this bearer token.
#[derive(Message)]
#[rtype(result = "AppResult<Principal>")]
pub struct Authenticate {
    pub token: String,
}

/// The runtime's tick: runs the heartbeat monitor over every agent. Replies with the agents that went
/// offline.
#[derive(Message)]
#[rtype(result = "AppResult<Vec<String>>")]
pub struct Tick;

/// Late binding at wiring time: the board and the directory each need the other's address.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetTaskBoard(pub Addr<TaskBoard>);

// ---- Messaging: the directory resolves the agents named and forwards to their actors. -------------------

/// Send as agent `from` (id or name) to the draft's recipient.
#[derive(Message)]
#[rtype(result = "AppResult<Sent>")]
pub struct SendMessage {
    pub from: String,
    pub draft: MessageDraft,
    pub by: Principal,
    pub idempotency_key: Option<String>,
}

/// The message `from` first sent with this idempotency key, if it is remembered.
#[derive(Message)]
#[rtype(result = "AppResult<Option<Sent>>")]
pub struct ReplaySend {
    pub from: String,
    pub key: String,
    pub by: Principal,
}

/// A message from the runtime itself (escalation alerts, dependency notices): no sender agent, no rate
/// limit.
#[derive(Message)]
#[rtype(result = "AppResult<mail::Message>")]
pub struct SendSystemMessage {
    pub draft: MessageDraft,
    /// Stored with the message, so the outbox finds a delivery made before a crash.
    pub idempotency_key: Option<String>,
}

#[derive(Message)]
#[rtype(result = "AppResult<InboxPage>")]
pub struct ListInbox {
    pub key: String,
    pub filter: InboxFilter,
    pub page: PageRequest,
    pub wait: Option<Duration>,
    pub by: Principal,
}

#[derive(Message)]
#[rtype(result = "AppResult<ReadReceipt>")]
pub struct MarkRead {
    pub key: String,
    pub ids: Vec<String>,
    pub by: Principal,
}

#[derive(Message)]
#[rtype(result = "AppResult<mail::Message>")]
pub struct ReadMessage {
    pub key: String,
    pub message_id: String,
    pub by: Principal,
}

#[derive(Message)]
#[rtype(result = "AppResult<Acknowledged>")]
pub struct AcknowledgeMessage {
    pub key: String,
    pub message_id: String,
    pub response: Option<String>,
    pub action_taken: Option<String>,
    pub by: Principal,
}

/// Messages an agent sent, newest first.
#[derive(Message)]
#[rtype(result = "AppResult<Page<mail::Message>>")]
pub struct ListSent {
    pub key: String,
    pub page: PageRequest,
    pub by: Principal,
}

#[derive(Message)]
#[rtype(result = "AppResult<Page<mail::Message>>")]
pub struct SearchInbox {
    pub key: String,
    pub text: String,
    pub page: PageRequest,
    pub by: Principal,
}

#[derive(Message)]
#[rtype(result = "AppResult<InboxStats>")]
pub struct InboxStatistics {
    pub key: String,
    pub by: Principal,
}

/// One message, for its sender, its recipient or the admin.
#[derive(Message)]
#[rtype(result = "AppResult<mail::Message>")]
pub struct GetMessage {
    pub id: String,
    pub by: Principal,
}

#[derive(Message)]
#[rtype(result = "AppResult<Stream>")]
pub struct OpenStream {
    pub key: String,
    pub by: Principal,
}

/// Everything an agent needs on waking, after a heartbeat.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Wakeup {
    pub agent: Agent,
    /// Unread messages, most urgent first, then newest; at most 10.
    pub messages: Vec<mail::Message>,
    pub unread_count: usize,
    pub unacknowledged_count: usize,
    pub in_progress: Vec<Task>,
    pub ready: Vec<Task>,
    /// The agent's load, as `GET /api/agents/{id}/capacity` reports it.
    pub capacity: crate::domain::capacity::AgentLoad,
}

#[derive(Message)]
#[rtype(result = "AppResult<Wakeup>")]
pub struct Wake {
    pub key: String,
    pub by: Principal,
}

/// The tick's deadline check over every inbox.
#[derive(Message)]
#[rtype(result = "AppResult<Vec<Overdue>>")]
pub struct EscalateOverdue;

/// Expired messages were deleted from the store: each recipient drops them from memory.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ForgetMessages {
    /// (recipient id, message id)
    pub messages: Vec<(String, String)>,
}

/// Every `lead`-level agent that is not suspended, by id.
#[derive(Message)]
#[rtype(result = "AppResult<Vec<Agent>>")]
pub struct Leads;

/// The address of an agent's actor, for embedders and benchmarks that talk to it directly.
#[derive(Message)]
#[rtype(result = "Option<Addr<crate::actors::agent::AgentActor>>")]
pub struct AgentAddress {
    pub key: String,
}
