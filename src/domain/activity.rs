//! The audit feed: every state change is one activity row, written in the same commit as the change.

use super::text_enum::text_enum;
use super::Principal;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

text_enum! {
    pub enum ActivityKind {
        AgentRegistered => "agent_registered",
        AgentUpdated => "agent_updated",
        AgentStatusChanged => "agent_status_changed",
        AgentHeartbeatLost => "agent_heartbeat_lost",
        AgentTokenRotated => "agent_token_rotated",
        AgentDeleted => "agent_deleted",
        AdminTokenRotated => "admin_token_rotated",
        TaskCreated => "task_created",
        TaskUpdated => "task_updated",
        TaskStatusChanged => "task_status_changed",
        TaskAssigned => "task_assigned",
        TaskClaimed => "task_claimed",
        TaskCompleted => "task_completed",
        TaskFailed => "task_failed",
        TaskUnblocked => "task_unblocked",
        TaskDeleted => "task_deleted",
        DependencyAdded => "dependency_added",
        DependencyRemoved => "dependency_removed",
        TaskEscalated => "task_escalated",
        SloBreached => "slo_breached",
        EscalatedToHuman => "escalated_to_human",
        EscalationRuleCreated => "escalation_rule_created",
        EscalationRuleUpdated => "escalation_rule_updated",
        EscalationRuleDeleted => "escalation_rule_deleted",
        MessageSent => "message_sent",
        MessageRead => "message_read",
        MessageAcknowledged => "message_acknowledged",
        MessageEscalated => "message_escalated",
        MessagesExpired => "messages_expired",
        TemplateCreated => "template_created",
        TemplateUpdated => "template_updated",
        TemplateDeleted => "template_deleted"
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    pub id: String,
    pub kind: ActivityKind,
    /// `admin`, `agent` or `system`.
    pub actor_kind: String,
    /// The acting agent's id when `actorKind` is `agent`.
    pub actor_id: Option<String>,
    /// The agent the change is about, if any.
    pub agent_id: Option<String>,
    /// The task the change is about, if any.
    pub task_id: Option<String>,
    pub message: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub created_at: i64,
}

impl Activity {
    pub fn new(id: String, kind: ActivityKind, actor: &Principal, message: impl Into<String>, now: i64) -> Self {
        Self {
            id,
            kind,
            actor_kind: actor.kind().to_string(),
            actor_id: actor.agent_id().map(str::to_string),
            agent_id: None,
            task_id: None,
            message: message.into(),
            before: None,
            after: None,
            created_at: now,
        }
    }

    pub fn agent(mut self, agent_id: &str) -> Self {
        self.agent_id = Some(agent_id.to_string());
        self
    }

    pub fn task(mut self, task_id: &str) -> Self {
        self.task_id = Some(task_id.to_string());
        self
    }

    pub fn change(mut self, before: Value, after: Value) -> Self {
        self.before = Some(before);
        self.after = Some(after);
        self
    }
}

/// The fields that differ between two JSON objects, as a `(before, after)` pair of objects.
pub fn diff(before: &Value, after: &Value) -> (Value, Value) {
    let (Some(b), Some(a)) = (before.as_object(), after.as_object()) else {
        return (before.clone(), after.clone());
    };
    let mut old = serde_json::Map::new();
    let mut new = serde_json::Map::new();
    for (key, new_value) in a {
        let old_value = b.get(key).unwrap_or(&Value::Null);
        if old_value != new_value && key != "updatedAt" {
            old.insert(key.clone(), old_value.clone());
            new.insert(key.clone(), new_value.clone());
        }
    }
    (Value::Object(old), Value::Object(new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_keeps_only_changed_fields() {
        let (b, a) = diff(
            &json!({"role": "dev", "level": "lead", "updatedAt": 1}),
            &json!({"role": "ops", "level": "lead", "updatedAt": 2}),
        );
        assert_eq!(b, json!({"role": "dev"}));
        assert_eq!(a, json!({"role": "ops"}));
    }

    #[test]
    fn activity_records_the_actor() {
        let act = Activity::new(
            "1".into(),
            ActivityKind::TaskCreated,
            &Principal::Agent("a1".into()),
            "x",
            5,
        )
        .task("t1");
        assert_eq!(act.actor_kind, "agent");
        assert_eq!(act.actor_id.as_deref(), Some("a1"));
        assert_eq!(act.task_id.as_deref(), Some("t1"));
    }
}
