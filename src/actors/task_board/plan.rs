//! A planned change to the board: the journal operations, the task versions and edges to adopt once they are
//! committed, and the events to publish then. Planning reads the board; only `commit` changes it.

use super::TaskBoard;
use crate::actors::events::{TaskEvent, TaskEventKind};
use crate::actors::persist_then;
use crate::domain::message::{MessageDraft, MessagePriority, MessageType, MAX_SUBJECT};
use crate::domain::outbox::{Effect, OutboxItem, Recipients};
use crate::domain::{task as rules, Activity, ActivityKind, Principal, Task, TaskStatus};
use crate::error::AppResult;
use crate::ids::new_id;
use crate::store::WriteOp;
use actix::ResponseActFuture;

#[derive(Default)]
pub(super) struct Plan {
    ops: Vec<WriteOp>,
    tasks: Vec<Task>,
    events: Vec<TaskEvent>,
    link: Vec<(String, String)>,
    unlink: Vec<(String, String)>,
    deleted: Option<String>,
    /// Notices to agents, committed with the change and delivered by the dispatcher.
    outbox: Vec<OutboxItem>,
}

impl Plan {
    /// Stores a new or changed version of a task, with its event.
    pub fn save(&mut self, task: Task, before: Option<&Task>, kind: TaskEventKind, now: i64) {
        self.ops.push(match before {
            None => WriteOp::insert_task(&task),
            Some(_) => WriteOp::update_task(&task),
        });
        self.events.push(TaskEvent {
            kind,
            previous_status: before.map(|b| b.status),
            previous_assignee: before.and_then(|b| b.assignee_id.clone()),
            blocker_id: None,
            task: task.clone(),
            at: now,
        });
        self.tasks.retain(|t| t.id != task.id);
        self.tasks.push(task);
    }

    pub fn record(&mut self, activity: Activity) {
        self.ops.push(WriteOp::activity(&activity));
    }

    pub fn op(&mut self, op: WriteOp) {
        self.ops.push(op);
    }

    /// A system message to `agent`, written with this change. `key` names the change it reports, so the
    /// same change never makes two notices.
    pub fn notify(&mut self, agent: &str, key: String, draft: MessageDraft, now: i64) {
        let draft_task = draft.task_id.clone();
        let effect = Effect::AgentMessage {
            to: Recipients::Agent {
                agent: agent.to_string(),
            },
            draft,
        };
        let mut row = OutboxItem::new(new_id(), key, effect, now);
        row.task_id = draft_task;
        self.ops.push(WriteOp::insert_outbox(&row));
        self.outbox.push(row);
    }

    /// Tells the new assignee of `task` that the task is theirs, unless they took it themselves.
    pub fn notify_assigned(&mut self, task: &Task, by: &Principal, now: i64) {
        let Some(assignee) = task.assignee_id.as_deref() else {
            return;
        };
        if by.is_agent(assignee) {
            return;
        }
        let draft = MessageDraft {
            kind: Some(MessageType::TaskUpdate),
            subject: format!("assigned: {}", task.title).chars().take(MAX_SUBJECT).collect(),
            body: format!(
                "\"{}\" ({}, {}) is assigned to you, now {}.",
                task.title,
                task.id,
                task.priority,
                task.status.as_str().replace('_', " ")
            ),
            priority: Some(MessagePriority::Normal),
            task_id: Some(task.id.clone()),
            ..MessageDraft::default()
        };
        let key = format!("assigned:{}:{assignee}:{now}", task.id);
        self.notify(assignee, key, draft, now);
    }

    pub fn link(&mut self, task: &str, blocker: &str) {
        self.link.push((task.to_string(), blocker.to_string()));
    }

    pub fn unlink(&mut self, task: &str, blocker: &str) {
        self.unlink.push((task.to_string(), blocker.to_string()));
    }

    pub fn delete(&mut self, task: &Task, now: i64) {
        self.ops.push(WriteOp::DeleteTask { id: task.id.clone() });
        self.events.push(TaskEvent {
            kind: TaskEventKind::Deleted,
            previous_status: Some(task.status),
            previous_assignee: task.assignee_id.clone(),
            blocker_id: None,
            task: task.clone(),
            at: now,
        });
        self.deleted = Some(task.id.clone());
    }

    /// The status a task will have once this plan is committed.
    pub fn planned_status(&self, board: &TaskBoard, id: &str) -> Option<TaskStatus> {
        self.tasks
            .iter()
            .rev()
            .find(|t| t.id == id)
            .map(|t| t.status)
            .or_else(|| board.status_of(id))
    }

    pub fn planned_task<'a>(&'a self, board: &'a TaskBoard, id: &str) -> Option<&'a Task> {
        self.tasks
            .iter()
            .rev()
            .find(|t| t.id == id)
            .or_else(|| board.open.get(id))
    }
}

pub(super) fn activity(kind: ActivityKind, by: &Principal, task: &Task, message: String, now: i64) -> Activity {
    let mut activity = Activity::new(new_id(), kind, by, message, now).task(&task.id);
    activity.agent_id = task.assignee_id.clone();
    activity
}

impl TaskBoard {
    /// After `finished_id` is done (in `plan`), every blocked dependent whose blockers are now all done goes
    /// back to `ready`. `ignore_edge` is an edge the plan removes.
    pub(super) fn plan_unblocking(
        &self,
        plan: &mut Plan,
        candidates: Vec<String>,
        ignore_edge: Option<(&str, &str)>,
        now: i64,
    ) {
        for dependent in candidates {
            let Some(task) = plan.planned_task(self, &dependent).cloned() else {
                continue;
            };
            if task.status != TaskStatus::Blocked {
                continue;
            }
            let still_blocked = self.blocked_by.get(&dependent).into_iter().flatten().any(|blocker| {
                let removed = ignore_edge.is_some_and(|(t, b)| t == dependent && b == blocker);
                let gone = plan.deleted.as_deref() == Some(blocker.as_str());
                !removed && !gone && plan.planned_status(self, blocker) != Some(TaskStatus::Done)
            });
            if still_blocked {
                continue;
            }
            let next = rules::moved(&task, TaskStatus::Ready, now);
            // What let it go: the blockers this plan finishes, or the dependency it removes.
            let mut resolved_by: Vec<String> = self
                .blocked_by
                .get(&dependent)
                .into_iter()
                .flatten()
                .filter(|blocker| {
                    plan.tasks
                        .iter()
                        .any(|t| &t.id == *blocker && t.status == TaskStatus::Done)
                        || plan.deleted.as_deref() == Some(blocker.as_str())
                })
                .cloned()
                .collect();
            if let Some((_, blocker)) = ignore_edge.filter(|(t, _)| *t == dependent) {
                resolved_by.push(blocker.to_string());
            }
            if let Some(assignee) = next.assignee_id.clone() {
                let draft = self.unblocked_notice(&next, &resolved_by);
                plan.notify(&assignee, format!("unblocked:{}:{now}", next.id), draft, now);
            }
            plan.record(activity(
                ActivityKind::TaskUnblocked,
                &Principal::System,
                &next,
                format!("'{}' is unblocked: its last blocker is finished", next.title),
                now,
            ));
            plan.save(next, Some(&task), TaskEventKind::Unblocked, now);
        }
    }

    /// The `blocker_resolved` notice to the assignee of a task that is ready again, naming what let it go.
    fn unblocked_notice(&self, task: &Task, resolved_by: &[String]) -> MessageDraft {
        let names: Vec<String> = resolved_by
            .iter()
            .map(|id| match self.task_ref(id) {
                Some(blocker) => format!("\"{}\" ({id})", blocker.title),
                None => id.clone(),
            })
            .collect();
        let why = match names.as_slice() {
            [] => "every task it waited for is done".to_string(),
            [one] => format!("{one} is done, the last task it waited for"),
            many => format!("{} are done, the last tasks it waited for", many.join(", ")),
        };
        MessageDraft {
            kind: Some(MessageType::BlockerResolved),
            subject: format!("Unblocked: {}", task.title).chars().take(MAX_SUBJECT).collect(),
            body: format!("\"{}\" is ready again: {why}.", task.title),
            priority: Some(MessagePriority::High),
            task_id: Some(task.id.clone()),
            related_task_ids: resolved_by.to_vec(),
            ..MessageDraft::default()
        }
    }

    /// Commits the plan, then adopts it and publishes its events; replies with `reply` (read after adoption).
    pub(super) fn commit<T: 'static>(
        &mut self,
        plan: Plan,
        reply: impl FnOnce(&TaskBoard) -> AppResult<T> + 'static,
    ) -> ResponseActFuture<Self, AppResult<T>> {
        let Plan {
            ops,
            tasks,
            events,
            link,
            unlink,
            deleted,
            outbox,
        } = plan;
        persist_then(&self.deps.journal, ops, move |board: &mut TaskBoard| {
            board.deps.outbox.committed(outbox);
            if let Some(id) = &deleted {
                board.forget(id);
            }
            for (task, blocker) in &unlink {
                board.unlink(task, blocker);
            }
            for (task, blocker) in &link {
                board.link(task, blocker);
            }
            for task in tasks {
                board.adopt(task);
            }
            // The edges first: a subscriber that keeps the graph (the escalation scheduler) has it before it
            // evaluates the status change that came with it.
            let now = board.deps.now();
            let edges = unlink
                .iter()
                .map(|edge| (TaskEventKind::DependencyRemoved, edge))
                .chain(link.iter().map(|edge| (TaskEventKind::DependencyAdded, edge)));
            for (kind, (task, blocker)) in edges {
                if let Some(current) = board.open.get(task) {
                    board.deps.events.publish_task(TaskEvent {
                        kind,
                        task: current.clone(),
                        previous_status: Some(current.status),
                        previous_assignee: current.assignee_id.clone(),
                        blocker_id: Some(blocker.clone()),
                        at: now,
                    });
                }
            }
            for event in events {
                board.deps.events.publish_task(event);
            }
            reply(board)
        })
    }

    fn adopt(&mut self, task: Task) {
        if task.status.is_terminal() {
            self.open.remove(&task.id);
            self.finished.insert(
                task.id.clone(),
                super::FinishedTask {
                    status: task.status,
                    title: task.title,
                },
            );
        } else {
            self.open.insert(task.id.clone(), task);
        }
    }

    fn forget(&mut self, id: &str) {
        self.open.remove(id);
        self.finished.remove(id);
        let blockers: Vec<String> = self.blocked_by.get(id).into_iter().flatten().cloned().collect();
        for blocker in blockers {
            self.unlink(id, &blocker);
        }
        let dependents: Vec<String> = self.blocks.get(id).into_iter().flatten().cloned().collect();
        for dependent in dependents {
            self.unlink(&dependent, id);
        }
        for task in self.open.values_mut() {
            if task.parent_id.as_deref() == Some(id) {
                task.parent_id = None;
            }
        }
    }
}
