//! The heartbeat monitor's follow-up: an agent that went offline gives its queued work back. The board
//! unassigns its `ready` tasks ([`ReleaseQueuedTasks`]) and, in the same commit, writes the agent one
//! `task_update` notice naming them (an outbox row), waiting in its inbox for when it comes back.

use crate::actors::ask;
use crate::actors::task_board::{ReleaseQueuedTasks, TaskBoard};
use actix::Addr;

/// Releases the queued tasks of an agent that just went offline (the board tells it which); failures are logged
/// (the agent is offline either way, and the next auto-assignment or rule sees whatever was released).
pub(super) async fn release_queued(board: Option<Addr<TaskBoard>>, agent_id: String, name: String) {
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
    log::info!("{name} went offline: {} queued tasks released", released.len());
}
