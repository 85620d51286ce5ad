//! Capacity: an agent's load and forecast, the fleet's, suitable agents for a task, auto-assignment.

use super::extract::{Caller, Json, OptionalJson};
use super::tasks::EmptyBody;
use super::{request, send};
use crate::actors::capacity::{
    AgentCapacity, AgentForecast, AutoAssign, AutoAssignment, Fleet, FleetCapacity, SuitableAgents,
};
use crate::actors::directory::messages as dir;
use crate::domain::capacity::{CapacityReport, CapacitySettings, Forecast};
use crate::domain::matching::{Ranking, Strategy, DEFAULT_LIMIT, MAX_LIMIT};
use crate::error::{AppError, AppResult};
use crate::runtime::Handles;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SuitableParams {
    /// `balanced` (default), `best_fit` or `fastest`.
    strategy: Option<Strategy>,
    /// 1–100 (default 5).
    limit: Option<usize>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AutoAssignParams {
    /// `balanced` (default), `best_fit` or `fastest`.
    strategy: Option<Strategy>,
}

#[utoipa::path(get, path = "/api/agents/{id}/capacity", tag = "capacity",
    params(("id" = String, Path, description = "Agent id or name")),
    responses((status = 200, body = CapacityReport)), security(("bearer" = [])))]
pub async fn get(handles: web::Data<Handles>, _: Caller, id: web::Path<String>) -> AppResult<HttpResponse> {
    let report = send(&handles.capacity, AgentCapacity { agent: id.into_inner() }).await?;
    Ok(HttpResponse::Ok().json(report))
}

#[utoipa::path(put, path = "/api/agents/{id}/capacity", tag = "capacity",
    params(("id" = String, Path, description = "Agent id or name")), request_body = CapacitySettings,
    responses((status = 200, description = "The capacity figures with the new settings", body = CapacityReport)),
    security(("bearer" = [])))]
pub async fn set(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    id: web::Path<String>,
    Json(settings): Json<CapacitySettings>,
) -> AppResult<HttpResponse> {
    let update = dir::Update {
        key: id.into_inner(),
        patch: settings.into_patch(),
        by,
    };
    let agent = send(&handles.directory, update).await?;
    // The agent actor published the change before it replied, so the registry already has it.
    let report = send(&handles.capacity, AgentCapacity { agent: agent.id }).await?;
    Ok(HttpResponse::Ok().json(report))
}

#[utoipa::path(get, path = "/api/agents/{id}/forecast", tag = "capacity",
    params(("id" = String, Path, description = "Agent id or name")),
    responses((status = 200, body = Forecast)), security(("bearer" = [])))]
pub async fn forecast(handles: web::Data<Handles>, _: Caller, id: web::Path<String>) -> AppResult<HttpResponse> {
    let forecast = send(&handles.capacity, AgentForecast { agent: id.into_inner() }).await?;
    Ok(HttpResponse::Ok().json(forecast))
}

#[utoipa::path(get, path = "/api/capacity", tag = "capacity",
    responses((status = 200, body = FleetCapacity)), security(("bearer" = [])))]
pub async fn fleet(handles: web::Data<Handles>, _: Caller) -> AppResult<HttpResponse> {
    let fleet = request(&handles.capacity, Fleet).await.map_err(AppError::mailbox)?;
    Ok(HttpResponse::Ok().json(fleet))
}

#[utoipa::path(get, path = "/api/tasks/{id}/suitable-agents", tag = "capacity",
    params(("id" = String, Path), SuitableParams),
    responses((status = 200, body = Ranking)), security(("bearer" = [])))]
pub async fn suitable_agents(
    handles: web::Data<Handles>,
    _: Caller,
    id: web::Path<String>,
    params: web::Query<SuitableParams>,
) -> AppResult<HttpResponse> {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(AppError::validation(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let request = SuitableAgents {
        task_id: id.into_inner(),
        strategy: params.strategy.unwrap_or(Strategy::Balanced),
        limit,
    };
    let ranking = send(&handles.capacity, request).await?;
    Ok(HttpResponse::Ok().json(ranking))
}

#[utoipa::path(post, path = "/api/tasks/{id}/auto-assign", tag = "capacity",
    params(("id" = String, Path), AutoAssignParams),
    responses((status = 200, body = AutoAssignment),
        (status = 404, description = "`no_suitable_agent`: `details` has the excluded counts and the candidates' reasons")),
    security(("bearer" = [])))]
pub async fn auto_assign(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    id: web::Path<String>,
    params: web::Query<AutoAssignParams>,
    _body: OptionalJson<EmptyBody>,
) -> AppResult<HttpResponse> {
    let request = AutoAssign {
        task_id: id.into_inner(),
        strategy: params.strategy.unwrap_or(Strategy::Balanced),
        by,
    };
    let assignment = send(&handles.capacity, request).await?;
    Ok(HttpResponse::Ok().json(assignment))
}
