//! Agent-to-agent messaging over HTTP: send (plain or from a template), the inbox with long polling, sent
//! messages, read receipts, acknowledgements, search, statistics and the wake-up call.

use super::extract::{Caller, Json, OptionalJson};
use super::{page_request, send};
use crate::actors::agent::messages::{Acknowledged, InboxPage, ReadReceipt, Sent};
use crate::actors::directory::messages::{self as dir, Wakeup};
use crate::actors::templates::RenderTemplate;
use crate::domain::message::{check_idempotency_key, InboxFilter, InboxStats, Message, MessageDraft};
use crate::domain::message::{MessagePriority, MessageType};
use crate::domain::query::Page;
use crate::domain::Principal;
use crate::error::{AppError, AppResult};
use crate::runtime::Handles;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

/// The longest a long poll may wait, in seconds.
pub const MAX_WAIT_SECS: u64 = 60;
/// The most ids one batch read takes.
const MAX_BATCH_READ: usize = 500;

/// Header a client sets to make a send safe to retry: the same key from the same sender within 24 hours
/// returns the first message.
const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
const REPLAYED: &str = "Idempotent-Replayed";

fn idempotency_key(req: &HttpRequest) -> AppResult<Option<String>> {
    let Some(value) = req.headers().get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| AppError::validation(IDEMPOTENCY_KEY, "must be visible ASCII"))?;
    Ok(Some(check_idempotency_key(text)?))
}

fn sent_response(sent: Sent) -> HttpResponse {
    let mut response = HttpResponse::Created();
    if sent.replayed {
        response.insert_header((REPLAYED, "true"));
    }
    response.json(sent.message)
}

async fn deliver(
    handles: &Handles,
    from: String,
    draft: MessageDraft,
    by: Principal,
    req: &HttpRequest,
) -> AppResult<HttpResponse> {
    let idempotency_key = idempotency_key(req)?;
    let sent = send(
        &handles.directory,
        dir::SendMessage {
            from,
            draft,
            by,
            idempotency_key,
        },
    )
    .await?;
    Ok(sent_response(sent))
}

#[utoipa::path(post, path = "/api/agents/{id}/messages", tag = "messages",
    params(("id" = String, Path, description = "Sending agent's id or name"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key, kept 24 h per sender")),
    request_body = MessageDraft,
    responses((status = 201, description = "Stored and delivered", body = Message)),
    security(("bearer" = [])))]
pub async fn send_message(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    id: web::Path<String>,
    req: HttpRequest,
    Json(draft): Json<MessageDraft>,
) -> AppResult<HttpResponse> {
    deliver(&handles, id.into_inner(), draft, by, &req).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FromTemplateBody {
    /// Template name or id.
    template: String,
    /// Values for the template's variables: strings, numbers or booleans.
    #[serde(default)]
    #[schema(value_type = Object)]
    vars: BTreeMap<String, Value>,
    to_agent_id: String,
    /// Overrides the template's priority.
    priority: Option<MessagePriority>,
    task_id: Option<String>,
    #[serde(default)]
    related_task_ids: Vec<String>,
    data: Option<Value>,
    ack_deadline_at: Option<i64>,
    ack_within_ms: Option<i64>,
    escalation_action: Option<String>,
}

#[utoipa::path(post, path = "/api/agents/{id}/messages/from-template", tag = "messages",
    params(("id" = String, Path, description = "Sending agent's id or name"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key, kept 24 h per sender")),
    request_body = FromTemplateBody,
    responses((status = 201, description = "Rendered, stored and delivered", body = Message)),
    security(("bearer" = [])))]
pub async fn send_from_template(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    id: web::Path<String>,
    req: HttpRequest,
    Json(body): Json<FromTemplateBody>,
) -> AppResult<HttpResponse> {
    let from = id.into_inner();
    // A retry must replay even if the template has changed or gone since the first send.
    if let Some(key) = idempotency_key(&req)? {
        let replay = dir::ReplaySend {
            from: from.clone(),
            key,
            by: by.clone(),
        };
        if let Some(sent) = send(&handles.directory, replay).await? {
            return Ok(sent_response(sent));
        }
    }
    let rendered = send(
        &handles.templates,
        RenderTemplate {
            key: body.template,
            vars: body.vars,
            only_declared: false,
        },
    )
    .await?;
    let draft = MessageDraft {
        to_agent_id: body.to_agent_id,
        kind: Some(rendered.kind),
        subject: rendered.subject,
        body: rendered.body,
        priority: Some(body.priority.unwrap_or(rendered.priority)),
        task_id: body.task_id,
        related_task_ids: body.related_task_ids,
        data: body.data,
        ack_deadline_at: body.ack_deadline_at,
        ack_within_ms: body.ack_within_ms,
        escalation_action: body.escalation_action,
    };
    deliver(&handles, from, draft, by, &req).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InboxParams {
    /// `true`: only unread messages; `false`: only read ones.
    unread: Option<bool>,
    /// `true`: only unacknowledged messages; `false`: only acknowledged ones.
    unacknowledged: Option<bool>,
    #[serde(rename = "type")]
    #[param(rename = "type")]
    kind: Option<MessageType>,
    priority: Option<MessagePriority>,
    task_id: Option<String>,
    /// Sender's id or name.
    from_agent_id: Option<String>,
    /// Only messages created at or after this time (epoch ms).
    since: Option<i64>,
    /// Long poll: with nothing matching, wait up to this many seconds (max 60) for a matching message.
    wait: Option<u64>,
    limit: Option<i64>,
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/agents/{id}/messages", tag = "messages",
    params(("id" = String, Path, description = "Agent id or name"), InboxParams),
    responses((status = 200, description = "Newest first, with the open counts", body = InboxPage)),
    security(("bearer" = [])))]
pub async fn inbox(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    id: web::Path<String>,
    params: web::Query<InboxParams>,
) -> AppResult<HttpResponse> {
    let p = params.into_inner();
    let page = page_request(p.limit, p.cursor)?;
    if p.wait.is_some_and(|w| w > MAX_WAIT_SECS) {
        return Err(AppError::validation(
            "wait",
            format!("must be between 0 and {MAX_WAIT_SECS} seconds"),
        ));
    }
    let filter = InboxFilter {
        unread: p.unread,
        unacknowledged: p.unacknowledged,
        kind: p.kind,
        priority: p.priority,
        task_id: p.task_id,
        from_agent: p.from_agent_id,
        since: p.since,
    };
    let list = dir::ListInbox {
        key: id.into_inner(),
        filter,
        page,
        wait: p.wait.filter(|w| *w > 0).map(Duration::from_secs),
        by,
    };
    let page = send(&handles.directory, list).await?;
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    limit: Option<i64>,
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/agents/{id}/messages/sent", tag = "messages",
    params(("id" = String, Path, description = "Agent id or name"), PageParams),
    responses((status = 200, description = "Newest first", body = Page<Message>)),
    security(("bearer" = [])))]
pub async fn sent(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    id: web::Path<String>,
    params: web::Query<PageParams>,
) -> AppResult<HttpResponse> {
    let params = params.into_inner();
    let list = dir::ListSent {
        key: id.into_inner(),
        page: page_request(params.limit, params.cursor)?,
        by,
    };
    Ok(HttpResponse::Ok().json(send(&handles.directory, list).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Text to find in subject, body or sender name (case-insensitive).
    q: String,
    limit: Option<i64>,
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/agents/{id}/messages/search", tag = "messages",
    params(("id" = String, Path, description = "Agent id or name"), SearchParams),
    responses((status = 200, description = "Matching inbox messages, newest first", body = Page<Message>)),
    security(("bearer" = [])))]
pub async fn search(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    id: web::Path<String>,
    params: web::Query<SearchParams>,
) -> AppResult<HttpResponse> {
    let params = params.into_inner();
    let text = params.q.trim().to_string();
    if text.is_empty() || text.chars().count() > 200 {
        return Err(AppError::validation("q", "must be 1 to 200 characters"));
    }
    let search = dir::SearchInbox {
        key: id.into_inner(),
        text,
        page: page_request(params.limit, params.cursor)?,
        by,
    };
    Ok(HttpResponse::Ok().json(send(&handles.directory, search).await?))
}

#[utoipa::path(get, path = "/api/agents/{id}/messages/stats", tag = "messages",
    params(("id" = String, Path, description = "Agent id or name")),
    responses((status = 200, body = InboxStats)), security(("bearer" = [])))]
pub async fn stats(handles: web::Data<Handles>, Caller(by): Caller, id: web::Path<String>) -> AppResult<HttpResponse> {
    let stats = send(
        &handles.directory,
        dir::InboxStatistics {
            key: id.into_inner(),
            by,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(stats))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchReadBody {
    message_ids: Vec<String>,
}

#[utoipa::path(post, path = "/api/agents/{id}/messages/read", tag = "messages",
    params(("id" = String, Path, description = "Agent id or name")), request_body = BatchReadBody,
    responses((status = 200, description = "How many were marked; the rest are listed as skipped", body = ReadReceipt)),
    security(("bearer" = [])))]
pub async fn read_batch(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    id: web::Path<String>,
    Json(body): Json<BatchReadBody>,
) -> AppResult<HttpResponse> {
    if body.message_ids.len() > MAX_BATCH_READ {
        return Err(AppError::validation(
            "messageIds",
            format!("at most {MAX_BATCH_READ} ids per call"),
        ));
    }
    let mark = dir::MarkRead {
        key: id.into_inner(),
        ids: body.message_ids,
        by,
    };
    Ok(HttpResponse::Ok().json(send(&handles.directory, mark).await?))
}

#[utoipa::path(post, path = "/api/agents/{id}/messages/{messageId}/read", tag = "messages",
    params(("id" = String, Path, description = "Agent id or name"), ("messageId" = String, Path)),
    responses((status = 200, body = Message)), security(("bearer" = [])))]
pub async fn read_one(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (key, message_id) = path.into_inner();
    let read = dir::ReadMessage { key, message_id, by };
    Ok(HttpResponse::Ok().json(send(&handles.directory, read).await?))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AcknowledgeBody {
    /// Sends a `coordination` reply `RE: <subject>` to the original sender.
    response: Option<String>,
    /// What the recipient did about the message.
    action_taken: Option<String>,
}

#[utoipa::path(post, path = "/api/agents/{id}/messages/{messageId}/acknowledge", tag = "messages",
    params(("id" = String, Path, description = "Agent id or name"), ("messageId" = String, Path)),
    request_body = AcknowledgeBody,
    responses((status = 200, description = "Read and acknowledged, with the reply if one was sent", body = Acknowledged)),
    security(("bearer" = [])))]
pub async fn acknowledge(
    handles: web::Data<Handles>,
    Caller(by): Caller,
    path: web::Path<(String, String)>,
    OptionalJson(body): OptionalJson<AcknowledgeBody>,
) -> AppResult<HttpResponse> {
    let (key, message_id) = path.into_inner();
    let ack = dir::AcknowledgeMessage {
        key,
        message_id,
        response: body.response,
        action_taken: body.action_taken,
        by,
    };
    Ok(HttpResponse::Ok().json(send(&handles.directory, ack).await?))
}

#[utoipa::path(get, path = "/api/messages/{id}", tag = "messages", params(("id" = String, Path)),
    responses((status = 200, body = Message)), security(("bearer" = [])))]
pub async fn get(handles: web::Data<Handles>, Caller(by): Caller, id: web::Path<String>) -> AppResult<HttpResponse> {
    let message = send(
        &handles.directory,
        dir::GetMessage {
            id: id.into_inner(),
            by,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(message))
}

#[utoipa::path(post, path = "/api/agents/{id}/wake", tag = "messages",
    params(("id" = String, Path, description = "Agent id or name")),
    responses((status = 200, description = "Heartbeat recorded; unread messages and open work", body = Wakeup)),
    security(("bearer" = [])))]
pub async fn wake(handles: web::Data<Handles>, Caller(by): Caller, id: web::Path<String>) -> AppResult<HttpResponse> {
    let wakeup = send(
        &handles.directory,
        dir::Wake {
            key: id.into_inner(),
            by,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(wakeup))
}
