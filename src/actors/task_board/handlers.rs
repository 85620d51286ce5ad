use super::messages::*;
use super::plan::{activity, Plan};
use super::TaskBoard;
use crate::actors::directory::messages::Resolve;
use crate::actors::events::TaskEventKind;
use crate::actors::{atomic, reply_now};
use crate::domain::activity::diff;
use crate::domain::capacity;
use crate::domain::task::{self as rules, CompletionOutcome};
use crate::domain::{
    check_text, dependency, ActivityKind, Agent, AgentStatus, Principal, Task, TaskFailure, TaskStatus,
};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::ids::new_id;
use crate::store::{queries, WriteOp};
use actix::fut::{self, ActorFutureExt};
use actix::prelude::*;

type Reply<T> = AtomicResponse<TaskBoard, AppResult<T>>;

fn finished(task_id: &str, status: TaskStatus) -> AppError {
    AppError::new(
        ErrorCode::TaskFinished,
        format!("task {task_id} is {status} and can no longer change"),
    )
}

fn task_json(task: &Task) -> serde_json::Value {
    serde_json::to_value(task).unwrap_or_default()
}

impl TaskBoard {
    /// An open task, or the right error: 404 when unknown, 409 when finished.
    fn open_task(&self, id: &str) -> AppResult<&Task> {
        if let Some(task) = self.open.get(id) {
            return Ok(task);
        }
        match self.finished.get(id) {
            Some(f) => Err(finished(id, f.status)),
            None => Err(AppError::task_not_found(id)),
        }
    }

    /// The admin (or the runtime's escalation rules), or the agent the task is assigned to.
    fn check_worker(task: &Task, by: &Principal) -> AppResult<()> {
        let is_assignee = task.assignee_id.as_deref().is_some_and(|a| by.is_agent(a));
        if by.manages_tasks() || is_assignee {
            Ok(())
        } else {
            Err(AppError::forbidden(
                "only the task's assignee or the admin may change it",
            ))
        }
    }

    /// Resolves an agent through the directory, answering in the board's context.
    fn resolve_agent(&self, key: String) -> impl ActorFuture<Self, Output = AppResult<Agent>> {
        let directory = self.directory.clone();
        fut::wrap_future(async move {
            let directory =
                directory.ok_or_else(|| AppError::internal("the directory is not wired to the task board"))?;
            directory.send(Resolve { key }).await.map_err(AppError::mailbox)?
        })
    }

    /// Plans a status move with its activity and, when the task finishes, the unblocking of its dependents.
    fn plan_move(
        &self,
        plan: &mut Plan,
        task: &Task,
        to: TaskStatus,
        (kind, message): (ActivityKind, String),
        by: &Principal,
        now: i64,
    ) -> Task {
        let next = rules::moved(task, to, now);
        plan.record(activity(kind, by, &next, message, now).change(
            serde_json::json!({"status": task.status}),
            serde_json::json!({"status": to}),
        ));
        plan.save(next.clone(), Some(task), TaskEventKind::StatusChanged, now);
        if to == TaskStatus::Done {
            let dependents: Vec<String> = self.blocks.get(&task.id).into_iter().flatten().cloned().collect();
            self.plan_unblocking(plan, dependents, None, now);
        }
        next
    }

    /// Refuses work for an agent that cannot accept it, by the capacity rule over the board's own tasks (the
    /// registry's copy trails the board by one event, so two quick assignments could both pass it). Only the
    /// admin may `force` past the check.
    fn check_capacity(&self, agent: &Agent, force: bool, by: &Principal) -> AppResult<()> {
        if force {
            return if by.is_admin() {
                Ok(())
            } else {
                Err(AppError::forbidden(
                    "only the admin may force work past an agent's capacity",
                ))
            };
        }
        let tasks: Vec<&Task> = self
            .open
            .values()
            .filter(|t| t.assignee_id.as_deref() == Some(agent.id.as_str()))
            .collect();
        let limits = self.deps.capacity;
        let load = capacity::load(agent, &tasks, self.deps.now(), limits);
        match load.refusal(limits) {
            None => Ok(()),
            Some(why) => Err(AppError::new(
                ErrorCode::AgentAtCapacity,
                format!("{} cannot accept work: {why}", agent.name),
            )
            .with_details(serde_json::to_value(&load).unwrap_or_default())),
        }
    }

    /// Reads a task from the store (a finished one: the board keeps only its id, status and title).
    pub(super) fn stored_task(&self, id: String) -> impl std::future::Future<Output = AppResult<Task>> + 'static {
        let store = self.deps.store.clone();
        async move {
            let key = id.clone();
            store
                .read(move |conn| queries::task_by_id(conn, &key))
                .await
                .map_err(AppError::store)?
                .ok_or_else(|| AppError::task_not_found(&id))
        }
    }

    /// The task as it is now, open or just finished.
    fn current(&self, id: &str) -> AppResult<Task> {
        self.open.get(id).cloned().ok_or_else(|| AppError::task_not_found(id))
    }
}

/// Replies with the task as planned (used when the task may have just finished and left `open`).
fn reply_task(task: Task) -> impl FnOnce(&TaskBoard) -> AppResult<Task> {
    move |_| Ok(task)
}

impl Handler<SetDirectory> for TaskBoard {
    type Result = ();
    fn handle(&mut self, msg: SetDirectory, _: &mut Context<Self>) {
        self.directory = Some(msg.0);
    }
}

impl Handler<TaskExists> for TaskBoard {
    type Result = bool;
    fn handle(&mut self, msg: TaskExists, _: &mut Context<Self>) -> bool {
        self.exists(&msg.id)
    }
}

impl Handler<MissingTasks> for TaskBoard {
    type Result = MessageResult<MissingTasks>;
    fn handle(&mut self, msg: MissingTasks, _: &mut Context<Self>) -> Self::Result {
        MessageResult(msg.ids.into_iter().filter(|id| !self.exists(id)).collect())
    }
}

impl Handler<AgentTasks> for TaskBoard {
    type Result = MessageResult<AgentTasks>;
    fn handle(&mut self, msg: AgentTasks, _: &mut Context<Self>) -> Self::Result {
        let mut tasks: Vec<Task> = self
            .open
            .values()
            .filter(|t| t.assignee_id.as_deref() == Some(msg.agent_id.as_str()))
            .cloned()
            .collect();
        tasks.sort_by(|a, b| a.id.cmp(&b.id));
        MessageResult(tasks)
    }
}

impl Handler<EscalateTask> for TaskBoard {
    type Result = Reply<Task>;

    fn handle(&mut self, msg: EscalateTask, _: &mut Context<Self>) -> Self::Result {
        let task = match self.open_task(&msg.id) {
            Ok(task) => task,
            Err(e) => return atomic(reply_now(Err(e))),
        };
        let now = self.deps.now();
        let next = rules::escalated(task, now);
        let mut plan = Plan::default();
        plan.record(
            activity(
                ActivityKind::TaskEscalated,
                &msg.by,
                &next,
                format!(
                    "'{}' escalated to level {} ({} → {}): {}",
                    next.title, next.escalation_level, task.priority, next.priority, msg.reason
                ),
                now,
            )
            .change(
                serde_json::json!({"priority": task.priority, "escalationLevel": task.escalation_level}),
                serde_json::json!({"priority": next.priority, "escalationLevel": next.escalation_level}),
            ),
        );
        plan.save(next.clone(), Some(task), TaskEventKind::Escalated, now);
        atomic(self.commit(plan, reply_task(next)))
    }
}

impl Handler<OpenTasks> for TaskBoard {
    type Result = MessageResult<OpenTasks>;
    fn handle(&mut self, _: OpenTasks, _: &mut Context<Self>) -> Self::Result {
        let mut tasks: Vec<Task> = self.open.values().cloned().collect();
        tasks.sort_by(|a, b| a.id.cmp(&b.id));
        MessageResult(tasks)
    }
}

impl Handler<CreateTask> for TaskBoard {
    type Result = Reply<Task>;

    fn handle(&mut self, msg: CreateTask, _: &mut Context<Self>) -> Self::Result {
        let now = self.deps.now();
        let mut draft = msg.draft;
        let assignee_key = draft.assignee_id.take();
        let explicit_status = draft.status;
        let task = match rules::create(draft, new_id(), msg.by.label(), now) {
            Ok(task) => task,
            Err(violation) => return atomic(reply_now(Err(violation.into()))),
        };
        if let Some(parent) = &task.parent_id {
            if !self.exists(parent) {
                return atomic(reply_now(Err(AppError::task_not_found(parent))));
            }
        }
        let by = msg.by;
        let resolved: Box<dyn ActorFuture<Self, Output = AppResult<Option<Agent>>>> = match assignee_key {
            Some(key) => Box::new(self.resolve_agent(key).map(|r, _, _| r.map(Some))),
            None => Box::new(fut::ready(Ok(None))),
        };
        let fut = Box::into_pin(resolved).then(move |assignee, board: &mut TaskBoard, _| {
            let mut task = task;
            match assignee {
                Err(e) => return reply_now(Err(e)),
                Ok(Some(agent)) if agent.status == AgentStatus::Suspended => {
                    return reply_now(Err(AppError::new(
                        ErrorCode::AgentUnavailable,
                        format!("{} is suspended and cannot take work", agent.name),
                    )))
                }
                Ok(Some(agent)) => {
                    task.assignee_id = Some(agent.id);
                    if explicit_status.is_none() {
                        task.status = TaskStatus::Ready;
                    }
                }
                Ok(None) => {}
            }
            let mut plan = Plan::default();
            plan.record(activity(
                ActivityKind::TaskCreated,
                &by,
                &task,
                format!("'{}' created ({}, {})", task.title, task.priority, task.status),
                now,
            ));
            plan.notify_assigned(&task, &by, now);
            plan.save(task.clone(), None, TaskEventKind::Created, now);
            board.commit(plan, reply_task(task))
        });
        atomic(Box::pin(fut))
    }
}

impl Handler<GetTask> for TaskBoard {
    type Result = ResponseFuture<AppResult<TaskDetail>>;

    fn handle(&mut self, msg: GetTask, _: &mut Context<Self>) -> Self::Result {
        if let Some(task) = self.open.get(&msg.id) {
            let detail = self.detail_of(task.clone());
            return Box::pin(async move { Ok(detail) });
        }
        if !self.finished.contains_key(&msg.id) {
            return Box::pin(async move { Err(AppError::task_not_found(&msg.id)) });
        }
        let blocked_by = self.refs(self.blocked_by.get(&msg.id));
        let blocks = self.refs(self.blocks.get(&msg.id));
        let stored = self.stored_task(msg.id);
        Box::pin(async move {
            let task = stored.await?;
            Ok(TaskDetail {
                task,
                blocked_by,
                blocks,
            })
        })
    }
}

impl Handler<ListTasks> for TaskBoard {
    type Result = ResponseFuture<AppResult<crate::domain::query::Page<Task>>>;

    fn handle(&mut self, msg: ListTasks, _: &mut Context<Self>) -> Self::Result {
        // Every acknowledged change is committed before it is acknowledged, so the store is never behind.
        let store = self.deps.store.clone();
        Box::pin(async move {
            store
                .read(move |conn| queries::list_tasks(conn, &msg.query))
                .await
                .map_err(AppError::store)
        })
    }
}

impl Handler<UpdateTask> for TaskBoard {
    type Result = Reply<Task>;

    fn handle(&mut self, msg: UpdateTask, _: &mut Context<Self>) -> Self::Result {
        let now = self.deps.now();
        let planned = (|| {
            let task = self.open_task(&msg.id)?;
            Self::check_worker(task, &msg.by)?;
            let next = rules::apply_patch(task, msg.patch, now)?;
            if let Some(parent) = &next.parent_id {
                if next.parent_id != task.parent_id && !self.exists(parent) {
                    return Err(AppError::task_not_found(parent));
                }
            }
            let mut plan = Plan::default();
            let (before, after) = diff(&task_json(task), &task_json(&next));
            if before.as_object().is_some_and(|o| o.is_empty()) {
                return Ok((plan, next, false));
            }
            plan.record(
                activity(
                    ActivityKind::TaskUpdated,
                    &msg.by,
                    &next,
                    format!("'{}' updated", next.title),
                    now,
                )
                .change(before, after),
            );
            plan.save(next.clone(), Some(task), TaskEventKind::Updated, now);
            Ok((plan, next, true))
        })();
        match planned {
            Err(e) => atomic(reply_now(Err(e))),
            Ok((_, unchanged, false)) => atomic(reply_now(Ok(unchanged))),
            Ok((plan, next, true)) => atomic(self.commit(plan, reply_task(next))),
        }
    }
}

impl Handler<Transition> for TaskBoard {
    type Result = Reply<Task>;

    fn handle(&mut self, msg: Transition, _: &mut Context<Self>) -> Self::Result {
        // Starting work counts against the assignee's capacity, as a claim does: resolve its profile first.
        let assignee = self
            .open
            .get(&msg.id)
            .filter(|t| msg.to == TaskStatus::InProgress && t.status != TaskStatus::InProgress)
            .and_then(|t| t.assignee_id.clone());
        let resolved: Box<dyn ActorFuture<Self, Output = AppResult<Option<Agent>>>> = match assignee {
            Some(key) => Box::new(self.resolve_agent(key).map(|r, _, _| r.map(Some))),
            None => Box::new(fut::ready(Ok(None))),
        };
        let fut = Box::into_pin(resolved).then(move |assignee, board: &mut TaskBoard, _| {
            let now = board.deps.now();
            let planned = (|| {
                let note = match &msg.note {
                    Some(note) => Some(check_text("note", note, 0, rules::MAX_DESCRIPTION_CHARS)?),
                    None => None,
                };
                let task = board.open_task(&msg.id)?;
                Self::check_worker(task, &msg.by)?;
                rules::check_transition(task.status, msg.to)?;
                rules::check_work_move(task, msg.to, &board.open_blockers(&task.id))?;
                if let Some(agent) = assignee? {
                    board.check_capacity(&agent, msg.force, &msg.by)?;
                }
                let mut message = format!("'{}' moved from {} to {}", task.title, task.status, msg.to);
                if let Some(note) = note.filter(|n| !n.is_empty()) {
                    message.push_str(": ");
                    message.push_str(&note);
                }
                let mut plan = Plan::default();
                let next = board.plan_move(
                    &mut plan,
                    task,
                    msg.to,
                    (ActivityKind::TaskStatusChanged, message),
                    &msg.by,
                    now,
                );
                Ok::<_, AppError>((plan, next))
            })();
            match planned {
                Err(e) => reply_now(Err(e)),
                Ok((plan, next)) => board.commit(plan, reply_task(next)),
            }
        });
        atomic(Box::pin(fut))
    }
}

impl Handler<Assign> for TaskBoard {
    type Result = Reply<Task>;

    fn handle(&mut self, msg: Assign, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.open_task(&msg.id) {
            return atomic(reply_now(Err(e)));
        }
        let resolved: Box<dyn ActorFuture<Self, Output = AppResult<Option<Agent>>>> = match msg.agent {
            Some(key) => Box::new(self.resolve_agent(key).map(|r, _, _| r.map(Some))),
            None => Box::new(fut::ready(Ok(None))),
        };
        let (id, by, force) = (msg.id, msg.by, msg.force);
        let fut = Box::into_pin(resolved).then(move |target, board: &mut TaskBoard, _| {
            let now = board.deps.now();
            let planned = (|| {
                let target = target?;
                let task = board.open_task(&id)?;
                let target_id = target.as_ref().map(|a| a.id.clone());
                let is_assignee = task.assignee_id.as_deref().is_some_and(|a| by.is_agent(a));
                let takes_unassigned = task.assignee_id.is_none() && target_id.as_deref().is_some_and(|t| by.is_agent(t));
                if !(by.manages_tasks() || is_assignee || takes_unassigned) {
                    return Err(AppError::forbidden(
                        "only the admin, the current assignee, or an agent taking an unassigned task for itself may assign it",
                    ));
                }
                if let Some(agent) = target.as_ref().filter(|a| a.status == AgentStatus::Suspended) {
                    return Err(AppError::new(
                        ErrorCode::AgentUnavailable,
                        format!("{} is suspended and cannot take work", agent.name),
                    ));
                }
                if task.assignee_id == target_id {
                    return Ok(None);
                }
                if let Some(agent) = &target {
                    board.check_capacity(agent, force, &by)?;
                }
                let mut next = task.clone();
                next.assignee_id = target_id.clone();
                next.updated_at = now;
                // A task changing hands is picked up afresh by its new owner: work in flight goes back to ready,
                // and an assigned backlog task is ready to be claimed.
                let to_ready = match task.status {
                    TaskStatus::InProgress | TaskStatus::Review => true,
                    TaskStatus::Backlog => target_id.is_some(),
                    _ => false,
                };
                if to_ready {
                    next = rules::moved(&next, TaskStatus::Ready, now);
                }
                let name = target.as_ref().map_or("nobody".to_string(), |a| a.name.clone());
                let mut plan = Plan::default();
                let mut record = activity(ActivityKind::TaskAssigned, &by, &next, format!("'{}' assigned to {name}", next.title), now)
                    .change(
                        serde_json::json!({"assigneeId": task.assignee_id, "status": task.status}),
                        serde_json::json!({"assigneeId": target_id, "status": next.status}),
                    );
                record.agent_id = target_id.or_else(|| task.assignee_id.clone());
                plan.record(record);
                plan.notify_assigned(&next, &by, now);
                plan.save(next.clone(), Some(task), TaskEventKind::Assigned, now);
                Ok(Some((plan, next)))
            })();
            match planned {
                Err(e) => reply_now(Err(e)),
                Ok(None) => reply_now(board.current(&id)),
                Ok(Some((plan, next))) => board.commit(plan, reply_task(next)),
            }
        });
        atomic(Box::pin(fut))
    }
}

impl Handler<Claim> for TaskBoard {
    type Result = Reply<Task>;

    fn handle(&mut self, msg: Claim, _: &mut Context<Self>) -> Self::Result {
        let (by, force) = (msg.by, msg.force);
        let fut = self
            .resolve_agent(msg.agent)
            .then(move |agent, board: &mut TaskBoard, _| {
                let now = board.deps.now();
                let planned = (|| {
                    let agent = agent?;
                    if !(by.is_admin() || by.is_agent(&agent.id)) {
                        return Err(AppError::forbidden("an agent may only claim work for itself"));
                    }
                    if agent.status == AgentStatus::Suspended {
                        return Err(AppError::new(
                            ErrorCode::AgentUnavailable,
                            format!("{} is suspended", agent.name),
                        ));
                    }
                    let task = board
                        .open
                        .values()
                        .filter(|t| {
                            t.status == TaskStatus::Ready && t.assignee_id.as_deref() == Some(agent.id.as_str())
                        })
                        .min_by(|a, b| rules::claim_order(a, b))
                        .ok_or_else(|| {
                            AppError::new(
                                ErrorCode::NoTaskAvailable,
                                format!("{} has no ready task assigned", agent.name),
                            )
                        })?;
                    board.check_capacity(&agent, force, &by)?;
                    let mut plan = Plan::default();
                    let message = format!("{} claimed '{}'", agent.name, task.title);
                    let next = board.plan_move(
                        &mut plan,
                        task,
                        TaskStatus::InProgress,
                        (ActivityKind::TaskClaimed, message),
                        &by,
                        now,
                    );
                    Ok((plan, next))
                })();
                match planned {
                    Err(e) => reply_now(Err(e)),
                    Ok((plan, next)) => board.commit(plan, reply_task(next)),
                }
            });
        atomic(Box::pin(fut))
    }
}

impl Handler<Complete> for TaskBoard {
    type Result = Reply<Task>;

    fn handle(&mut self, msg: Complete, _: &mut Context<Self>) -> Self::Result {
        let now = self.deps.now();
        let planned = (|| {
            let notes = match &msg.notes {
                Some(n) => Some(check_text("notes", n, 0, rules::MAX_DESCRIPTION_CHARS)?),
                None => None,
            };
            if msg.actual_minutes.is_some_and(|m| !(0..=1_000_000).contains(&m)) {
                return Err(AppError::validation("actualMinutes", "must be between 0 and 1000000"));
            }
            let task = self.open_task(&msg.id)?;
            Self::check_worker(task, &msg.by)?;
            let to = match msg.outcome {
                CompletionOutcome::Done => TaskStatus::Done,
                CompletionOutcome::Review => TaskStatus::Review,
            };
            rules::check_transition(task.status, to)?;
            rules::check_work_move(task, to, &self.open_blockers(&task.id))?;
            let mut with_notes = task.clone();
            if notes.is_some() {
                with_notes.completion_notes = notes;
            }
            if msg.actual_minutes.is_some() {
                with_notes.actual_minutes = msg.actual_minutes;
            }
            let mut plan = Plan::default();
            let message = format!("'{}' completed as {}", task.title, to);
            let next = self.plan_move(
                &mut plan,
                &with_notes,
                to,
                (ActivityKind::TaskCompleted, message),
                &msg.by,
                now,
            );
            Ok((plan, next))
        })();
        match planned {
            Err(e) => atomic(reply_now(Err(e))),
            Ok((plan, next)) => atomic(self.commit(plan, reply_task(next))),
        }
    }
}

impl Handler<Fail> for TaskBoard {
    type Result = Reply<Task>;

    fn handle(&mut self, msg: Fail, _: &mut Context<Self>) -> Self::Result {
        let now = self.deps.now();
        let planned = (|| {
            let error_kind = check_text("errorKind", &msg.error_kind, 1, 100)?;
            let message = check_text("message", &msg.message, 0, rules::MAX_DESCRIPTION_CHARS)?;
            let task = self.open_task(&msg.id)?;
            Self::check_worker(task, &msg.by)?;
            if task.status != TaskStatus::InProgress {
                return Err(AppError::new(
                    ErrorCode::InvalidTransition,
                    format!("only a task in progress can fail; this one is {}", task.status),
                )
                .with_details(
                    serde_json::json!({"from": task.status, "to": "ready", "allowed": task.status.allowed_targets()}),
                ));
            }
            let mut failed = task.clone();
            failed.failures.push(TaskFailure {
                at: now,
                error_kind: error_kind.clone(),
                message: message.clone(),
                agent_id: task.assignee_id.clone(),
            });
            let mut plan = Plan::default();
            let text = format!(
                "'{}' attempt {} failed ({error_kind}): {message}",
                task.title, task.attempts
            );
            let next = rules::moved(&failed, TaskStatus::Ready, now);
            plan.record(activity(ActivityKind::TaskFailed, &msg.by, &next, text, now).change(
                serde_json::json!({"status": task.status}),
                serde_json::json!({"status": next.status, "errorKind": error_kind}),
            ));
            plan.save(next.clone(), Some(task), TaskEventKind::AttemptFailed, now);
            Ok::<_, AppError>((plan, next))
        })();
        match planned {
            Err(e) => atomic(reply_now(Err(e))),
            Ok((plan, next)) => atomic(self.commit(plan, reply_task(next))),
        }
    }
}

impl Handler<AddDependency> for TaskBoard {
    type Result = Reply<(TaskDetail, bool)>;

    fn handle(&mut self, msg: AddDependency, _: &mut Context<Self>) -> Self::Result {
        let now = self.deps.now();
        let planned = (|| {
            let task = self.open_task(&msg.id)?;
            Self::check_worker(task, &msg.by)?;
            if !self.exists(&msg.blocker_id) {
                return Err(AppError::task_not_found(&msg.blocker_id));
            }
            if self
                .blocked_by
                .get(&msg.id)
                .is_some_and(|b| b.contains(&msg.blocker_id))
            {
                return Ok(None);
            }
            dependency::check_new_edge(&self.blocked_by, &msg.id, &msg.blocker_id)?;
            let mut plan = Plan::default();
            plan.op(WriteOp::dependency(&msg.id, &msg.blocker_id, msg.by.label(), now));
            plan.link(&msg.id, &msg.blocker_id);
            let blocker_done = self.status_of(&msg.blocker_id) == Some(TaskStatus::Done);
            let mut record = activity(
                ActivityKind::DependencyAdded,
                &msg.by,
                task,
                format!("'{}' is blocked by {}", task.title, msg.blocker_id),
                now,
            );
            record.after = Some(serde_json::json!({"blockedBy": msg.blocker_id}));
            plan.record(record);
            if !blocker_done && task.status != TaskStatus::Blocked {
                let message = format!("'{}' is blocked until {} is done", task.title, msg.blocker_id);
                self.plan_move(
                    &mut plan,
                    task,
                    TaskStatus::Blocked,
                    (ActivityKind::TaskStatusChanged, message),
                    &msg.by,
                    now,
                );
            }
            Ok(Some(plan))
        })();
        let id = msg.id;
        match planned {
            Err(e) => atomic(reply_now(Err(e))),
            Ok(None) => atomic(reply_now(self.current(&id).map(|t| (self.detail_of(t), false)))),
            Ok(Some(plan)) => atomic(self.commit(plan, move |board| Ok((board.detail_of(board.current(&id)?), true)))),
        }
    }
}

impl Handler<RemoveDependency> for TaskBoard {
    type Result = Reply<TaskDetail>;

    fn handle(&mut self, msg: RemoveDependency, _: &mut Context<Self>) -> Self::Result {
        let now = self.deps.now();
        let planned = (|| {
            let task = self.open_task(&msg.id)?;
            Self::check_worker(task, &msg.by)?;
            if !self
                .blocked_by
                .get(&msg.id)
                .is_some_and(|b| b.contains(&msg.blocker_id))
            {
                return Err(AppError::new(
                    ErrorCode::DependencyNotFound,
                    format!("task {} is not blocked by {}", msg.id, msg.blocker_id),
                ));
            }
            let mut plan = Plan::default();
            plan.op(WriteOp::DeleteDependency {
                task_id: msg.id.clone(),
                blocker_id: msg.blocker_id.clone(),
            });
            plan.unlink(&msg.id, &msg.blocker_id);
            let mut record = activity(
                ActivityKind::DependencyRemoved,
                &msg.by,
                task,
                format!("'{}' is no longer blocked by {}", task.title, msg.blocker_id),
                now,
            );
            record.before = Some(serde_json::json!({"blockedBy": msg.blocker_id}));
            plan.record(record);
            self.plan_unblocking(&mut plan, vec![msg.id.clone()], Some((&msg.id, &msg.blocker_id)), now);
            Ok::<_, AppError>(plan)
        })();
        let id = msg.id;
        match planned {
            Err(e) => atomic(reply_now(Err(e))),
            Ok(plan) => atomic(self.commit(plan, move |board| Ok(board.detail_of(board.current(&id)?)))),
        }
    }
}

impl Handler<DeleteTask> for TaskBoard {
    type Result = Reply<Task>;

    fn handle(&mut self, msg: DeleteTask, _: &mut Context<Self>) -> Self::Result {
        let now = self.deps.now();
        let by = msg.by;
        let id = msg.id;
        let task: ResponseActFuture<Self, AppResult<Task>> = match self.open.get(&id) {
            Some(task) => Box::pin(fut::ready(Ok(task.clone()))),
            None if self.finished.contains_key(&id) => {
                let store = self.deps.store.clone();
                let key = id.clone();
                Box::pin(fut::wrap_future(async move {
                    store
                        .read(move |conn| queries::task_by_id(conn, &key))
                        .await
                        .map_err(AppError::store)?
                        .ok_or_else(|| AppError::task_not_found(&id))
                }))
            }
            None => return atomic(reply_now(Err(AppError::task_not_found(&id)))),
        };
        let fut = task.then(move |task: AppResult<Task>, board: &mut TaskBoard, _| {
            let planned = (|| {
                let task = task?;
                if !(by.is_admin() || task.created_by == by.label()) {
                    return Err(AppError::forbidden(
                        "only the task's creator or the admin may delete it",
                    ));
                }
                let mut plan = Plan::default();
                plan.record(
                    activity(
                        ActivityKind::TaskDeleted,
                        &by,
                        &task,
                        format!("'{}' deleted", task.title),
                        now,
                    )
                    .change(task_json(&task), serde_json::Value::Null),
                );
                plan.delete(&task, now);
                let dependents: Vec<String> = board.blocks.get(&task.id).into_iter().flatten().cloned().collect();
                board.plan_unblocking(&mut plan, dependents, None, now);
                Ok::<_, AppError>((plan, task))
            })();
            match planned {
                Err(e) => reply_now(Err(e)),
                Ok((plan, task)) => board.commit(plan, reply_task(task)),
            }
        });
        atomic(Box::pin(fut))
    }
}

impl Handler<ReleaseAgentTasks> for TaskBoard {
    type Result = Reply<Vec<String>>;

    fn handle(&mut self, msg: ReleaseAgentTasks, _: &mut Context<Self>) -> Self::Result {
        let mut held: Vec<&Task> = self
            .open
            .values()
            .filter(|t| t.assignee_id.as_deref() == Some(msg.agent_id.as_str()))
            .collect();
        held.sort_by(|a, b| a.id.cmp(&b.id));
        let ids: Vec<String> = held.iter().map(|t| t.id.clone()).collect();
        if ids.is_empty() {
            return atomic(reply_now(Ok(ids)));
        }
        if !msg.force {
            return atomic(reply_now(Err(AppError::new(
                ErrorCode::AgentHasOpenTasks,
                format!(
                    "the agent still has {} open tasks; pass force=true to release them",
                    ids.len()
                ),
            )
            .with_details(serde_json::json!({ "taskIds": ids })))));
        }
        let now = self.deps.now();
        let mut plan = Plan::default();
        for task in held {
            let mut next = task.clone();
            next.assignee_id = None;
            next.updated_at = now;
            if matches!(
                task.status,
                TaskStatus::InProgress | TaskStatus::Review | TaskStatus::Backlog
            ) {
                next = rules::moved(&next, TaskStatus::Ready, now);
            }
            let mut record = activity(
                ActivityKind::TaskAssigned,
                &msg.by,
                &next,
                format!("'{}' released: its assignee was deleted", next.title),
                now,
            )
            .change(
                serde_json::json!({"assigneeId": msg.agent_id, "status": task.status}),
                serde_json::json!({"assigneeId": null, "status": next.status}),
            );
            record.agent_id = Some(msg.agent_id.clone());
            plan.record(record);
            plan.save(next, Some(task), TaskEventKind::Assigned, now);
        }
        atomic(self.commit(plan, move |_| Ok(ids)))
    }
}
