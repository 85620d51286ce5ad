//! The escalation paths the built-in escalations share: raise the task (priority up one level, escalation
//! level up one), and alert the responsible lead through the outbox (falling back, at delivery, to every
//! other lead, and to a person when there is none).

use crate::actors::task_board::messages::EscalateTask;
use crate::actors::task_board::TaskBoard;
use crate::domain::message::{Message, MessageDraft, MessagePriority, MessageType, MAX_SUBJECT};
use crate::domain::outbox::{Effect, Recipients};
use crate::domain::Principal;
use actix::Addr;

/// Why a message nobody acknowledged in time is escalated: the sender's own words, or a sentence.
pub fn overdue_reason(message: &Message) -> String {
    message.escalation_action.clone().unwrap_or_else(|| {
        format!(
            "message from {} not acknowledged by {}: {}",
            message.from_agent_name, message.to_agent_name, message.subject
        )
    })
}

/// The alert about a message nobody acknowledged in time, to its recipient's lead.
pub fn overdue_alert(message: &Message, reason: &str) -> Effect {
    Effect::AgentMessage {
        to: Recipients::LeadOf {
            agent: Some(message.to_agent_id.clone()),
            depth: 1,
        },
        draft: alert_draft(message, reason),
    }
}

/// Raises the task on the board; replies with what happened, in words.
pub(super) async fn raise_task(board: &Addr<TaskBoard>, task_id: &str, reason: &str) -> String {
    let escalate = EscalateTask {
        id: task_id.to_string(),
        reason: reason.to_string(),
        by: Principal::System,
    };
    match crate::actors::ask(board, escalate).await {
        Ok(_) => "priority raised".to_string(),
        Err(e) => {
            log::info!("task {task_id} not raised ({reason}): {e}");
            format!("priority unchanged ({})", e.message)
        }
    }
}

fn alert_draft(original: &Message, reason: &str) -> MessageDraft {
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
