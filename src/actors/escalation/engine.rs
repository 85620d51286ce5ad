//! The rules engine inside the scheduler: evaluates open tasks against the cached rules, keeps each
//! (task, rule) ladder, commits firings and resolutions, runs the actions and records what they did.
//!
//! A pass is planned from memory; then each firing's actions run — task changes on the board at once, and
//! messages, webhooks and pages as outbox rows — and the pass is committed in one transaction: resolutions,
//! new rungs with their action results, and the outbox rows. Only then are the ladders climbed and the rows
//! handed to the dispatcher. A crash before that commit loses the rung and its effects together; the rule,
//! still matching after the restart, fires again (at-least-once: a priority may be raised twice). A crash
//! after it loses nothing: the dispatcher resumes the rows. The scheduler holds its mailbox through a pass,
//! so two passes never plan from the same state, but it never waits for a webhook.

use super::actions;
use super::EscalationScheduler;
use crate::actors::dispatcher::Deliver;
use crate::actors::reply_now;
use crate::domain::capacity;
use crate::domain::escalation::{self, Decision, Escalation, EscalationRule, Ladder, TaskContext, Trigger};
use crate::domain::outbox::{self, OutboxItem};
use crate::domain::{Task, TaskStatus};
use crate::error::{AppError, AppResult};
use crate::ids::new_id;
use crate::observability;
use crate::store::WriteOp;
use actix::fut::{self, ActorFutureExt};
use actix::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The open rungs of one rule's ladder for one task.
#[derive(Debug, Clone, Default)]
struct OpenLadder {
    level: u32,
    last_fired_at: i64,
    /// The open escalation rows, one per rung.
    ids: Vec<String>,
}

/// Every open ladder, task → rule → rungs; rebuilt at boot from the unresolved history, so cooldowns and
/// levels survive a restart.
#[derive(Debug, Default)]
pub(super) struct Ladders {
    by_task: HashMap<String, BTreeMap<String, OpenLadder>>,
}

impl Ladders {
    pub(super) fn from_open(open: &[Escalation]) -> Ladders {
        let mut ladders = Ladders::default();
        for e in open {
            if let (Some(rule), Some(task)) = (&e.rule_id, &e.task_id) {
                ladders.climb(task, rule, e.level, e.triggered_at, e.id.clone());
            }
        }
        ladders
    }

    fn climb(&mut self, task: &str, rule: &str, level: u32, at: i64, id: String) {
        let ladder = self
            .by_task
            .entry(task.to_string())
            .or_default()
            .entry(rule.to_string())
            .or_default();
        ladder.level = ladder.level.max(level);
        ladder.last_fired_at = ladder.last_fired_at.max(at);
        ladder.ids.push(id);
    }

    /// The task's ladders as the domain rule reads them.
    pub(super) fn view(&self, task: &str) -> BTreeMap<String, Ladder> {
        self.by_task
            .get(task)
            .map(|rules| {
                rules
                    .iter()
                    .map(|(rule, l)| {
                        let ladder = Ladder {
                            level: l.level,
                            last_fired_at: Some(l.last_fired_at),
                        };
                        (rule.clone(), ladder)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The open rows of these ladders of the task (all of them with `rules: None`).
    fn ids(&self, task: &str, rules: Option<&[String]>) -> Vec<String> {
        let Some(ladders) = self.by_task.get(task) else {
            return Vec::new();
        };
        ladders
            .iter()
            .filter(|(rule, _)| rules.is_none_or(|r| r.contains(rule)))
            .flat_map(|(_, l)| l.ids.iter().cloned())
            .collect()
    }

    fn close(&mut self, task: &str, rules: Option<&[String]>) {
        if let Some(ladders) = self.by_task.get_mut(task) {
            match rules {
                Some(rules) => ladders.retain(|rule, _| !rules.contains(rule)),
                None => ladders.clear(),
            }
            if ladders.is_empty() {
                self.by_task.remove(task);
            }
        }
    }

    /// Closes every ladder of a rule.
    pub(super) fn close_rule(&mut self, rule: &str) {
        for ladders in self.by_task.values_mut() {
            ladders.remove(rule);
        }
        self.by_task.retain(|_, ladders| !ladders.is_empty());
    }

    /// The open rows of every ladder of a rule.
    pub(super) fn rule_ids_open(&self, rule: &str) -> Vec<String> {
        self.by_task
            .values()
            .filter_map(|ladders| ladders.get(rule))
            .flat_map(|l| l.ids.iter().cloned())
            .collect()
    }
}

/// A firing planned for one task, before anything is committed.
pub(super) struct Pending {
    pub(super) escalation: Escalation,
    pub(super) rule: EscalationRule,
    pub(super) task: Task,
}

/// What one evaluation pass decided.
#[derive(Default)]
pub(super) struct Pass {
    /// `(task, rules)` whose ladders resolve; `None`: every ladder of the task (it finished or was deleted).
    resolve: Vec<(String, Option<Vec<String>>)>,
    fire: Vec<Pending>,
}

impl Pass {
    pub(super) fn is_empty(&self) -> bool {
        self.resolve.is_empty() && self.fire.is_empty()
    }
}

/// What a committed pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    pub fired: Vec<Escalation>,
    /// Escalations resolved because their task left the triggering condition.
    pub resolved: usize,
}

/// Where each queued task stands in its assignee's queue (task → projected start), for the agents of one
/// pass: computed once per agent, not once per task.
#[derive(Default)]
pub(super) struct QueueStarts(HashMap<String, i64>);

impl EscalationScheduler {
    fn uses(&self, wanted: fn(&Trigger) -> bool) -> bool {
        self.rules.iter().any(|r| r.enabled && r.triggers.iter().any(wanted))
    }

    /// Whether the rules need the task's place in its assignee's queue: a queued task with a deadline.
    fn needs_queue_start(&self, task: &Task) -> bool {
        task.status == TaskStatus::Ready
            && task.assignee_id.is_some()
            && task.slo_deadline_at.is_some()
            && self.uses(|t| matches!(t, Trigger::SloAtRisk {}))
    }

    /// The projected starts of the queues of these tasks' assignees (only where a trigger needs them).
    fn queue_starts<'a>(&self, tasks: impl IntoIterator<Item = &'a Task>, now: i64) -> QueueStarts {
        let agents: BTreeSet<&str> = tasks
            .into_iter()
            .filter(|t| self.needs_queue_start(t))
            .filter_map(|t| t.assignee_id.as_deref())
            .collect();
        let mut starts = QueueStarts::default();
        for agent in agents {
            let queue: Vec<&Task> = self.graph.queue_of(agent).filter_map(|id| self.tasks.get(id)).collect();
            for (task, at) in capacity::projected_starts(&queue, now) {
                starts.0.insert(task.id.clone(), at);
            }
        }
        starts
    }

    fn context_of(&self, task: &Task, starts: &QueueStarts, now: i64) -> TaskContext {
        let heartbeat_of = |t: &Task| t.assignee_id.as_ref().and_then(|a| self.heartbeats.get(a)).copied();
        let chain = if task.status == TaskStatus::Blocked && self.uses(|t| matches!(t, Trigger::BlockerDuration { .. }))
        {
            let upstream = escalation::upstream_of(&task.id, self.graph.blocked_by());
            let upstream = upstream
                .iter()
                .filter_map(|id| self.tasks.get(id))
                .map(|t| (t, heartbeat_of(t)));
            let timeout = i64::try_from(self.deps.heartbeat_timeout.as_millis()).unwrap_or(i64::MAX);
            escalation::chain_summary(task, upstream, now, timeout)
        } else {
            escalation::ChainSummary::default()
        };
        TaskContext {
            assignee_heartbeat_at: heartbeat_of(task),
            chain,
            projected_start_at: starts.0.get(&task.id).copied(),
        }
    }

    /// The context of one task, its queue computed for it alone.
    fn context_alone(&self, task: &Task, now: i64) -> TaskContext {
        self.context_of(task, &self.queue_starts([task], now), now)
    }

    pub(super) fn decide(&self, task: &Task, now: i64) -> Decision {
        self.decide_with(task, &self.queue_starts([task], now), now)
    }

    fn decide_with(&self, task: &Task, starts: &QueueStarts, now: i64) -> Decision {
        escalation::decide(
            &self.rules,
            task,
            self.context_of(task, starts, now),
            &self.ladders.view(&task.id),
            self.deps.escalation.max_depth,
            now,
        )
    }

    /// Every enabled rule that matches the task now, highest priority first.
    pub(super) fn matching(&self, task: &Task, now: i64) -> Vec<(&EscalationRule, escalation::Firing)> {
        let context = self.context_alone(task, now);
        let mut found: Vec<_> = self
            .rules
            .iter()
            .filter_map(|rule| escalation::matches(rule, task, context, now).map(|f| (rule, f)))
            .collect();
        found.sort_by(|(a, _), (b, _)| b.priority.cmp(&a.priority).then(a.created_at.cmp(&b.created_at)));
        found
    }

    /// Plans the evaluation of these open tasks.
    pub(super) fn plan<'a>(&self, tasks: impl IntoIterator<Item = &'a Task>, now: i64) -> Pass {
        let tasks: Vec<&Task> = tasks.into_iter().collect();
        let starts = self.queue_starts(tasks.iter().copied(), now);
        let mut pass = Pass::default();
        for task in tasks {
            let decision = self.decide_with(task, &starts, now);
            self.add_decision(&mut pass, task, decision, now);
        }
        pass
    }

    pub(super) fn add_decision(&self, pass: &mut Pass, task: &Task, decision: Decision, now: i64) {
        if !decision.resolve.is_empty() {
            pass.resolve.push((task.id.clone(), Some(decision.resolve)));
        }
        let Some((rule_id, level, firing)) = decision.fire else {
            return;
        };
        let Some(rule) = self.rules.iter().find(|r| r.id == rule_id) else {
            return;
        };
        let mut rule = rule.clone();
        let mut reason = firing.reason.clone();
        if let Some((actions, why)) = escalation::ping_pong(&rule, &firing, self.takeovers.last(&task.id), now) {
            rule.actions = actions;
            reason = why;
        }
        pass.fire.push(Pending {
            escalation: Escalation {
                rule_id: Some(rule.id.clone()),
                trigger: firing.trigger,
                ..Escalation::opened(new_id(), &rule.name, Some(task.id.clone()), level, reason, now)
            },
            rule,
            task: task.clone(),
        });
    }

    /// The longest cooldown of any rule: how far back a takeover can still hold a firing back.
    pub(super) fn longest_cooldown(&self) -> i64 {
        self.rules.iter().map(|r| r.cooldown_ms).max().unwrap_or(0)
    }

    /// Plans the resolution of everything open for a task that finished or was deleted, built-in
    /// escalations included.
    pub(super) fn plan_finished(&self, task_id: &str) -> Pass {
        let mut pass = Pass::default();
        if self.ladders.by_task.contains_key(task_id) || self.slo_rungs.contains_key(task_id) {
            pass.resolve.push((task_id.to_string(), None));
        }
        pass
    }

    /// Runs each firing's actions, commits the pass with their results and outbox rows, applies it to the
    /// ladders and hands the rows to the dispatcher.
    pub(super) fn commit_pass(&mut self, pass: Pass) -> ResponseActFuture<Self, AppResult<PassReport>> {
        if pass.is_empty() {
            return reply_now(Ok(PassReport::default()));
        }
        let now = self.deps.now();
        let mut resolved_ids = Vec::new();
        for (task, rules) in &pass.resolve {
            resolved_ids.extend(self.ladders.ids(task, rules.as_deref()));
            if rules.is_none() {
                resolved_ids.extend(self.slo_rungs.get(task).into_iter().flatten().cloned());
            }
        }
        let Pass { resolve, fire } = pass;
        let peers = self.peers.clone();
        let journal = self.deps.journal.clone();
        let resolved_for_commit = resolved_ids.clone();
        let acted_and_committed = async move {
            let (fired, outbox) = run_firings(&peers, fire).await;
            let mut ops = Vec::with_capacity(fired.len() + outbox.len() + 1);
            if !resolved_for_commit.is_empty() {
                ops.push(WriteOp::ResolveEscalations {
                    ids: resolved_for_commit,
                    at: now,
                });
            }
            ops.extend(fired.iter().map(|(e, _)| WriteOp::insert_escalation(e)));
            ops.extend(outbox.iter().map(WriteOp::insert_outbox));
            journal.commit(ops).await.map_err(AppError::store)?;
            Ok::<_, AppError>((fired, outbox))
        };
        Box::pin(fut::wrap_future::<_, Self>(acted_and_committed).then(
            move |committed, scheduler, _| -> ResponseActFuture<Self, AppResult<PassReport>> {
                let (fired, outbox) = match committed {
                    Ok(done) => done,
                    Err(e) => return reply_now(Err(e)),
                };
                for (task, rules) in &resolve {
                    scheduler.ladders.close(task, rules.as_deref());
                    if rules.is_none() {
                        scheduler.slo_rungs.remove(task);
                        scheduler.takeovers.forget(task);
                    }
                }
                let horizon = now - scheduler.longest_cooldown();
                let escalations: Vec<Escalation> = fired.iter().map(|(e, _)| e.clone()).collect();
                scheduler.takeovers.note(&escalations, horizon);
                for (e, rule_id) in &fired {
                    observability::escalation_recorded(&e.rule_name);
                    if let Some(task) = &e.task_id {
                        scheduler
                            .ladders
                            .climb(task, rule_id, e.level, e.triggered_at, e.id.clone());
                    }
                }
                let resolved = resolved_ids.len();
                let fired = fired.into_iter().map(|(e, _)| e).collect();
                Box::pin(
                    scheduler
                        .hand_over(outbox, fired)
                        .map(move |fired, _, _| Ok(PassReport { fired, resolved })),
                )
            },
        ))
    }

    /// Hands committed outbox rows to the dispatcher and waits for the in-process deliveries (never for a
    /// webhook); replies with the escalations showing what became of their actions.
    pub(super) fn hand_over(
        &self,
        outbox: Vec<OutboxItem>,
        mut escalations: Vec<Escalation>,
    ) -> ResponseActFuture<Self, Vec<Escalation>> {
        if outbox.is_empty() {
            return Box::pin(fut::ready(escalations));
        }
        let dispatcher = self.peers.dispatcher.clone();
        Box::pin(fut::wrap_future::<_, Self>(async move {
            match dispatcher.send(Deliver { items: outbox }).await {
                Ok(rows) => {
                    for e in &mut escalations {
                        outbox::overlay(&mut e.actions, &rows);
                    }
                }
                Err(e) => log::warn!("outbox rows not handed to the dispatcher now ({e}); it resumes them later"),
            }
            escalations
        }))
    }
}

/// Runs the firings' actions one after another; replies with each escalation (its action results filled in)
/// and its rule's id, and every outbox row they wrote.
async fn run_firings(peers: &actions::Peers, firings: Vec<Pending>) -> (Vec<(Escalation, String)>, Vec<OutboxItem>) {
    let mut fired = Vec::with_capacity(firings.len());
    let mut outbox = Vec::new();
    for Pending {
        mut escalation,
        rule,
        task,
    } in firings
    {
        let acted = actions::run(peers, &rule, &task, &escalation).await;
        escalation.actions = acted.results;
        outbox.extend(acted.outbox);
        fired.push((escalation, rule.id));
    }
    (fired, outbox)
}
