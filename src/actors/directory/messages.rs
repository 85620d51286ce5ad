//! Requests the `AgentDirectory` answers. Agent-specific requests name the agent by id or name; the directory
//! resolves it and forwards to that agent's actor.

use super::super::task_board::TaskBoard;
use crate::domain::agent::{AgentDraft, AgentPatch};
use crate::domain::query::{Page, PageRequest};
use crate::domain::{Agent, AgentLevel, AgentStatus, Principal};
use crate::error::AppResult;
use actix::{Addr, Message};
use serde::Serialize;
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
