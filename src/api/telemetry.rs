//! `GET /metrics` (Prometheus text format) and the middleware that counts and times every request.

use super::extract::Caller;
use super::{request, send};
use crate::actors::dispatcher::OutboxDepth;
use crate::actors::task_board::messages::CountOpenTasks;
use crate::error::{AppError, AppResult};
use crate::observability;
use crate::runtime::Handles;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use std::time::Instant;

/// The content type of the Prometheus text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Every metric in the Prometheus text format", content_type = "text/plain")),
    security(("bearer" = [])))]
pub async fn metrics(handles: web::Data<Handles>, req: HttpRequest) -> AppResult<HttpResponse> {
    if !handles.config.metrics_public {
        let Caller(caller) = Caller::extract(&req).await?;
        if !caller.is_admin() {
            return Err(AppError::forbidden(
                "only the admin token may read /metrics (or the server runs with MC_METRICS_PUBLIC=true)",
            ));
        }
    }
    let counts = request(&handles.board, CountOpenTasks)
        .await
        .map_err(AppError::mailbox)?;
    let open_tasks: Vec<(&'static str, usize)> = counts
        .into_iter()
        .map(|(status, count)| (status.as_str(), count))
        .collect();
    let (pending, dead) = send(&handles.dispatcher, OutboxDepth).await?;
    let body = observability::render(&open_tasks, &[("pending", pending), ("dead", dead)]);
    Ok(HttpResponse::Ok().content_type(PROMETHEUS_TEXT).body(body))
}

/// Counts and times each request by method, matched route pattern and status. The time runs to the response
/// head: a WebSocket stream counts its upgrade, not the session.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().as_str().to_string();
    // Routing needs the request to itself, so its match is read back from the response. Handlers answer
    // their errors as responses; an `Err` here comes from below the router, before any route matched.
    let response = next.call(req).await;
    let (route, status) = match &response {
        Ok(res) => (res.request().match_pattern(), res.status()),
        Err(e) => (None, e.as_response_error().status_code()),
    };
    observability::http_request(&method, route.as_deref(), status.as_u16(), started.elapsed());
    response
}
