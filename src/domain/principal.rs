//! Who is acting: the operator (admin token), one agent (its own token), or the runtime itself.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Principal {
    Admin,
    Agent(String),
    System,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        matches!(self, Principal::Admin)
    }

    /// The admin, or the runtime acting on the operator's rules (escalation actions): both may manage any
    /// task. Only the admin may force past capacity.
    pub fn manages_tasks(&self) -> bool {
        matches!(self, Principal::Admin | Principal::System)
    }

    /// True when this principal is the given agent.
    pub fn is_agent(&self, agent_id: &str) -> bool {
        matches!(self, Principal::Agent(id) if id == agent_id)
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Principal::Admin => "admin",
            Principal::Agent(_) => "agent",
            Principal::System => "system",
        }
    }

    pub fn agent_id(&self) -> Option<&str> {
        match self {
            Principal::Agent(id) => Some(id),
            _ => None,
        }
    }

    /// The value stored in `createdBy` and in the activity feed's actor column.
    pub fn label(&self) -> String {
        match self {
            Principal::Agent(id) => id.clone(),
            other => other.kind().to_string(),
        }
    }
}
