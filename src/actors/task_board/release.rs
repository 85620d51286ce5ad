//! Releasing an offline agent's queued work. When the heartbeat monitor marks an agent offline, its `ready`
//! tasks go back to the pool, unassigned, so that `reassign`/auto-assignment hands them to someone who is
//! there. Its `in_progress` and `review` work stays: that is the "assignee silent" rule's to judge, and the
//! agent may come back to it. Its blocked tasks stay too: nobody can start them yet.

use super::plan::{activity, Plan};
use super::TaskBoard;
use crate::actors::events::TaskEventKind;
use crate::actors::{atomic, reply_now};
use crate::domain::message::{MessageDraft, MessagePriority, MessageType, MAX_SUBJECT};
use crate::domain::task::claim_order;
use crate::domain::{ActivityKind, Principal, Task, TaskStatus};
use crate::error::AppResult;
use actix::prelude::*;

/// Unassigns every `ready` task of an agent that went offline. Replies with the released tasks, in the
/// claim order the agent would have taken them.
#[derive(Message)]
#[rtype(result = "AppResult<Vec<Task>>")]
pub struct ReleaseQueuedTasks {
    pub agent_id: String,
}

impl Handler<ReleaseQueuedTasks> for TaskBoard {
    type Result = AtomicResponse<TaskBoard, AppResult<Vec<Task>>>;

    fn handle(&mut self, msg: ReleaseQueuedTasks, _: &mut Context<Self>) -> Self::Result {
        let mut queued: Vec<&Task> = self
            .open
            .values()
            .filter(|t| t.status == TaskStatus::Ready && t.assignee_id.as_deref() == Some(msg.agent_id.as_str()))
            .collect();
        if queued.is_empty() {
            return atomic(reply_now(Ok(Vec::new())));
        }
        queued.sort_by(|a, b| claim_order(a, b));
        let now = self.deps.now();
        let mut plan = Plan::default();
        let mut released = Vec::with_capacity(queued.len());
        for task in queued {
            let mut next = task.clone();
            next.assignee_id = None;
            next.updated_at = now;
            let mut record = activity(
                ActivityKind::TaskAssigned,
                &Principal::System,
                &next,
                format!("'{}' released: its assignee went offline", next.title),
                now,
            )
            .change(
                serde_json::json!({"assigneeId": msg.agent_id}),
                serde_json::json!({"assigneeId": null}),
            );
            record.agent_id = Some(msg.agent_id.clone());
            plan.record(record);
            plan.save(next.clone(), Some(task), TaskEventKind::Assigned, now);
            released.push(next);
        }
        let notice = release_notice(&released);
        plan.notify(&msg.agent_id, format!("released:{}:{now}", msg.agent_id), notice, now);
        atomic(self.commit(plan, move |_| Ok(released)))
    }
}

/// The one `task_update` notice naming the released tasks, waiting in the agent's inbox for its return.
fn release_notice(released: &[Task]) -> MessageDraft {
    let titles: Vec<String> = released.iter().map(|t| format!("'{}'", t.title)).collect();
    let subject = match released {
        [only] => format!("Released: {}", only.title),
        _ => format!("Released: {} queued tasks", released.len()),
    };
    MessageDraft {
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
