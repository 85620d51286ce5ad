//! `/api/tasks` and `/api/agents/{id}/claim`: create, list, read, change, move through the state machine,
//! assign, claim, complete, fail, dependencies, delete.

use super::extract::{Caller, Json, OptionalJson};
use super::{page_request, send};
use crate::actors::task_board::messages::{self as board, TaskDetail};
use crate::domain::query::{Page, TaskQuery};
use crate::domain::task::{CompletionOutcome, TaskDraft, TaskPatch};
use crate::domain::{Priority, Task, TaskStatus};
use crate::error::{AppError, AppResult};
use crate::runtime::Handles;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListTasksParams {
    status: Option<TaskStatus>,
    assignee_id: Option<String>,
    priority: Option<Priority>,
    tag: Option<String>,
    mission_id: Option<String>,
    pillar_id: Option<String>,
    parent_id: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransitionBody {
    to: TaskStatus,
    note: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssignBody {
    /// Agent id or name; `null` unassigns. Required, so that a forgotten field never unassigns by accident.
    #[serde(default, deserialize_with = "crate::domain::agent::nullable")]
    #[schema(value_type = Option<String>)]
    agent_id: Option<Option<String>>,
}

/// `?force=true` (admin only) takes work past an agent's capacity.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ForceParam {
    #[serde(default)]
    force: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompleteBody {
    outcome: CompletionOutcome,
    notes: Option<String>,
    actual_minutes: Option<i32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FailBody {
    /// A short machine-friendly kind, such as `timeout` or `test_failure`.
    error_kind: String,
    message: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DependencyBody {
    /// The task that must be done first.
    blocked_by: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyBody {}

#[utoipa::path(post, path = "/api/tasks", tag = "tasks", request_body = TaskDraft,
    responses((status = 201, body = Task)), security(("bearer" = [])))]
pub async fn create(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    Json(draft): Json<TaskDraft>,
) -> AppResult<HttpResponse> {
    let task = send(&handles.board, board::CreateTask { draft, by }).await?;
    Ok(HttpResponse::Created().json(task))
}

#[utoipa::path(get, path = "/api/tasks", tag = "tasks", params(ListTasksParams),
    responses((status = 200, description = "Newest first", body = Page<Task>)), security(("bearer" = [])))]
pub async fn list(
    handles: web::Data<Handles>,
    _: Caller,
    params: web::Query<ListTasksParams>,
) -> AppResult<HttpResponse> {
    let p = params.into_inner();
    let query = TaskQuery {
        status: p.status,
        assignee_id: p.assignee_id,
        priority: p.priority,
        tag: p.tag,
        mission_id: p.mission_id,
        pillar_id: p.pillar_id,
        parent_id: p.parent_id,
        page: page_request(p.limit, p.cursor)?,
    };
    let page = send(&handles.board, board::ListTasks { query }).await?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(get, path = "/api/tasks/{id}", tag = "tasks", params(("id" = String, Path)),
    responses((status = 200, body = TaskDetail)), security(("bearer" = [])))]
pub async fn get(handles: web::Data<Handles>, _: Caller, id: web::Path<String>) -> AppResult<HttpResponse> {
    let detail = send(&handles.board, board::GetTask { id: id.into_inner() }).await?;
    Ok(HttpResponse::Ok().json(detail))
}

#[utoipa::path(patch, path = "/api/tasks/{id}", tag = "tasks", params(("id" = String, Path)), request_body = TaskPatch,
    responses((status = 200, body = Task)), security(("bearer" = [])))]
pub async fn update(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    id: web::Path<String>,
    Json(patch): Json<TaskPatch>,
) -> AppResult<HttpResponse> {
    let task = send(
        &handles.board,
        board::UpdateTask {
            id: id.into_inner(),
            patch,
            by,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(task))
}

#[utoipa::path(post, path = "/api/tasks/{id}/transition", tag = "tasks", params(("id" = String, Path), ForceParam),
    request_body = TransitionBody,
    responses((status = 200, body = Task),
        (status = 409, description = "Not allowed (`details.allowed` lists the targets), or `agent_at_capacity` when \
            moving to `in_progress` for an assignee that cannot accept work")),
    security(("bearer" = [])))]
pub async fn transition(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    id: web::Path<String>,
    force: web::Query<ForceParam>,
    Json(body): Json<TransitionBody>,
) -> AppResult<HttpResponse> {
    let task = send(
        &handles.board,
        board::Transition {
            id: id.into_inner(),
            to: body.to,
            note: body.note,
            force: force.force,
            by,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(task))
}

#[utoipa::path(post, path = "/api/tasks/{id}/assign", tag = "tasks", params(("id" = String, Path), ForceParam),
    request_body = AssignBody,
    responses((status = 200, body = Task),
        (status = 409, description = "`agent_at_capacity`: the agent cannot accept work; `details` has its figures")),
    security(("bearer" = [])))]
pub async fn assign(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    id: web::Path<String>,
    force: web::Query<ForceParam>,
    Json(body): Json<AssignBody>,
) -> AppResult<HttpResponse> {
    let agent = body
        .agent_id
        .ok_or_else(|| AppError::validation("agentId", "is required (null unassigns)"))?;
    let task = send(
        &handles.board,
        board::Assign {
            id: id.into_inner(),
            agent,
            force: force.force,
            by,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(task))
}

#[utoipa::path(post, path = "/api/agents/{id}/claim", tag = "tasks",
    params(("id" = String, Path, description = "Agent id or name"), ForceParam),
    responses((status = 200, description = "The claimed task, now in progress", body = Task),
        (status = 404, description = "`no_task_available`"),
        (status = 409, description = "`agent_at_capacity`: the agent cannot accept work; `details` has its figures")),
    security(("bearer" = [])))]
pub async fn claim(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    agent: web::Path<String>,
    force: web::Query<ForceParam>,
    _body: OptionalJson<EmptyBody>,
) -> AppResult<HttpResponse> {
    let task = send(
        &handles.board,
        board::Claim {
            agent: agent.into_inner(),
            force: force.force,
            by,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(task))
}

#[utoipa::path(post, path = "/api/tasks/{id}/complete", tag = "tasks", params(("id" = String, Path)), request_body = CompleteBody,
    responses((status = 200, body = Task)), security(("bearer" = [])))]
pub async fn complete(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    id: web::Path<String>,
    Json(body): Json<CompleteBody>,
) -> AppResult<HttpResponse> {
    let msg = board::Complete {
        id: id.into_inner(),
        outcome: body.outcome,
        notes: body.notes,
        actual_minutes: body.actual_minutes,
        by,
    };
    let task = send(&handles.board, msg).await?;
    Ok(HttpResponse::Ok().json(task))
}

#[utoipa::path(post, path = "/api/tasks/{id}/fail", tag = "tasks", params(("id" = String, Path)), request_body = FailBody,
    responses((status = 200, description = "The failure is recorded and the task is ready again", body = Task)),
    security(("bearer" = [])))]
pub async fn fail(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    id: web::Path<String>,
    Json(body): Json<FailBody>,
) -> AppResult<HttpResponse> {
    let msg = board::Fail {
        id: id.into_inner(),
        error_kind: body.error_kind,
        message: body.message,
        by,
    };
    let task = send(&handles.board, msg).await?;
    Ok(HttpResponse::Ok().json(task))
}

#[utoipa::path(post, path = "/api/tasks/{id}/dependencies", tag = "tasks", params(("id" = String, Path)), request_body = DependencyBody,
    responses((status = 201, description = "Added", body = TaskDetail), (status = 200, description = "Already present", body = TaskDetail),
        (status = 409, description = "`dependency_cycle`")),
    security(("bearer" = [])))]
pub async fn add_dependency(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    id: web::Path<String>,
    Json(body): Json<DependencyBody>,
) -> AppResult<HttpResponse> {
    let msg = board::AddDependency {
        id: id.into_inner(),
        blocker_id: body.blocked_by,
        by,
    };
    let (detail, created) = send(&handles.board, msg).await?;
    Ok(if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    }
    .json(detail))
}

#[utoipa::path(delete, path = "/api/tasks/{id}/dependencies/{blocker_id}", tag = "tasks",
    params(("id" = String, Path), ("blocker_id" = String, Path)),
    responses((status = 200, body = TaskDetail)), security(("bearer" = [])))]
pub async fn remove_dependency(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (id, blocker_id) = path.into_inner();
    let detail = send(&handles.board, board::RemoveDependency { id, blocker_id, by }).await?;
    Ok(HttpResponse::Ok().json(detail))
}

#[utoipa::path(delete, path = "/api/tasks/{id}", tag = "tasks", params(("id" = String, Path)),
    responses((status = 200, description = "The deleted task", body = Task)), security(("bearer" = [])))]
pub async fn delete(handles: web::Data<Handles>, Caller(by): Caller, id: web::Path<String>) -> AppResult<HttpResponse> {
    let task = send(
        &handles.board,
        board::DeleteTask {
            id: id.into_inner(),
            by,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(task))
}
