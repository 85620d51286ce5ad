//! Capacity: how much work an agent carries and when it will be free.
//!
//! **Utilization has one definition**, used by the capacity figures, by `canAcceptWork`, by the assign and
//! claim checks and by the suitable-agent ranking: the minutes of work still estimated for the agent's
//! in-progress tasks as a share of its `maxMinutesPerDay`. Ready and blocked tasks are queued work, not load:
//! they show in the counts and the forecast but do not raise utilization. (The seed system also had a
//! count-based utilization for ranking; it is gone.)

use super::agent::{Agent, AgentConstraints, AgentPatch, AgentStatus};
use super::task::{claim_order, Priority, Task, TaskStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The estimate used for a task that has none.
pub const UNKNOWN_ESTIMATE_MINUTES: i64 = 240;
/// A task in progress always counts for at least this much: overrunning its estimate does not make it free.
pub const MIN_REMAINING_MINUTES: i64 = 15;
const MINUTE_MS: i64 = 60_000;

/// The server-wide threshold of `canAcceptWork`; the other one, `maxConcurrentTasks`, is per agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapacityLimits {
    /// An agent at or above this utilization (percent) cannot accept work.
    pub max_utilization_percent: u32,
}

impl Default for CapacityLimits {
    fn default() -> Self {
        CapacityLimits {
            max_utilization_percent: 80,
        }
    }
}

/// A task's estimate in minutes, or the fallback when it has none.
pub fn estimate_minutes(task: &Task) -> i64 {
    task.estimated_minutes.map_or(UNKNOWN_ESTIMATE_MINUTES, i64::from)
}

/// Minutes still expected for a task in progress: its estimate minus the whole minutes spent since it last
/// entered `in_progress` (a retried task starts over), never less than [`MIN_REMAINING_MINUTES`].
pub fn remaining_minutes(task: &Task, now: i64) -> i64 {
    let spent = (now - task.status_changed_at).max(0) / MINUTE_MS;
    (estimate_minutes(task) - spent).max(MIN_REMAINING_MINUTES)
}

/// Rounds to one decimal place, for display only; decisions use exact integer arithmetic.
pub(crate) fn one_decimal(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// An agent's live load, derived from its open tasks.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentLoad {
    pub agent_id: String,
    pub agent_name: String,
    pub agent_status: AgentStatus,
    pub max_concurrent_tasks: i32,
    pub max_minutes_per_day: i32,
    pub in_progress_count: usize,
    pub ready_count: usize,
    pub blocked_count: usize,
    pub estimated_minutes_remaining: i64,
    /// `estimatedMinutesRemaining / maxMinutesPerDay × 100`, one decimal; may exceed 100.
    pub utilization_percent: f64,
    /// `maxMinutesPerDay − estimatedMinutesRemaining`, never below 0.
    pub available_minutes: i64,
    /// In-progress tasks ≥ `maxConcurrentTasks`.
    pub is_overloaded: bool,
    /// Utilization below the limit and in-progress tasks below `maxConcurrentTasks`.
    pub can_accept_work: bool,
}

impl AgentLoad {
    /// Why the agent cannot accept work, in one line; `None` when it can.
    pub fn refusal(&self, limits: CapacityLimits) -> Option<String> {
        if self.can_accept_work {
            return None;
        }
        Some(if self.is_overloaded {
            format!(
                "{} of {} concurrent tasks in progress",
                self.in_progress_count, self.max_concurrent_tasks
            )
        } else {
            format!(
                "{}% utilized ({} of {} minutes), the limit is {}%",
                self.utilization_percent,
                self.estimated_minutes_remaining,
                self.max_minutes_per_day,
                limits.max_utilization_percent
            )
        })
    }
}

/// The load of `agent`, given its open tasks (any order; tasks of other agents must not be passed).
pub fn load(agent: &Agent, tasks: &[&Task], now: i64, limits: CapacityLimits) -> AgentLoad {
    let count = |status: TaskStatus| tasks.iter().filter(|t| t.status == status).count();
    let in_progress_count = count(TaskStatus::InProgress);
    let remaining: i64 = tasks
        .iter()
        .filter(|t| t.status == TaskStatus::InProgress)
        .map(|t| remaining_minutes(t, now))
        .sum();
    let max_minutes = i64::from(agent.max_minutes_per_day.max(1));
    let max_concurrent = usize::try_from(agent.max_concurrent_tasks.max(1)).unwrap_or(1);
    let under_limit = remaining * 100 < i64::from(limits.max_utilization_percent) * max_minutes;
    let is_overloaded = in_progress_count >= max_concurrent;
    AgentLoad {
        agent_id: agent.id.clone(),
        agent_name: agent.name.clone(),
        agent_status: agent.status,
        max_concurrent_tasks: agent.max_concurrent_tasks,
        max_minutes_per_day: agent.max_minutes_per_day,
        in_progress_count,
        ready_count: count(TaskStatus::Ready),
        blocked_count: count(TaskStatus::Blocked),
        estimated_minutes_remaining: remaining,
        utilization_percent: one_decimal(remaining as f64 * 100.0 / max_minutes as f64),
        available_minutes: (max_minutes - remaining).max(0),
        is_overloaded,
        can_accept_work: under_limit && !is_overloaded,
    }
}

/// A task in progress, as the capacity view lists it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InProgressItem {
    pub id: String,
    pub title: String,
    pub priority: Priority,
    pub estimated_minutes: Option<i32>,
    pub remaining_minutes: i64,
    /// When the task last entered `in_progress`.
    pub in_progress_since: i64,
}

/// A ready task waiting for the agent, as the capacity view lists it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReadyItem {
    pub id: String,
    pub title: String,
    pub priority: Priority,
    pub estimated_minutes: Option<i32>,
}

/// `GET /api/agents/{id}/capacity`: the load, the configuration and the work behind the figures.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CapacityReport {
    #[serde(flatten)]
    pub load: AgentLoad,
    pub specializations: Vec<String>,
    pub constraints: AgentConstraints,
    /// In the order the agent started them.
    pub in_progress_tasks: Vec<InProgressItem>,
    /// In claim order: highest priority first, then the oldest.
    pub ready_tasks: Vec<ReadyItem>,
}

pub fn report(agent: &Agent, tasks: &[&Task], now: i64, limits: CapacityLimits) -> CapacityReport {
    let (in_progress, ready) = work_queue(tasks);
    CapacityReport {
        load: load(agent, tasks, now, limits),
        specializations: agent.specializations.clone(),
        constraints: agent.constraints.clone(),
        in_progress_tasks: in_progress
            .into_iter()
            .map(|t| InProgressItem {
                id: t.id.clone(),
                title: t.title.clone(),
                priority: t.priority,
                estimated_minutes: t.estimated_minutes,
                remaining_minutes: remaining_minutes(t, now),
                in_progress_since: t.status_changed_at,
            })
            .collect(),
        ready_tasks: ready
            .into_iter()
            .map(|t| ReadyItem {
                id: t.id.clone(),
                title: t.title.clone(),
                priority: t.priority,
                estimated_minutes: t.estimated_minutes,
            })
            .collect(),
    }
}

/// The agent's queue: tasks in progress (earliest started first), then ready tasks in claim order.
/// Blocked tasks and tasks in review are not workable and are left out.
fn work_queue<'a>(tasks: &[&'a Task]) -> (Vec<&'a Task>, Vec<&'a Task>) {
    let mut in_progress: Vec<&Task> = tasks
        .iter()
        .copied()
        .filter(|t| t.status == TaskStatus::InProgress)
        .collect();
    in_progress.sort_by(|a, b| a.status_changed_at.cmp(&b.status_changed_at).then(a.id.cmp(&b.id)));
    let mut ready: Vec<&Task> = tasks
        .iter()
        .copied()
        .filter(|t| t.status == TaskStatus::Ready)
        .collect();
    ready.sort_by(|a, b| claim_order(a, b));
    (in_progress, ready)
}

/// One task of the forecast, with when the agent is projected to work on it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForecastEntry {
    pub task_id: String,
    pub title: String,
    pub status: TaskStatus,
    pub priority: Priority,
    /// Minutes this task is projected to take from its start: the remaining estimate for a task in
    /// progress, the estimate (or the fallback) for a ready one.
    pub minutes: i64,
    pub projected_start_at: i64,
    pub projected_finish_at: i64,
}

/// `GET /api/agents/{id}/forecast`: the agent's queue laid end to end from now.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Forecast {
    pub agent_id: String,
    pub agent_name: String,
    pub generated_at: i64,
    /// When the last queued task is projected to finish; now when the queue is empty.
    pub available_at: i64,
    pub total_minutes: i64,
    pub queue: Vec<ForecastEntry>,
}

/// Lays the agent's queue end to end from `now`, one task after another, using the estimates.
pub fn forecast(agent: &Agent, tasks: &[&Task], now: i64) -> Forecast {
    let (in_progress, ready) = work_queue(tasks);
    let mut at = now;
    let mut queue = Vec::with_capacity(in_progress.len() + ready.len());
    let durations = in_progress
        .iter()
        .map(|t| (*t, remaining_minutes(t, now)))
        .chain(ready.iter().map(|t| (*t, estimate_minutes(t))));
    for (task, minutes) in durations {
        let finish = at + minutes * MINUTE_MS;
        queue.push(ForecastEntry {
            task_id: task.id.clone(),
            title: task.title.clone(),
            status: task.status,
            priority: task.priority,
            minutes,
            projected_start_at: at,
            projected_finish_at: finish,
        });
        at = finish;
    }
    Forecast {
        agent_id: agent.id.clone(),
        agent_name: agent.name.clone(),
        generated_at: now,
        available_at: at,
        total_minutes: (at - now) / MINUTE_MS,
        queue,
    }
}

/// When the agent is projected to be free: [`forecast`]'s `availableAt`, without building the queue.
pub fn available_at(tasks: &[&Task], now: i64) -> i64 {
    let minutes: i64 = tasks
        .iter()
        .map(|t| match t.status {
            TaskStatus::InProgress => remaining_minutes(t, now),
            TaskStatus::Ready => estimate_minutes(t),
            _ => 0,
        })
        .sum();
    now + minutes * MINUTE_MS
}

/// Minutes estimated for the agent's ready tasks: queued work, not load (utilization ignores it), but the
/// `balanced` ranking counts it so that a burst of assignments does not pile onto the agent that looks idle.
pub fn queued_minutes(tasks: &[&Task]) -> i64 {
    tasks
        .iter()
        .filter(|t| t.status == TaskStatus::Ready)
        .map(|t| estimate_minutes(t))
        .sum()
}

/// When each task of the agent's queue is projected to start: the [`forecast`]'s starts, without the entries.
pub fn projected_starts<'a>(tasks: &[&'a Task], now: i64) -> Vec<(&'a Task, i64)> {
    let (in_progress, ready) = work_queue(tasks);
    let mut at = now;
    let durations = in_progress
        .iter()
        .map(|t| (*t, remaining_minutes(t, now)))
        .chain(ready.iter().map(|t| (*t, estimate_minutes(t))));
    durations
        .map(|(task, minutes)| {
            let start = at;
            at += minutes * MINUTE_MS;
            (task, start)
        })
        .collect()
}

/// When the task is projected to finish at the current pace: now plus the remaining minutes for a task in
/// progress; its projected start (its place in its assignee's queue, or now when it has none) plus its
/// estimate for a task not started; now for a task in review (the work is handed in). One definition of
/// remaining work: [`remaining_minutes`] and [`estimate_minutes`].
pub fn projected_finish(task: &Task, projected_start_at: Option<i64>, now: i64) -> i64 {
    match task.status {
        TaskStatus::InProgress => now + remaining_minutes(task, now) * MINUTE_MS,
        TaskStatus::Review => now,
        _ => projected_start_at.unwrap_or(now).max(now) + estimate_minutes(task) * MINUTE_MS,
    }
}

/// When `candidate` would start if this agent took it: the start of its entry when it is already in the
/// agent's queue, else where it would fall among the ready tasks by claim order.
pub fn projected_start(tasks: &[&Task], candidate: &Task, now: i64) -> i64 {
    let (in_progress, ready) = work_queue(tasks);
    let mut at = now;
    for task in &in_progress {
        if task.id == candidate.id {
            return at;
        }
        at += remaining_minutes(task, now) * MINUTE_MS;
    }
    for task in ready {
        if task.id == candidate.id || claim_order(candidate, task).is_lt() {
            return at;
        }
        at += estimate_minutes(task) * MINUTE_MS;
    }
    at
}

/// The body of `PUT /api/agents/{id}/capacity`: the whole capacity configuration. Omitted lists and
/// constraints take their defaults (no specializations; internet, no GPU, 4096 MB, prefers async work).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CapacitySettings {
    /// 1–100.
    pub max_concurrent_tasks: i32,
    /// 1–1440.
    pub max_minutes_per_day: i32,
    #[serde(default)]
    pub specializations: Vec<String>,
    #[serde(default)]
    pub constraints: AgentConstraints,
}

impl CapacitySettings {
    /// The profile change these settings make; validated by the agent's own rules.
    pub fn into_patch(self) -> AgentPatch {
        AgentPatch {
            max_concurrent_tasks: Some(self.max_concurrent_tasks),
            max_minutes_per_day: Some(self.max_minutes_per_day),
            specializations: Some(self.specializations),
            constraints: Some(self.constraints),
            ..AgentPatch::default()
        }
    }
}

/// Totals over every agent, for dashboards.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FleetTotals {
    pub agents: usize,
    /// Agents that can accept work and are neither offline nor suspended.
    pub accepting_work: usize,
    pub overloaded: usize,
    pub in_progress_count: usize,
    pub ready_count: usize,
    pub blocked_count: usize,
    pub estimated_minutes_remaining: i64,
    /// Σ `maxMinutesPerDay`.
    pub capacity_minutes: i64,
    pub available_minutes: i64,
    /// Σ remaining / Σ capacity × 100, the same definition as an agent's, over the whole fleet.
    pub utilization_percent: f64,
}

pub fn fleet_totals(loads: &[AgentLoad]) -> FleetTotals {
    let mut totals = FleetTotals {
        agents: loads.len(),
        ..FleetTotals::default()
    };
    for l in loads {
        let working = !matches!(l.agent_status, AgentStatus::Offline | AgentStatus::Suspended);
        totals.accepting_work += usize::from(l.can_accept_work && working);
        totals.overloaded += usize::from(l.is_overloaded);
        totals.in_progress_count += l.in_progress_count;
        totals.ready_count += l.ready_count;
        totals.blocked_count += l.blocked_count;
        totals.estimated_minutes_remaining += l.estimated_minutes_remaining;
        totals.capacity_minutes += i64::from(l.max_minutes_per_day);
        totals.available_minutes += l.available_minutes;
    }
    if totals.capacity_minutes > 0 {
        totals.utilization_percent =
            one_decimal(totals.estimated_minutes_remaining as f64 * 100.0 / totals.capacity_minutes as f64);
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::agent::{register, AgentDraft};
    use crate::domain::task::{create, TaskDraft};

    const MIN: i64 = 60_000;

    fn agent(max_concurrent: i32, max_minutes: i32) -> Agent {
        let draft: AgentDraft = serde_json::from_value(serde_json::json!({
            "name": "alice", "maxConcurrentTasks": max_concurrent, "maxMinutesPerDay": max_minutes
        }))
        .unwrap();
        register(draft, "a1".into(), 0).unwrap()
    }

    fn task(id: &str, status: TaskStatus, estimate: Option<i32>, since: i64) -> Task {
        let draft: TaskDraft =
            serde_json::from_value(serde_json::json!({"title": id, "estimatedMinutes": estimate})).unwrap();
        let mut task = create(draft, id.into(), "admin".into(), 0).unwrap();
        task.status = status;
        task.status_changed_at = since;
        task.assignee_id = Some("a1".into());
        task
    }

    #[test]
    fn the_estimate_falls_back_to_240_minutes() {
        let unknown = task("t", TaskStatus::InProgress, None, 0);
        assert_eq!(estimate_minutes(&unknown), 240);
        assert_eq!(remaining_minutes(&unknown, 0), 240);
        let known = task("t", TaskStatus::InProgress, Some(90), 0);
        assert_eq!(estimate_minutes(&known), 90);
    }

    #[test]
    fn remaining_time_counts_whole_minutes_since_the_task_started_and_floors_at_15() {
        let t = task("t", TaskStatus::InProgress, Some(60), 1_000);
        assert_eq!(remaining_minutes(&t, 1_000 + 30 * MIN), 30);
        assert_eq!(
            remaining_minutes(&t, 1_000 + 30 * MIN + 59_999),
            30,
            "partial minutes do not count"
        );
        assert_eq!(remaining_minutes(&t, 1_000 + 45 * MIN), 15);
        assert_eq!(
            remaining_minutes(&t, 1_000 + 50 * MIN),
            15,
            "an overrun still counts 15"
        );
        assert_eq!(remaining_minutes(&task("t", TaskStatus::InProgress, Some(5), 0), 0), 15);
        assert_eq!(
            remaining_minutes(&t, 0),
            60,
            "a clock before the start counts nothing spent"
        );
    }

    #[test]
    fn utilization_counts_in_progress_minutes_against_the_daily_budget() {
        let a = agent(5, 480);
        let busy = task("a", TaskStatus::InProgress, Some(120), 0);
        let queued = task("b", TaskStatus::Ready, Some(400), 0);
        let waiting = task("c", TaskStatus::Blocked, None, 0);
        let l = load(&a, &[&busy, &queued, &waiting], 0, CapacityLimits::default());
        assert_eq!((l.in_progress_count, l.ready_count, l.blocked_count), (1, 1, 1));
        assert_eq!(l.estimated_minutes_remaining, 120);
        assert_eq!(l.utilization_percent, 25.0);
        assert_eq!(l.available_minutes, 360);
        assert!(l.can_accept_work && !l.is_overloaded);
    }

    #[test]
    fn can_accept_work_stops_exactly_at_the_utilization_limit() {
        let a = agent(5, 480);
        // 80 % of 480 is 384 minutes.
        let below = task("a", TaskStatus::InProgress, Some(383), 0);
        let l = load(&a, &[&below], 0, CapacityLimits::default());
        assert!(l.can_accept_work, "{l:?}");
        assert_eq!(l.utilization_percent, 79.8);
        let at = task("a", TaskStatus::InProgress, Some(384), 0);
        let l = load(&a, &[&at], 0, CapacityLimits::default());
        assert_eq!(l.utilization_percent, 80.0);
        assert!(!l.can_accept_work && !l.is_overloaded);
        assert!(l.refusal(CapacityLimits::default()).unwrap().contains("80% utilized"));
        let relaxed = CapacityLimits {
            max_utilization_percent: 81,
        };
        assert!(load(&a, &[&at], 0, relaxed).can_accept_work);
    }

    #[test]
    fn can_accept_work_stops_exactly_at_max_concurrent_tasks() {
        let a = agent(2, 1440);
        let one = task("a", TaskStatus::InProgress, Some(15), 0);
        let two = task("b", TaskStatus::InProgress, Some(15), 0);
        let l = load(&a, &[&one], 0, CapacityLimits::default());
        assert!(l.can_accept_work && !l.is_overloaded);
        let l = load(&a, &[&one, &two], 0, CapacityLimits::default());
        assert!(!l.can_accept_work && l.is_overloaded);
        assert_eq!(
            l.refusal(CapacityLimits::default()).unwrap(),
            "2 of 2 concurrent tasks in progress"
        );
    }

    #[test]
    fn overload_shows_above_100_percent_with_no_minutes_left() {
        let a = agent(5, 100);
        let big = task("a", TaskStatus::InProgress, Some(150), 0);
        let l = load(&a, &[&big], 0, CapacityLimits::default());
        assert_eq!(l.utilization_percent, 150.0);
        assert_eq!(l.available_minutes, 0);
    }

    #[test]
    fn the_forecast_lays_in_progress_then_ready_by_priority_end_to_end() {
        let a = agent(3, 480);
        let now = 100 * MIN;
        let started_late = task("late", TaskStatus::InProgress, Some(60), 90 * MIN); // 50 min left
        let started_early = task("early", TaskStatus::InProgress, None, 0); // 240 − 100 = 140 min left
        let mut urgent = task("urgent", TaskStatus::Ready, Some(30), 0);
        urgent.priority = Priority::P0;
        let mut old = task("old", TaskStatus::Ready, None, 0);
        old.priority = Priority::P2;
        old.created_at = -5;
        let mut young = task("young", TaskStatus::Ready, Some(10), 0);
        young.priority = Priority::P2;
        let blocked = task("blocked", TaskStatus::Blocked, Some(10), 0);
        let tasks = [&young, &old, &blocked, &urgent, &started_late, &started_early];
        let f = forecast(&a, &tasks, now);
        let order: Vec<&str> = f.queue.iter().map(|e| e.task_id.as_str()).collect();
        assert_eq!(order, ["early", "late", "urgent", "old", "young"]);
        let minutes: Vec<i64> = f.queue.iter().map(|e| e.minutes).collect();
        assert_eq!(minutes, [140, 50, 30, 240, 10]);
        assert_eq!(f.queue[0].projected_start_at, now);
        assert_eq!(f.queue[1].projected_start_at, now + 140 * MIN);
        assert_eq!(f.queue[4].projected_finish_at, now + 470 * MIN);
        assert_eq!(f.available_at, now + 470 * MIN);
        assert_eq!(f.total_minutes, 470);
        assert_eq!(available_at(&tasks, now), f.available_at);
        assert_eq!(forecast(&a, &[], now).available_at, now, "an idle agent is free now");
    }

    #[test]
    fn fleet_totals_add_up_and_skip_unavailable_agents() {
        let a = agent(1, 480);
        let mut b = agent(3, 240);
        b.id = "b".into();
        let busy = task("a", TaskStatus::InProgress, Some(120), 0);
        let la = load(&a, &[&busy], 0, CapacityLimits::default());
        let lb = load(&b, &[], 0, CapacityLimits::default());
        let totals = fleet_totals(&[la.clone(), lb.clone()]);
        assert_eq!(totals.agents, 2);
        assert_eq!(totals.accepting_work, 1, "a is at its one concurrent task");
        assert_eq!(totals.overloaded, 1);
        assert_eq!(totals.capacity_minutes, 720);
        assert_eq!(totals.available_minutes, 600);
        assert_eq!(totals.utilization_percent, 16.7);
        let mut offline = lb;
        offline.agent_status = AgentStatus::Offline;
        assert_eq!(fleet_totals(&[la, offline]).accepting_work, 0);
    }

    #[test]
    fn a_candidate_starts_where_claim_order_puts_it() {
        let now = 0;
        let busy = task("busy", TaskStatus::InProgress, Some(60), 0);
        let mut first = task("first", TaskStatus::Ready, Some(30), 0);
        first.priority = Priority::P1;
        let mut last = task("last", TaskStatus::Ready, Some(20), 0);
        last.priority = Priority::P3;
        let tasks = [&busy, &first, &last];
        let mut candidate = task("new", TaskStatus::Ready, Some(5), 0);
        candidate.assignee_id = None;
        candidate.priority = Priority::P2;
        assert_eq!(projected_start(&tasks, &candidate, now), 90 * MIN);
        candidate.priority = Priority::P0;
        assert_eq!(projected_start(&tasks, &candidate, now), 60 * MIN);
        assert_eq!(
            projected_start(&tasks, &last, now),
            90 * MIN,
            "a queued task keeps its own slot"
        );
        assert_eq!(projected_start(&tasks, &busy, now), 0);
        assert_eq!(projected_start(&[], &candidate, now), 0);
    }

    #[test]
    fn queued_minutes_add_the_ready_estimates_only() {
        let busy = task("busy", TaskStatus::InProgress, Some(60), 0);
        let known = task("known", TaskStatus::Ready, Some(30), 0);
        let unknown = task("unknown", TaskStatus::Ready, None, 0);
        let blocked = task("blocked", TaskStatus::Blocked, Some(10), 0);
        assert_eq!(queued_minutes(&[&busy, &known, &unknown, &blocked]), 30 + 240);
        assert_eq!(queued_minutes(&[&busy]), 0);
    }

    #[test]
    fn projected_starts_are_the_forecast_starts() {
        let now = 10 * MIN;
        let busy = task("busy", TaskStatus::InProgress, Some(60), 0);
        let mut first = task("first", TaskStatus::Ready, Some(30), 0);
        first.priority = Priority::P1;
        let last = task("last", TaskStatus::Ready, Some(20), 0);
        let tasks = [&last, &busy, &first];
        let starts: Vec<(&str, i64)> = projected_starts(&tasks, now)
            .into_iter()
            .map(|(t, at)| (t.id.as_str(), at))
            .collect();
        let f = forecast(&agent(3, 480), &tasks, now);
        let expected: Vec<(&str, i64)> = f
            .queue
            .iter()
            .map(|e| (e.task_id.as_str(), e.projected_start_at))
            .collect();
        assert_eq!(starts, expected);
        assert_eq!(
            starts,
            [("busy", now), ("first", now + 50 * MIN), ("last", now + 80 * MIN)]
        );
    }

    #[test]
    fn the_projected_finish_follows_the_remaining_work() {
        let now = 30 * MIN;
        // In progress since 0 with 60 estimated: 30 left.
        let started = task("s", TaskStatus::InProgress, Some(60), 0);
        assert_eq!(projected_finish(&started, None, now), now + 30 * MIN);
        // Overrunning: never less than the 15-minute floor.
        assert_eq!(projected_finish(&started, None, 120 * MIN), 135 * MIN);
        // Not started: its place in the queue plus its estimate, or now plus its estimate.
        let queued = task("q", TaskStatus::Ready, Some(45), 0);
        assert_eq!(projected_finish(&queued, Some(now + 50 * MIN), now), now + 95 * MIN);
        assert_eq!(projected_finish(&queued, None, now), now + 45 * MIN);
        assert_eq!(
            projected_finish(&queued, Some(0), now),
            now + 45 * MIN,
            "a start in the past is now"
        );
        let no_estimate = task("n", TaskStatus::Backlog, None, 0);
        assert_eq!(projected_finish(&no_estimate, None, now), now + 240 * MIN);
        // Handed in: nothing left to work.
        let review = task("r", TaskStatus::Review, Some(60), 0);
        assert_eq!(projected_finish(&review, None, now), now);
    }
}
