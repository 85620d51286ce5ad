//! Evaluation on demand: one task (`evaluate/{taskId}`, a dry run or for real) and a whole pass
//! (`check-all`).

use super::engine::{Pass, PassReport};
use super::EscalationScheduler;
use crate::actors::task_board::messages::TaskExists;
use crate::actors::{atomic, reply_now};
use crate::domain::escalation::Escalation;
use crate::domain::{Principal, Task};
use crate::error::{AppError, AppResult};
use actix::fut::{self, ActorFutureExt};
use actix::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

/// `POST /api/escalation-rules/evaluate/{taskId}`. Only the admin may fire for real.
#[derive(Message)]
#[rtype(result = "AppResult<Evaluation>")]
pub struct Evaluate {
    pub task_id: String,
    pub dry_run: bool,
    pub by: Principal,
}

/// A rule that matches the task now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleMatch {
    pub rule_id: String,
    pub rule_name: String,
    pub priority: i32,
    pub trigger: String,
    pub reason: String,
    /// The rule's open ladder level for this task (0: none).
    pub open_level: u32,
}

/// The rule that fires (or would), at which level, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WouldFire {
    pub rule_id: String,
    pub rule_name: String,
    pub level: u32,
    pub trigger: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    pub task_id: String,
    pub dry_run: bool,
    pub evaluated_at: i64,
    /// Every enabled rule that matches the task now, highest priority first.
    pub matching: Vec<RuleMatch>,
    /// The one rule that fires (or would): the highest-priority match below the maximum depth.
    pub fires: Option<WouldFire>,
    /// Why nothing fires although a rule matches (its cooldown).
    pub held_back: Option<String>,
    /// Names of the rules whose open escalations for this task resolve (or would).
    pub resolves: Vec<String>,
    /// The escalation recorded, with its action results (not on a dry run).
    pub escalation: Option<Escalation>,
}

/// `POST /api/escalation-rules/check-all` (admin): one evaluation pass over every open task, now.
#[derive(Message)]
#[rtype(result = "AppResult<CheckReport>")]
pub struct CheckAll {
    pub by: Principal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    /// Open tasks evaluated.
    pub evaluated: usize,
    pub fired: Vec<Escalation>,
    /// Escalations resolved because their task left the triggering condition.
    pub resolved: usize,
}

impl EscalationScheduler {
    fn evaluation(&self, task: &Task, dry_run: bool, now: i64) -> (Evaluation, Pass) {
        let ladders = self.ladders.view(&task.id);
        let matching = self
            .matching(task, now)
            .into_iter()
            .map(|(rule, firing)| RuleMatch {
                rule_id: rule.id.clone(),
                rule_name: rule.name.clone(),
                priority: rule.priority,
                trigger: firing.trigger,
                reason: firing.reason,
                open_level: ladders.get(&rule.id).map_or(0, |l| l.level),
            })
            .collect();
        let decision = self.decide(task, now);
        let name_of = |id: &str| {
            self.rules
                .iter()
                .find(|r| r.id == id)
                .map_or_else(|| id.to_string(), |r| r.name.clone())
        };
        let evaluation = Evaluation {
            task_id: task.id.clone(),
            dry_run,
            evaluated_at: now,
            matching,
            fires: decision.fire.as_ref().map(|(rule, level, firing)| WouldFire {
                rule_id: rule.clone(),
                rule_name: name_of(rule),
                level: *level,
                trigger: firing.trigger.clone(),
                reason: firing.reason.clone(),
            }),
            held_back: decision.held_back.clone(),
            resolves: decision.resolve.iter().map(|id| name_of(id)).collect(),
            escalation: None,
        };
        let mut pass = Pass::default();
        self.add_decision(&mut pass, task, decision, now);
        (evaluation, pass)
    }
}

impl Handler<Evaluate> for EscalationScheduler {
    type Result = AtomicResponse<Self, AppResult<Evaluation>>;

    fn handle(&mut self, msg: Evaluate, _: &mut Context<Self>) -> Self::Result {
        if !msg.dry_run && !msg.by.is_admin() {
            return atomic(reply_now(Err(AppError::forbidden(
                "only the admin may fire escalation rules by hand; use dryRun=true to see what would fire",
            ))));
        }
        let now = self.deps.now();
        let Some(task) = self.tasks.get(&msg.task_id) else {
            // Not open: finished tasks have nothing to escalate; unknown ones are an error.
            let board = self.board().clone();
            let Evaluate { task_id, dry_run, .. } = msg;
            return atomic(Box::pin(fut::wrap_future(async move {
                let exists = board
                    .send(TaskExists { id: task_id.clone() })
                    .await
                    .map_err(AppError::mailbox)?;
                if !exists {
                    return Err(AppError::task_not_found(&task_id));
                }
                Ok(Evaluation {
                    task_id,
                    dry_run,
                    evaluated_at: now,
                    matching: Vec::new(),
                    fires: None,
                    held_back: None,
                    resolves: Vec::new(),
                    escalation: None,
                })
            })));
        };
        let (evaluation, pass) = self.evaluation(task, msg.dry_run, now);
        if msg.dry_run {
            return atomic(reply_now(Ok(evaluation)));
        }
        atomic(Box::pin(self.commit_pass(pass).map(move |report, _, _| {
            let report: PassReport = report?;
            Ok(Evaluation {
                escalation: report.fired.into_iter().next(),
                ..evaluation
            })
        })))
    }
}

impl Handler<CheckAll> for EscalationScheduler {
    type Result = AtomicResponse<Self, AppResult<CheckReport>>;

    fn handle(&mut self, msg: CheckAll, _: &mut Context<Self>) -> Self::Result {
        if !msg.by.is_admin() {
            return atomic(reply_now(Err(AppError::forbidden(
                "only the admin may run an evaluation pass",
            ))));
        }
        let evaluated = self.tasks.len();
        let pass = self.plan(self.tasks.values(), self.deps.now());
        atomic(Box::pin(self.commit_pass(pass).map(move |report, _, _| {
            let report = report?;
            Ok(CheckReport {
                evaluated,
                fired: report.fired,
                resolved: report.resolved,
            })
        })))
    }
}
