//! Tasks: the state machine, SLO deadlines, creation and editing rules.

use super::agent::nullable;
use super::text_enum::text_enum;
use super::{check_labels, check_text, RuleViolation};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

text_enum! {
    pub enum TaskStatus {
        Backlog => "backlog", Ready => "ready", InProgress => "in_progress", Review => "review",
        Done => "done", Blocked => "blocked", Cancelled => "cancelled"
    }
}

text_enum! {
    /// `P0` is the highest priority. The derived ordering sorts P0 first.
    pub enum Priority { P0 => "P0", P1 => "P1", P2 => "P2", P3 => "P3" }
}

text_enum! {
    /// How quickly a task must finish, counted from its creation.
    pub enum SlaTier { Critical => "critical", Urgent => "urgent", Normal => "normal", Backlog => "backlog" }
}

text_enum! {
    /// How a finished piece of work is handed in: straight to `done`, or to `review` first.
    pub enum CompletionOutcome { Done => "done", Review => "review" }
}

impl SlaTier {
    /// The tier's SLO in milliseconds; `backlog` has none.
    pub fn duration_ms(self) -> Option<i64> {
        const HOUR: i64 = 3_600_000;
        match self {
            SlaTier::Critical => Some(HOUR),
            SlaTier::Urgent => Some(4 * HOUR),
            SlaTier::Normal => Some(24 * HOUR),
            SlaTier::Backlog => None,
        }
    }
}

impl TaskStatus {
    /// The state machine: where a task in this status may go next.
    pub fn allowed_targets(self) -> &'static [TaskStatus] {
        use TaskStatus::*;
        match self {
            Backlog => &[Ready, Blocked, Cancelled],
            Ready => &[InProgress, Backlog, Blocked, Cancelled],
            InProgress => &[Review, Done, Blocked, Ready],
            Review => &[Done, InProgress, Blocked],
            Blocked => &[Ready, Backlog, Cancelled],
            Done | Cancelled => &[],
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, TaskStatus::Done | TaskStatus::Cancelled)
    }

    /// Open work: counted against an agent (deletion refuses while any exists).
    pub fn is_open(self) -> bool {
        !self.is_terminal()
    }
}

/// Validates one move of the state machine.
pub fn check_transition(from: TaskStatus, to: TaskStatus) -> Result<(), RuleViolation> {
    if from.allowed_targets().contains(&to) {
        Ok(())
    } else {
        Err(RuleViolation::InvalidTransition {
            from,
            to,
            allowed: from.allowed_targets().to_vec(),
        })
    }
}

/// What a task needs from the agent that runs it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TaskRequirements {
    pub requires_gpu: bool,
    pub requires_internet: bool,
    pub min_memory_mb: Option<i32>,
    pub capabilities: Vec<String>,
}

/// One failed attempt, as reported by `POST /api/tasks/{id}/fail`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskFailure {
    pub at: i64,
    pub error_kind: String,
    pub message: String,
    pub agent_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: String,
    pub title: String,
    pub description: String,
    pub status: TaskStatus,
    pub priority: Priority,
    pub assignee_id: Option<String>,
    pub parent_id: Option<String>,
    pub mission_id: Option<String>,
    pub pillar_id: Option<String>,
    pub tags: Vec<String>,
    pub sla_tier: Option<SlaTier>,
    pub slo_ms: Option<i64>,
    pub slo_deadline_at: Option<i64>,
    pub estimated_minutes: Option<i32>,
    pub actual_minutes: Option<i32>,
    pub requirements: TaskRequirements,
    /// How many times work on the task started (entries into `in_progress`).
    pub attempts: i32,
    pub failures: Vec<TaskFailure>,
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

/// The body of `POST /api/tasks`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskDraft {
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_priority")]
    pub priority: Priority,
    /// `backlog` (default) or `ready`.
    pub status: Option<TaskStatus>,
    pub assignee_id: Option<String>,
    pub parent_id: Option<String>,
    pub mission_id: Option<String>,
    pub pillar_id: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub sla_tier: Option<SlaTier>,
    pub slo_ms: Option<i64>,
    pub estimated_minutes: Option<i32>,
    #[serde(default)]
    pub requirements: TaskRequirements,
}

fn default_priority() -> Priority {
    Priority::P2
}

/// The body of `PATCH /api/tasks/{id}`. Status changes go through the transition endpoints instead.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub priority: Option<Priority>,
    pub tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub parent_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub mission_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub pillar_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<SlaTier>)]
    pub sla_tier: Option<Option<SlaTier>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>)]
    pub slo_ms: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i32>)]
    pub estimated_minutes: Option<Option<i32>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i32>)]
    pub actual_minutes: Option<Option<i32>>,
    pub requirements: Option<TaskRequirements>,
}

pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 10_000;
const MAX_MINUTES: i32 = 1_000_000;

/// The SLO deadline: creation time plus the explicit `sloMs`, or else the tier's duration.
pub fn slo_deadline(created_at: i64, tier: Option<SlaTier>, slo_ms: Option<i64>) -> Option<i64> {
    slo_ms
        .or_else(|| tier.and_then(SlaTier::duration_ms))
        .map(|ms| created_at.saturating_add(ms))
}

fn check_optional_id(field: &'static str, value: Option<String>) -> Result<Option<String>, RuleViolation> {
    match value {
        Some(v) => Ok(Some(check_text(field, &v, 1, 100)?)),
        None => Ok(None),
    }
}

fn check_minutes(field: &'static str, value: Option<i32>) -> Result<Option<i32>, RuleViolation> {
    match value {
        Some(m) if !(0..=MAX_MINUTES).contains(&m) => Err(RuleViolation::invalid(
            field,
            format!("must be between 0 and {MAX_MINUTES}"),
        )),
        other => Ok(other),
    }
}

fn check_slo_ms(value: Option<i64>) -> Result<Option<i64>, RuleViolation> {
    match value {
        Some(ms) if ms <= 0 => Err(RuleViolation::invalid("sloMs", "must be positive")),
        other => Ok(other),
    }
}

fn check_requirements(req: TaskRequirements) -> Result<TaskRequirements, RuleViolation> {
    if req.min_memory_mb.is_some_and(|m| m < 0) {
        return Err(RuleViolation::invalid(
            "requirements.minMemoryMb",
            "must not be negative",
        ));
    }
    Ok(TaskRequirements {
        capabilities: check_labels("requirements.capabilities", &req.capabilities)?,
        ..req
    })
}

/// Builds a new task from its draft. Whether the assignee and parent exist is the caller's check.
pub fn create(draft: TaskDraft, id: String, created_by: String, now: i64) -> Result<Task, RuleViolation> {
    let title = check_text("title", &draft.title, 1, MAX_TITLE_CHARS)?;
    let description = check_text("description", &draft.description, 0, MAX_DESCRIPTION_CHARS)?;
    let status = match draft.status {
        None => TaskStatus::Backlog,
        Some(s @ (TaskStatus::Backlog | TaskStatus::Ready)) => s,
        Some(other) => {
            return Err(RuleViolation::invalid(
                "status",
                format!("a new task starts as backlog or ready, not {other}"),
            ))
        }
    };
    let slo_ms = check_slo_ms(draft.slo_ms)?;
    Ok(Task {
        id,
        title,
        description,
        status,
        priority: draft.priority,
        assignee_id: draft.assignee_id,
        parent_id: check_optional_id("parentId", draft.parent_id)?,
        mission_id: check_optional_id("missionId", draft.mission_id)?,
        pillar_id: check_optional_id("pillarId", draft.pillar_id)?,
        tags: check_labels("tags", &draft.tags)?,
        sla_tier: draft.sla_tier,
        slo_ms,
        slo_deadline_at: slo_deadline(now, draft.sla_tier, slo_ms),
        estimated_minutes: check_minutes("estimatedMinutes", draft.estimated_minutes)?,
        actual_minutes: None,
        requirements: check_requirements(draft.requirements)?,
        attempts: 0,
        failures: Vec::new(),
        escalation_level: 0,
        escalated_at: None,
        completion_notes: None,
        status_changed_at: now,
        started_at: None,
        completed_at: None,
        created_by,
        created_at: now,
        updated_at: now,
    })
}

/// Applies a field patch to a copy of the task. The SLO deadline follows the tier and `sloMs`.
pub fn apply_patch(task: &Task, patch: TaskPatch, now: i64) -> Result<Task, RuleViolation> {
    let mut next = task.clone();
    if let Some(title) = &patch.title {
        next.title = check_text("title", title, 1, MAX_TITLE_CHARS)?;
    }
    if let Some(description) = &patch.description {
        next.description = check_text("description", description, 0, MAX_DESCRIPTION_CHARS)?;
    }
    if let Some(priority) = patch.priority {
        next.priority = priority;
    }
    if let Some(tags) = &patch.tags {
        next.tags = check_labels("tags", tags)?;
    }
    if let Some(parent_id) = patch.parent_id {
        if parent_id.as_deref() == Some(task.id.as_str()) {
            return Err(RuleViolation::invalid("parentId", "a task cannot be its own parent"));
        }
        next.parent_id = check_optional_id("parentId", parent_id)?;
    }
    if let Some(mission_id) = patch.mission_id {
        next.mission_id = check_optional_id("missionId", mission_id)?;
    }
    if let Some(pillar_id) = patch.pillar_id {
        next.pillar_id = check_optional_id("pillarId", pillar_id)?;
    }
    if let Some(tier) = patch.sla_tier {
        next.sla_tier = tier;
    }
    if let Some(slo_ms) = patch.slo_ms {
        next.slo_ms = check_slo_ms(slo_ms)?;
    }
    if let Some(estimate) = patch.estimated_minutes {
        next.estimated_minutes = check_minutes("estimatedMinutes", estimate)?;
    }
    if let Some(actual) = patch.actual_minutes {
        next.actual_minutes = check_minutes("actualMinutes", actual)?;
    }
    if let Some(requirements) = patch.requirements {
        next.requirements = check_requirements(requirements)?;
    }
    next.slo_deadline_at = slo_deadline(next.created_at, next.sla_tier, next.slo_ms);
    next.updated_at = now;
    Ok(next)
}

/// Moves a copy of the task to `to`, keeping the timestamps and counters the move implies.
/// The caller has already checked the move (or is making a privileged one, such as unblocking).
pub fn moved(task: &Task, to: TaskStatus, now: i64) -> Task {
    let mut next = task.clone();
    next.status = to;
    next.status_changed_at = now;
    next.updated_at = now;
    if to == TaskStatus::InProgress {
        next.attempts += 1;
        next.started_at.get_or_insert(now);
    }
    if to.is_terminal() {
        next.completed_at = Some(now);
    }
    next
}

impl Priority {
    /// One level more urgent; `P0` stays `P0`.
    pub fn raised(self) -> Priority {
        match self {
            Priority::P3 => Priority::P2,
            Priority::P2 => Priority::P1,
            Priority::P1 | Priority::P0 => Priority::P0,
        }
    }
}

/// Escalates a copy of the task: priority up one level (a `P0` task stays `P0` but still counts the
/// escalation) and `escalationLevel` up by one.
pub fn escalated(task: &Task, now: i64) -> Task {
    let mut next = task.clone();
    next.priority = task.priority.raised();
    next.escalation_level += 1;
    next.escalated_at = Some(now);
    next.updated_at = now;
    next
}

/// Why a task may not move to `to` right now, beyond the state machine: work needs an assignee, and a task
/// with unfinished blockers may only wait (`backlog`, `blocked`) or be cancelled.
pub fn check_work_move(task: &Task, to: TaskStatus, open_blockers: &[String]) -> Result<(), RuleViolation> {
    let needs_assignee = matches!(to, TaskStatus::InProgress | TaskStatus::Review);
    if needs_assignee && task.assignee_id.is_none() {
        return Err(RuleViolation::Unassigned { to });
    }
    let moves_forward = matches!(
        to,
        TaskStatus::Ready | TaskStatus::InProgress | TaskStatus::Review | TaskStatus::Done
    );
    if moves_forward && !open_blockers.is_empty() {
        return Err(RuleViolation::OpenBlockers {
            blocked_by: open_blockers.to_vec(),
        });
    }
    Ok(())
}

/// Claim order: highest priority first, then the oldest.
pub fn claim_order(a: &Task, b: &Task) -> std::cmp::Ordering {
    a.priority
        .cmp(&b.priority)
        .then(a.created_at.cmp(&b.created_at))
        .then(a.id.cmp(&b.id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskStatus::*;

    fn task() -> Task {
        let draft: TaskDraft = serde_json::from_value(serde_json::json!({"title": "Write docs"})).unwrap();
        create(draft, "t1".into(), "admin".into(), 1_000).unwrap()
    }

    #[test]
    fn every_allowed_transition_is_accepted() {
        let expected = [
            (Backlog, vec![Ready, Blocked, Cancelled]),
            (Ready, vec![InProgress, Backlog, Blocked, Cancelled]),
            (InProgress, vec![Review, Done, Blocked, Ready]),
            (Review, vec![Done, InProgress, Blocked]),
            (Blocked, vec![Ready, Backlog, Cancelled]),
            (Done, vec![]),
            (Cancelled, vec![]),
        ];
        for (from, targets) in &expected {
            for to in TaskStatus::ALL {
                let result = check_transition(*from, *to);
                assert_eq!(result.is_ok(), targets.contains(to), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn refused_transitions_name_the_allowed_targets() {
        for (from, to) in [
            (Backlog, Done),
            (Ready, Review),
            (Done, Ready),
            (Cancelled, Backlog),
            (Blocked, InProgress),
            (Review, Cancelled),
            (InProgress, Backlog),
        ] {
            match check_transition(from, to) {
                Err(RuleViolation::InvalidTransition { allowed, .. }) => assert_eq!(allowed, from.allowed_targets()),
                other => panic!("{from} -> {to} gave {other:?}"),
            }
        }
    }

    #[test]
    fn moving_keeps_timestamps_and_attempts() {
        let t = task();
        let started = moved(&t, InProgress, 2_000);
        assert_eq!(started.attempts, 1);
        assert_eq!(started.started_at, Some(2_000));
        assert_eq!(started.status_changed_at, 2_000);
        let back = moved(&started, Ready, 3_000);
        let again = moved(&back, InProgress, 4_000);
        assert_eq!(again.attempts, 2);
        assert_eq!(again.started_at, Some(2_000), "startedAt is the first start");
        let done = moved(&again, Done, 5_000);
        assert_eq!(done.completed_at, Some(5_000));
    }

    #[test]
    fn slo_deadline_follows_tier_and_override() {
        assert_eq!(slo_deadline(0, Some(SlaTier::Critical), None), Some(3_600_000));
        assert_eq!(slo_deadline(0, Some(SlaTier::Urgent), None), Some(14_400_000));
        assert_eq!(slo_deadline(0, Some(SlaTier::Normal), None), Some(86_400_000));
        assert_eq!(slo_deadline(0, Some(SlaTier::Backlog), None), None);
        assert_eq!(slo_deadline(10, Some(SlaTier::Critical), Some(5)), Some(15));
        assert_eq!(slo_deadline(10, None, None), None);
    }

    #[test]
    fn patch_recomputes_the_deadline() {
        let t = task();
        let patch: TaskPatch = serde_json::from_value(serde_json::json!({"slaTier": "critical"})).unwrap();
        let next = apply_patch(&t, patch, 2_000).unwrap();
        assert_eq!(next.slo_deadline_at, Some(1_000 + 3_600_000));
        let patch: TaskPatch = serde_json::from_value(serde_json::json!({"slaTier": null})).unwrap();
        assert_eq!(apply_patch(&next, patch, 3_000).unwrap().slo_deadline_at, None);
    }

    #[test]
    fn creation_validates_lengths_and_status() {
        let long: TaskDraft = serde_json::from_value(serde_json::json!({"title": "x".repeat(201)})).unwrap();
        assert!(create(long, "t".into(), "admin".into(), 0).is_err());
        let long: TaskDraft =
            serde_json::from_value(serde_json::json!({"title": "ok", "description": "d".repeat(10_001)})).unwrap();
        assert!(create(long, "t".into(), "admin".into(), 0).is_err());
        let started: TaskDraft = serde_json::from_value(serde_json::json!({"title": "ok", "status": "done"})).unwrap();
        assert!(create(started, "t".into(), "admin".into(), 0).is_err());
        assert!(serde_json::from_value::<TaskDraft>(serde_json::json!({"title": "ok", "priority": "P9"})).is_err());
    }

    #[test]
    fn work_moves_need_an_assignee_and_no_open_blockers() {
        let t = task();
        assert!(check_work_move(&t, InProgress, &[]).is_err());
        let mut assigned = t.clone();
        assigned.assignee_id = Some("a".into());
        assert!(check_work_move(&assigned, InProgress, &[]).is_ok());
        let blocked = moved(&assigned, Blocked, 5);
        assert!(check_work_move(&blocked, Ready, &["b".into()]).is_err());
        assert!(check_work_move(&blocked, Cancelled, &["b".into()]).is_ok());
        assert!(check_work_move(&blocked, Ready, &[]).is_ok());
    }

    #[test]
    fn claim_order_prefers_priority_then_age() {
        let mut a = task();
        a.priority = Priority::P1;
        a.created_at = 5;
        let mut b = task();
        b.priority = Priority::P0;
        b.created_at = 10;
        let mut c = task();
        c.priority = Priority::P0;
        c.created_at = 1;
        let mut all = [a.clone(), b.clone(), c.clone()];
        all.sort_by(claim_order);
        assert_eq!(all[0].created_at, 1);
        assert_eq!(all[1].created_at, 10);
        assert_eq!(all[2].priority, Priority::P1);
    }

    #[test]
    fn escalation_raises_priority_and_counts_levels() {
        let draft: TaskDraft = serde_json::from_value(serde_json::json!({"title": "x", "priority": "P2"})).unwrap();
        let task = create(draft, "t".into(), "admin".into(), 0).unwrap();
        let once = escalated(&task, 5);
        assert_eq!(
            (once.priority, once.escalation_level, once.escalated_at),
            (Priority::P1, 1, Some(5))
        );
        let top = escalated(&escalated(&once, 6), 7);
        assert_eq!((top.priority, top.escalation_level), (Priority::P0, 3));
    }
}
