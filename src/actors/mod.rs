//! The actors. Each piece of live state has exactly one owner that serializes its changes:
//! an agent's profile belongs to its [`agent::AgentActor`], the id/name/token index to the
//! [`directory::AgentDirectory`], tasks and dependencies to the [`task_board::TaskBoard`], breach records to
//! the [`escalation::EscalationScheduler`]; the [`capacity::CapacityRegistry`] keeps a read model of both.
//!
//! Every write follows the same path: validate with a `domain` rule, commit through the [`Journal`], and only
//! then apply to memory, reply and publish. While its commit is in flight an owner holds its mailbox
//! (`AtomicResponse`), so two requests never validate against the same stale state.
//!
//! Deadlock rule: an owner may hold its mailbox while waiting on the journal, and the task board may also
//! hold it while asking the directory to resolve an agent. Agent actors hold theirs only while waiting on
//! the journal. Nothing ever holds its mailbox while waiting on the task board, so no cycle of waits can
//! form.

pub mod agent;
pub mod capacity;
pub mod directory;
pub mod dispatcher;
pub mod escalation;
pub mod events;
pub mod history;
pub mod task_board;
pub mod templates;

use crate::clock::SharedClock;
use crate::config::{EscalationConfig, MessagingConfig};
use crate::domain::capacity::CapacityLimits;
use crate::domain::slo::SloThresholds;
use crate::error::{AppError, AppResult};
use crate::store::{Journal, Store, WriteOp};
use actix::fut::{self, ActorFutureExt};
use actix::{Actor, AtomicResponse, ResponseActFuture};
use std::time::Duration;

pub use events::EventBus;

/// What every owner needs: the writer, the read pool, the clock and the event bus.
#[derive(Clone)]
pub struct Deps {
    pub journal: Journal,
    /// Hands committed outbox rows to the dispatcher.
    pub outbox: dispatcher::OutboxSignal,
    pub store: Store,
    pub clock: SharedClock,
    pub events: EventBus,
    pub heartbeat_timeout: Duration,
    pub messaging: MessagingConfig,
    pub capacity: CapacityLimits,
    pub slo: SloThresholds,
    pub escalation: EscalationConfig,
}

impl Deps {
    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }
}

/// Sends a request to an actor and flattens the mailbox error into the reply's error.
pub async fn ask<A, M, T>(addr: &actix::Addr<A>, msg: M) -> AppResult<T>
where
    A: Actor + actix::Handler<M>,
    A::Context: actix::dev::ToEnvelope<A, M>,
    M: actix::Message<Result = AppResult<T>> + Send + 'static,
    T: Send + 'static,
{
    request(addr, msg).await.map_err(AppError::mailbox)?
}

/// Sends a request to an actor and waits for the reply, counting it in the mailbox depth of the actor's kind
/// meanwhile (actix does not expose a mailbox's length). The mailbox error is left to the caller, for
/// requests whose failure means something else (an agent deleted while a long poll waited on it).
pub async fn request<A, M>(addr: &actix::Addr<A>, msg: M) -> Result<M::Result, actix::MailboxError>
where
    A: Actor + actix::Handler<M>,
    A::Context: actix::dev::ToEnvelope<A, M>,
    M: actix::Message + Send + 'static,
    M::Result: Send,
{
    let _waiting = crate::observability::InMailbox::enter::<A>();
    addr.send(msg).await
}

/// Commits `ops`, then runs `apply` on the actor's state; the actor's mailbox waits for both.
pub(crate) fn persist_then<A, T, F>(
    journal: &Journal,
    ops: Vec<WriteOp>,
    apply: F,
) -> ResponseActFuture<A, AppResult<T>>
where
    A: Actor,
    T: 'static,
    F: FnOnce(&mut A) -> AppResult<T> + 'static,
{
    let journal = journal.clone();
    Box::pin(
        fut::wrap_future::<_, A>(async move { journal.commit(ops).await }).map(move |committed, actor, _| {
            committed.map_err(AppError::store)?;
            apply(actor)
        }),
    )
}

/// A reply computed without any I/O, in the shape of an atomic response.
pub(crate) fn reply_now<A: Actor, T: 'static>(value: AppResult<T>) -> ResponseActFuture<A, AppResult<T>> {
    Box::pin(fut::ready(value))
}

/// Runs `next` on the value of `first` (with the actor), or passes `first`'s error on.
pub(crate) fn and_then<A, T, U, F>(
    first: ResponseActFuture<A, AppResult<T>>,
    next: F,
) -> ResponseActFuture<A, AppResult<U>>
where
    A: Actor,
    T: 'static,
    U: 'static,
    F: FnOnce(T, &mut A, &mut A::Context) -> ResponseActFuture<A, AppResult<U>> + 'static,
{
    Box::pin(first.then(move |value, actor, ctx| match value {
        Ok(value) => next(value, actor, ctx),
        Err(e) => reply_now(Err(e)),
    }))
}

pub(crate) fn atomic<A: Actor, T: 'static>(
    future: ResponseActFuture<A, AppResult<T>>,
) -> AtomicResponse<A, AppResult<T>> {
    AtomicResponse::new(future)
}
