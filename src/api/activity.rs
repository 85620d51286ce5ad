//! `/api/activity`: the audit feed, newest first.

use super::extract::Caller;
use super::page_request;
use crate::domain::query::{ActivityQuery, Page};
use crate::domain::{Activity, ActivityKind};
use crate::error::AppResult;
use crate::runtime::Handles;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActivityParams {
    /// Activity by this agent or about it.
    agent_id: Option<String>,
    task_id: Option<String>,
    kind: Option<ActivityKind>,
    /// Epoch milliseconds; only activity at or after it.
    since: Option<i64>,
    limit: Option<i64>,
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/activity", tag = "activity", params(ActivityParams),
    responses((status = 200, body = Page<Activity>)), security(("bearer" = [])))]
pub async fn list(
    handles: web::Data<Handles>,
    _: Caller,
    params: web::Query<ActivityParams>,
) -> AppResult<HttpResponse> {
    let p = params.into_inner();
    let query = ActivityQuery {
        agent_id: p.agent_id,
        task_id: p.task_id,
        kind: p.kind,
        since: p.since,
        page: page_request(p.limit, p.cursor)?,
    };
    let page = handles.history.activity(query).await?;
    Ok(HttpResponse::Ok().json(page))
}
