//! Agents: who they are, what they can do, and the rules for registering and changing them.

use super::text_enum::text_enum;
use super::{check_labels, check_text, RuleViolation};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

text_enum! {
    /// Seniority in the escalation ladder: work escalates from interns and specialists to their lead.
    pub enum AgentLevel { Lead => "lead", Specialist => "specialist", Intern => "intern" }
}

text_enum! {
    /// `external`: a process that talks to the API (a coding agent, a script). `llm`: run by the server.
    pub enum AgentKind { External => "external", Llm => "llm" }
}

text_enum! {
    /// `offline` is set by the heartbeat monitor; `suspended` only by an admin, and refuses the agent's token.
    pub enum AgentStatus {
        Idle => "idle", Active => "active", Blocked => "blocked", Offline => "offline", Suspended => "suspended"
    }
}

/// What an agent's environment offers; tasks state what they require, and matching uses both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AgentConstraints {
    pub has_internet: bool,
    pub can_run_gpu: bool,
    pub max_memory_mb: i32,
    /// Prefers batched, asynchronous work over real-time interruptions.
    pub prefer_async: bool,
}

impl Default for AgentConstraints {
    fn default() -> Self {
        Self {
            has_internet: true,
            can_run_gpu: false,
            max_memory_mb: 4096,
            prefer_async: true,
        }
    }
}

pub const DEFAULT_MAX_CONCURRENT_TASKS: i32 = 3;
pub const DEFAULT_MAX_MINUTES_PER_DAY: i32 = 480;

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub role: String,
    pub level: AgentLevel,
    pub kind: AgentKind,
    pub status: AgentStatus,
    /// The agent this one escalates to.
    pub lead_id: Option<String>,
    pub specializations: Vec<String>,
    pub constraints: AgentConstraints,
    pub max_concurrent_tasks: i32,
    pub max_minutes_per_day: i32,
    pub current_task_id: Option<String>,
    pub last_heartbeat_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The body of `POST /api/agents`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentDraft {
    pub name: String,
    #[serde(default)]
    pub role: String,
    #[serde(default = "default_level")]
    pub level: AgentLevel,
    #[serde(default = "default_kind")]
    pub kind: AgentKind,
    pub lead_id: Option<String>,
    #[serde(default)]
    pub specializations: Vec<String>,
    #[serde(default)]
    pub constraints: AgentConstraints,
    pub max_concurrent_tasks: Option<i32>,
    pub max_minutes_per_day: Option<i32>,
}

fn default_level() -> AgentLevel {
    AgentLevel::Specialist
}

fn default_kind() -> AgentKind {
    AgentKind::External
}

/// The body of `PATCH /api/agents/{id}`: every field optional; `leadId: null` clears the lead.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentPatch {
    pub role: Option<String>,
    pub level: Option<AgentLevel>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub lead_id: Option<Option<String>>,
    pub specializations: Option<Vec<String>>,
    pub constraints: Option<AgentConstraints>,
    pub status: Option<AgentStatus>,
    pub max_concurrent_tasks: Option<i32>,
    pub max_minutes_per_day: Option<i32>,
}

impl AgentPatch {
    /// Fields only the operator may change: the org chart and suspension.
    pub fn touches_admin_fields(&self, current: &Agent) -> bool {
        self.level.is_some_and(|l| l != current.level)
            || self.lead_id.as_ref().is_some_and(|l| *l != current.lead_id)
            || self.status == Some(AgentStatus::Suspended)
            || (current.status == AgentStatus::Suspended && self.status.is_some())
    }
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
pub fn nullable<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Names are stored lowercase: 2–50 characters, a letter first, then letters, digits, `_` or `-`.
pub fn normalize_name(raw: &str) -> Result<String, RuleViolation> {
    let name = raw.trim().to_lowercase();
    let len = name.chars().count();
    if !(2..=50).contains(&len) {
        return Err(RuleViolation::invalid("name", "must be 2 to 50 characters"));
    }
    let mut chars = name.chars();
    let first_is_letter = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !first_is_letter || !rest_ok {
        return Err(RuleViolation::invalid(
            "name",
            "must start with a letter and contain only letters, digits, '_' or '-'",
        ));
    }
    Ok(name)
}

fn check_role(role: &str) -> Result<String, RuleViolation> {
    check_text("role", role, 0, 100)
}

fn check_limits(max_concurrent: i32, max_minutes: i32) -> Result<(), RuleViolation> {
    if !(1..=100).contains(&max_concurrent) {
        return Err(RuleViolation::invalid(
            "maxConcurrentTasks",
            "must be between 1 and 100",
        ));
    }
    if !(1..=1440).contains(&max_minutes) {
        return Err(RuleViolation::invalid("maxMinutesPerDay", "must be between 1 and 1440"));
    }
    Ok(())
}

fn check_constraints(constraints: &AgentConstraints) -> Result<(), RuleViolation> {
    if constraints.max_memory_mb < 0 {
        return Err(RuleViolation::invalid(
            "constraints.maxMemoryMb",
            "must not be negative",
        ));
    }
    Ok(())
}

/// Builds a new agent from a registration draft. Lead existence is checked by the caller, which knows the
/// directory.
pub fn register(draft: AgentDraft, id: String, now: i64) -> Result<Agent, RuleViolation> {
    let name = normalize_name(&draft.name)?;
    let role = check_role(&draft.role)?;
    let specializations = check_labels("specializations", &draft.specializations)?;
    let max_concurrent_tasks = draft.max_concurrent_tasks.unwrap_or(DEFAULT_MAX_CONCURRENT_TASKS);
    let max_minutes_per_day = draft.max_minutes_per_day.unwrap_or(DEFAULT_MAX_MINUTES_PER_DAY);
    check_limits(max_concurrent_tasks, max_minutes_per_day)?;
    check_constraints(&draft.constraints)?;
    Ok(Agent {
        id,
        name,
        role,
        level: draft.level,
        kind: draft.kind,
        status: AgentStatus::Idle,
        lead_id: draft.lead_id,
        specializations,
        constraints: draft.constraints,
        max_concurrent_tasks,
        max_minutes_per_day,
        current_task_id: None,
        last_heartbeat_at: None,
        created_at: now,
        updated_at: now,
    })
}

/// Applies a patch to a copy of the agent, validating every field; the original is untouched on error.
pub fn apply_patch(agent: &Agent, patch: AgentPatch, now: i64) -> Result<Agent, RuleViolation> {
    let mut next = agent.clone();
    if let Some(role) = &patch.role {
        next.role = check_role(role)?;
    }
    if let Some(level) = patch.level {
        next.level = level;
    }
    if let Some(lead_id) = patch.lead_id {
        if lead_id.as_deref() == Some(agent.id.as_str()) {
            return Err(RuleViolation::invalid("leadId", "an agent cannot be its own lead"));
        }
        next.lead_id = lead_id;
    }
    if let Some(specializations) = &patch.specializations {
        next.specializations = check_labels("specializations", specializations)?;
    }
    if let Some(constraints) = patch.constraints {
        check_constraints(&constraints)?;
        next.constraints = constraints;
    }
    if let Some(status) = patch.status {
        next.status = status;
    }
    if let Some(max) = patch.max_concurrent_tasks {
        next.max_concurrent_tasks = max;
    }
    if let Some(max) = patch.max_minutes_per_day {
        next.max_minutes_per_day = max;
    }
    check_limits(next.max_concurrent_tasks, next.max_minutes_per_day)?;
    next.updated_at = now;
    Ok(next)
}

/// A heartbeat may report these statuses; `offline` and `suspended` are never self-reported.
pub fn check_heartbeat_status(status: AgentStatus) -> Result<AgentStatus, RuleViolation> {
    match status {
        AgentStatus::Idle | AgentStatus::Active | AgentStatus::Blocked => Ok(status),
        other => Err(RuleViolation::invalid(
            "status",
            format!("a heartbeat cannot report '{other}'; use active, idle or blocked"),
        )),
    }
}

/// The heartbeat monitor's rule: an `active` agent silent for longer than the timeout is offline.
pub fn is_heartbeat_stale(agent: &Agent, now: i64, timeout_ms: i64) -> bool {
    agent.status == AgentStatus::Active
        && agent
            .last_heartbeat_at
            .is_none_or(|last| now.saturating_sub(last) > timeout_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(name: &str) -> AgentDraft {
        serde_json::from_value(serde_json::json!({ "name": name })).unwrap()
    }

    #[test]
    fn names_are_lowercased_and_checked() {
        assert_eq!(normalize_name(" Alice ").unwrap(), "alice");
        assert_eq!(normalize_name("bob_2-x").unwrap(), "bob_2-x");
        for bad in ["a", "1abc", "has space", "ünï", "", &"a".repeat(51)] {
            assert!(normalize_name(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn registration_applies_defaults() {
        let agent = register(draft("alice"), "id1".into(), 10).unwrap();
        assert_eq!(agent.status, AgentStatus::Idle);
        assert_eq!(agent.level, AgentLevel::Specialist);
        assert_eq!(agent.max_concurrent_tasks, 3);
        assert_eq!(agent.max_minutes_per_day, 480);
        assert!(agent.constraints.has_internet);
        assert!(!agent.constraints.can_run_gpu);
        assert_eq!(agent.constraints.max_memory_mb, 4096);
    }

    #[test]
    fn registration_rejects_out_of_range_limits() {
        let mut d = draft("alice");
        d.max_minutes_per_day = Some(1441);
        assert!(register(d, "id".into(), 0).is_err());
        let mut d = draft("alice");
        d.max_concurrent_tasks = Some(0);
        assert!(register(d, "id".into(), 0).is_err());
    }

    #[test]
    fn patch_distinguishes_null_from_absent() {
        let patch: AgentPatch = serde_json::from_str(r#"{"leadId": null}"#).unwrap();
        assert_eq!(patch.lead_id, Some(None));
        let patch: AgentPatch = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!(patch.lead_id, None);
        assert!(serde_json::from_str::<AgentPatch>(r#"{"bogus": 1}"#).is_err());
    }

    #[test]
    fn patch_rejects_self_lead_and_keeps_original() {
        let agent = register(draft("alice"), "a1".into(), 0).unwrap();
        let patch = AgentPatch {
            lead_id: Some(Some("a1".into())),
            ..Default::default()
        };
        assert!(apply_patch(&agent, patch, 5).is_err());
        assert_eq!(agent.lead_id, None);
    }

    #[test]
    fn suspension_and_org_changes_are_admin_fields() {
        let agent = register(draft("alice"), "a1".into(), 0).unwrap();
        let role_only = AgentPatch {
            role: Some("dev".into()),
            ..Default::default()
        };
        assert!(!role_only.touches_admin_fields(&agent));
        let suspend = AgentPatch {
            status: Some(AgentStatus::Suspended),
            ..Default::default()
        };
        assert!(suspend.touches_admin_fields(&agent));
        let same_level = AgentPatch {
            level: Some(agent.level),
            ..Default::default()
        };
        assert!(!same_level.touches_admin_fields(&agent));
    }

    #[test]
    fn heartbeat_staleness_applies_only_to_active_agents() {
        let mut agent = register(draft("alice"), "a1".into(), 0).unwrap();
        agent.last_heartbeat_at = Some(1_000);
        assert!(!is_heartbeat_stale(&agent, 1_000_000, 10));
        agent.status = AgentStatus::Active;
        assert!(!is_heartbeat_stale(&agent, 1_010, 10));
        assert!(is_heartbeat_stale(&agent, 1_011, 10));
    }

    #[test]
    fn heartbeat_cannot_self_report_offline_or_suspended() {
        assert!(check_heartbeat_status(AgentStatus::Active).is_ok());
        assert!(check_heartbeat_status(AgentStatus::Offline).is_err());
        assert!(check_heartbeat_status(AgentStatus::Suspended).is_err());
    }
}
