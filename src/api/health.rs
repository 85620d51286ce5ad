//! Liveness: answers without auth and without touching the store.

use actix_web::HttpResponse;

#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "The server is up")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}
