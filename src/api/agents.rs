//! `/api/agents`: register, list, read, change, delete, rotate tokens, heartbeat.

use super::extract::{Caller, Json, OptionalJson};
use super::{page_request, request, send};
use crate::actors::directory::messages::{self as dir, AgentFilter, AgentWithToken, DeletedAgent};
use crate::domain::agent::{AgentDraft, AgentPatch};
use crate::domain::query::Page;
use crate::domain::{Agent, AgentLevel, AgentStatus};
use crate::error::{AppError, AppResult};
use crate::runtime::Handles;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListAgentsParams {
    status: Option<AgentStatus>,
    level: Option<AgentLevel>,
    specialization: Option<String>,
    /// Page size, 1–100 (default 20).
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteAgentParams {
    /// Return the agent's open tasks to `ready`, unassigned, instead of refusing.
    #[serde(default)]
    force: bool,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeartbeatBody {
    /// `active` (default), `idle` or `blocked`.
    status: Option<AgentStatus>,
    current_task_id: Option<String>,
}

#[utoipa::path(post, path = "/api/agents", tag = "agents", request_body = AgentDraft,
    responses((status = 201, description = "Registered; the token is shown only now", body = AgentWithToken)),
    security(("bearer" = [])))]
pub async fn register(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    Json(draft): Json<AgentDraft>,
) -> AppResult<HttpResponse> {
    let registered = send(&handles.directory, dir::Register { draft, by }).await?;
    Ok(HttpResponse::Created().json(registered))
}

#[utoipa::path(get, path = "/api/agents", tag = "agents", params(ListAgentsParams),
    responses((status = 200, body = Page<Agent>)), security(("bearer" = [])))]
pub async fn list(
    handles: web::Data<Handles>,
    _: Caller,
    params: web::Query<ListAgentsParams>,
) -> AppResult<HttpResponse> {
    let params = params.into_inner();
    let page = page_request(params.limit, params.cursor)?;
    let filter = AgentFilter {
        status: params.status,
        level: params.level,
        specialization: params.specialization,
    };
    let agents = send(&handles.directory, dir::ListAgents { filter, page }).await?;
    Ok(HttpResponse::Ok().json(agents))
}

#[utoipa::path(get, path = "/api/agents/{id}", tag = "agents", params(("id" = String, Path, description = "Agent id or name")),
    responses((status = 200, body = Agent)), security(("bearer" = [])))]
pub async fn get(handles: web::Data<Handles>, _: Caller, id: web::Path<String>) -> AppResult<HttpResponse> {
    let agent = send(&handles.directory, dir::Resolve { key: id.into_inner() }).await?;
    Ok(HttpResponse::Ok().json(agent))
}

#[utoipa::path(patch, path = "/api/agents/{id}", tag = "agents", params(("id" = String, Path, description = "Agent id or name")),
    request_body = AgentPatch, responses((status = 200, body = Agent)), security(("bearer" = [])))]
pub async fn update(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    id: web::Path<String>,
    Json(patch): Json<AgentPatch>,
) -> AppResult<HttpResponse> {
    let agent = send(
        &handles.directory,
        dir::Update {
            key: id.into_inner(),
            patch,
            by,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(agent))
}

#[utoipa::path(delete, path = "/api/agents/{id}", tag = "agents",
    params(("id" = String, Path, description = "Agent id or name"), DeleteAgentParams),
    responses((status = 200, body = DeletedAgent)), security(("bearer" = [])))]
pub async fn delete(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    id: web::Path<String>,
    params: web::Query<DeleteAgentParams>,
) -> AppResult<HttpResponse> {
    let deleted = send(
        &handles.directory,
        dir::Delete {
            key: id.into_inner(),
            force: params.force,
            by,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(deleted))
}

#[utoipa::path(post, path = "/api/agents/{id}/token/rotate", tag = "agents", params(("id" = String, Path, description = "Agent id or name")),
    responses((status = 200, description = "The new token; the old one stops working at once", body = AgentWithToken)),
    security(("bearer" = [])))]
pub async fn rotate_token(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let rotated = send(
        &handles.directory,
        dir::RotateToken {
            key: id.into_inner(),
            by,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(rotated))
}

#[utoipa::path(post, path = "/api/agents/{id}/heartbeat", tag = "agents", params(("id" = String, Path, description = "Agent id or name")),
    request_body = HeartbeatBody, responses((status = 200, body = Agent)), security(("bearer" = [])))]
pub async fn heartbeat(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    id: web::Path<String>,
    OptionalJson(body): OptionalJson<HeartbeatBody>,
) -> AppResult<HttpResponse> {
    if let Some(task_id) = &body.current_task_id {
        let known = crate::actors::task_board::messages::TaskExists { id: task_id.clone() };
        let exists = request(&handles.board, known).await.map_err(AppError::mailbox)?;
        if !exists {
            return Err(AppError::task_not_found(task_id));
        }
    }
    let beat = dir::Heartbeat {
        key: id.into_inner(),
        status: body.status,
        current_task_id: body.current_task_id,
        by,
    };
    let agent = send(&handles.directory, beat).await?;
    Ok(HttpResponse::Ok().json(agent))
}
