//! Requests the `TaskBoard` answers. `by` is who asks; the board checks what they may do.

use super::super::directory::AgentDirectory;
use crate::domain::query::{Page, TaskQuery};
use crate::domain::slo::SloReading;
use crate::domain::task::{CompletionOutcome, TaskDraft, TaskPatch};
use crate::domain::{Principal, Task, TaskStatus};
use crate::error::AppResult;
use actix::{Addr, Message};
use serde::Serialize;
use utoipa::ToSchema;

/// Another task, as seen from a task's dependency lists.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskRef {
    pub id: String,
    pub title: String,
    pub status: TaskStatus,
}

/// A task with its blockers (tasks it waits for) and dependents (tasks waiting for it).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskDetail {
    #[serde(flatten)]
    pub task: Task,
    pub blocked_by: Vec<TaskRef>,
    pub blocks: Vec<TaskRef>,
}

#[derive(Message)]
#[rtype(result = "AppResult<Task>")]
pub struct CreateTask {
    pub draft: TaskDraft,
    pub by: Principal,
}

#[derive(Message)]
#[rtype(result = "AppResult<TaskDetail>")]
pub struct GetTask {
    pub id: String,
}

#[derive(Message)]
#[rtype(result = "AppResult<Page<Task>>")]
pub struct ListTasks {
    pub query: TaskQuery,
}

#[derive(Message)]
#[rtype(result = "AppResult<Task>")]
pub struct UpdateTask {
    pub id: String,
    pub patch: TaskPatch,
    pub by: Principal,
}

/// A move of the state machine. Moving to `in_progress` counts against the assignee's capacity, as a claim
/// does (`force`: the admin past it).
#[derive(Message)]
#[rtype(result = "AppResult<Task>")]
pub struct Transition {
    pub id: String,
    pub to: TaskStatus,
    pub note: Option<String>,
    pub force: bool,
    pub by: Principal,
}

/// Assign to an agent (id or name), or unassign with `None`. An agent that cannot accept work is refused
/// (`agent_at_capacity`) unless the admin forces it.
#[derive(Message)]
#[rtype(result = "AppResult<Task>")]
pub struct Assign {
    pub id: String,
    pub agent: Option<String>,
    pub force: bool,
    pub by: Principal,
}

/// The agent's highest-priority, oldest `ready` task moves to `in_progress`, if the agent can accept work
/// (or the admin forces it).
#[derive(Message)]
#[rtype(result = "AppResult<Task>")]
pub struct Claim {
    pub agent: String,
    pub force: bool,
    pub by: Principal,
}

#[derive(Message)]
#[rtype(result = "AppResult<Task>")]
pub struct Complete {
    pub id: String,
    pub outcome: CompletionOutcome,
    pub notes: Option<String>,
    pub actual_minutes: Option<i32>,
    pub by: Principal,
}

/// A failed attempt: recorded on the task, which goes back to `ready` for another try.
#[derive(Message)]
#[rtype(result = "AppResult<Task>")]
pub struct Fail {
    pub id: String,
    pub error_kind: String,
    pub message: String,
    pub by: Principal,
}

/// Replies with the task's detail and whether the edge is new.
#[derive(Message)]
#[rtype(result = "AppResult<(TaskDetail, bool)>")]
pub struct AddDependency {
    pub id: String,
    pub blocker_id: String,
    pub by: Principal,
}

#[derive(Message)]
#[rtype(result = "AppResult<TaskDetail>")]
pub struct RemoveDependency {
    pub id: String,
    pub blocker_id: String,
    pub by: Principal,
}

#[derive(Message)]
#[rtype(result = "AppResult<Task>")]
pub struct DeleteTask {
    pub id: String,
    pub by: Principal,
}

/// Before an agent is deleted: refuse while it has open tasks, or with `force` return them to `ready`,
/// unassigned. Replies with the released task ids.
#[derive(Message)]
#[rtype(result = "AppResult<Vec<String>>")]
pub struct ReleaseAgentTasks {
    pub agent_id: String,
    pub force: bool,
    pub by: Principal,
}

#[derive(Message)]
#[rtype(result = "bool")]
pub struct TaskExists {
    pub id: String,
}

/// Which of these task ids are unknown (neither open nor finished).
#[derive(Message)]
#[rtype(result = "Vec<String>")]
pub struct MissingTasks {
    pub ids: Vec<String>,
}

/// The open tasks assigned to one agent, oldest first.
#[derive(Message)]
#[rtype(result = "Vec<Task>")]
pub struct AgentTasks {
    pub agent_id: String,
}

/// Escalates an open task: priority up one level, `escalationLevel` up by one, with the reason in the
/// activity feed. A finished task → `task_finished`.
#[derive(Message)]
#[rtype(result = "AppResult<Task>")]
pub struct EscalateTask {
    pub id: String,
    pub reason: String,
    pub by: Principal,
}

/// A task's SLO clock: open tasks read from memory, finished ones from the store.
#[derive(Message)]
#[rtype(result = "AppResult<SloReading>")]
pub struct TaskSlo {
    pub id: String,
}

/// `GET /api/slo`: every open task's SLO status counted, the at-risk, critical and breached ones listed
/// most urgent first, and the finished tasks' `MET` and `MISSED` counts.
#[derive(Message)]
#[rtype(result = "AppResult<SloReport>")]
pub struct SloOverview {
    /// How many of the urgent tasks to list.
    pub limit: usize,
}

/// Counts of tasks by SLO status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SloCounts {
    pub ok: usize,
    pub at_risk: usize,
    pub critical: usize,
    pub breached: usize,
    /// Open tasks without a deadline.
    pub none: usize,
    /// Finished tasks (done or cancelled) that finished before their deadline, all time.
    pub met: i64,
    /// Finished tasks that finished at or after their deadline, all time.
    pub missed: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SloReport {
    pub generated_at: i64,
    pub counts: SloCounts,
    /// Open tasks that are `BREACHED`, `CRITICAL` or `AT_RISK`, most urgent first (breached, then
    /// critical, then at risk; within each, the least time left first).
    pub urgent: Vec<SloReading>,
    /// How many urgent tasks there are in all (the list stops at `limit`).
    pub urgent_total: usize,
}

/// The open tasks whose SLO deadline is at or before `now`: what the SLO monitor checks on each tick (only
/// these are copied out of the board).
#[derive(Message)]
#[rtype(result = "Vec<Task>")]
pub struct PastDeadline {
    pub now: i64,
}

/// Every open (non-terminal) task, for dashboards and simulations.
#[derive(Message)]
#[rtype(result = "Vec<Task>")]
pub struct OpenTasks;

/// How many open tasks are in each non-terminal status, zeros included: the metrics scrape needs the counts
/// of this runtime's board, not a copy of its tasks.
#[derive(Message)]
#[rtype(result = "Vec<(TaskStatus, usize)>")]
pub struct CountOpenTasks;

#[derive(Message)]
#[rtype(result = "()")]
pub struct SetDirectory(pub Addr<AgentDirectory>);
