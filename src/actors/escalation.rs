//! `EscalationScheduler`: the periodic work that keeps messages from going stale, and the escalation path
//! that later rules reuse.
//!
//! On each tick it deletes expired messages (one activity row per sweep) and asks every inbox for messages
//! past their acknowledgement deadline; the inbox owner marks each one escalated exactly once, and the
//! scheduler then escalates: the message's task (priority up one level, escalation level up one) and a
//! system `alert` to the recipient's lead, or to every lead-level agent when it has none. It also turns a
//! task's return to `ready` (its last blocker finished) into a `blocker_resolved` message to the assignee.
//!
//! An escalation is recorded on the message before its actions run: a crash between the two loses the
//! actions, never repeats them.

use super::directory::messages::{EscalateOverdue, ForgetMessages, Leads, SendSystemMessage};
use super::directory::AgentDirectory;
use super::events::{TaskEvent, TaskEventKind};
use super::task_board::messages::EscalateTask;
use super::task_board::TaskBoard;
use super::{Deps, EventBus};
use crate::domain::message::{Message, MessageDraft, MessagePriority, MessageType, MAX_SUBJECT};
use crate::domain::{Activity, ActivityKind, Agent, Principal};
use crate::error::{AppError, AppResult};
use crate::ids::new_id;
use crate::store::{message_queries, WriteOp};
use actix::prelude::*;

pub struct EscalationScheduler {
    deps: Deps,
    directory: Addr<AgentDirectory>,
    board: Addr<TaskBoard>,
}

impl EscalationScheduler {
    pub fn start(deps: Deps, directory: Addr<AgentDirectory>, board: Addr<TaskBoard>, events: &EventBus) -> Addr<Self> {
        let addr = EscalationScheduler { deps, directory, board }.start();
        events.subscribe_tasks(addr.clone().recipient());
        addr
    }
}

impl Actor for EscalationScheduler {
    type Context = Context<Self>;
}

/// What one tick of the scheduler did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Messages escalated for a missed acknowledgement deadline.
    pub escalated_message_ids: Vec<String>,
    /// Expired messages deleted.
    pub expired_messages: usize,
}

#[derive(Message)]
#[rtype(result = "AppResult<SweepReport>")]
pub struct Tick;

impl Handler<Tick> for EscalationScheduler {
    type Result = ResponseFuture<AppResult<SweepReport>>;

    fn handle(&mut self, _: Tick, _: &mut Context<Self>) -> Self::Result {
        let deps = self.deps.clone();
        let directory = self.directory.clone();
        let board = self.board.clone();
        Box::pin(async move {
            let expired_messages = expire_messages(&deps, &directory).await?;
            let overdue = directory.send(EscalateOverdue).await.map_err(AppError::mailbox)??;
            let mut escalated_message_ids = Vec::new();
            for inbox in overdue {
                for message in &inbox.messages {
                    escalate_message(&directory, &board, &inbox.agent, message).await;
                    escalated_message_ids.push(message.id.clone());
                }
            }
            Ok(SweepReport {
                escalated_message_ids,
                expired_messages,
            })
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

/// The escalation path for a message nobody acknowledged in time: escalate its task, if it has one, and
/// alert the recipient's lead (or every lead-level agent). Failures are logged: the message is already
/// marked escalated and will not be retried.
pub async fn escalate_message(
    directory: &Addr<AgentDirectory>,
    board: &Addr<TaskBoard>,
    recipient: &Agent,
    message: &Message,
) {
    let reason = message.escalation_action.clone().unwrap_or_else(|| {
        format!(
            "message from {} not acknowledged by {}: {}",
            message.from_agent_name, message.to_agent_name, message.subject
        )
    });
    if let Some(task_id) = &message.task_id {
        let escalate = EscalateTask {
            id: task_id.clone(),
            reason: reason.clone(),
            by: Principal::System,
        };
        match board.send(escalate).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => log::info!("message {} escalated without its task: {e}", message.id),
            Err(e) => log::warn!("task escalation for message {} not delivered: {e}", message.id),
        }
    }
    // The recipient's lead first; without one, or when the lead cannot take the alert (suspended, deleted),
    // every lead-level agent other than the recipient.
    if let Some(lead) = &recipient.lead_id {
        match send_alert(directory, lead.clone(), message, &reason).await {
            Ok(()) => return,
            Err(e) => log::warn!("escalation alert to lead {lead} failed ({e}); alerting every lead instead"),
        }
    }
    let leads = match directory.send(Leads).await.map_err(AppError::mailbox).and_then(|r| r) {
        Ok(leads) => leads,
        Err(e) => {
            log::warn!("cannot list leads for the escalation of message {}: {e}", message.id);
            Vec::new()
        }
    };
    let targets: Vec<String> = leads
        .into_iter()
        .map(|a| a.id)
        .filter(|id| *id != recipient.id && recipient.lead_id.as_ref() != Some(id))
        .collect();
    if targets.is_empty() {
        log::warn!(
            "message {} to {} escalated, but there is no lead to alert",
            message.id,
            recipient.name
        );
    }
    for target in targets {
        if let Err(e) = send_alert(directory, target, message, &reason).await {
            log::warn!("escalation alert for message {} not sent: {e}", message.id);
        }
    }
}

async fn send_alert(directory: &Addr<AgentDirectory>, to: String, message: &Message, reason: &str) -> AppResult<()> {
    let alert = SendSystemMessage {
        draft: alert_draft(to, message, reason),
    };
    directory.send(alert).await.map_err(AppError::mailbox)?.map(drop)
}

fn alert_draft(to: String, original: &Message, reason: &str) -> MessageDraft {
    let subject: String = format!("Not acknowledged: {}", original.subject)
        .chars()
        .take(MAX_SUBJECT)
        .collect();
    let body = format!(
        "{} has not acknowledged \"{}\" from {} (message {}), due at {} ms. {reason}",
        original.to_agent_name,
        original.subject,
        original.from_agent_name,
        original.id,
        original.ack_deadline_at.unwrap_or(original.created_at),
    );
    MessageDraft {
        to_agent_id: to,
        kind: Some(MessageType::Alert),
        subject,
        body,
        priority: Some(if original.priority == MessagePriority::Critical {
            MessagePriority::Critical
        } else {
            MessagePriority::High
        }),
        task_id: original.task_id.clone(),
        related_task_ids: original.related_task_ids.clone(),
        data: Some(serde_json::json!({
            "originalMessageId": original.id,
            "recipientId": original.to_agent_id,
            "recipientName": original.to_agent_name,
            "reason": reason,
        })),
        ..MessageDraft::default()
    }
}

impl Handler<TaskEvent> for EscalationScheduler {
    type Result = ();

    fn handle(&mut self, event: TaskEvent, ctx: &mut Context<Self>) {
        if event.kind != TaskEventKind::Unblocked {
            return;
        }
        let Some(assignee) = event.task.assignee_id.clone() else {
            return;
        };
        let task = event.task;
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
        ctx.spawn(actix::fut::wrap_future(async move {
            match directory.send(SendSystemMessage { draft }).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => log::warn!("blocker_resolved notice for task {} not sent: {e}", task.id),
                Err(e) => log::warn!("blocker_resolved notice for task {} not delivered: {e}", task.id),
            }
        }));
    }
}
