//! Reads of the escalation history and SLO breach records, and feedback on escalations. These read the
//! store (the history is not kept in memory), through the scheduler that owns the tables.

use super::EscalationScheduler;
use crate::domain::escalation::{self, Escalation, RuleStats};
use crate::domain::query::{BreachQuery, EscalationQuery, Page};
use crate::domain::slo::SloBreach;
use crate::domain::Principal;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::store::{escalation_queries, slo_queries, WriteOp};
use actix::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

/// `GET /api/slo/breaches`.
#[derive(Message)]
#[rtype(result = "AppResult<Page<SloBreach>>")]
pub struct ListBreaches {
    pub query: BreachQuery,
}

/// `GET /api/escalations`: the history, newest first.
#[derive(Message)]
#[rtype(result = "AppResult<Page<Escalation>>")]
pub struct ListEscalations {
    pub query: EscalationQuery,
}

/// `POST /api/escalations/{id}/feedback`: was it useful? A later rating replaces an earlier one.
#[derive(Message)]
#[rtype(result = "AppResult<Escalation>")]
pub struct Feedback {
    pub id: String,
    pub useful: bool,
    pub by: Principal,
}

/// `GET /api/escalations/stats`.
#[derive(Message)]
#[rtype(result = "AppResult<EscalationStats>")]
pub struct Statistics;

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EscalationStats {
    pub generated_at: i64,
    /// One line per rule (built-in escalations by name), most firings first.
    pub rules: Vec<RuleStats>,
}

fn escalation_not_found(id: &str) -> AppError {
    AppError::new(ErrorCode::EscalationNotFound, format!("no escalation '{id}'"))
}

impl Handler<ListBreaches> for EscalationScheduler {
    type Result = ResponseFuture<AppResult<Page<SloBreach>>>;

    fn handle(&mut self, msg: ListBreaches, _: &mut Context<Self>) -> Self::Result {
        let store = self.deps.store.clone();
        Box::pin(async move {
            store
                .read(move |conn| slo_queries::list_breaches(conn, &msg.query))
                .await
                .map_err(AppError::store)
        })
    }
}

impl Handler<ListEscalations> for EscalationScheduler {
    type Result = ResponseFuture<AppResult<Page<Escalation>>>;

    fn handle(&mut self, msg: ListEscalations, _: &mut Context<Self>) -> Self::Result {
        let store = self.deps.store.clone();
        Box::pin(async move {
            store
                .read(move |conn| escalation_queries::list_escalations(conn, &msg.query))
                .await
                .map_err(AppError::store)
        })
    }
}

impl Handler<Feedback> for EscalationScheduler {
    type Result = ResponseFuture<AppResult<Escalation>>;

    fn handle(&mut self, msg: Feedback, _: &mut Context<Self>) -> Self::Result {
        let (store, journal, now) = (self.deps.store.clone(), self.deps.journal.clone(), self.deps.now());
        Box::pin(async move {
            if matches!(msg.by, Principal::System) {
                return Err(AppError::forbidden("the runtime does not rate its own escalations"));
            }
            let id = msg.id.clone();
            let found = store
                .read(move |conn| escalation_queries::escalation_by_id(conn, &id))
                .await
                .map_err(AppError::store)?;
            let escalation = found.ok_or_else(|| escalation_not_found(&msg.id))?;
            let rate = WriteOp::RateEscalation {
                id: msg.id,
                useful: msg.useful,
                at: now,
            };
            journal.commit(vec![rate]).await.map_err(AppError::store)?;
            Ok(Escalation {
                useful: Some(msg.useful),
                rated_at: Some(now),
                ..escalation
            })
        })
    }
}

impl Handler<Statistics> for EscalationScheduler {
    type Result = ResponseFuture<AppResult<EscalationStats>>;

    fn handle(&mut self, _: Statistics, _: &mut Context<Self>) -> Self::Result {
        let (store, now) = (self.deps.store.clone(), self.deps.now());
        Box::pin(async move {
            let history = store
                .read(escalation_queries::all_escalations)
                .await
                .map_err(AppError::store)?;
            Ok(EscalationStats {
                generated_at: now,
                rules: escalation::stats(&history),
            })
        })
    }
}
