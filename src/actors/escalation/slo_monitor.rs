//! The SLO monitor: records each breach of a task's deadline once per kind, and escalates the task.
//!
//! A breach is marked in memory the moment it is found, so a tick and a task event that look at the same
//! task cannot both record it; the `(task, kind)` unique key in the store backs this across restarts. The
//! record, its activity row and its `slo_breach` escalation row are committed before the escalation runs
//! (at-most-once actions, as for messages); the escalation's result is recorded on its row afterwards. A task that finishes at or after its deadline gets its `deadline_missed` record then, without
//! an escalation: there is nothing left to raise.

use super::engine::record_results;
use super::paths::{alert_result, escalate_task};
use super::{EscalationScheduler, SLO_BREACH};
use crate::actors::{reply_now, Deps};
use crate::domain::escalation::Escalation;
use crate::domain::slo::{self, BreachKind, SloBreach};
use crate::domain::{Activity, ActivityKind, Principal, Task};
use crate::error::{AppError, AppResult};
use crate::ids::new_id;
use crate::observability;
use crate::store::WriteOp;
use actix::fut::{self, ActorFutureExt};
use actix::prelude::*;

/// Breaches found for one task in one check, with the escalation they cause (none for a finished task).
pub(super) struct Found {
    task: Task,
    breaches: Vec<SloBreach>,
    escalation: Option<Escalation>,
}

/// What one check recorded.
#[derive(Debug, Default)]
pub(super) struct Recorded {
    pub(super) breaches: Vec<SloBreach>,
    pub(super) escalations: Vec<Escalation>,
}

impl EscalationScheduler {
    /// Finds the breaches due for these tasks and marks them recorded at once.
    pub(super) fn find_breaches(&mut self, tasks: impl IntoIterator<Item = Task>, now: i64) -> Vec<Found> {
        let mut found = Vec::new();
        for task in tasks {
            let recorded = self.breaches.get(&task.id).map(Vec::as_slice).unwrap_or(&[]);
            let due = slo::breaches_due(&task, now, recorded);
            if task.status.is_terminal() {
                // A finished task is never checked again.
                self.breaches.remove(&task.id);
            } else if !due.is_empty() {
                self.breaches.entry(task.id.clone()).or_default().extend(&due);
            }
            if due.is_empty() {
                continue;
            }
            let breaches = due
                .iter()
                .filter_map(|kind| slo::breach(new_id(), &task, *kind, now))
                .collect();
            let escalation = (!task.status.is_terminal()).then(|| {
                let level = self.slo_rungs.get(&task.id).map_or(0, Vec::len) + 1;
                let level = u32::try_from(level).unwrap_or(u32::MAX);
                let reason = slo::breach_reason(&task, &due);
                Escalation::opened(new_id(), SLO_BREACH, Some(task.id.clone()), level, reason, now)
            });
            found.push(Found {
                task,
                breaches,
                escalation,
            });
        }
        found
    }

    fn unmark(&mut self, found: &[Found]) {
        for f in found.iter().filter(|f| !f.task.status.is_terminal()) {
            if let Some(kinds) = self.breaches.get_mut(&f.task.id) {
                kinds.retain(|k| !f.breaches.iter().any(|b| b.kind == *k));
            }
        }
    }

    /// Commits the breaches with their activity rows, then escalates each open task among them, once per
    /// check whatever the number of new kinds. After a failed commit the breaches are unmarked, so the next
    /// check finds them again.
    pub(super) fn record_breaches(&mut self, found: Vec<Found>) -> ResponseActFuture<Self, AppResult<Recorded>> {
        if found.is_empty() {
            return reply_now(Ok(Recorded::default()));
        }
        let ops = breach_ops(&found);
        let journal = self.deps.journal.clone();
        let peers = self.peers.clone();
        let deps: Deps = self.deps.clone();
        Box::pin(
            fut::wrap_future::<_, Self>(async move { journal.commit(ops).await }).then(
                move |committed, scheduler, _| -> ResponseActFuture<Self, AppResult<Recorded>> {
                    if let Err(e) = committed {
                        scheduler.unmark(&found);
                        return reply_now(Err(AppError::store(e)));
                    }
                    for f in &found {
                        for breach in &f.breaches {
                            observability::slo_breach(breach.kind.as_str());
                        }
                        if let Some(e) = &f.escalation {
                            observability::escalation_recorded(&e.rule_name);
                            scheduler
                                .slo_rungs
                                .entry(f.task.id.clone())
                                .or_default()
                                .push(e.id.clone());
                        }
                    }
                    Box::pin(fut::wrap_future(async move {
                        let now = deps.now();
                        let mut recorded = Recorded::default();
                        for Found {
                            task,
                            breaches,
                            escalation,
                        } in found
                        {
                            if let Some(mut escalation) = escalation {
                                let kinds: Vec<BreachKind> = breaches.iter().map(|b| b.kind).collect();
                                let alerted =
                                    escalate_task(&peers.directory, &peers.board, &task, &escalation.reason, |to| {
                                        slo::breach_alert(to, &task, &kinds, now)
                                    })
                                    .await;
                                escalation.actions = vec![alert_result("priority raised; ", &alerted)];
                                recorded.escalations.push(escalation);
                            }
                            recorded.breaches.extend(breaches);
                        }
                        record_results(&peers, &recorded.escalations).await;
                        Ok(recorded)
                    }))
                },
            ),
        )
    }
}

fn breach_ops(found: &[Found]) -> Vec<WriteOp> {
    let mut ops = Vec::new();
    for Found {
        task,
        breaches,
        escalation,
    } in found
    {
        if let Some(escalation) = escalation {
            ops.push(WriteOp::insert_escalation(escalation));
        }
        for breach in breaches {
            let text = format!(
                "'{}' breached its SLO: {} (deadline {} ms, detected {} ms)",
                task.title, breach.kind, breach.deadline_at, breach.detected_at
            );
            let mut activity = Activity::new(
                new_id(),
                ActivityKind::SloBreached,
                &Principal::System,
                text,
                breach.detected_at,
            )
            .change(
                serde_json::Value::Null,
                serde_json::to_value(breach).unwrap_or_default(),
            );
            activity.task_id = Some(task.id.clone());
            activity.agent_id = task.assignee_id.clone();
            ops.push(WriteOp::insert_breach(breach));
            ops.push(WriteOp::activity(&activity));
        }
    }
    ops
}
