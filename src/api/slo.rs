//! SLO clocks: one task's, the overview, and the breach records.

use super::extract::Caller;
use super::{page_request, send};
use crate::actors::escalation::ListBreaches;
use crate::actors::task_board::messages::{SloOverview, SloReport, TaskSlo};
use crate::domain::query::{BreachQuery, Page};
use crate::domain::slo::{BreachKind, SloBreach, SloReading};
use crate::error::{AppError, AppResult};
use crate::runtime::Handles;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

const DEFAULT_URGENT: usize = 20;
const MAX_URGENT: usize = 100;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OverviewParams {
    /// How many urgent tasks to list, 1–100 (default 20).
    limit: Option<usize>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BreachParams {
    /// Breaches of tasks this agent was assigned when they were detected.
    agent_id: Option<String>,
    kind: Option<BreachKind>,
    /// Epoch milliseconds; only breaches detected at or after it.
    since: Option<i64>,
    limit: Option<i64>,
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/tasks/{id}/slo", tag = "slo", params(("id" = String, Path)),
    responses((status = 200, body = SloReading)), security(("bearer" = [])))]
pub async fn task_slo(handles: web::Data<Handles>, _: Caller, id: web::Path<String>) -> AppResult<HttpResponse> {
    let reading = send(&handles.board, TaskSlo { id: id.into_inner() }).await?;
    Ok(HttpResponse::Ok().json(reading))
}

#[utoipa::path(get, path = "/api/slo", tag = "slo", params(OverviewParams),
    responses((status = 200, body = SloReport)), security(("bearer" = [])))]
pub async fn overview(
    handles: web::Data<Handles>,
    _: Caller,
    params: web::Query<OverviewParams>,
) -> AppResult<HttpResponse> {
    let limit = params.limit.unwrap_or(DEFAULT_URGENT);
    if !(1..=MAX_URGENT).contains(&limit) {
        return Err(AppError::validation(
            "limit",
            format!("must be between 1 and {MAX_URGENT}"),
        ));
    }
    let report = send(&handles.board, SloOverview { limit }).await?;
    Ok(HttpResponse::Ok().json(report))
}

#[utoipa::path(get, path = "/api/slo/breaches", tag = "slo", params(BreachParams),
    responses((status = 200, body = Page<SloBreach>)), security(("bearer" = [])))]
pub async fn breaches(
    handles: web::Data<Handles>,
    _: Caller,
    params: web::Query<BreachParams>,
) -> AppResult<HttpResponse> {
    let p = params.into_inner();
    let query = BreachQuery {
        agent_id: p.agent_id,
        kind: p.kind,
        since: p.since,
        page: page_request(p.limit, p.cursor)?,
    };
    let page = send(&handles.escalation, ListBreaches { query }).await?;
    Ok(HttpResponse::Ok().json(page))
}
