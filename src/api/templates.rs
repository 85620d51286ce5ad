//! `/api/message-templates`: the admin manages templates; every caller may list and read them.

use super::extract::{Caller, Json};
use super::{request, send};
use crate::actors::templates::{CreateTemplate, DeleteTemplate, GetTemplate, ListTemplates, UpdateTemplate};
use crate::domain::template::{MessageTemplate, TemplateDraft, TemplatePatch};
use crate::error::{AppError, AppResult};
use crate::runtime::Handles;
use actix_web::{web, HttpResponse};

#[utoipa::path(post, path = "/api/message-templates", tag = "message-templates", request_body = TemplateDraft,
    responses((status = 201, body = MessageTemplate)), security(("bearer" = [])))]
pub async fn create(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    Json(draft): Json<TemplateDraft>,
) -> AppResult<HttpResponse> {
    let template = send(&handles.templates, CreateTemplate { draft, by }).await?;
    Ok(HttpResponse::Created().json(template))
}

#[utoipa::path(get, path = "/api/message-templates", tag = "message-templates",
    responses((status = 200, description = "Every template, by name", body = Vec<MessageTemplate>)),
    security(("bearer" = [])))]
pub async fn list(handles: web::Data<Handles>, _: Caller) -> AppResult<HttpResponse> {
    let templates = request(&handles.templates, ListTemplates)
        .await
        .map_err(AppError::mailbox)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": templates })))
}

#[utoipa::path(get, path = "/api/message-templates/{name}", tag = "message-templates",
    params(("name" = String, Path, description = "Template name or id")),
    responses((status = 200, body = MessageTemplate)), security(("bearer" = [])))]
pub async fn get(handles: web::Data<Handles>, _: Caller, name: web::Path<String>) -> AppResult<HttpResponse> {
    let template = send(&handles.templates, GetTemplate { key: name.into_inner() }).await?;
    Ok(HttpResponse::Ok().json(template))
}

#[utoipa::path(patch, path = "/api/message-templates/{name}", tag = "message-templates",
    params(("name" = String, Path, description = "Template name or id")), request_body = TemplatePatch,
    responses((status = 200, body = MessageTemplate)), security(("bearer" = [])))]
pub async fn update(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    name: web::Path<String>,
    Json(patch): Json<TemplatePatch>,
) -> AppResult<HttpResponse> {
    let update = UpdateTemplate {
        key: name.into_inner(),
        patch,
        by,
    };
    Ok(HttpResponse::Ok().json(send(&handles.templates, update).await?))
}

#[utoipa::path(delete, path = "/api/message-templates/{name}", tag = "message-templates",
    params(("name" = String, Path, description = "Template name or id")),
    responses((status = 200, description = "The deleted template", body = MessageTemplate)),
    security(("bearer" = [])))]
pub async fn delete(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    name: web::Path<String>,
) -> AppResult<HttpResponse> {
    let delete = DeleteTemplate {
        key: name.into_inner(),
        by,
    };
    Ok(HttpResponse::Ok().json(send(&handles.templates, delete).await?))
}
