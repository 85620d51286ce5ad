//! `Dispatcher`: owns the action outbox once its rows are written. The owner whose change caused a side
//! effect writes the row in the same journal batch as the change and hands it over after the commit
//! ([`OutboxSignal`] or [`Deliver`]); the dispatcher delivers it, records each attempt, retries failures with
//! backoff and jitter until `MC_OUTBOX_MAX_ATTEMPTS`, and at boot resumes every row still pending.
//!
//! It never holds its mailbox while a delivery runs: each attempt is a spawned future, and a row in flight is
//! never attempted twice at once. Agent messages are delivered in-process (the directory and the recipient's
//! actor); webhooks and pages go over HTTP with a per-attempt timeout. [`Deliver`] replies once the in-process
//! deliveries are done, without waiting for any HTTP call, so a firing's alerts are in the inboxes when a tick
//! returns while a webhook that never answers delays nothing.

mod delivery;
pub mod webhook;

use super::directory::AgentDirectory;
use super::{reply_now, Deps};
use crate::domain::outbox::{OutboxItem, OutboxStatus};
use crate::domain::query::{Page, PageRequest};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::store::{outbox_queries, WriteOp};
use actix::fut::{self, ActorFutureExt};
use actix::prelude::*;
use delivery::Courier;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How many due rows one round takes from the store.
const ROUND_SIZE: i64 = 200;
/// How often the dispatcher looks whether a retry has fallen due (real time; the due times are on the
/// injected clock).
const POLL_PERIOD: Duration = Duration::from_secs(1);

/// Owners hand committed rows to the dispatcher through this, without needing its address.
#[derive(Clone)]
pub struct OutboxSignal(mpsc::UnboundedSender<Vec<OutboxItem>>);

impl OutboxSignal {
    pub fn channel() -> (OutboxSignal, mpsc::UnboundedReceiver<Vec<OutboxItem>>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (OutboxSignal(sender), receiver)
    }

    /// Rows just committed: deliver them now. Dropped silently when the dispatcher has stopped (the rows
    /// are pending in the store and resumed at the next start).
    pub fn committed(&self, items: Vec<OutboxItem>) {
        if !items.is_empty() {
            let _ = self.0.send(items);
        }
    }
}

pub struct Dispatcher {
    deps: Deps,
    courier: Courier,
    /// Rows whose attempt is under way, each with the callers waiting for its outcome (a round may start an
    /// attempt on a row that a `Deliver` then asks for: the caller waits for that attempt, not a second one).
    in_flight: HashMap<String, Vec<oneshot::Sender<OutboxItem>>>,
    /// Callers of [`Settle`] waiting for the last attempt in flight to finish.
    settled: Vec<oneshot::Sender<()>>,
    /// When the earliest pending row falls due, as last seen; `None` when nothing is pending.
    next_due: Option<i64>,
}

impl Dispatcher {
    pub fn start(
        deps: Deps,
        directory: Addr<AgentDirectory>,
        signals: mpsc::UnboundedReceiver<Vec<OutboxItem>>,
    ) -> Addr<Dispatcher> {
        let courier = Courier::new(deps.clone(), directory);
        Dispatcher::create(move |ctx| {
            ctx.add_stream(tokio_stream_of(signals));
            Dispatcher {
                deps,
                courier,
                in_flight: HashMap::new(),
                settled: Vec::new(),
                // Whatever a crash left pending is due at once.
                next_due: Some(i64::MIN),
            }
        })
    }

    fn enabled(&self) -> bool {
        self.deps.escalation.dispatch
    }

    /// Starts an attempt for each row not already in flight and not yet delivered. The returned future
    /// resolves with the rows after the in-process attempts (and, with `wait_for_http`, the HTTP ones too);
    /// the others go on in the background.
    fn attempt(
        &mut self,
        items: Vec<OutboxItem>,
        wait_for_http: bool,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Vec<OutboxItem>> {
        let mut waited: Vec<ResponseActFuture<Self, OutboxItem>> = Vec::new();
        let mut settled = Vec::new();
        for item in items {
            if !self.enabled() || item.status() != OutboxStatus::Pending {
                settled.push(item);
                continue;
            }
            let over_http = self.courier.goes_over_http(&item);
            if let Some(waiters) = self.in_flight.get_mut(&item.id) {
                if over_http && !wait_for_http {
                    settled.push(item);
                } else {
                    let (waiter, outcome) = oneshot::channel();
                    waiters.push(waiter);
                    waited.push(Box::pin(fut::wrap_future(async move { outcome.await.unwrap_or(item) })));
                }
                continue;
            }
            self.in_flight.insert(item.id.clone(), Vec::new());
            let attempt = self.courier.attempt(item);
            let finished = fut::wrap_future::<_, Self>(attempt).map(|item: OutboxItem, dispatcher: &mut Self, _| {
                for waiter in dispatcher.in_flight.remove(&item.id).unwrap_or_default() {
                    let _ = waiter.send(item.clone());
                }
                if dispatcher.in_flight.is_empty() {
                    for waiter in dispatcher.settled.drain(..) {
                        let _ = waiter.send(());
                    }
                }
                if item.status() == OutboxStatus::Pending {
                    dispatcher.next_due = Some(
                        dispatcher
                            .next_due
                            .map_or(item.next_attempt_at, |d| d.min(item.next_attempt_at)),
                    );
                }
                item
            });
            if over_http && !wait_for_http {
                ctx.spawn(finished.map(|_, _, _| ()));
            } else {
                waited.push(Box::pin(finished));
            }
        }
        Box::pin(
            fut::wrap_future::<_, Self>(async {})
                .then(move |(), _, _| join_all_actor(waited))
                .map(move |mut delivered, _, _| {
                    delivered.extend(settled);
                    delivered
                }),
        )
    }
}

impl Actor for Dispatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(4096);
        if !self.enabled() {
            return;
        }
        ctx.run_interval(POLL_PERIOD, |dispatcher, ctx| {
            let now = dispatcher.deps.now();
            if dispatcher.next_due.is_some_and(|due| due <= now) {
                ctx.notify(DispatchDue { wait_for_http: false });
            }
        });
    }
}

/// Joins actor futures of the same actor, in order.
fn join_all_actor<A: Actor, T: 'static>(futures: Vec<ResponseActFuture<A, T>>) -> ResponseActFuture<A, Vec<T>> {
    let mut all: ResponseActFuture<A, Vec<T>> = Box::pin(fut::ready(Vec::new()));
    for next in futures {
        all = Box::pin(all.then(move |mut done, _, _| {
            next.map(move |value, _, _| {
                done.push(value);
                done
            })
        }));
    }
    all
}

fn tokio_stream_of(
    mut receiver: mpsc::UnboundedReceiver<Vec<OutboxItem>>,
) -> impl futures_util::Stream<Item = Vec<OutboxItem>> {
    futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

impl StreamHandler<Vec<OutboxItem>> for Dispatcher {
    fn handle(&mut self, items: Vec<OutboxItem>, ctx: &mut Context<Self>) {
        let attempt = self.attempt(items, false, ctx);
        ctx.spawn(attempt.map(|_, _, _| ()));
    }

    /// The signal outlives every owner; its end only means the runtime is stopping.
    fn finished(&mut self, _: &mut Context<Self>) {}
}

/// Rows just committed by the caller: deliver them now. Replies with the rows after the in-process
/// deliveries (webhooks and pages go on in the background, still pending in the reply).
#[derive(Message)]
#[rtype(result = "Vec<OutboxItem>")]
pub struct Deliver {
    pub items: Vec<OutboxItem>,
}

impl Handler<Deliver> for Dispatcher {
    type Result = ResponseActFuture<Self, Vec<OutboxItem>>;

    fn handle(&mut self, msg: Deliver, ctx: &mut Context<Self>) -> Self::Result {
        self.attempt(msg.items, false, ctx)
    }
}

/// One round: every row due now. `wait_for_http` makes the reply wait for the webhooks too (tests and
/// simulations that step a manual clock); the timer's rounds never wait.
#[derive(Message)]
#[rtype(result = "AppResult<usize>")]
pub struct DispatchDue {
    pub wait_for_http: bool,
}

impl Handler<DispatchDue> for Dispatcher {
    type Result = ResponseActFuture<Self, AppResult<usize>>;

    fn handle(&mut self, msg: DispatchDue, _: &mut Context<Self>) -> Self::Result {
        if !self.enabled() {
            return reply_now(Ok(0));
        }
        let store = self.deps.store.clone();
        let now = self.deps.now();
        // Seen now; a row that stays pending moves it forward again below.
        self.next_due = None;
        let due = async move {
            store
                .read(move |conn| {
                    let due = outbox_queries::due(conn, now, ROUND_SIZE)?;
                    let next = outbox_queries::next_due_at(conn)?;
                    Ok((due, next))
                })
                .await
                .map_err(AppError::store)
        };
        Box::pin(
            fut::wrap_future::<_, Self>(due).then(move |found, dispatcher: &mut Self, ctx| {
                let (due, next) = match found {
                    Ok(found) => found,
                    Err(e) => {
                        dispatcher.next_due = Some(now);
                        return reply_now(Err(e));
                    }
                };
                // A full round leaves more due rows behind: look again at the next poll.
                let next = if due.len() as i64 >= ROUND_SIZE {
                    Some(now)
                } else {
                    next
                };
                dispatcher.next_due = match (dispatcher.next_due, next) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                let count = due.len();
                Box::pin(
                    dispatcher
                        .attempt(due, msg.wait_for_http, ctx)
                        .map(move |_, _, _| Ok(count)),
                )
            }),
        )
    }
}

/// Waits until nothing is in flight, after a round of the rows due now, HTTP ones included: everything
/// written so far has had its attempt. For tests and simulations that step a manual clock.
#[derive(Message)]
#[rtype(result = "AppResult<()>")]
pub struct Settle;

impl Handler<Settle> for Dispatcher {
    type Result = ResponseActFuture<Self, AppResult<()>>;

    fn handle(&mut self, _: Settle, ctx: &mut Context<Self>) -> Self::Result {
        let round = <Self as Handler<DispatchDue>>::handle(self, DispatchDue { wait_for_http: true }, ctx);
        Box::pin(round.then(|done, dispatcher: &mut Self, _| {
            if let Err(e) = done {
                return reply_now(Err(e));
            }
            if dispatcher.in_flight.is_empty() {
                return reply_now(Ok(()));
            }
            let (waiter, idle) = oneshot::channel();
            dispatcher.settled.push(waiter);
            Box::pin(fut::wrap_future(async move {
                idle.await.map_err(|_| AppError::internal("the dispatcher stopped"))
            }))
        }))
    }
}

/// An operator's retry: the row gets a fresh set of attempts, the first made at once. Replies with the row
/// after that attempt.
#[derive(Message)]
#[rtype(result = "AppResult<OutboxItem>")]
pub struct Retry {
    pub id: String,
}

impl Handler<Retry> for Dispatcher {
    type Result = ResponseActFuture<Self, AppResult<OutboxItem>>;

    fn handle(&mut self, msg: Retry, _: &mut Context<Self>) -> Self::Result {
        let (store, journal, now) = (self.deps.store.clone(), self.deps.journal.clone(), self.deps.now());
        let id = msg.id.clone();
        let revive = async move {
            let item = store
                .read(move |conn| outbox_queries::by_id(conn, &id))
                .await
                .map_err(AppError::store)?
                .ok_or_else(|| {
                    AppError::new(
                        ErrorCode::OutboxItemNotFound,
                        format!("no outbox row with id {}", msg.id),
                    )
                })?;
            if let Some(at) = item.delivered_at {
                return Err(AppError::new(
                    ErrorCode::AlreadyDelivered,
                    format!("outbox row {} was delivered at {at}", item.id),
                )
                .with_details(serde_json::json!({ "deliveredAt": at })));
            }
            let item = item.revived(now);
            journal
                .commit(vec![WriteOp::update_outbox(&item)])
                .await
                .map_err(AppError::store)?;
            Ok(item)
        };
        Box::pin(
            fut::wrap_future::<_, Self>(revive).then(|revived, dispatcher: &mut Self, ctx| match revived {
                Err(e) => reply_now(Err(e)),
                Ok(item) => Box::pin(dispatcher.attempt(vec![item], true, ctx).map(|mut items, _, _| {
                    items
                        .pop()
                        .map(OutboxItem::redacted)
                        .ok_or_else(|| AppError::internal("the retried row went missing"))
                })),
            }),
        )
    }
}

/// `GET /api/outbox`: rows in one state (or all), newest first, header values masked.
#[derive(Message)]
#[rtype(result = "AppResult<Page<OutboxItem>>")]
pub struct ListOutbox {
    pub status: Option<OutboxStatus>,
    pub page: PageRequest,
}

impl Handler<ListOutbox> for Dispatcher {
    type Result = ResponseFuture<AppResult<Page<OutboxItem>>>;

    fn handle(&mut self, msg: ListOutbox, _: &mut Context<Self>) -> Self::Result {
        let store = self.deps.store.clone();
        Box::pin(async move {
            let page = store
                .read(move |conn| outbox_queries::list(conn, msg.status, &msg.page))
                .await
                .map_err(AppError::store)?;
            Ok(Page {
                items: page.items.into_iter().map(OutboxItem::redacted).collect(),
                next_cursor: page.next_cursor,
            })
        })
    }
}

/// `GET /api/outbox/{id}`.
#[derive(Message)]
#[rtype(result = "AppResult<OutboxItem>")]
pub struct GetOutboxItem {
    pub id: String,
}

impl Handler<GetOutboxItem> for Dispatcher {
    type Result = ResponseFuture<AppResult<OutboxItem>>;

    fn handle(&mut self, msg: GetOutboxItem, _: &mut Context<Self>) -> Self::Result {
        let store = self.deps.store.clone();
        Box::pin(async move {
            let id = msg.id.clone();
            store
                .read(move |conn| outbox_queries::by_id(conn, &id))
                .await
                .map_err(AppError::store)?
                .map(OutboxItem::redacted)
                .ok_or_else(|| {
                    AppError::new(
                        ErrorCode::OutboxItemNotFound,
                        format!("no outbox row with id {}", msg.id),
                    )
                })
        })
    }
}

/// Stops the dispatcher (the runtime is stopping): no more rounds, and a later runtime on the same store is
/// the only one delivering its rows.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopDispatcher;

impl Handler<StopDispatcher> for Dispatcher {
    type Result = ();

    fn handle(&mut self, _: StopDispatcher, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// Pending and dead rows, for `/metrics`.
#[derive(Message)]
#[rtype(result = "AppResult<(i64, i64)>")]
pub struct OutboxDepth;

impl Handler<OutboxDepth> for Dispatcher {
    type Result = ResponseFuture<AppResult<(i64, i64)>>;

    fn handle(&mut self, _: OutboxDepth, _: &mut Context<Self>) -> Self::Result {
        let store = self.deps.store.clone();
        Box::pin(async move { store.read(outbox_queries::depth).await.map_err(AppError::store) })
    }
}

/// The rows written for these escalations, for showing each action's delivery state.
#[derive(Message)]
#[rtype(result = "AppResult<Vec<OutboxItem>>")]
pub struct RowsOfEscalations {
    pub escalation_ids: Vec<String>,
}

impl Handler<RowsOfEscalations> for Dispatcher {
    type Result = ResponseFuture<AppResult<Vec<OutboxItem>>>;

    fn handle(&mut self, msg: RowsOfEscalations, _: &mut Context<Self>) -> Self::Result {
        let store = self.deps.store.clone();
        Box::pin(async move {
            store
                .read(move |conn| outbox_queries::for_escalations(conn, &msg.escalation_ids))
                .await
                .map_err(AppError::store)
        })
    }
}
