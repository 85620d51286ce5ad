//! `AgentActor`: one per agent, the owner of that agent's profile, status and heartbeat, of the open part of
//! its inbox with the waiters that get new messages pushed, and of its send-rate window and remembered
//! idempotency keys.
//!
//! An agent actor waits (holding its mailbox) only on the journal, never on another actor: a send's first
//! hop runs without holding the sender's mailbox, and an acknowledgement's reply is committed by the
//! acknowledging actor and handed to the original sender as already stored.

mod handlers;
mod inbox;
pub mod messages;
mod messaging;
mod outbox;

use super::events::{AgentEvent, AgentEventKind};
use super::Deps;
use crate::domain::{Agent, Message};
use actix::prelude::*;
use inbox::Inbox;
use outbox::Outbox;

pub struct AgentActor {
    agent: Agent,
    inbox: Inbox,
    outbox: Outbox,
    deps: Deps,
}

/// What an agent actor starts from: its profile, its open messages and the idempotency keys it used in
/// the last 24 hours (key, message id, sent at).
pub struct AgentState {
    pub agent: Agent,
    pub open_messages: Vec<Message>,
    pub idempotency_keys: Vec<(String, String, i64)>,
}

impl AgentActor {
    /// Starts an actor for an agent that is already stored (registration or rehydration at boot).
    pub fn start(state: AgentState, deps: Deps) -> Addr<AgentActor> {
        AgentActor {
            agent: state.agent,
            inbox: Inbox::new(state.open_messages),
            outbox: Outbox::new(state.idempotency_keys),
            deps,
        }
        .start()
    }

    fn publish(&self, kind: AgentEventKind) {
        self.deps.events.publish_agent(AgentEvent {
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
