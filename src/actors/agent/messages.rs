//! Requests an `AgentActor` answers.

use crate::domain::agent::AgentPatch;
use crate::domain::{Agent, AgentStatus, Principal};
use crate::error::AppResult;
use actix::Message;

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
