//! The escalation paths every trigger shares: raise the task (priority up one level, escalation level up
//! one) and alert the responsible lead, falling back to every other lead. Failures are logged, not retried:
//! the trigger is recorded before its actions run, so a crash loses actions and never repeats them.

use crate::actors::directory::messages::{Leads, Resolve, SendSystemMessage};
use crate::actors::directory::AgentDirectory;
use crate::actors::task_board::messages::EscalateTask;
use crate::actors::task_board::TaskBoard;
use crate::domain::escalation::{ActionResult, ActionStatus};
use crate::domain::message::{Message, MessageDraft, MessagePriority, MessageType, MAX_SUBJECT};
use crate::domain::{Agent, Principal, Task};
use crate::error::{AppError, AppResult};
use actix::Addr;

/// The escalation path for a message nobody acknowledged in time: escalate its task, if it has one, and
/// alert the recipient's lead (or every lead-level agent). Replies with the reason and the leads alerted.
pub async fn escalate_message(
    directory: &Addr<AgentDirectory>,
    board: &Addr<TaskBoard>,
    recipient: &Agent,
    message: &Message,
) -> (String, Vec<String>) {
    let reason = message.escalation_action.clone().unwrap_or_else(|| {
        format!(
            "message from {} not acknowledged by {}: {}",
            message.from_agent_name, message.to_agent_name, message.subject
        )
    });
    if let Some(task_id) = &message.task_id {
        raise_task(board, task_id, &reason).await;
    }
    let alerted = alert_leads(directory, Some(recipient), |to| alert_draft(to, message, &reason)).await;
    if alerted.is_empty() {
        log::warn!(
            "message {} to {} escalated, but no lead could be alerted",
            message.id,
            recipient.name
        );
    }
    (reason, alerted)
}

/// The escalation path for a task: raise it, then alert its assignee's lead (or every lead-level agent).
/// `alert` builds the alert for one lead. Replies with the leads alerted.
pub async fn escalate_task(
    directory: &Addr<AgentDirectory>,
    board: &Addr<TaskBoard>,
    task: &Task,
    reason: &str,
    alert: impl Fn(String) -> MessageDraft,
) -> Vec<String> {
    raise_task(board, &task.id, reason).await;
    let assignee = match &task.assignee_id {
        Some(id) => match directory.send(Resolve { key: id.clone() }).await {
            Ok(Ok(agent)) => Some(agent),
            _ => None,
        },
        None => None,
    };
    let alerted = alert_leads(directory, assignee.as_ref(), alert).await;
    if alerted.is_empty() {
        log::warn!("task {} escalated ({reason}), but no lead could be alerted", task.id);
    }
    alerted
}

async fn raise_task(board: &Addr<TaskBoard>, task_id: &str, reason: &str) {
    let escalate = EscalateTask {
        id: task_id.to_string(),
        reason: reason.to_string(),
        by: Principal::System,
    };
    match board.send(escalate).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => log::info!("task {task_id} not raised ({reason}): {e}"),
        Err(e) => log::warn!("escalation of task {task_id} not delivered: {e}"),
    }
}

/// Alerts `agent`'s lead; without one, or when the lead cannot take the alert (suspended, deleted), every
/// lead-level agent other than `agent` and that lead. Replies with the names of those alerted.
pub(super) async fn alert_leads(
    directory: &Addr<AgentDirectory>,
    agent: Option<&Agent>,
    alert: impl Fn(String) -> MessageDraft,
) -> Vec<String> {
    let lead = agent.and_then(|a| a.lead_id.clone());
    if let Some(lead) = &lead {
        match send_system(directory, alert(lead.clone())).await {
            Ok(sent) => return vec![sent.to_agent_name],
            Err(e) => log::warn!("escalation alert to lead {lead} failed ({e}); alerting every lead instead"),
        }
    }
    let leads = match directory.send(Leads).await.map_err(AppError::mailbox).and_then(|r| r) {
        Ok(leads) => leads,
        Err(e) => {
            log::warn!("cannot list the leads to alert: {e}");
            Vec::new()
        }
    };
    let mut alerted = Vec::new();
    for target in leads.into_iter().map(|a| a.id) {
        if agent.is_some_and(|a| a.id == target) || lead.as_ref() == Some(&target) {
            continue;
        }
        match send_system(directory, alert(target.clone())).await {
            Ok(sent) => alerted.push(sent.to_agent_name),
            Err(e) => log::warn!("escalation alert to {target} not sent: {e}"),
        }
    }
    alerted
}

/// The recorded result of a built-in escalation's alert: `done` (what else it did) and whom it reached.
pub(super) fn alert_result(done: &str, alerted: &[String]) -> ActionResult {
    let (status, detail) = if alerted.is_empty() {
        (ActionStatus::Failed, format!("{done}no lead could be alerted"))
    } else {
        (ActionStatus::Executed, format!("{done}alerted {}", alerted.join(", ")))
    };
    ActionResult {
        kind: "escalate".into(),
        status,
        detail,
    }
}

pub(super) async fn send_system(directory: &Addr<AgentDirectory>, draft: MessageDraft) -> AppResult<Message> {
    directory
        .send(SendSystemMessage { draft })
        .await
        .map_err(AppError::mailbox)?
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
