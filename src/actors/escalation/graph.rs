//! The part of the scheduler's read model that the board owns and the triggers need beyond one task: the
//! dependency edges between open tasks (for the chain of a blocked task) and each agent's open tasks (for
//! where a queued task stands in its assignee's queue). Seeded at boot from the store like the rest of the
//! read model and kept from `TaskEvent`s; the board stays the owner.

use crate::actors::events::{TaskEvent, TaskEventKind};
use crate::domain::dependency::BlockedBy;
use crate::domain::Task;
use std::collections::{BTreeSet, HashMap, HashSet};

#[derive(Debug, Default)]
pub(super) struct TaskGraph {
    /// Open task → the open tasks that block it. A finished blocker no longer holds anything up, so its
    /// edges are dropped (a task never reopens).
    blocked_by: BlockedBy,
    /// Open blocker → the open tasks it blocks, to drop the edges of a blocker that finishes.
    blocks: HashMap<String, HashSet<String>>,
    /// Agent → its open tasks (ids), in a stable order.
    queues: HashMap<String, BTreeSet<String>>,
}

impl TaskGraph {
    /// The graph over the open tasks: edges with a finished end are left out.
    pub(super) fn new<'a>(open_tasks: impl IntoIterator<Item = &'a Task>, edges: Vec<(String, String)>) -> TaskGraph {
        let mut graph = TaskGraph::default();
        let mut open = HashSet::new();
        for task in open_tasks {
            open.insert(task.id.clone());
            graph.enqueue(task);
        }
        for (task, blocker) in edges {
            if open.contains(&task) && open.contains(&blocker) {
                graph.link(task, blocker);
            }
        }
        graph
    }

    /// Keeps the graph from one event; `before` is the task as the read model held it until now.
    pub(super) fn observe(&mut self, event: &TaskEvent, before: Option<&Task>) {
        let task = &event.task;
        if let Some(before) = before {
            self.dequeue(before);
        }
        let gone = event.kind == TaskEventKind::Deleted || task.status.is_terminal();
        if gone {
            self.forget(&task.id);
            return;
        }
        self.enqueue(task);
        match (event.kind, &event.blocker_id) {
            (TaskEventKind::DependencyAdded, Some(blocker)) => self.link(task.id.clone(), blocker.clone()),
            (TaskEventKind::DependencyRemoved, Some(blocker)) => self.unlink(&task.id, blocker),
            _ => {}
        }
    }

    pub(super) fn blocked_by(&self) -> &BlockedBy {
        &self.blocked_by
    }

    /// The ids of the agent's open tasks.
    pub(super) fn queue_of(&self, agent: &str) -> impl Iterator<Item = &String> {
        self.queues.get(agent).into_iter().flatten()
    }

    fn enqueue(&mut self, task: &Task) {
        if let Some(agent) = &task.assignee_id {
            self.queues.entry(agent.clone()).or_default().insert(task.id.clone());
        }
    }

    fn dequeue(&mut self, task: &Task) {
        let Some(agent) = &task.assignee_id else {
            return;
        };
        if let Some(queue) = self.queues.get_mut(agent) {
            queue.remove(&task.id);
            if queue.is_empty() {
                self.queues.remove(agent);
            }
        }
    }

    fn link(&mut self, task: String, blocker: String) {
        self.blocks.entry(blocker.clone()).or_default().insert(task.clone());
        self.blocked_by.entry(task).or_default().insert(blocker);
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

    fn forget(&mut self, id: &str) {
        for blocker in self.blocked_by.get(id).cloned().unwrap_or_default() {
            self.unlink(id, &blocker);
        }
        for dependent in self.blocks.get(id).cloned().unwrap_or_default() {
            self.unlink(&dependent, id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::task::{create, TaskDraft};
    use crate::domain::TaskStatus;

    fn task(id: &str, assignee: Option<&str>) -> Task {
        let draft: TaskDraft = serde_json::from_value(serde_json::json!({"title": id})).unwrap();
        let mut t = create(draft, id.into(), "admin".into(), 0).unwrap();
        t.assignee_id = assignee.map(str::to_string);
        t
    }

    fn event(kind: TaskEventKind, task: &Task, blocker: Option<&str>) -> TaskEvent {
        TaskEvent {
            kind,
            task: task.clone(),
            previous_status: None,
            previous_assignee: None,
            blocker_id: blocker.map(str::to_string),
            at: 0,
        }
    }

    #[test]
    fn edges_follow_the_events_and_finished_tasks_leave_the_graph() {
        let (a, b, c) = (task("a", None), task("b", Some("x")), task("c", Some("x")));
        let edges = vec![("a".into(), "b".into()), ("a".into(), "done".into())];
        let mut graph = TaskGraph::new([&a, &b, &c], edges);
        assert_eq!(graph.blocked_by().get("a"), Some(&HashSet::from(["b".to_string()])));
        graph.observe(&event(TaskEventKind::DependencyAdded, &b, Some("c")), Some(&b));
        assert_eq!(
            crate::domain::escalation::upstream_of("a", graph.blocked_by()),
            ["b", "c"]
        );
        let mut finished = c.clone();
        finished.status = TaskStatus::Done;
        graph.observe(&event(TaskEventKind::StatusChanged, &finished, None), Some(&c));
        assert_eq!(crate::domain::escalation::upstream_of("a", graph.blocked_by()), ["b"]);
        assert_eq!(graph.queue_of("x").collect::<Vec<_>>(), ["b"]);
        graph.observe(&event(TaskEventKind::DependencyRemoved, &a, Some("b")), Some(&a));
        assert!(graph.blocked_by().is_empty());
        assert!(graph.blocks.is_empty());
    }

    #[test]
    fn queues_follow_assignments() {
        let t = task("t", Some("x"));
        let mut graph = TaskGraph::new([&t], Vec::new());
        let mut moved = t.clone();
        moved.assignee_id = Some("y".into());
        graph.observe(&event(TaskEventKind::Assigned, &moved, None), Some(&t));
        assert_eq!(graph.queue_of("x").count(), 0);
        assert_eq!(graph.queue_of("y").collect::<Vec<_>>(), ["t"]);
        graph.observe(&event(TaskEventKind::Deleted, &moved, None), Some(&moved));
        assert_eq!(graph.queue_of("y").count(), 0);
    }
}
