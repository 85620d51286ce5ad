//! Row structs: the stored shape of each entity, and the conversions between rows and domain types.
//! JSON-valued fields are TEXT; enums are TEXT parsed back through the domain's closed sets.

use super::schema::{
    activities, agents, api_tokens, escalation_rules, escalations, message_templates, messages, outbox, slo_breaches,
    task_dependencies, tasks,
};
use super::StoreError;
use crate::domain::escalation::{Escalation, EscalationRule};
use crate::domain::outbox::OutboxItem;
use crate::domain::slo::SloBreach;
use crate::domain::template::MessageTemplate;
use crate::domain::{Activity, Agent, Message, Task};
use diesel::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;

fn to_json<T: Serialize>(value: &T) -> String {
    // Serializing our own plain structs and vectors cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

fn from_json<T: DeserializeOwned>(column: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

fn parse<T: std::str::FromStr<Err = String>>(text: &str) -> Result<T, StoreError> {
    text.parse().map_err(StoreError::Corrupt)
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Identifiable)]
#[diesel(table_name = agents, treat_none_as_null = true)]
pub struct AgentRow {
    pub id: String,
    pub name: String,
    pub role: String,
    pub level: String,
    pub kind: String,
    pub status: String,
    pub lead_id: Option<String>,
    pub specializations: String,
    pub constraints: String,
    pub max_concurrent_tasks: i32,
    pub max_minutes_per_day: i32,
    pub current_task_id: Option<String>,
    pub last_heartbeat_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&Agent> for AgentRow {
    fn from(a: &Agent) -> Self {
        Self {
            id: a.id.clone(),
            name: a.name.clone(),
            role: a.role.clone(),
            level: a.level.as_str().into(),
            kind: a.kind.as_str().into(),
            status: a.status.as_str().into(),
            lead_id: a.lead_id.clone(),
            specializations: to_json(&a.specializations),
            constraints: to_json(&a.constraints),
            max_concurrent_tasks: a.max_concurrent_tasks,
            max_minutes_per_day: a.max_minutes_per_day,
            current_task_id: a.current_task_id.clone(),
            last_heartbeat_at: a.last_heartbeat_at,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

impl TryFrom<AgentRow> for Agent {
    type Error = StoreError;
    fn try_from(r: AgentRow) -> Result<Self, StoreError> {
        Ok(Agent {
            level: parse(&r.level)?,
            kind: parse(&r.kind)?,
            status: parse(&r.status)?,
            specializations: from_json("agents.specializations", &r.specializations)?,
            constraints: from_json("agents.constraints", &r.constraints)?,
            id: r.id,
            name: r.name,
            role: r.role,
            lead_id: r.lead_id,
            max_concurrent_tasks: r.max_concurrent_tasks,
            max_minutes_per_day: r.max_minutes_per_day,
            current_task_id: r.current_task_id,
            last_heartbeat_at: r.last_heartbeat_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_tokens)]
pub struct TokenRow {
    pub id: String,
    pub kind: String,
    pub agent_id: Option<String>,
    pub token_hash: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Identifiable)]
#[diesel(table_name = tasks, treat_none_as_null = true)]
pub struct TaskRow {
    pub id: String,
    pub title: String,
    pub description: String,
    pub status: String,
    pub priority: String,
    pub assignee_id: Option<String>,
    pub parent_id: Option<String>,
    pub mission_id: Option<String>,
    pub pillar_id: Option<String>,
    pub tags: String,
    pub sla_tier: Option<String>,
    pub slo_ms: Option<i64>,
    pub slo_deadline_at: Option<i64>,
    pub estimated_minutes: Option<i32>,
    pub actual_minutes: Option<i32>,
    pub requirements: String,
    pub attempts: i32,
    pub failures: String,
    pub escalation_level: i32,
    pub escalated_at: Option<i64>,
    pub completion_notes: Option<String>,
    pub status_changed_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&Task> for TaskRow {
    fn from(t: &Task) -> Self {
        Self {
            id: t.id.clone(),
            title: t.title.clone(),
            description: t.description.clone(),
            status: t.status.as_str().into(),
            priority: t.priority.as_str().into(),
            assignee_id: t.assignee_id.clone(),
            parent_id: t.parent_id.clone(),
            mission_id: t.mission_id.clone(),
            pillar_id: t.pillar_id.clone(),
            tags: to_json(&t.tags),
            sla_tier: t.sla_tier.map(|s| s.as_str().to_string()),
            slo_ms: t.slo_ms,
            slo_deadline_at: t.slo_deadline_at,
            estimated_minutes: t.estimated_minutes,
            actual_minutes: t.actual_minutes,
            requirements: to_json(&t.requirements),
            attempts: t.attempts,
            failures: to_json(&t.failures),
            escalation_level: t.escalation_level,
            escalated_at: t.escalated_at,
            completion_notes: t.completion_notes.clone(),
            status_changed_at: t.status_changed_at,
            started_at: t.started_at,
            completed_at: t.completed_at,
            created_by: t.created_by.clone(),
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

impl TryFrom<TaskRow> for Task {
    type Error = StoreError;
    fn try_from(r: TaskRow) -> Result<Self, StoreError> {
        Ok(Task {
            status: parse(&r.status)?,
            priority: parse(&r.priority)?,
            tags: from_json("tasks.tags", &r.tags)?,
            sla_tier: r.sla_tier.as_deref().map(parse).transpose()?,
            requirements: from_json("tasks.requirements", &r.requirements)?,
            failures: from_json("tasks.failures", &r.failures)?,
            id: r.id,
            title: r.title,
            description: r.description,
            assignee_id: r.assignee_id,
            parent_id: r.parent_id,
            mission_id: r.mission_id,
            pillar_id: r.pillar_id,
            slo_ms: r.slo_ms,
            slo_deadline_at: r.slo_deadline_at,
            estimated_minutes: r.estimated_minutes,
            actual_minutes: r.actual_minutes,
            attempts: r.attempts,
            escalation_level: r.escalation_level,
            escalated_at: r.escalated_at,
            completion_notes: r.completion_notes,
            status_changed_at: r.status_changed_at,
            started_at: r.started_at,
            completed_at: r.completed_at,
            created_by: r.created_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = task_dependencies)]
pub struct DependencyRow {
    pub task_id: String,
    pub blocker_id: String,
    pub created_by: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = activities)]
pub struct ActivityRow {
    pub id: String,
    pub kind: String,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub agent_id: Option<String>,
    pub task_id: Option<String>,
    pub message: String,
    pub before_json: Option<String>,
    pub after_json: Option<String>,
    pub created_at: i64,
}

impl From<&Activity> for ActivityRow {
    fn from(a: &Activity) -> Self {
        Self {
            id: a.id.clone(),
            kind: a.kind.as_str().into(),
            actor_kind: a.actor_kind.clone(),
            actor_id: a.actor_id.clone(),
            agent_id: a.agent_id.clone(),
            task_id: a.task_id.clone(),
            message: a.message.clone(),
            before_json: a.before.as_ref().map(to_json),
            after_json: a.after.as_ref().map(to_json),
            created_at: a.created_at,
        }
    }
}

impl TryFrom<ActivityRow> for Activity {
    type Error = StoreError;
    fn try_from(r: ActivityRow) -> Result<Self, StoreError> {
        Ok(Activity {
            kind: parse(&r.kind)?,
            before: r
                .before_json
                .as_deref()
                .map(|t| from_json("activities.before_json", t))
                .transpose()?,
            after: r
                .after_json
                .as_deref()
                .map(|t| from_json("activities.after_json", t))
                .transpose()?,
            id: r.id,
            actor_kind: r.actor_kind,
            actor_id: r.actor_id,
            agent_id: r.agent_id,
            task_id: r.task_id,
            message: r.message,
            created_at: r.created_at,
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Identifiable)]
#[diesel(table_name = messages, treat_none_as_null = true)]
pub struct MessageRow {
    pub id: String,
    pub sender_kind: String,
    pub from_agent_id: Option<String>,
    pub from_agent_name: String,
    pub to_agent_id: String,
    pub to_agent_name: String,
    pub kind: String,
    pub priority: String,
    pub subject: String,
    pub body: String,
    pub task_id: Option<String>,
    pub related_task_ids: String,
    pub data: Option<String>,
    pub read_at: Option<i64>,
    pub acknowledged_at: Option<i64>,
    pub action_taken: Option<String>,
    pub ack_deadline_at: Option<i64>,
    pub escalation_action: Option<String>,
    pub escalated_at: Option<i64>,
    pub reply_to_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

impl From<&Message> for MessageRow {
    fn from(m: &Message) -> Self {
        Self {
            id: m.id.clone(),
            sender_kind: m.sender_kind.as_str().into(),
            from_agent_id: m.from_agent_id.clone(),
            from_agent_name: m.from_agent_name.clone(),
            to_agent_id: m.to_agent_id.clone(),
            to_agent_name: m.to_agent_name.clone(),
            kind: m.kind.as_str().into(),
            priority: m.priority.as_str().into(),
            subject: m.subject.clone(),
            body: m.body.clone(),
            task_id: m.task_id.clone(),
            related_task_ids: to_json(&m.related_task_ids),
            data: m.data.as_ref().map(to_json),
            read_at: m.read_at,
            acknowledged_at: m.acknowledged_at,
            action_taken: m.action_taken.clone(),
            ack_deadline_at: m.ack_deadline_at,
            escalation_action: m.escalation_action.clone(),
            escalated_at: m.escalated_at,
            reply_to_id: m.reply_to_id.clone(),
            idempotency_key: m.idempotency_key.clone(),
            created_at: m.created_at,
            expires_at: m.expires_at,
        }
    }
}

impl TryFrom<MessageRow> for Message {
    type Error = StoreError;
    fn try_from(r: MessageRow) -> Result<Self, StoreError> {
        Ok(Message {
            sender_kind: parse(&r.sender_kind)?,
            kind: parse(&r.kind)?,
            priority: parse(&r.priority)?,
            related_task_ids: from_json("messages.related_task_ids", &r.related_task_ids)?,
            data: r.data.as_deref().map(|t| from_json("messages.data", t)).transpose()?,
            id: r.id,
            from_agent_id: r.from_agent_id,
            from_agent_name: r.from_agent_name,
            to_agent_id: r.to_agent_id,
            to_agent_name: r.to_agent_name,
            subject: r.subject,
            body: r.body,
            task_id: r.task_id,
            read_at: r.read_at,
            acknowledged_at: r.acknowledged_at,
            action_taken: r.action_taken,
            ack_deadline_at: r.ack_deadline_at,
            escalation_action: r.escalation_action,
            escalated_at: r.escalated_at,
            reply_to_id: r.reply_to_id,
            idempotency_key: r.idempotency_key,
            created_at: r.created_at,
            expires_at: r.expires_at,
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Identifiable)]
#[diesel(table_name = message_templates)]
pub struct TemplateRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub priority: String,
    pub subject_template: String,
    pub body_template: String,
    pub required_vars: String,
    pub optional_vars: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&MessageTemplate> for TemplateRow {
    fn from(t: &MessageTemplate) -> Self {
        Self {
            id: t.id.clone(),
            name: t.name.clone(),
            kind: t.kind.as_str().into(),
            priority: t.priority.as_str().into(),
            subject_template: t.subject_template.clone(),
            body_template: t.body_template.clone(),
            required_vars: to_json(&t.required_vars),
            optional_vars: to_json(&t.optional_vars),
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

impl TryFrom<TemplateRow> for MessageTemplate {
    type Error = StoreError;
    fn try_from(r: TemplateRow) -> Result<Self, StoreError> {
        Ok(MessageTemplate {
            kind: parse(&r.kind)?,
            priority: parse(&r.priority)?,
            required_vars: from_json("message_templates.required_vars", &r.required_vars)?,
            optional_vars: from_json("message_templates.optional_vars", &r.optional_vars)?,
            id: r.id,
            name: r.name,
            subject_template: r.subject_template,
            body_template: r.body_template,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = slo_breaches)]
pub struct BreachRow {
    pub id: String,
    pub task_id: String,
    pub task_title: String,
    pub agent_id: Option<String>,
    pub kind: String,
    pub sla_tier: Option<String>,
    pub slo_ms: i64,
    pub deadline_at: i64,
    pub detected_at: i64,
    pub escalated_at: Option<i64>,
}

impl From<&SloBreach> for BreachRow {
    fn from(b: &SloBreach) -> Self {
        Self {
            id: b.id.clone(),
            task_id: b.task_id.clone(),
            task_title: b.task_title.clone(),
            agent_id: b.agent_id.clone(),
            kind: b.kind.as_str().into(),
            sla_tier: b.sla_tier.map(|t| t.as_str().into()),
            slo_ms: b.slo_ms,
            deadline_at: b.deadline_at,
            detected_at: b.detected_at,
            escalated_at: b.escalated_at,
        }
    }
}

impl TryFrom<BreachRow> for SloBreach {
    type Error = StoreError;
    fn try_from(r: BreachRow) -> Result<Self, StoreError> {
        Ok(SloBreach {
            kind: parse(&r.kind)?,
            sla_tier: r.sla_tier.as_deref().map(parse).transpose()?,
            id: r.id,
            task_id: r.task_id,
            task_title: r.task_title,
            agent_id: r.agent_id,
            slo_ms: r.slo_ms,
            deadline_at: r.deadline_at,
            detected_at: r.detected_at,
            escalated_at: r.escalated_at,
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Identifiable)]
#[diesel(table_name = escalation_rules)]
pub struct RuleRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub priority: i32,
    pub cooldown_ms: i64,
    pub applies_to: String,
    pub triggers: String,
    pub actions: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&EscalationRule> for RuleRow {
    fn from(r: &EscalationRule) -> Self {
        Self {
            id: r.id.clone(),
            name: r.name.clone(),
            description: r.description.clone(),
            enabled: r.enabled,
            priority: r.priority,
            cooldown_ms: r.cooldown_ms,
            applies_to: to_json(&r.applies_to),
            triggers: to_json(&r.triggers),
            actions: to_json(&r.actions),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

impl TryFrom<RuleRow> for EscalationRule {
    type Error = StoreError;
    fn try_from(r: RuleRow) -> Result<Self, StoreError> {
        Ok(EscalationRule {
            applies_to: from_json("escalation_rules.applies_to", &r.applies_to)?,
            triggers: from_json("escalation_rules.triggers", &r.triggers)?,
            actions: from_json("escalation_rules.actions", &r.actions)?,
            id: r.id,
            name: r.name,
            description: r.description,
            enabled: r.enabled,
            priority: r.priority,
            cooldown_ms: r.cooldown_ms,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = escalations)]
pub struct EscalationRow {
    pub id: String,
    pub rule_id: Option<String>,
    pub rule_name: String,
    pub task_id: Option<String>,
    pub level: i32,
    pub trigger_kind: String,
    pub reason: String,
    pub actions: String,
    pub triggered_at: i64,
    pub resolved_at: Option<i64>,
    pub useful: Option<bool>,
    pub rated_at: Option<i64>,
    pub message_id: Option<String>,
}

impl From<&Escalation> for EscalationRow {
    fn from(e: &Escalation) -> Self {
        Self {
            id: e.id.clone(),
            rule_id: e.rule_id.clone(),
            rule_name: e.rule_name.clone(),
            task_id: e.task_id.clone(),
            level: i32::try_from(e.level).unwrap_or(i32::MAX),
            trigger_kind: e.trigger.clone(),
            reason: e.reason.clone(),
            actions: to_json(&e.actions),
            triggered_at: e.triggered_at,
            resolved_at: e.resolved_at,
            useful: e.useful,
            rated_at: e.rated_at,
            message_id: e.message_id.clone(),
        }
    }
}

impl TryFrom<EscalationRow> for Escalation {
    type Error = StoreError;
    fn try_from(r: EscalationRow) -> Result<Self, StoreError> {
        Ok(Escalation {
            actions: from_json("escalations.actions", &r.actions)?,
            level: u32::try_from(r.level).map_err(|e| StoreError::Corrupt(format!("escalations.level: {e}")))?,
            id: r.id,
            rule_id: r.rule_id,
            rule_name: r.rule_name,
            task_id: r.task_id,
            trigger: r.trigger_kind,
            reason: r.reason,
            triggered_at: r.triggered_at,
            resolved_at: r.resolved_at,
            useful: r.useful,
            rated_at: r.rated_at,
            message_id: r.message_id,
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = outbox, treat_none_as_null = true)]
pub struct OutboxRow {
    pub id: String,
    pub kind: String,
    pub dedupe_key: String,
    pub effect: String,
    pub escalation_id: Option<String>,
    pub action_index: Option<i32>,
    pub task_id: Option<String>,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub result: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
    pub dead_at: Option<i64>,
}

impl From<&OutboxItem> for OutboxRow {
    fn from(o: &OutboxItem) -> Self {
        Self {
            id: o.id.clone(),
            kind: o.kind.as_str().into(),
            dedupe_key: o.dedupe_key.clone(),
            effect: to_json(&o.effect),
            escalation_id: o.escalation_id.clone(),
            action_index: o.action_index.and_then(|i| i32::try_from(i).ok()),
            task_id: o.task_id.clone(),
            attempts: i32::try_from(o.attempts).unwrap_or(i32::MAX),
            next_attempt_at: o.next_attempt_at,
            last_error: o.last_error.clone(),
            result: o.result.clone(),
            created_at: o.created_at,
            delivered_at: o.delivered_at,
            dead_at: o.dead_at,
        }
    }
}

impl TryFrom<OutboxRow> for OutboxItem {
    type Error = StoreError;
    fn try_from(r: OutboxRow) -> Result<Self, StoreError> {
        Ok(OutboxItem {
            kind: parse(&r.kind)?,
            effect: from_json("outbox.effect", &r.effect)?,
            action_index: r.action_index.and_then(|i| u32::try_from(i).ok()),
            attempts: u32::try_from(r.attempts).map_err(|e| StoreError::Corrupt(format!("outbox.attempts: {e}")))?,
            id: r.id,
            dedupe_key: r.dedupe_key,
            escalation_id: r.escalation_id,
            task_id: r.task_id,
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
            result: r.result,
            created_at: r.created_at,
            delivered_at: r.delivered_at,
            dead_at: r.dead_at,
        })
    }
}
