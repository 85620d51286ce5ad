//! Typed publish/subscribe between actors. Owners publish after each committed change; subscribers (the
//! capacity registry, the escalation scheduler, tests, simulations) receive every event in publication order.

use crate::domain::{Agent, Task, TaskStatus};
use actix::prelude::*;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskEventKind {
    Created,
    Updated,
    Assigned,
    StatusChanged,
    AttemptFailed,
    /// The task's last unfinished blocker finished and it went back to `ready`.
    Unblocked,
    /// An escalation raised the task's priority and escalation level.
    Escalated,
    Deleted,
    /// The task is now blocked by `blocker_id` (an edge added; its status may change in a later event).
    DependencyAdded,
    /// The task is no longer blocked by `blocker_id`.
    DependencyRemoved,
}

#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct TaskEvent {
    pub kind: TaskEventKind,
    /// The task after the change (for `Deleted`, as it was).
    pub task: Task,
    pub previous_status: Option<TaskStatus>,
    pub previous_assignee: Option<String>,
    /// The other end of the edge, for `DependencyAdded` and `DependencyRemoved`.
    pub blocker_id: Option<String>,
    pub at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentEventKind {
    Registered,
    Updated,
    Heartbeat,
    WentOffline,
    Deleted,
}

#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct AgentEvent {
    pub kind: AgentEventKind,
    pub agent: Agent,
    pub at: i64,
}

/// The subscriber lists. Publishing puts the event into every subscriber's mailbox before it returns, so
/// an owner that publishes before replying guarantees that any request sent after its reply is queued
/// behind the event: a client that reads the capacity registry right after an assignment sees it.
#[derive(Clone, Default)]
pub struct EventBus {
    subscribers: Arc<Mutex<Subscribers>>,
}

#[derive(Default)]
struct Subscribers {
    tasks: Vec<Recipient<TaskEvent>>,
    agents: Vec<Recipient<AgentEvent>>,
}

impl EventBus {
    pub fn subscribe_tasks(&self, subscriber: Recipient<TaskEvent>) {
        self.lock().tasks.push(subscriber);
    }

    pub fn subscribe_agents(&self, subscriber: Recipient<AgentEvent>) {
        self.lock().agents.push(subscriber);
    }

    pub fn publish_task(&self, event: TaskEvent) {
        let mut subscribers = self.lock();
        subscribers.tasks.retain(|s| s.connected());
        for subscriber in &subscribers.tasks {
            subscriber.do_send(event.clone());
        }
    }

    pub fn publish_agent(&self, event: AgentEvent) {
        let mut subscribers = self.lock();
        subscribers.agents.retain(|s| s.connected());
        for subscriber in &subscribers.agents {
            subscriber.do_send(event.clone());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Subscribers> {
        // A panic while holding the lock leaves the lists intact (pushes and retains only), so a poisoned
        // lock is still safe to use.
        self.subscribers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
