//! `TaskBoard`: owns tasks, dependencies and the state machine. Every non-terminal task lives in memory; for
//! finished tasks the board keeps only id, status and title (enough for dependency questions) and reads the
//! rest from the store. Publishes a `TaskEvent` after each committed change.

mod handlers;
pub mod messages;
mod plan;
mod release;
mod slo;

use super::directory::AgentDirectory;
use super::Deps;
use crate::domain::dependency::BlockedBy;
use crate::domain::{Task, TaskStatus};
use crate::store::rows::DependencyRow;
use actix::prelude::*;
use messages::TaskRef;
use std::collections::{HashMap, HashSet};

pub use release::ReleaseQueuedTasks;

struct FinishedTask {
    status: TaskStatus,
    title: String,
}

pub struct TaskBoard {
    deps: Deps,
    directory: Option<Addr<AgentDirectory>>,
    open: HashMap<String, Task>,
    finished: HashMap<String, FinishedTask>,
    /// task → the tasks that block it.
    blocked_by: BlockedBy,
    /// blocker → the tasks it blocks.
    blocks: HashMap<String, HashSet<String>>,
}

impl TaskBoard {
    pub fn start(
        open_tasks: Vec<Task>,
        finished: Vec<(String, TaskStatus, String)>,
        dependencies: Vec<DependencyRow>,
        deps: Deps,
    ) -> Addr<TaskBoard> {
        let mut board = TaskBoard {
            deps,
            directory: None,
            open: open_tasks.into_iter().map(|t| (t.id.clone(), t)).collect(),
            finished: finished
                .into_iter()
                .map(|(id, status, title)| (id, FinishedTask { status, title }))
                .collect(),
            blocked_by: BlockedBy::new(),
            blocks: HashMap::new(),
        };
        for edge in dependencies {
            board.link(&edge.task_id, &edge.blocker_id);
        }
        board.start()
    }

    fn link(&mut self, task: &str, blocker: &str) {
        self.blocked_by
            .entry(task.to_string())
            .or_default()
            .insert(blocker.to_string());
        self.blocks
            .entry(blocker.to_string())
            .or_default()
            .insert(task.to_string());
    }

    fn unlink(&mut self, task: &str, blocker: &str) {
        if let Some(set) = self.blocked_by.get_mut(task) {
            set.remove(blocker);
            if set.is_empty() {
                self.blocked_by.remove(task);
            }
        }
        if let Some(set) = self.blocks.get_mut(blocker) {
            set.remove(task);
            if set.is_empty() {
                self.blocks.remove(blocker);
            }
        }
    }

    fn exists(&self, id: &str) -> bool {
        self.open.contains_key(id) || self.finished.contains_key(id)
    }

    fn status_of(&self, id: &str) -> Option<TaskStatus> {
        self.open
            .get(id)
            .map(|t| t.status)
            .or_else(|| self.finished.get(id).map(|f| f.status))
    }

    fn task_ref(&self, id: &str) -> Option<TaskRef> {
        if let Some(t) = self.open.get(id) {
            return Some(TaskRef {
                id: t.id.clone(),
                title: t.title.clone(),
                status: t.status,
            });
        }
        self.finished.get(id).map(|f| TaskRef {
            id: id.to_string(),
            title: f.title.clone(),
            status: f.status,
        })
    }

    fn refs(&self, ids: Option<&HashSet<String>>) -> Vec<TaskRef> {
        let mut refs: Vec<TaskRef> = ids.into_iter().flatten().filter_map(|id| self.task_ref(id)).collect();
        refs.sort_by(|a, b| a.id.cmp(&b.id));
        refs
    }

    /// The task's blockers that are not done, sorted.
    fn open_blockers(&self, id: &str) -> Vec<String> {
        let mut open: Vec<String> = self
            .blocked_by
            .get(id)
            .into_iter()
            .flatten()
            .filter(|b| self.status_of(b) != Some(TaskStatus::Done))
            .cloned()
            .collect();
        open.sort();
        open
    }

    fn detail_of(&self, task: Task) -> messages::TaskDetail {
        messages::TaskDetail {
            blocked_by: self.refs(self.blocked_by.get(&task.id)),
            blocks: self.refs(self.blocks.get(&task.id)),
            task,
        }
    }
}

impl Handler<messages::CountOpenTasks> for TaskBoard {
    type Result = MessageResult<messages::CountOpenTasks>;

    fn handle(&mut self, _: messages::CountOpenTasks, _: &mut Context<Self>) -> Self::Result {
        let mut counts: Vec<(TaskStatus, usize)> = TaskStatus::ALL
            .iter()
            .filter(|status| !status.is_terminal())
            .map(|&status| (status, 0))
            .collect();
        for task in self.open.values() {
            if let Some((_, n)) = counts.iter_mut().find(|(status, _)| *status == task.status) {
                *n += 1;
            }
        }
        MessageResult(counts)
    }
}

impl Actor for TaskBoard {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(4096);
    }
}
