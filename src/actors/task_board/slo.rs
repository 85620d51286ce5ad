//! The board's SLO answers: each reading is the pure SLO rule over a task the board holds (or, once
//! finished, reads from the store).

use super::messages::{PastDeadline, SloCounts, SloOverview, SloReport, TaskSlo};
use super::TaskBoard;
use crate::domain::slo::{self, SloReading, SloStatus};
use crate::domain::Task;
use crate::error::{AppError, AppResult};
use crate::store::slo_queries;
use actix::prelude::*;

impl Handler<TaskSlo> for TaskBoard {
    type Result = ResponseFuture<AppResult<SloReading>>;

    fn handle(&mut self, msg: TaskSlo, _: &mut Context<Self>) -> Self::Result {
        let now = self.deps.now();
        let thresholds = self.deps.slo;
        if let Some(task) = self.open.get(&msg.id) {
            let reading = slo::reading(task, now, thresholds);
            return Box::pin(async move { Ok(reading) });
        }
        if !self.finished.contains_key(&msg.id) {
            return Box::pin(async move { Err(AppError::task_not_found(&msg.id)) });
        }
        let stored = self.stored_task(msg.id);
        Box::pin(async move { Ok(slo::reading(&stored.await?, now, thresholds)) })
    }
}

impl Handler<SloOverview> for TaskBoard {
    type Result = ResponseFuture<AppResult<SloReport>>;

    fn handle(&mut self, msg: SloOverview, _: &mut Context<Self>) -> Self::Result {
        let now = self.deps.now();
        let thresholds = self.deps.slo;
        let mut counts = SloCounts::default();
        let mut urgent: Vec<SloReading> = Vec::new();
        for task in self.open.values() {
            let reading = slo::reading(task, now, thresholds);
            match reading.status {
                SloStatus::Ok => counts.ok += 1,
                SloStatus::AtRisk => counts.at_risk += 1,
                SloStatus::Critical => counts.critical += 1,
                SloStatus::Breached => counts.breached += 1,
                SloStatus::None | SloStatus::Met | SloStatus::Missed => counts.none += 1,
            }
            if matches!(
                reading.status,
                SloStatus::AtRisk | SloStatus::Critical | SloStatus::Breached
            ) {
                urgent.push(reading);
            }
        }
        urgent.sort_by(slo::by_urgency);
        let urgent_total = urgent.len();
        urgent.truncate(msg.limit);
        let store = self.deps.store.clone();
        Box::pin(async move {
            let (met, missed) = store
                .read(slo_queries::finished_outcomes)
                .await
                .map_err(AppError::store)?;
            counts.met = met;
            counts.missed = missed;
            Ok(SloReport {
                generated_at: now,
                counts,
                urgent,
                urgent_total,
            })
        })
    }
}

impl Handler<PastDeadline> for TaskBoard {
    type Result = MessageResult<PastDeadline>;

    fn handle(&mut self, msg: PastDeadline, _: &mut Context<Self>) -> Self::Result {
        let due: Vec<Task> = self
            .open
            .values()
            .filter(|t| t.slo_deadline_at.is_some_and(|d| d <= msg.now))
            .cloned()
            .collect();
        MessageResult(due)
    }
}
