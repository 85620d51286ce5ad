//! The heartbeat monitor's follow-up: an agent that went offline gives its queued work back. The board
//! unassigns its `ready` tasks ([`ReleaseQueuedTasks`]) and the agent gets one `task_update` notice (a system
//! message, like every other runtime notice) naming them, waiting in its inbox for when it comes back.

use super::messages::SendSystemMessage;
use super::AgentDirectory;
use crate::actors::ask;
use crate::actors::task_board::{ReleaseQueuedTasks, TaskBoard};
use crate::domain::message::{MessageDraft, MessagePriority, MessageType, MAX_SUBJECT};
use crate::domain::Task;
use actix::Addr;

/// Releases the queued tasks of an agent that just went offline and tells it which; failures are logged
/// (the agent is offline either way, and the next auto-assignment or rule sees whatever was released).
pub(super) async fn release_queued(
    board: Option<Addr<TaskBoard>>,
    directory: Addr<AgentDirectory>,
    agent_id: String,
    name: String,
) {
    let Some(board) = board else {
        log::warn!("{name} went offline but the task board is not wired to the directory");
        return;
    };
    let released = match ask(
        &board,
        ReleaseQueuedTasks {
            agent_id: agent_id.clone(),
        },
    )
    .await
    {
        Ok(released) => released,
        Err(e) => {
            log::warn!("queued tasks of {name} not released: {e}");
            return;
        }
    };
    if released.is_empty() {
        return;
    }
    let draft = release_notice(agent_id, &released);
    if let Err(e) = ask(&directory, SendSystemMessage { draft }).await {
        log::warn!("release notice to {name} not sent: {e}");
    }
}

fn release_notice(agent_id: String, released: &[Task]) -> MessageDraft {
    let titles: Vec<String> = released.iter().map(|t| format!("'{}'", t.title)).collect();
    let subject = match released {
        [only] => format!("Released: {}", only.title),
        _ => format!("Released: {} queued tasks", released.len()),
    };
    MessageDraft {
        to_agent_id: agent_id,
        kind: Some(MessageType::TaskUpdate),
        subject: subject.chars().take(MAX_SUBJECT).collect(),
        body: format!(
            "You went offline, so the tasks waiting in your queue went back to the pool, unassigned: {}. \
             Work you had started stays yours.",
            titles.join(", ")
        ),
        priority: Some(MessagePriority::Normal),
        task_id: match released {
            [only] => Some(only.id.clone()),
            _ => None,
        },
        related_task_ids: released.iter().map(|t| t.id.clone()).collect(),
        data: Some(serde_json::json!({
            "reason": "went_offline",
            "releasedTaskIds": released.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        })),
        ..MessageDraft::default()
    }
}
