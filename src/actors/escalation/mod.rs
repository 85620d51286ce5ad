//! `EscalationScheduler`: the periodic work that keeps tasks and messages from going stale, and the owner of
//! SLO breach records.
//!
//! On each tick it deletes expired messages (one activity row per sweep), escalates messages past their
//! acknowledgement deadline (the inbox owner marks each one escalated exactly once), and runs the SLO monitor
//! over the open tasks past their deadline ([`slo_monitor`]). A task event is checked against the SLO at once, and
//! a task's return to `ready` (its last blocker finished) becomes a `blocker_resolved` message to its
//! assignee. Escalations go through [`paths`]: the task raised one priority level, and an `alert` to the
//! responsible lead, or to every lead-level agent when there is none.
//!
//! The scheduler holds its mailbox while a tick or a breach check runs, so a breach listing asked after a
//! tick (or after a task change) sees its records. It waits on the directory, the agents and the board,
//! none of which ever waits on it.

mod paths;
mod slo_monitor;

pub use paths::{escalate_message, escalate_task};

use super::directory::messages::{EscalateOverdue, ForgetMessages, SendSystemMessage};
use super::directory::AgentDirectory;
use super::events::{TaskEvent, TaskEventKind};
use super::task_board::messages::PastDeadline;
use super::task_board::TaskBoard;
use super::{reply_now, Deps, EventBus};
use crate::domain::message::{MessageDraft, MessagePriority, MessageType, MAX_SUBJECT};
use crate::domain::query::{BreachQuery, Page};
use crate::domain::slo::{BreachKind, SloBreach};
use crate::domain::{Activity, ActivityKind, Principal};
use crate::error::{AppError, AppResult};
use crate::ids::new_id;
use crate::store::{message_queries, slo_queries, WriteOp};
use actix::fut::{self, ActorFutureExt};
use actix::prelude::*;
use std::collections::HashMap;

pub struct EscalationScheduler {
    deps: Deps,
    directory: Addr<AgentDirectory>,
    board: Addr<TaskBoard>,
    /// Breach kinds already recorded, per open task.
    breaches: HashMap<String, Vec<BreachKind>>,
}

impl EscalationScheduler {
    /// `recorded`: the `(task, kind)` breaches already stored for open tasks.
    pub fn start(
        deps: Deps,
        directory: Addr<AgentDirectory>,
        board: Addr<TaskBoard>,
        recorded: Vec<(String, BreachKind)>,
        events: &EventBus,
    ) -> Addr<Self> {
        let mut breaches: HashMap<String, Vec<BreachKind>> = HashMap::new();
        for (task, kind) in recorded {
            breaches.entry(task).or_default().push(kind);
        }
        let addr = EscalationScheduler {
            deps,
            directory,
            board,
            breaches,
        }
        .start();
        events.subscribe_tasks(addr.clone().recipient());
        addr
    }
}

impl Actor for EscalationScheduler {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(4096);
    }
}

/// What one tick of the scheduler did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Messages escalated for a missed acknowledgement deadline.
    pub escalated_message_ids: Vec<String>,
    /// Expired messages deleted.
    pub expired_messages: usize,
    /// SLO breaches recorded.
    pub slo_breaches: Vec<SloBreach>,
}

#[derive(Message)]
#[rtype(result = "AppResult<SweepReport>")]
pub struct Tick;

impl Handler<Tick> for EscalationScheduler {
    type Result = AtomicResponse<Self, AppResult<SweepReport>>;

    fn handle(&mut self, _: Tick, _: &mut Context<Self>) -> Self::Result {
        let deps = self.deps.clone();
        let directory = self.directory.clone();
        let board = self.board.clone();
        let messages_and_tasks = async move {
            let expired_messages = expire_messages(&deps, &directory).await?;
            let overdue = directory.send(EscalateOverdue).await.map_err(AppError::mailbox)??;
            let mut escalated_message_ids = Vec::new();
            for inbox in overdue {
                for message in &inbox.messages {
                    escalate_message(&directory, &board, &inbox.agent, message).await;
                    escalated_message_ids.push(message.id.clone());
                }
            }
            let now = deps.now();
            let open = board.send(PastDeadline { now }).await.map_err(AppError::mailbox)?;
            Ok::<_, AppError>((
                SweepReport {
                    escalated_message_ids,
                    expired_messages,
                    slo_breaches: Vec::new(),
                },
                open,
            ))
        };
        let sweep = fut::wrap_future::<_, Self>(messages_and_tasks).then(
            |swept, scheduler, _| -> ResponseActFuture<Self, AppResult<SweepReport>> {
                let (report, open) = match swept {
                    Ok(swept) => swept,
                    Err(e) => return reply_now(Err(e)),
                };
                let found = scheduler.find_breaches(open, scheduler.deps.now());
                Box::pin(scheduler.record_breaches(found).map(move |breaches, _, _| {
                    Ok(SweepReport {
                        slo_breaches: breaches?,
                        ..report
                    })
                }))
            },
        );
        AtomicResponse::new(Box::pin(sweep))
    }
}

/// `GET /api/slo/breaches`.
#[derive(Message)]
#[rtype(result = "AppResult<Page<SloBreach>>")]
pub struct ListBreaches {
    pub query: BreachQuery,
}

impl Handler<ListBreaches> for EscalationScheduler {
    type Result = ResponseFuture<AppResult<Page<SloBreach>>>;

    fn handle(&mut self, msg: ListBreaches, _: &mut Context<Self>) -> Self::Result {
        let store = self.deps.store.clone();
        Box::pin(async move {
            store
                .read(move |conn| slo_queries::list_breaches(conn, &msg.query))
                .await
                .map_err(AppError::store)
        })
    }
}

/// Deletes every message past its expiry, with one activity row for the sweep, and tells the inboxes.
async fn expire_messages(deps: &Deps, directory: &Addr<AgentDirectory>) -> AppResult<usize> {
    let now = deps.now();
    let expired = deps
        .store
        .read(move |conn| message_queries::expired_messages(conn, now))
        .await
        .map_err(AppError::store)?;
    if expired.is_empty() {
        return Ok(0);
    }
    let count = expired.len();
    let recipients: std::collections::BTreeSet<&String> = expired.iter().map(|(_, to)| to).collect();
    let activity = Activity::new(
        new_id(),
        ActivityKind::MessagesExpired,
        &Principal::System,
        format!("{count} expired messages deleted from {} inboxes", recipients.len()),
        now,
    )
    .change(serde_json::Value::Null, serde_json::json!({ "deleted": count }));
    let ops = vec![
        WriteOp::DeleteMessages {
            ids: expired.iter().map(|(id, _)| id.clone()).collect(),
        },
        WriteOp::activity(&activity),
    ];
    deps.journal.commit(ops).await.map_err(AppError::store)?;
    directory.do_send(ForgetMessages {
        messages: expired.into_iter().map(|(id, to)| (to, id)).collect(),
    });
    Ok(count)
}

impl Handler<TaskEvent> for EscalationScheduler {
    type Result = ();

    fn handle(&mut self, event: TaskEvent, ctx: &mut Context<Self>) {
        match event.kind {
            TaskEventKind::Deleted => {
                self.breaches.remove(&event.task.id);
                return;
            }
            TaskEventKind::Unblocked => self.notify_unblocked(&event, ctx),
            _ => {}
        }
        let task_id = event.task.id.clone();
        let found = self.find_breaches([event.task], self.deps.now());
        if !found.is_empty() {
            ctx.wait(self.record_breaches(found).map(move |recorded, _, _| {
                if let Err(e) = recorded {
                    log::warn!("SLO breach of task {task_id} not recorded: {e}");
                }
            }));
        }
    }
}

impl EscalationScheduler {
    fn notify_unblocked(&self, event: &TaskEvent, ctx: &mut Context<Self>) {
        let Some(assignee) = event.task.assignee_id.clone() else {
            return;
        };
        let task = &event.task;
        let draft = MessageDraft {
            to_agent_id: assignee,
            kind: Some(MessageType::BlockerResolved),
            subject: format!("Unblocked: {}", task.title).chars().take(MAX_SUBJECT).collect(),
            body: format!("\"{}\" is ready again: every task it waited for is done.", task.title),
            priority: Some(MessagePriority::High),
            task_id: Some(task.id.clone()),
            ..MessageDraft::default()
        };
        let directory = self.directory.clone();
        let task_id = task.id.clone();
        ctx.spawn(fut::wrap_future(async move {
            match directory.send(SendSystemMessage { draft }).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => log::warn!("blocker_resolved notice for task {task_id} not sent: {e}"),
                Err(e) => log::warn!("blocker_resolved notice for task {task_id} not delivered: {e}"),
            }
        }));
    }
}
