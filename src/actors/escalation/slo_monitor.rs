//! The SLO monitor: records each breach of a task's deadline once per kind, and escalates the task.
//!
//! A breach is marked in memory the moment it is found, so a tick and a task event that look at the same
//! task cannot both record it; the `(task, kind)` unique key in the store backs this across restarts. The
//! task is raised on the board first; then the record, its activity row, its `slo_breach` escalation row and
//! the outbox row of the alert to the assignee's lead are committed together, and the alert is handed to the
//! dispatcher. A task that finishes at or after its deadline gets its `deadline_missed` record then, without
//! an escalation: there is nothing left to raise.

use super::actions::queue;
use super::paths::raise_task;
use super::{EscalationScheduler, SLO_BREACH};
use crate::actors::reply_now;
use crate::domain::escalation::{ActionResult, ActionStatus, Escalation};
use crate::domain::outbox::{Effect, Recipients};
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

    /// Raises each open task among them (once per check, whatever the number of new kinds), then commits
    /// the breaches with their activity rows, escalation rows and alerts. After a failed commit the breaches
    /// are unmarked, so the next check finds them again.
    pub(super) fn record_breaches(&mut self, found: Vec<Found>) -> ResponseActFuture<Self, AppResult<Recorded>> {
        if found.is_empty() {
            return reply_now(Ok(Recorded::default()));
        }
        let journal = self.deps.journal.clone();
        let board = self.peers.board.clone();
        let now = self.deps.now();
        let raised_and_committed = async move {
            let mut found = found;
            let mut outbox = Vec::new();
            for f in &mut found {
                let Some(escalation) = &mut f.escalation else {
                    continue;
                };
                let raised = raise_task(&board, &f.task.id, &escalation.reason).await;
                let kinds: Vec<BreachKind> = f.breaches.iter().map(|b| b.kind).collect();
                let alert = Effect::AgentMessage {
                    to: Recipients::LeadOf {
                        agent: f.task.assignee_id.clone(),
                        depth: 1,
                    },
                    draft: slo::breach_alert(String::new(), &f.task, &kinds, now),
                };
                let row = queue(escalation, 0, &f.task, alert);
                escalation.actions = vec![ActionResult {
                    kind: "escalate".into(),
                    status: ActionStatus::Pending,
                    detail: raised,
                    outbox_id: Some(row.id.clone()),
                }];
                outbox.push(row);
            }
            let mut ops = breach_ops(&found);
            ops.extend(outbox.iter().map(WriteOp::insert_outbox));
            let committed = journal.commit(ops).await;
            (found, outbox, committed)
        };
        Box::pin(fut::wrap_future::<_, Self>(raised_and_committed).then(
            move |(found, outbox, committed), scheduler, _| -> ResponseActFuture<Self, AppResult<Recorded>> {
                if let Err(e) = committed {
                    scheduler.unmark(&found);
                    return reply_now(Err(AppError::store(e)));
                }
                let mut recorded = Recorded::default();
                for f in found {
                    for breach in &f.breaches {
                        observability::slo_breach(breach.kind.as_str());
                    }
                    if let Some(e) = f.escalation {
                        observability::escalation_recorded(&e.rule_name);
                        scheduler
                            .slo_rungs
                            .entry(f.task.id.clone())
                            .or_default()
                            .push(e.id.clone());
                        recorded.escalations.push(e);
                    }
                    recorded.breaches.extend(f.breaches);
                }
                let escalations = std::mem::take(&mut recorded.escalations);
                Box::pin(scheduler.hand_over(outbox, escalations).map(move |escalations, _, _| {
                    recorded.escalations = escalations;
                    Ok(recorded)
                }))
            },
        ))
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
