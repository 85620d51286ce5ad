//! Escalation rules: what makes a task "stuck" (triggers), which tasks a rule applies to, what it does
//! (actions), and the ladder that decides when a rule may fire again.
//!
//! - **Triggers** are pure functions of the task, its [`TaskContext`] (the assignee's last sign of life, what
//!   the task's upstream is doing, where the task stands in its assignee's queue) and now. Durations fire when
//!   strictly exceeded ("in progress for more than 2 h"); percentages and counts when reached ("≥ 75 %",
//!   "≥ 3 failed attempts"). Time in a status is measured from `statusChangedAt`, never `updatedAt`.
//! - **Selection**: among the enabled rules that apply to the task, whose triggers fire and whose ladder for
//!   this task is not at the maximum depth, only the one with the highest priority may run (ties: the older
//!   rule). If that rule is cooling down for this task, nothing runs: a lower rule never steps in during
//!   another's cooldown, so one stuck task gets one stream of alerts.
//! - **Ladder**: each firing of a rule for a task is one level higher than the last unresolved one (1, 2, 3),
//!   at most one level per cooldown; past the maximum depth nothing more fires. When the rule stops matching
//!   (the task moved, was unblocked, finished), its open firings resolve and the ladder starts again at 1.

use super::capacity;
use super::dependency::BlockedBy;
use super::matching::Strategy;
use super::task::{Priority, Task, TaskStatus};
use super::text_enum::text_enum;
use super::{check_labels, check_text, RuleViolation};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use utoipa::ToSchema;

pub const DEFAULT_RULE_PRIORITY: i32 = 50;
pub const DEFAULT_COOLDOWN_MS: i64 = 30 * 60_000;
pub const DEFAULT_SLO_PERCENT: u32 = 75;

/// One condition that makes a rule fire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum Trigger {
    /// In `status` for longer than `durationMs`, counted from `statusChangedAt`; with `pastEstimate`, counted
    /// from when the task's estimate ran out (a task without an estimate counts from `statusChangedAt`), so
    /// a long task worked at its pace is not "stuck".
    TimeInStatus {
        status: TaskStatus,
        duration_ms: i64,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        past_estimate: bool,
    },
    /// Blocked for longer than `durationMs` while nothing upstream is moving: no open task in the closure of
    /// its blockers is `in_progress`/`review` with a live assignee, or the chain has shown no progress for
    /// longer than `durationMs`.
    BlockerDuration { duration_ms: i64 },
    /// At least `percent` of the SLO used (default 75).
    SloConsumed {
        #[serde(default = "default_slo_percent")]
        percent: u32,
    },
    /// At risk by forecast: at the current pace the task is projected to finish after its SLO deadline.
    SloAtRisk {},
    /// At least `attempts` failed attempts by the task's current assignee (every recorded failure when it has
    /// none).
    AttemptsExceeded { attempts: u32 },
    /// At least `count` failures of `errorKind` within the last `windowMs`.
    ErrorPattern {
        error_kind: String,
        count: u32,
        window_ms: i64,
    },
    /// In progress, and the assignee silent (no heartbeat, no claim) for longer than `durationMs`.
    NoHeartbeat { duration_ms: i64 },
    /// Ready with no assignee for longer than `durationMs` (schedule-to-start).
    Unassigned { duration_ms: i64 },
}

fn default_slo_percent() -> u32 {
    DEFAULT_SLO_PERCENT
}

/// Where `escalate` sends the task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(into = "String", try_from = "String")]
pub enum EscalateTo {
    /// Up the ladder: level 1 the assignee's lead, level 2 that lead's lead (or every lead), level 3 a human.
    #[default]
    Lead,
    /// A named agent, at any level.
    Agent(String),
    /// Straight to a human: the admin activity feed and the webhook.
    Human,
}

impl From<EscalateTo> for String {
    fn from(to: EscalateTo) -> String {
        match to {
            EscalateTo::Lead => "lead".into(),
            EscalateTo::Agent(id) => format!("agent:{id}"),
            EscalateTo::Human => "human".into(),
        }
    }
}

impl TryFrom<String> for EscalateTo {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        match text.as_str() {
            "lead" => Ok(EscalateTo::Lead),
            "human" => Ok(EscalateTo::Human),
            other => match other.strip_prefix("agent:") {
                Some(id) if !id.trim().is_empty() => Ok(EscalateTo::Agent(id.trim().to_string())),
                _ => Err(format!(
                    "'{other}' is not \"lead\", \"human\" or \"agent:<id or name>\""
                )),
            },
        }
    }
}

/// One step of a rule's response, run in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum Action {
    /// A high-priority system message to the assignee: a template by name, or a subject and body.
    NotifyAssignee {
        template: Option<String>,
        subject: Option<String>,
        body: Option<String>,
    },
    /// One level up the ladder, priority up one level.
    Escalate {
        #[serde(default)]
        to: EscalateTo,
    },
    /// To the top suitable agent that can accept work; the old assignee is told why.
    Reassign {
        #[serde(default = "default_strategy")]
        strategy: Strategy,
    },
    /// A child task linked to the original.
    CreateSubtask {
        title: String,
        #[serde(default)]
        description: String,
        #[serde(default)]
        tags: Vec<String>,
        assign_to: Option<String>,
    },
    SetPriority {
        priority: Priority,
    },
    /// POST the firing as JSON to `url`, or to `MC_ESCALATION_WEBHOOK_URL`.
    Webhook {
        url: Option<String>,
        #[serde(default)]
        headers: BTreeMap<String, String>,
    },
}

fn default_strategy() -> Strategy {
    Strategy::Balanced
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::NotifyAssignee { .. } => "notify_assignee",
            Action::Escalate { .. } => "escalate",
            Action::Reassign { .. } => "reassign",
            Action::CreateSubtask { .. } => "create_subtask",
            Action::SetPriority { .. } => "set_priority",
            Action::Webhook { .. } => "webhook",
        }
    }
}

impl Trigger {
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::TimeInStatus { .. } => "time_in_status",
            Trigger::BlockerDuration { .. } => "blocker_duration",
            Trigger::SloConsumed { .. } => "slo_consumed",
            Trigger::SloAtRisk {} => "slo_at_risk",
            Trigger::AttemptsExceeded { .. } => "attempts_exceeded",
            Trigger::ErrorPattern { .. } => "error_pattern",
            Trigger::NoHeartbeat { .. } => "no_heartbeat",
            Trigger::Unassigned { .. } => "unassigned",
        }
    }
}

/// Which tasks a rule looks at; an empty list means any.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Applicability {
    /// The task has at least one of these tags.
    pub tags: Vec<String>,
    pub statuses: Vec<TaskStatus>,
    pub priorities: Vec<Priority>,
    pub mission_id: Option<String>,
}

impl Applicability {
    pub fn matches(&self, task: &Task) -> bool {
        (self.tags.is_empty() || self.tags.iter().any(|t| task.tags.contains(t)))
            && (self.statuses.is_empty() || self.statuses.contains(&task.status))
            && (self.priorities.is_empty() || self.priorities.contains(&task.priority))
            && self
                .mission_id
                .as_ref()
                .is_none_or(|m| task.mission_id.as_ref() == Some(m))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EscalationRule {
    pub id: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    /// 0–100; when several rules match a task, only the highest runs.
    pub priority: i32,
    /// The least time between two firings of this rule for one task.
    pub cooldown_ms: i64,
    pub applies_to: Applicability,
    /// Any one firing fires the rule.
    pub triggers: Vec<Trigger>,
    /// Run in order; one failing does not stop the next.
    pub actions: Vec<Action>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The body of `POST /api/escalation-rules`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleDraft {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    #[serde(default = "default_priority")]
    pub priority: i32,
    #[serde(default = "default_cooldown")]
    pub cooldown_ms: i64,
    #[serde(default)]
    pub applies_to: Applicability,
    pub triggers: Vec<Trigger>,
    pub actions: Vec<Action>,
}

fn default_enabled() -> bool {
    true
}
fn default_priority() -> i32 {
    DEFAULT_RULE_PRIORITY
}
fn default_cooldown() -> i64 {
    DEFAULT_COOLDOWN_MS
}

/// The body of `PATCH /api/escalation-rules/{id}`: any field of the draft.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RulePatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub priority: Option<i32>,
    pub cooldown_ms: Option<i64>,
    pub applies_to: Option<Applicability>,
    pub triggers: Option<Vec<Trigger>>,
    pub actions: Option<Vec<Action>>,
}

const MAX_DURATION_MS: i64 = 365 * 24 * 3_600_000;

fn check_duration(field: &'static str, ms: i64) -> Result<(), RuleViolation> {
    if (1..=MAX_DURATION_MS).contains(&ms) {
        Ok(())
    } else {
        Err(RuleViolation::invalid(field, "must be between 1 ms and 365 days"))
    }
}

fn check_trigger(trigger: &Trigger) -> Result<(), RuleViolation> {
    match trigger {
        Trigger::TimeInStatus {
            status, duration_ms, ..
        } => {
            if status.is_terminal() {
                return Err(RuleViolation::invalid(
                    "triggers.status",
                    "a finished task is never stuck: use an open status",
                ));
            }
            check_duration("triggers.durationMs", *duration_ms)
        }
        Trigger::BlockerDuration { duration_ms }
        | Trigger::NoHeartbeat { duration_ms }
        | Trigger::Unassigned { duration_ms } => check_duration("triggers.durationMs", *duration_ms),
        Trigger::SloConsumed { percent } => match percent {
            1..=1000 => Ok(()),
            _ => Err(RuleViolation::invalid("triggers.percent", "must be between 1 and 1000")),
        },
        Trigger::SloAtRisk {} => Ok(()),
        Trigger::AttemptsExceeded { attempts } => match attempts {
            1..=1000 => Ok(()),
            _ => Err(RuleViolation::invalid(
                "triggers.attempts",
                "must be between 1 and 1000",
            )),
        },
        Trigger::ErrorPattern {
            error_kind,
            count,
            window_ms,
        } => {
            check_text("triggers.errorKind", error_kind, 1, 100)?;
            if !(1..=1000).contains(count) {
                return Err(RuleViolation::invalid("triggers.count", "must be between 1 and 1000"));
            }
            check_duration("triggers.windowMs", *window_ms)
        }
    }
}

fn check_action(action: &Action) -> Result<(), RuleViolation> {
    match action {
        Action::NotifyAssignee {
            template,
            subject,
            body,
        } => {
            if template.is_none() && subject.is_none() {
                return Err(RuleViolation::invalid(
                    "actions.subject",
                    "notify_assignee needs a template or a subject",
                ));
            }
            if template.is_some() && (subject.is_some() || body.is_some()) {
                return Err(RuleViolation::invalid(
                    "actions.template",
                    "give a template or a subject and body, not both",
                ));
            }
            if let Some(subject) = subject {
                check_text("actions.subject", subject, 1, super::message::MAX_SUBJECT)?;
            }
            Ok(())
        }
        Action::CreateSubtask { title, tags, .. } => {
            check_text("actions.title", title, 1, super::task::MAX_TITLE_CHARS)?;
            check_labels("actions.tags", tags).map(drop)
        }
        Action::Webhook { url, headers } => {
            if url
                .as_ref()
                .is_some_and(|url| !(url.starts_with("http://") || url.starts_with("https://")))
            {
                return Err(RuleViolation::invalid(
                    "actions.url",
                    "must be an http:// or https:// URL",
                ));
            }
            // RFC 9110: a header name is a token; a value is visible ASCII, spaces and tabs.
            let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
            for (name, value) in headers {
                if name.is_empty() || !name.chars().all(token) {
                    return Err(RuleViolation::invalid(
                        "actions.headers",
                        format!("'{name}' is not a valid header name"),
                    ));
                }
                if !value.chars().all(|c| c == '\t' || (' '..='~').contains(&c)) {
                    return Err(RuleViolation::invalid(
                        "actions.headers",
                        format!("the value of '{name}' must be printable ASCII"),
                    ));
                }
            }
            Ok(())
        }
        Action::Escalate { .. } | Action::Reassign { .. } | Action::SetPriority { .. } => Ok(()),
    }
}

fn check_rule(rule: EscalationRule) -> Result<EscalationRule, RuleViolation> {
    let name = check_text("name", &rule.name, 1, 100)?;
    let description = check_text("description", &rule.description, 0, 1000)?;
    if !(0..=100).contains(&rule.priority) {
        return Err(RuleViolation::invalid("priority", "must be between 0 and 100"));
    }
    if !(0..=MAX_DURATION_MS).contains(&rule.cooldown_ms) {
        return Err(RuleViolation::invalid("cooldownMs", "must be between 0 and 365 days"));
    }
    if rule.triggers.is_empty() {
        return Err(RuleViolation::invalid("triggers", "must not be empty"));
    }
    if rule.actions.is_empty() {
        return Err(RuleViolation::invalid("actions", "must not be empty"));
    }
    rule.triggers.iter().try_for_each(check_trigger)?;
    rule.actions.iter().try_for_each(check_action)?;
    let tags = check_labels("appliesTo.tags", &rule.applies_to.tags)?;
    Ok(EscalationRule {
        name,
        description,
        applies_to: Applicability {
            tags,
            ..rule.applies_to
        },
        ..rule
    })
}

pub fn create_rule(draft: RuleDraft, id: String, now: i64) -> Result<EscalationRule, RuleViolation> {
    check_rule(EscalationRule {
        id,
        name: draft.name,
        description: draft.description,
        enabled: draft.enabled,
        priority: draft.priority,
        cooldown_ms: draft.cooldown_ms,
        applies_to: draft.applies_to,
        triggers: draft.triggers,
        actions: draft.actions,
        created_at: now,
        updated_at: now,
    })
}

pub fn apply_patch(rule: &EscalationRule, patch: RulePatch, now: i64) -> Result<EscalationRule, RuleViolation> {
    let current = rule.clone();
    check_rule(EscalationRule {
        name: patch.name.unwrap_or(current.name),
        description: patch.description.unwrap_or(current.description),
        enabled: patch.enabled.unwrap_or(current.enabled),
        priority: patch.priority.unwrap_or(current.priority),
        cooldown_ms: patch.cooldown_ms.unwrap_or(current.cooldown_ms),
        applies_to: patch.applies_to.unwrap_or(current.applies_to),
        triggers: patch.triggers.unwrap_or(current.triggers),
        actions: patch.actions.unwrap_or(current.actions),
        updated_at: now,
        ..current
    })
}

/// What a trigger needs beyond the task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskContext {
    /// The assignee's last heartbeat, if it ever sent one.
    pub assignee_heartbeat_at: Option<i64>,
    /// For a blocked task: what its upstream is doing. The default (nothing known upstream) lets
    /// `blocker_duration` fire on time alone, as for a task blocked by hand.
    pub chain: ChainSummary,
    /// For a ready task in its assignee's queue: when claim order says the assignee starts it.
    pub projected_start_at: Option<i64>,
}

/// What the open tasks upstream of a blocked task (the transitive closure of its blockers) are doing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChainSummary {
    /// How many open tasks are upstream; finished blockers are not counted.
    pub upstream: usize,
    /// Some upstream task is `ready`, `in_progress` or `review` with an assignee whose last sign of life is
    /// within the heartbeat timeout, or `ready` without an assignee (waiting in the pool).
    pub moving: bool,
    /// The chain's last progress: the latest status change of the blocked task or of any task upstream, or
    /// sign of life of an assignee working on an upstream task.
    pub last_progress_at: Option<i64>,
}

/// An assignee's last sign of life on a task: its last heartbeat, or the task's entry into `in_progress`
/// when that came later (taking work is a sign of life too).
pub fn last_sign_of_life(task: &Task, heartbeat_at: Option<i64>) -> Option<i64> {
    let started = (task.status == TaskStatus::InProgress).then_some(task.status_changed_at);
    heartbeat_at.max(started)
}

/// Every task upstream of `task`: the transitive closure of its `blockedBy` edges, `task` left out, sorted.
pub fn upstream_of(task: &str, blocked_by: &BlockedBy) -> Vec<String> {
    let mut seen: HashSet<&str> = HashSet::from([task]);
    let mut stack = vec![task];
    let mut found = Vec::new();
    while let Some(node) = stack.pop() {
        for blocker in blocked_by.get(node).into_iter().flatten() {
            if seen.insert(blocker.as_str()) {
                found.push(blocker.clone());
                stack.push(blocker.as_str());
            }
        }
    }
    found.sort();
    found
}

/// Summarizes the chain of a blocked task from its open upstream tasks, each with its assignee's last
/// heartbeat. "Live" is the heartbeat monitor's own definition: a sign of life within `heartbeat_timeout_ms`.
pub fn chain_summary<'a>(
    blocked: &Task,
    upstream: impl IntoIterator<Item = (&'a Task, Option<i64>)>,
    now: i64,
    heartbeat_timeout_ms: i64,
) -> ChainSummary {
    let mut summary = ChainSummary {
        upstream: 0,
        moving: false,
        last_progress_at: Some(blocked.status_changed_at),
    };
    for (task, heartbeat_at) in upstream {
        if task.status.is_terminal() {
            continue;
        }
        summary.upstream += 1;
        summary.last_progress_at = summary.last_progress_at.max(Some(task.status_changed_at));
        // Waiting in the pool for a free agent: queueing, watched by the `unassigned` trigger on that task,
        // not a reason to escalate what waits behind it.
        if task.status == TaskStatus::Ready && task.assignee_id.is_none() {
            summary.moving = true;
            summary.last_progress_at = summary.last_progress_at.max(Some(now));
            continue;
        }
        // Work in an assignee's hands: in progress, in review, or waiting in its queue (a live agent takes
        // its ready tasks in claim order, so a queued blocker is progressing too).
        let worked_on = matches!(
            task.status,
            TaskStatus::InProgress | TaskStatus::Review | TaskStatus::Ready
        ) && task.assignee_id.is_some();
        if !worked_on {
            continue;
        }
        let seen = last_sign_of_life(task, heartbeat_at);
        if seen.is_some_and(|at| now - at <= heartbeat_timeout_ms) {
            summary.moving = true;
            summary.last_progress_at = summary.last_progress_at.max(seen);
        }
    }
    summary
}

/// "2 h 14 min", "45 min", "30 s": durations in reasons.
pub fn human_duration(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s} s"),
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

/// Whether the trigger fires for this task now, and why.
pub fn fires(trigger: &Trigger, task: &Task, context: TaskContext, now: i64) -> Option<String> {
    if task.status.is_terminal() {
        return None;
    }
    let in_status = now - task.status_changed_at;
    match trigger {
        Trigger::TimeInStatus {
            status,
            duration_ms,
            past_estimate,
        } => {
            let estimate_ms = match (past_estimate, task.estimated_minutes) {
                (true, Some(minutes)) => i64::from(minutes.max(0)) * 60_000,
                _ => 0,
            };
            (task.status == *status && in_status - estimate_ms > *duration_ms).then(|| {
                let over = if estimate_ms > 0 {
                    format!(", {} past its estimate", human_duration(in_status - estimate_ms))
                } else {
                    String::new()
                };
                format!(
                    "{} for {}{over}",
                    status.as_str().replace('_', " "),
                    human_duration(in_status)
                )
            })
        }
        Trigger::BlockerDuration { duration_ms } => {
            if task.status != TaskStatus::Blocked || in_status <= *duration_ms {
                return None;
            }
            let chain = context.chain;
            let blocked = format!("blocked for {}", human_duration(in_status));
            if chain.upstream == 0 {
                return Some(blocked);
            }
            // Progress is a status change upstream, or a live assignee holding upstream work: a wait behind
            // such a chain is ordinary. The chain must also have stood still for the threshold, so a blocker
            // that just became ready (and waits for assignment) or whose agent just fell silent (the
            // "assignee silent" rule's to handle first) is not yet an escalation of its dependents.
            let idle = now - chain.last_progress_at.unwrap_or(task.status_changed_at);
            if idle <= *duration_ms {
                return None;
            }
            Some(if chain.moving {
                format!(
                    "{blocked} and the chain has not progressed for {}",
                    human_duration(idle)
                )
            } else {
                format!(
                    "{blocked} and nothing upstream has moved for {} ({} open tasks upstream, none held by a live \
                     assignee)",
                    human_duration(idle),
                    chain.upstream
                )
            })
        }
        Trigger::SloConsumed { percent } => {
            let deadline = task.slo_deadline_at?;
            let slo = (deadline - task.created_at).max(1);
            let used = now - task.created_at;
            (i128::from(used) * 100 >= i128::from(*percent) * i128::from(slo)).then(|| {
                format!(
                    "{}% of the SLO used ({} left)",
                    used * 100 / slo,
                    if deadline > now {
                        human_duration(deadline - now)
                    } else {
                        "none".to_string()
                    }
                )
            })
        }
        Trigger::SloAtRisk {} => {
            let deadline = task.slo_deadline_at?;
            let finish = capacity::projected_finish(task, context.projected_start_at, now);
            (finish > deadline).then(|| {
                format!(
                    "projected to finish {} after the SLO deadline ({} left)",
                    human_duration(finish - deadline),
                    if deadline > now {
                        human_duration(deadline - now)
                    } else {
                        "none".to_string()
                    }
                )
            })
        }
        Trigger::AttemptsExceeded { attempts } => {
            // The current assignee's failures: once the task is given to someone else, their count starts
            // over, so a reassignment that worked is not taken back. Without an assignee, every failure.
            let failed = match &task.assignee_id {
                Some(assignee) => task
                    .failures
                    .iter()
                    .filter(|f| f.agent_id.as_deref() == Some(assignee.as_str()))
                    .count(),
                None => task.failures.len(),
            };
            (failed >= *attempts as usize).then(|| match &task.assignee_id {
                Some(_) => format!("{failed} failed attempts by its assignee"),
                None => format!("{failed} failed attempts"),
            })
        }
        Trigger::ErrorPattern {
            error_kind,
            count,
            window_ms,
        } => {
            let recent = task
                .failures
                .iter()
                .filter(|f| &f.error_kind == error_kind && now - f.at <= *window_ms)
                .count();
            (recent >= *count as usize).then(|| {
                format!(
                    "{recent} '{error_kind}' failures in the last {}",
                    human_duration(*window_ms)
                )
            })
        }
        Trigger::NoHeartbeat { duration_ms } => {
            if task.status != TaskStatus::InProgress || task.assignee_id.is_none() {
                return None;
            }
            // Taking the task is a sign of life too: the silence counts from whichever came last.
            let last_seen = last_sign_of_life(task, context.assignee_heartbeat_at).unwrap_or(task.status_changed_at);
            let silent = now - last_seen;
            (silent > *duration_ms).then(|| format!("assignee silent for {}", human_duration(silent)))
        }
        Trigger::Unassigned { duration_ms } => {
            (task.status == TaskStatus::Ready && task.assignee_id.is_none() && in_status > *duration_ms)
                .then(|| format!("ready and unassigned for {}", human_duration(in_status)))
        }
    }
}

/// Whether the rule matches the task now: enabled, applicable, and one of its triggers fires (the first that
/// does gives the reason).
pub fn matches(rule: &EscalationRule, task: &Task, context: TaskContext, now: i64) -> Option<Firing> {
    if !rule.enabled || !rule.applies_to.matches(task) {
        return None;
    }
    rule.triggers.iter().find_map(|trigger| {
        fires(trigger, task, context, now).map(|reason| Firing {
            trigger: trigger.kind().to_string(),
            reason,
        })
    })
}

/// Why a rule fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Firing {
    pub trigger: String,
    pub reason: String,
}

/// A rule's ladder for one task: the open (unresolved) firings' highest level and the last firing time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ladder {
    pub level: u32,
    pub last_fired_at: Option<i64>,
}

/// What one evaluation of a task decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The rule to fire, with the level it fires at; `None` when nothing fires.
    pub fire: Option<(String, u32, Firing)>,
    /// Why nothing fires although a rule matches (cooling down), for dry runs.
    pub held_back: Option<String>,
    /// Rules whose open ladder for this task no longer matches: their firings resolve.
    pub resolve: Vec<String>,
}

/// Decides which rule, if any, fires for `task` now, and which open ladders resolve. `ladders` holds the open
/// ladder of each rule for this task (rules absent have none).
pub fn decide(
    rules: &[EscalationRule],
    task: &Task,
    context: TaskContext,
    ladders: &BTreeMap<String, Ladder>,
    max_depth: u32,
    now: i64,
) -> Decision {
    let mut matching: Vec<(&EscalationRule, Firing)> = rules
        .iter()
        .filter_map(|rule| matches(rule, task, context, now).map(|f| (rule, f)))
        .collect();
    let resolve = ladders
        .keys()
        .filter(|id| !matching.iter().any(|(rule, _)| &rule.id == *id))
        .cloned()
        .collect();
    matching.retain(|(rule, _)| ladders.get(&rule.id).is_none_or(|l| l.level < max_depth));
    matching.sort_by(|(a, _), (b, _)| {
        b.priority
            .cmp(&a.priority)
            .then(a.created_at.cmp(&b.created_at))
            .then(a.id.cmp(&b.id))
    });
    let Some((rule, firing)) = matching.into_iter().next() else {
        return Decision {
            fire: None,
            held_back: None,
            resolve,
        };
    };
    let ladder = ladders.get(&rule.id).copied().unwrap_or_default();
    if let Some(last) = ladder.last_fired_at {
        if now - last < rule.cooldown_ms {
            return Decision {
                fire: None,
                held_back: Some(format!(
                    "'{}' matches ({}) but is cooling down for {}",
                    rule.name,
                    firing.reason,
                    human_duration(rule.cooldown_ms - (now - last))
                )),
                resolve,
            };
        }
    }
    Decision {
        fire: Some((rule.id.clone(), ladder.level + 1, firing)),
        held_back: None,
        resolve,
    }
}

/// Whether this firing took the task from a silent assignee: a `no_heartbeat` firing whose `reassign` ran.
pub fn took_from_silent_assignee(escalation: &Escalation) -> bool {
    escalation.trigger == NO_HEARTBEAT
        && escalation
            .actions
            .iter()
            // The task changed hands whether or not the handoff notice (its outbox row) is delivered yet.
            .any(|a| a.kind == "reassign" && (a.status == ActionStatus::Executed || a.outbox_id.is_some()))
}

const NO_HEARTBEAT: &str = "no_heartbeat";

/// The ping-pong guard. A `no_heartbeat` firing that would reassign a task already taken from a silent
/// assignee less than the rule's cooldown ago (at `taken_at`) goes to the lead instead: two assignees in a
/// row falling silent on one task says more about the task than about them. Replies with the actions to run
/// and the reason to record, or `None` when the rule runs as written.
pub fn ping_pong(
    rule: &EscalationRule,
    firing: &Firing,
    taken_at: Option<i64>,
    now: i64,
) -> Option<(Vec<Action>, String)> {
    let taken_at = taken_at?;
    let reassigns = rule.actions.iter().any(|a| matches!(a, Action::Reassign { .. }));
    if firing.trigger != NO_HEARTBEAT || !reassigns || now - taken_at >= rule.cooldown_ms {
        return None;
    }
    let mut actions: Vec<Action> = Vec::with_capacity(rule.actions.len());
    for action in &rule.actions {
        let next = match action {
            Action::Reassign { .. } => Action::Escalate { to: EscalateTo::Lead },
            other => other.clone(),
        };
        if !actions.contains(&next) {
            actions.push(next);
        }
    }
    let reason = format!(
        "{}; it was already taken from a silent assignee {} ago, so the lead decides instead of a third assignee",
        firing.reason,
        human_duration(now - taken_at)
    );
    Some((actions, reason))
}

text_enum! {
    /// `pending` while its outbox row waits for delivery; `failed` while a delivery is being retried (or when
    /// an in-process step failed); `dead` once the outbox gave up.
    pub enum ActionStatus {
        Pending => "pending",
        Executed => "executed",
        Failed => "failed",
        Dead => "dead",
        Skipped => "skipped",
    }
}

/// What one action of a firing did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionResult {
    pub kind: String,
    pub status: ActionStatus,
    /// What it did, why it failed, or why it was skipped.
    pub detail: String,
    /// The outbox row that delivers this action's message, webhook or page (see `GET /api/outbox/{id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox_id: Option<String>,
}

/// One firing of a rule (or of a built-in escalation) for a task: the escalation history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Escalation {
    pub id: String,
    /// Null for the built-in escalations (`ack_deadline`, `slo_breach`).
    pub rule_id: Option<String>,
    pub rule_name: String,
    /// The task escalated; null for a message without a task that missed its acknowledgement deadline.
    pub task_id: Option<String>,
    /// The message whose acknowledgement deadline passed (`ack_deadline` only).
    pub message_id: Option<String>,
    /// The rung of the rule's ladder for this task: 1, 2, 3.
    pub level: u32,
    pub trigger: String,
    pub reason: String,
    pub actions: Vec<ActionResult>,
    pub triggered_at: i64,
    /// When the task left the triggering condition; null while open.
    pub resolved_at: Option<i64>,
    /// Feedback: was this escalation useful?
    pub useful: Option<bool>,
    pub rated_at: Option<i64>,
}

impl Escalation {
    /// A new rung, open and unrated, its actions not yet run, named and triggered by `name` (a built-in
    /// escalation); a rule's firing sets its `rule_id` and trigger over this.
    pub fn opened(id: String, name: &str, task_id: Option<String>, level: u32, reason: String, at: i64) -> Self {
        Escalation {
            id,
            rule_id: None,
            rule_name: name.to_string(),
            task_id,
            message_id: None,
            level,
            trigger: name.to_string(),
            reason,
            actions: Vec::new(),
            triggered_at: at,
            resolved_at: None,
            useful: None,
            rated_at: None,
        }
    }
}

/// `GET /api/escalations/stats`: one line per rule (built-in escalations by name).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleStats {
    pub rule_id: Option<String>,
    pub rule_name: String,
    pub firings: usize,
    pub open: usize,
    pub resolved: usize,
    /// Mean time from firing to resolution, over the resolved ones.
    pub mean_resolution_ms: Option<i64>,
    pub rated: usize,
    pub useful: usize,
    /// `useful / rated`, null before any rating.
    pub accuracy: Option<f64>,
}

/// The statistics of a history (oldest first), most firings first. A rule is one line whatever its names over
/// time, shown by the name of its latest firing; built-in escalations are grouped by name.
pub fn stats(history: &[Escalation]) -> Vec<RuleStats> {
    let mut by_rule: BTreeMap<(Option<String>, String), RuleStats> = BTreeMap::new();
    let mut resolution_total: BTreeMap<(Option<String>, String), i64> = BTreeMap::new();
    for e in history {
        let key = match &e.rule_id {
            Some(id) => (Some(id.clone()), String::new()),
            None => (None, e.rule_name.clone()),
        };
        let line = by_rule.entry(key.clone()).or_insert_with(|| RuleStats {
            rule_id: e.rule_id.clone(),
            rule_name: e.rule_name.clone(),
            firings: 0,
            open: 0,
            resolved: 0,
            mean_resolution_ms: None,
            rated: 0,
            useful: 0,
            accuracy: None,
        });
        line.firings += 1;
        line.rule_name.clone_from(&e.rule_name);
        match e.resolved_at {
            Some(at) => {
                line.resolved += 1;
                *resolution_total.entry(key).or_default() += at - e.triggered_at;
            }
            None => line.open += 1,
        }
        if let Some(useful) = e.useful {
            line.rated += 1;
            line.useful += usize::from(useful);
        }
    }
    let mut lines: Vec<RuleStats> = by_rule
        .into_iter()
        .map(|(key, mut line)| {
            if line.resolved > 0 {
                let total = resolution_total.get(&key).copied().unwrap_or(0);
                line.mean_resolution_ms = Some(total / line.resolved as i64);
            }
            if line.rated > 0 {
                line.accuracy =
                    Some(super::capacity::one_decimal(line.useful as f64 / line.rated as f64 * 100.0) / 100.0);
            }
            line
        })
        .collect();
    lines.sort_by(|a, b| b.firings.cmp(&a.firings).then(a.rule_name.cmp(&b.rule_name)));
    lines
}

#[cfg(test)]
mod tests;
