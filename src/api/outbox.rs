//! The action outbox (admin only): rows by delivery state, one row, and an operator's retry.

use super::extract::{Caller, OptionalJson};
use super::tasks::EmptyBody;
use super::{page_request, send};
use crate::actors::dispatcher::{GetOutboxItem, ListOutbox, Retry};
use crate::domain::outbox::{OutboxItem, OutboxStatus};
use crate::domain::query::Page;
use crate::domain::Principal;
use crate::error::{AppError, AppResult};
use crate::runtime::Handles;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OutboxParams {
    /// `pending`, `delivered` or `dead`; all rows without it.
    status: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

fn admin_only(caller: &Principal) -> AppResult<()> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(AppError::forbidden("only the admin token may read or retry the outbox"))
    }
}

#[utoipa::path(get, path = "/api/outbox", tag = "outbox", params(OutboxParams),
    responses((status = 200, description = "Newest first; webhook header values masked", body = Page<OutboxItem>)),
    security(("bearer" = [])))]
pub async fn list(
    handles: web::Data<Handles>,
    Caller(caller): Caller,
    params: web::Query<OutboxParams>,
) -> AppResult<HttpResponse> {
    admin_only(&caller)?;
    let p = params.into_inner();
    let status = p
        .status
        .map(|s| s.parse::<OutboxStatus>())
        .transpose()
        .map_err(|problem| AppError::validation("status", problem))?;
    let page = page_request(p.limit, p.cursor)?;
    let rows = send(&handles.dispatcher, ListOutbox { status, page }).await?;
    Ok(HttpResponse::Ok().json(rows))
}

#[utoipa::path(get, path = "/api/outbox/{id}", tag = "outbox", params(("id" = String, Path)),
    responses((status = 200, body = OutboxItem)), security(("bearer" = [])))]
pub async fn get(
    handles: web::Data<Handles>,
    Caller(caller): Caller,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    admin_only(&caller)?;
    let row = send(&handles.dispatcher, GetOutboxItem { id: id.into_inner() }).await?;
    Ok(HttpResponse::Ok().json(row))
}

#[utoipa::path(post, path = "/api/outbox/{id}/retry", tag = "outbox", params(("id" = String, Path)),
    responses((status = 200, description = "The row after one more attempt, made now", body = OutboxItem)),
    security(("bearer" = [])))]
pub async fn retry(
    handles: web::Data<Handles>,
    Caller(caller): Caller,
    id: web::Path<String>,
    _body: OptionalJson<EmptyBody>,
) -> AppResult<HttpResponse> {
    admin_only(&caller)?;
    let row = send(&handles.dispatcher, Retry { id: id.into_inner() }).await?;
    Ok(HttpResponse::Ok().json(row))
}
