//! `EscalationScheduler`: the periodic work that keeps tasks and messages from going stale — the owner of
//! the escalation rules, their ladders and history, and the SLO breach records.
//!
//! On each tick it deletes expired messages (one activity row per sweep), escalates messages past their
//! acknowledgement deadline (the inbox owner marks each one escalated exactly once), runs the SLO monitor
//! over the open tasks past their deadline ([`slo_monitor`]), and evaluates every open task against the
//! escalation rules ([`engine`]). Each task event is checked at once against the SLO and the rules, and a
//! task's return to `ready` (its last blocker finished) becomes a `blocker_resolved` message to its
//! assignee. The built-in escalations (acknowledgement deadlines, SLO breaches) go through [`paths`] and are
//! written to the same history as rule firings.
//!
//! The scheduler keeps its own read model of the open tasks (from `TaskEvent`s) and of the agents' last
//! heartbeats (from `AgentEvent`s), seeded at boot, so a pass over every open task costs no message to the
//! board. It holds its mailbox while a tick, a check or a firing runs (actions included), so a request sent
//! after a tick sees everything the tick did. It waits on the directory, the agents, the board, the capacity
//! registry and the template library, none of which ever waits on it.

mod actions;
mod engine;
mod evaluate;
mod graph;
mod history;
pub(crate) mod paths;
mod rules;
mod slo_monitor;
mod takeovers;

pub use engine::PassReport;
pub use evaluate::{CheckAll, CheckReport, Evaluate, Evaluation, RuleMatch, WouldFire};
pub use history::{EscalationStats, Feedback, ListBreaches, ListEscalations, Statistics};
pub use rules::{CreateRule, DeleteRule, GetRule, ListRules, UpdateRule};

use super::capacity::CapacityRegistry;
use super::directory::messages::{EscalateOverdue, ForgetMessages};
use super::directory::AgentDirectory;
use super::dispatcher::Deliver;
use super::dispatcher::Dispatcher;
use super::events::{AgentEvent, AgentEventKind, TaskEvent, TaskEventKind};
use super::task_board::messages::PastDeadline;
use super::task_board::TaskBoard;
use super::templates::TemplateLibrary;
use super::{and_then, reply_now, Deps, EventBus};
use crate::domain::escalation::{Escalation, EscalationRule};
use crate::domain::slo::{BreachKind, SloBreach};
use crate::domain::{Activity, ActivityKind, Agent, Principal, Task};
use crate::error::{AppError, AppResult};
use crate::ids::new_id;
use crate::observability;
use crate::store::{message_queries, WriteOp};
use actix::fut::{self, ActorFutureExt};
use actix::prelude::*;
use engine::Ladders;
use std::collections::HashMap;

/// Name and trigger of the built-in escalation of a message past its acknowledgement deadline.
pub const ACK_DEADLINE: &str = "ack_deadline";
/// Name and trigger of the built-in escalation of an SLO breach.
pub const SLO_BREACH: &str = "slo_breach";

pub struct EscalationScheduler {
    deps: Deps,
    peers: actions::Peers,
    /// Breach kinds already recorded, per open task.
    breaches: HashMap<String, Vec<BreachKind>>,
    rules: Vec<EscalationRule>,
    /// The open tasks, by id.
    tasks: HashMap<String, Task>,
    /// Each agent's last heartbeat.
    heartbeats: HashMap<String, i64>,
    /// The dependency edges between open tasks and each agent's open tasks.
    graph: graph::TaskGraph,
    /// When each task was last taken from a silent assignee (the ping-pong guard).
    takeovers: takeovers::SilentTakeovers,
    ladders: Ladders,
    /// Open `slo_breach` escalations per task; they resolve when the task finishes.
    slo_rungs: HashMap<String, Vec<String>>,
    /// Open `ack_deadline` escalations, message → escalation; they resolve once the message is acknowledged
    /// or deleted.
    ack_rungs: HashMap<String, String>,
}

/// What the scheduler rehydrates from.
pub struct SchedulerBoot {
    /// The `(task, kind)` breaches already stored for open tasks.
    pub breaches: Vec<(String, BreachKind)>,
    pub rules: Vec<EscalationRule>,
    /// Every unresolved escalation.
    pub open_escalations: Vec<Escalation>,
    pub open_tasks: Vec<Task>,
    pub agents: Vec<Agent>,
    /// Every dependency edge, `(task, blocker)`.
    pub dependencies: Vec<(String, String)>,
    /// The recent `no_heartbeat` firings, resolved or not, to remember which tasks were taken from a silent
    /// assignee.
    pub silent_firings: Vec<Escalation>,
}

/// The actors the scheduler talks to.
pub struct Neighbours {
    pub directory: Addr<AgentDirectory>,
    pub board: Addr<TaskBoard>,
    pub capacity: Addr<CapacityRegistry>,
    pub templates: Addr<TemplateLibrary>,
}

impl EscalationScheduler {
    pub fn start(
        deps: Deps,
        neighbours: Neighbours,
        dispatcher: Addr<Dispatcher>,
        boot: SchedulerBoot,
        events: &EventBus,
    ) -> Addr<Self> {
        let mut breaches: HashMap<String, Vec<BreachKind>> = HashMap::new();
        for (task, kind) in boot.breaches {
            breaches.entry(task).or_default().push(kind);
        }
        let mut slo_rungs: HashMap<String, Vec<String>> = HashMap::new();
        let mut ack_rungs = HashMap::new();
        for e in &boot.open_escalations {
            match (e.rule_id.is_none(), e.rule_name.as_str(), &e.task_id, &e.message_id) {
                (true, SLO_BREACH, Some(task), _) => slo_rungs.entry(task.clone()).or_default().push(e.id.clone()),
                (true, ACK_DEADLINE, _, Some(message)) => {
                    ack_rungs.insert(message.clone(), e.id.clone());
                }
                _ => {}
            }
        }
        let peers = actions::Peers {
            directory: neighbours.directory,
            board: neighbours.board,
            capacity: neighbours.capacity,
            templates: neighbours.templates,
            dispatcher,
            webhook_url: deps.escalation.webhook_url.clone(),
        };
        let graph = graph::TaskGraph::new(&boot.open_tasks, boot.dependencies);
        let addr = EscalationScheduler {
            peers,
            breaches,
            graph,
            takeovers: takeovers::SilentTakeovers::from_history(&boot.silent_firings),
            rules: boot.rules,
            tasks: boot.open_tasks.into_iter().map(|t| (t.id.clone(), t)).collect(),
            heartbeats: boot
                .agents
                .iter()
                .filter_map(|a| a.last_heartbeat_at.map(|at| (a.id.clone(), at)))
                .collect(),
            ladders: Ladders::from_open(&boot.open_escalations),
            slo_rungs,
            ack_rungs,
            deps,
        }
        .start();
        events.subscribe_tasks(addr.clone().recipient());
        events.subscribe_agents(addr.clone().recipient());
        addr
    }

    fn board(&self) -> &Addr<TaskBoard> {
        &self.peers.board
    }

    fn directory(&self) -> &Addr<AgentDirectory> {
        &self.peers.directory
    }
}

impl Actor for EscalationScheduler {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(4096);
    }
}

/// What one tick of the scheduler did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Messages escalated for a missed acknowledgement deadline.
    pub escalated_message_ids: Vec<String>,
    /// Expired messages deleted.
    pub expired_messages: usize,
    /// SLO breaches recorded.
    pub slo_breaches: Vec<SloBreach>,
    /// Escalations recorded: rule firings, acknowledgement deadlines and SLO breaches.
    pub escalations: Vec<Escalation>,
    /// Escalations resolved because their task or message left the triggering condition.
    pub resolved_escalations: usize,
}

#[derive(Message)]
#[rtype(result = "AppResult<SweepReport>")]
pub struct Tick;

impl Handler<Tick> for EscalationScheduler {
    type Result = AtomicResponse<Self, AppResult<SweepReport>>;

    fn handle(&mut self, _: Tick, _: &mut Context<Self>) -> Self::Result {
        let deps = self.deps.clone();
        let (directory, board) = (self.directory().clone(), self.board().clone());
        let dispatcher = self.peers.dispatcher.clone();
        let messages = fut::wrap_future::<_, Self>(sweep_messages(deps, directory, board, dispatcher));
        let with_acks = messages.map(|swept, scheduler: &mut Self, _| {
            let report = swept?;
            for e in &report.escalations {
                if let Some(message) = &e.message_id {
                    scheduler.ack_rungs.insert(message.clone(), e.id.clone());
                }
            }
            Ok(report)
        });
        let with_breaches = and_then(Box::pin(with_acks), |report: SweepReport, scheduler: &mut Self, _| {
            let (board, now) = (scheduler.board().clone(), scheduler.deps.now());
            let past_deadline = fut::wrap_future::<_, Self>(async move { board.send(PastDeadline { now }).await });
            Box::pin(past_deadline.then(
                move |open, scheduler: &mut Self, _| -> ResponseActFuture<Self, AppResult<SweepReport>> {
                    let open = match open {
                        Ok(open) => open,
                        Err(e) => return reply_now(Err(AppError::mailbox(e))),
                    };
                    let found = scheduler.find_breaches(open, now);
                    Box::pin(scheduler.record_breaches(found).map(move |recorded, _, _| {
                        let recorded = recorded?;
                        let mut report = report;
                        report.slo_breaches = recorded.breaches;
                        report.escalations.extend(recorded.escalations);
                        Ok(report)
                    }))
                },
            ))
        });
        let with_rules = and_then(with_breaches, |report: SweepReport, scheduler: &mut Self, _| {
            let pass = scheduler.plan(scheduler.tasks.values(), scheduler.deps.now());
            Box::pin(scheduler.commit_pass(pass).map(move |pass, _, _| {
                let pass = pass?;
                let mut report = report;
                report.escalations.extend(pass.fired);
                report.resolved_escalations += pass.resolved;
                Ok(report)
            }))
        });
        let with_resolved_acks = and_then(with_rules, |report: SweepReport, scheduler: &mut Self, _| {
            Box::pin(scheduler.resolve_acknowledged().map(move |resolved, _, _| {
                let mut report = report;
                report.resolved_escalations += resolved?;
                Ok(report)
            }))
        });
        AtomicResponse::new(with_resolved_acks)
    }
}

/// The message half of a tick: expiry, then the acknowledgement deadlines. Each inbox owner commits its
/// overdue messages' `escalatedAt` with their `ack_deadline` escalations and alerts; here each message's
/// task is raised and the alerts are handed to the dispatcher.
async fn sweep_messages(
    deps: Deps,
    directory: Addr<AgentDirectory>,
    board: Addr<TaskBoard>,
    dispatcher: Addr<Dispatcher>,
) -> AppResult<SweepReport> {
    let expired_messages = expire_messages(&deps, &directory).await?;
    let overdue = directory.send(EscalateOverdue).await.map_err(AppError::mailbox)??;
    let mut escalated_message_ids = Vec::new();
    let mut escalations = Vec::new();
    let mut outbox = Vec::new();
    let mut raised_ops = Vec::new();
    for inbox in overdue {
        for (message, mut escalation) in inbox.messages.iter().zip(inbox.escalations) {
            if let Some(task_id) = &message.task_id {
                let raised = paths::raise_task(&board, task_id, &escalation.reason).await;
                for action in &mut escalation.actions {
                    action.detail.clone_from(&raised);
                }
                raised_ops.push(WriteOp::record_actions(&escalation.id, &escalation.actions));
            }
            observability::escalation_recorded(&escalation.rule_name);
            escalated_message_ids.push(message.id.clone());
            escalations.push(escalation);
        }
        outbox.extend(inbox.outbox);
    }
    // The raise happened after the inbox's commit; a crash in between loses only this line of the record.
    if let Err(e) = deps.journal.commit(raised_ops).await {
        log::warn!("the task raises of acknowledgement escalations were not recorded: {e}");
    }
    if !outbox.is_empty() {
        match dispatcher.send(Deliver { items: outbox }).await {
            Ok(rows) => {
                for e in &mut escalations {
                    crate::domain::outbox::overlay(&mut e.actions, &rows);
                }
            }
            Err(e) => log::warn!("acknowledgement alerts not handed to the dispatcher now ({e}); it resumes them"),
        }
    }
    Ok(SweepReport {
        escalated_message_ids,
        expired_messages,
        escalations,
        ..SweepReport::default()
    })
}

/// Deletes every message past its expiry, with one activity row for the sweep, and tells the inboxes.
async fn expire_messages(deps: &Deps, directory: &Addr<AgentDirectory>) -> AppResult<usize> {
    let now = deps.now();
    let expired = deps
        .store
        .read(move |conn| message_queries::expired_messages(conn, now))
        .await
        .map_err(AppError::store)?;
    if expired.is_empty() {
        return Ok(0);
    }
    let count = expired.len();
    let recipients: std::collections::BTreeSet<&String> = expired.iter().map(|(_, to)| to).collect();
    let activity = Activity::new(
        new_id(),
        ActivityKind::MessagesExpired,
        &Principal::System,
        format!("{count} expired messages deleted from {} inboxes", recipients.len()),
        now,
    )
    .change(serde_json::Value::Null, serde_json::json!({ "deleted": count }));
    let ops = vec![
        WriteOp::DeleteMessages {
            ids: expired.iter().map(|(id, _)| id.clone()).collect(),
        },
        WriteOp::activity(&activity),
    ];
    deps.journal.commit(ops).await.map_err(AppError::store)?;
    directory.do_send(ForgetMessages {
        messages: expired.into_iter().map(|(id, to)| (to, id)).collect(),
    });
    Ok(count)
}

impl EscalationScheduler {
    /// Resolves the acknowledgement-deadline escalations whose message has been acknowledged (or deleted)
    /// since. Replies with how many.
    fn resolve_acknowledged(&mut self) -> ResponseActFuture<Self, AppResult<usize>> {
        if self.ack_rungs.is_empty() {
            return reply_now(Ok(0));
        }
        let ids: Vec<String> = self.ack_rungs.keys().cloned().collect();
        let (store, journal, now) = (self.deps.store.clone(), self.deps.journal.clone(), self.deps.now());
        let rungs = self.ack_rungs.clone();
        let settled = async move {
            let waiting = store
                .read(move |conn| message_queries::unacknowledged(conn, &ids))
                .await
                .map_err(AppError::store)?;
            let settled: Vec<String> = rungs.keys().filter(|m| !waiting.contains(m)).cloned().collect();
            if !settled.is_empty() {
                let ids = settled.iter().filter_map(|m| rungs.get(m).cloned()).collect();
                journal
                    .commit(vec![WriteOp::ResolveEscalations { ids, at: now }])
                    .await
                    .map_err(AppError::store)?;
            }
            Ok::<_, AppError>(settled)
        };
        Box::pin(fut::wrap_future::<_, Self>(settled).map(|settled, scheduler, _| {
            let settled = settled?;
            for message in &settled {
                scheduler.ack_rungs.remove(message);
            }
            Ok(settled.len())
        }))
    }
}

impl Handler<TaskEvent> for EscalationScheduler {
    type Result = ();

    /// Keeps the read model, then checks the task at once: SLO breaches, then the rules (or, for a task
    /// that finished or was deleted, the resolution of everything open for it).
    fn handle(&mut self, event: TaskEvent, ctx: &mut Context<Self>) {
        let now = self.deps.now();
        let task_id = event.task.id.clone();
        let gone = event.kind == TaskEventKind::Deleted || event.task.status.is_terminal();
        self.graph.observe(&event, self.tasks.get(&task_id));
        if gone {
            self.tasks.remove(&task_id);
        } else {
            self.tasks.insert(task_id.clone(), event.task.clone());
        }
        let found = if event.kind == TaskEventKind::Deleted {
            self.breaches.remove(&task_id);
            Vec::new()
        } else {
            self.find_breaches([event.task], now)
        };
        let pass = if gone {
            self.plan_finished(&task_id)
        } else {
            self.plan(self.tasks.get(&task_id), now)
        };
        if found.is_empty() && pass.is_empty() {
            return;
        }
        let work = self
            .record_breaches(found)
            .then(move |recorded, scheduler: &mut Self, _| {
                if let Err(e) = recorded {
                    log::warn!("SLO breach of task {task_id} not recorded: {e}");
                }
                scheduler.commit_pass(pass).map(move |evaluated, _, _| {
                    if let Err(e) = evaluated {
                        log::warn!("escalation rules for task {task_id} not applied: {e}");
                    }
                })
            });
        ctx.wait(work);
    }
}

impl Handler<AgentEvent> for EscalationScheduler {
    type Result = ();

    fn handle(&mut self, event: AgentEvent, _: &mut Context<Self>) {
        match (event.kind, event.agent.last_heartbeat_at) {
            (AgentEventKind::Deleted, _) => {
                self.heartbeats.remove(&event.agent.id);
            }
            (_, Some(at)) => {
                self.heartbeats.insert(event.agent.id, at);
            }
            (_, None) => {}
        }
    }
}
