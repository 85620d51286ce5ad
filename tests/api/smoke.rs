use crate::common::*;
use crate::on_both_backends;
use reqwest::Method;
use serde_json::json;

async fn walkthrough(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (alice, _) = app.agent("alice").await;
    let task = app.task(json!({"title": "Write docs", "assigneeId": "alice"})).await;
    assert_eq!(task["status"], "ready");
    assert_eq!(task["assigneeId"], alice["id"]);
    let claimed = app
        .admin(Method::POST, "/api/agents/alice/claim", None)
        .await
        .expect(200);
    assert_eq!(claimed["status"], "in_progress");
    let app = app.restart().await;
    let fetched = app
        .admin(Method::GET, &format!("/api/tasks/{}", id(&task)), None)
        .await
        .expect(200);
    assert_eq!(fetched["status"], "in_progress");
    app.stop().await;
}

on_both_backends!(walkthrough, openapi_document_lists_the_endpoints);

async fn openapi_document_lists_the_endpoints(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let doc = app.call(Method::GET, "/api/openapi.json", None, None).await.expect(200);
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/api/agents",
        "/api/agents/{id}",
        "/api/agents/{id}/heartbeat",
        "/api/agents/{id}/claim",
        "/api/agents/{id}/token/rotate",
        "/api/tasks",
        "/api/tasks/{id}",
        "/api/tasks/{id}/transition",
        "/api/tasks/{id}/assign",
        "/api/tasks/{id}/complete",
        "/api/tasks/{id}/fail",
        "/api/tasks/{id}/dependencies",
        "/api/tasks/{id}/dependencies/{blocker_id}",
        "/api/activity",
        "/healthz",
    ] {
        assert!(paths.contains_key(path), "{path} missing from the OpenAPI document");
    }
    assert!(doc["components"]["schemas"]["Task"].is_object());
    app.stop().await;
}
