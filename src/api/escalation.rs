//! Escalation rules (CRUD, evaluation on demand) and the escalation history (listing, feedback, statistics).

use super::extract::{Caller, Json, OptionalJson};
use super::tasks::EmptyBody;
use super::{page_request, send};
use crate::actors::escalation::{
    CheckAll, CheckReport, CreateRule, DeleteRule, EscalationStats, Evaluate, Evaluation, Feedback, GetRule,
    ListEscalations, ListRules, Statistics, UpdateRule,
};
use crate::domain::escalation::{Escalation, EscalationRule, RuleDraft, RulePatch};
use crate::domain::query::{EscalationQuery, Page};
use crate::error::AppResult;
use crate::runtime::Handles;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EvaluateParams {
    /// `true` (default): say which rule would fire and why, change nothing. `false` (admin): fire it.
    dry_run: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    task_id: Option<String>,
    rule_id: Option<String>,
    /// `true`: only unresolved escalations; `false`: only resolved ones.
    open: Option<bool>,
    /// Epoch milliseconds; only escalations triggered at or after it.
    since: Option<i64>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// The body of `POST /api/escalations/{id}/feedback`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FeedbackBody {
    /// Was the task really stuck, and did the escalation help?
    useful: bool,
}

#[utoipa::path(post, path = "/api/escalation-rules", tag = "escalation", request_body = RuleDraft,
    responses((status = 201, body = EscalationRule)), security(("bearer" = [])))]
pub async fn create_rule(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    Json(draft): Json<RuleDraft>,
) -> AppResult<HttpResponse> {
    let rule = send(&handles.escalation, CreateRule { draft, by }).await?;
    Ok(HttpResponse::Created().json(rule))
}

#[utoipa::path(get, path = "/api/escalation-rules", tag = "escalation",
    responses((status = 200, description = "Every rule, highest priority first", body = Vec<EscalationRule>)),
    security(("bearer" = [])))]
pub async fn list_rules(handles: web::Data<Handles>, _: Caller) -> AppResult<HttpResponse> {
    let rules = send(&handles.escalation, ListRules).await?;
    Ok(HttpResponse::Ok().json(rules))
}

#[utoipa::path(get, path = "/api/escalation-rules/{id}", tag = "escalation",
    params(("id" = String, Path, description = "Rule id or name")),
    responses((status = 200, body = EscalationRule)), security(("bearer" = [])))]
pub async fn get_rule(handles: web::Data<Handles>, _: Caller, id: web::Path<String>) -> AppResult<HttpResponse> {
    let rule = send(&handles.escalation, GetRule { key: id.into_inner() }).await?;
    Ok(HttpResponse::Ok().json(rule))
}

#[utoipa::path(patch, path = "/api/escalation-rules/{id}", tag = "escalation",
    params(("id" = String, Path, description = "Rule id or name")), request_body = RulePatch,
    responses((status = 200, body = EscalationRule)), security(("bearer" = [])))]
pub async fn update_rule(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    id: web::Path<String>,
    Json(patch): Json<RulePatch>,
) -> AppResult<HttpResponse> {
    let update = UpdateRule {
        key: id.into_inner(),
        patch,
        by,
    };
    let rule = send(&handles.escalation, update).await?;
    Ok(HttpResponse::Ok().json(rule))
}

#[utoipa::path(delete, path = "/api/escalation-rules/{id}", tag = "escalation",
    params(("id" = String, Path, description = "Rule id or name")),
    responses((status = 200, description = "The deleted rule; its open escalations are resolved", body = EscalationRule)),
    security(("bearer" = [])))]
pub async fn delete_rule(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let rule = send(
        &handles.escalation,
        DeleteRule {
            key: id.into_inner(),
            by,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(rule))
}

#[utoipa::path(post, path = "/api/escalation-rules/evaluate/{taskId}", tag = "escalation",
    params(("taskId" = String, Path), EvaluateParams),
    responses((status = 200, body = Evaluation)), security(("bearer" = [])))]
pub async fn evaluate(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    task_id: web::Path<String>,
    params: web::Query<EvaluateParams>,
    _body: OptionalJson<EmptyBody>,
) -> AppResult<HttpResponse> {
    let evaluate = Evaluate {
        task_id: task_id.into_inner(),
        dry_run: params.dry_run.unwrap_or(true),
        by,
    };
    let evaluation = send(&handles.escalation, evaluate).await?;
    Ok(HttpResponse::Ok().json(evaluation))
}

#[utoipa::path(post, path = "/api/escalation-rules/check-all", tag = "escalation",
    responses((status = 200, body = CheckReport)), security(("bearer" = [])))]
pub async fn check_all(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    _body: OptionalJson<EmptyBody>,
) -> AppResult<HttpResponse> {
    let report = send(&handles.escalation, CheckAll { by }).await?;
    Ok(HttpResponse::Ok().json(report))
}

#[utoipa::path(get, path = "/api/escalations", tag = "escalation", params(HistoryParams),
    responses((status = 200, description = "Newest first", body = Page<Escalation>)), security(("bearer" = [])))]
pub async fn history(
    handles: web::Data<Handles>,
    _: Caller,
    params: web::Query<HistoryParams>,
) -> AppResult<HttpResponse> {
    let p = params.into_inner();
    let query = EscalationQuery {
        task_id: p.task_id,
        rule_id: p.rule_id,
        open: p.open,
        since: p.since,
        page: page_request(p.limit, p.cursor)?,
    };
    let page = send(&handles.escalation, ListEscalations { query }).await?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(post, path = "/api/escalations/{id}/feedback", tag = "escalation",
    params(("id" = String, Path)), request_body = FeedbackBody,
    responses((status = 200, body = Escalation)), security(("bearer" = [])))]
pub async fn feedback(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    id: web::Path<String>,
    Json(body): Json<FeedbackBody>,
) -> AppResult<HttpResponse> {
    let rated = Feedback {
        id: id.into_inner(),
        useful: body.useful,
        by,
    };
    let escalation = send(&handles.escalation, rated).await?;
    Ok(HttpResponse::Ok().json(escalation))
}

#[utoipa::path(get, path = "/api/escalations/stats", tag = "escalation",
    responses((status = 200, body = EscalationStats)), security(("bearer" = [])))]
pub async fn stats(handles: web::Data<Handles>, _: Caller) -> AppResult<HttpResponse> {
    let stats = send(&handles.escalation, Statistics).await?;
    Ok(HttpResponse::Ok().json(stats))
}
