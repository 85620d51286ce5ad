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

on_both_backends!(walkthrough);
