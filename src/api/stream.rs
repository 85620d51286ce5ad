//! `GET /api/agents/{id}/stream`: a WebSocket (actix-ws, no actor per session) that pushes each message the
//! moment it is delivered to the agent, and takes `ack`, `read` and `ping` frames.
//!
//! Frames are JSON objects with a `type`. Out: `hello` (once, with the open counts), `message`,
//! `acknowledged`, `read`, `pong`, `error`. In: `ack {messageId, response?, actionTaken?}`,
//! `read {messageIds}`, `ping`. A frame may carry a `requestId`, echoed in its answer. A bad or unknown
//! frame gets an `error` frame and the connection stays open. The server pings every 30 s and closes a
//! connection that has not answered for 90 s; a client that stops reading is dropped once 256 messages
//! wait for it, and catches up from the inbox listing when it reconnects.

use super::extract::bearer_token;
use super::send;
use crate::actors::agent::messages::Stream;
use crate::actors::directory::messages::{self as dir, Authenticate};
use crate::domain::Principal;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::runtime::Handles;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{CloseCode, CloseReason, Message as Frame, MessageStream, Session};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const PING_EVERY: Duration = Duration::from_secs(30);
const PONG_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenParam {
    token: Option<String>,
}

async fn authenticate(handles: &Handles, req: &HttpRequest) -> AppResult<Principal> {
    let from_query = web::Query::<TokenParam>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.into_inner().token)
        .filter(|t| !t.is_empty());
    let token = bearer_token(req).or(from_query).ok_or_else(|| {
        AppError::new(
            ErrorCode::Unauthorized,
            "missing token (Authorization: Bearer <token>, or ?token=)",
        )
    })?;
    send(&handles.directory, Authenticate { token }).await
}

#[utoipa::path(get, path = "/api/agents/{id}/stream", tag = "messages",
    params(("id" = String, Path, description = "Agent id or name"),
        ("token" = Option<String>, Query, description = "Token, for clients that cannot set headers")),
    responses((status = 101, description = "WebSocket: pushes each new message as a `message` frame")),
    security(("bearer" = [])))]
pub async fn stream(
    handles: web::Data<Handles>,
    req: HttpRequest,
    body: web::Payload,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let by = authenticate(&handles, &req).await?;
    let key = id.into_inner();
    let open = dir::OpenStream {
        key: key.clone(),
        by: by.clone(),
    };
    let opened = send(&handles.directory, open).await?;
    let (response, session, frames) = actix_ws::handle(&req, body).map_err(|e| {
        AppError::new(
            ErrorCode::ValidationFailed,
            format!("this endpoint needs a WebSocket upgrade: {e}"),
        )
    })?;
    let handles = handles.get_ref().clone();
    actix_web::rt::spawn(run(handles, key, by, opened, session, frames));
    Ok(response)
}

async fn run(
    handles: Handles,
    key: String,
    by: Principal,
    mut opened: Stream,
    mut session: Session,
    mut frames: MessageStream,
) {
    let hello = json!({
        "type": "hello",
        "agentId": opened.agent.id,
        "agentName": opened.agent.name,
        "unreadCount": opened.unread_count,
        "unacknowledgedCount": opened.unacknowledged_count,
    });
    if session.text(hello.to_string()).await.is_err() {
        return;
    }
    let mut ping = actix_web::rt::time::interval(PING_EVERY);
    ping.tick().await;
    let mut last_heard = Instant::now();
    let reason = loop {
        tokio::select! {
            delivered = opened.messages.recv() => match delivered {
                Some(message) => {
                    let frame = json!({ "type": "message", "message": message });
                    if session.text(frame.to_string()).await.is_err() {
                        return;
                    }
                }
                None => break Some(CloseReason {
                    code: CloseCode::Away,
                    description: Some("the stream ended (agent deleted, or the client fell behind)".into()),
                }),
            },
            frame = frames.recv() => match frame {
                Some(Ok(Frame::Text(text))) => {
                    last_heard = Instant::now();
                    let answer = answer(&handles, &key, &by, &text).await;
                    if session.text(answer.to_string()).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Frame::Ping(bytes))) => {
                    last_heard = Instant::now();
                    if session.pong(&bytes).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Frame::Pong(_))) => last_heard = Instant::now(),
                Some(Ok(Frame::Close(_))) | None | Some(Err(_)) => break None,
                Some(Ok(Frame::Binary(_))) => {
                    let error = error_frame(None, "validation_failed", "frames are JSON text, not binary");
                    if session.text(error.to_string()).await.is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > PONG_TIMEOUT {
                    break Some(CloseReason {
                        code: CloseCode::Away,
                        description: Some("no answer to pings".into()),
                    });
                }
                if session.ping(b"").await.is_err() {
                    return;
                }
            }
        }
    };
    let _ = session.close(reason).await;
}

fn error_frame(request_id: Option<&Value>, code: &str, message: &str) -> Value {
    json!({ "type": "error", "requestId": request_id, "code": code, "message": message })
}

fn app_error_frame(request_id: Option<&Value>, error: &AppError) -> Value {
    error_frame(request_id, &error.code.to_string(), &error.message)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AckFrame {
    message_id: String,
    response: Option<String>,
    action_taken: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReadFrame {
    message_ids: Vec<String>,
}

/// Answers one client frame.
async fn answer(handles: &Handles, key: &str, by: &Principal, text: &str) -> Value {
    let Ok(Value::Object(mut frame)) = serde_json::from_str::<Value>(text) else {
        return error_frame(None, "invalid_json", "a frame must be a JSON object with a `type`");
    };
    let request_id = frame.remove("requestId");
    let kind = frame.remove("type");
    let rest = Value::Object(frame);
    let result = match kind.as_ref().and_then(Value::as_str) {
        Some("ping") => return json!({ "type": "pong", "requestId": request_id }),
        Some("ack") => match serde_json::from_value::<AckFrame>(rest) {
            Ok(ack) => {
                let ack = dir::AcknowledgeMessage {
                    key: key.to_string(),
                    message_id: ack.message_id,
                    response: ack.response,
                    action_taken: ack.action_taken,
                    by: by.clone(),
                };
                super::send(&handles.directory, ack).await.map(|done| {
                    json!({ "type": "acknowledged", "requestId": request_id, "message": done.message, "reply": done.reply })
                })
            }
            Err(e) => Err(AppError::validation("ack", e)),
        },
        Some("read") => match serde_json::from_value::<ReadFrame>(rest) {
            Ok(read) => {
                let mark = dir::MarkRead {
                    key: key.to_string(),
                    ids: read.message_ids,
                    by: by.clone(),
                };
                super::send(&handles.directory, mark).await.map(|receipt| {
                    json!({
                        "type": "read", "requestId": request_id, "marked": receipt.marked,
                        "markedIds": receipt.marked_ids, "skipped": receipt.skipped,
                    })
                })
            }
            Err(e) => Err(AppError::validation("read", e)),
        },
        Some(other) => Err(AppError::validation(
            "type",
            format!("unknown frame type '{other}' (expected ack, read or ping)"),
        )),
        None => Err(AppError::validation("type", "is required")),
    };
    result.unwrap_or_else(|e| app_error_frame(request_id.as_ref(), &e))
}
