//! `AgentActor`: one per agent, the owner of that agent's profile, status and heartbeat. Later issues add
//! its inbox, send-rate window and the waiters that get messages pushed.

mod handlers;
pub mod messages;

use super::events::{AgentEvent, AgentEventKind};
use super::Deps;
use crate::domain::Agent;
use actix::prelude::*;

pub struct AgentActor {
    agent: Agent,
    deps: Deps,
}

impl AgentActor {
    /// Starts an actor for an agent that is already stored (registration or rehydration at boot).
    pub fn start(agent: Agent, deps: Deps) -> Addr<AgentActor> {
        AgentActor { agent, deps }.start()
    }

    fn publish(&self, kind: AgentEventKind) {
        self.deps.events.do_send(AgentEvent {
            kind,
            agent: self.agent.clone(),
            at: self.deps.now(),
        });
    }
}

impl Actor for AgentActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Requests wait in the mailbox rather than fail when an agent is busy committing.
        ctx.set_mailbox_capacity(256);
    }
}
