//! Typed publish/subscribe between actors. Owners publish after each committed change; subscribers (the
//! capacity registry and escalation scheduler of later issues, tests, simulations) receive every event in
//! publication order.

use crate::domain::{Agent, Task, TaskStatus};
use actix::prelude::*;

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
}

#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct TaskEvent {
    pub kind: TaskEventKind,
    /// The task after the change (for `Deleted`, as it was).
    pub task: Task,
    pub previous_status: Option<TaskStatus>,
    pub previous_assignee: Option<String>,
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

#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscribeTasks(pub Recipient<TaskEvent>);

#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscribeAgents(pub Recipient<AgentEvent>);

#[derive(Default)]
pub struct EventBus {
    task_subscribers: Vec<Recipient<TaskEvent>>,
    agent_subscribers: Vec<Recipient<AgentEvent>>,
}

impl Actor for EventBus {
    type Context = Context<Self>;
}

impl Handler<SubscribeTasks> for EventBus {
    type Result = ();
    fn handle(&mut self, msg: SubscribeTasks, _: &mut Context<Self>) {
        self.task_subscribers.push(msg.0);
    }
}

impl Handler<SubscribeAgents> for EventBus {
    type Result = ();
    fn handle(&mut self, msg: SubscribeAgents, _: &mut Context<Self>) {
        self.agent_subscribers.push(msg.0);
    }
}

impl Handler<TaskEvent> for EventBus {
    type Result = ();
    fn handle(&mut self, event: TaskEvent, _: &mut Context<Self>) {
        self.task_subscribers.retain(|s| s.connected());
        for subscriber in &self.task_subscribers {
            subscriber.do_send(event.clone());
        }
    }
}

impl Handler<AgentEvent> for EventBus {
    type Result = ();
    fn handle(&mut self, event: AgentEvent, _: &mut Context<Self>) {
        self.agent_subscribers.retain(|s| s.connected());
        for subscriber in &self.agent_subscribers {
            subscriber.do_send(event.clone());
        }
    }
}
