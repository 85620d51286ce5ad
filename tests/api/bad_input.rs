//! Bad input: every refused request gets the documented status and error code, and changes nothing (the
//! agents, tasks, task details and activity read back afterwards are exactly what they were before).

use crate::common::*;
use crate::on_both_backends;
use reqwest::Method;
use serde_json::{json, Value};

/// A well-formed id that no resource has.
const MISSING: &str = "01900000-0000-7000-8000-000000000000";

/// Everything a client can read: agents, tasks, each task's detail, activity.
async fn snapshot(app: &TestApp) -> Value {
    let agents = all_items(app, "/api/agents", 100).await;
    let tasks = all_items(app, "/api/tasks", 100).await;
    let mut details = Vec::new();
    for task in &tasks {
        details.push(
            app.admin(Method::GET, &format!("/api/tasks/{}", id(task)), None)
                .await
                .expect(200),
        );
    }
    let activity = all_items(app, "/api/activity", 100).await;
    json!({ "agents": agents, "tasks": tasks, "details": details, "activity": activity })
}

async fn assert_unchanged(app: &TestApp, before: &Value, what: &str) {
    let after = snapshot(app).await;
    assert_eq!(&after, before, "the refused request `{what}` changed the state");
}

/// Sends a raw body as the admin and checks the status and error code, then that nothing changed.
async fn refused_raw(app: &TestApp, method: Method, path: &str, body: &str, status: u16, code: &str) -> Value {
    let before = snapshot(app).await;
    let what = format!("{method} {path} {body}");
    let reply = app.raw(method, path, Some(ADMIN_TOKEN), body.to_string()).await;
    assert_eq!(
        reply.status.as_u16(),
        status,
        "{what}: unexpected status; body: {}",
        reply.body
    );
    assert_eq!(
        reply.code(),
        code,
        "{what}: unexpected error code; body: {}",
        reply.body
    );
    assert_unchanged(app, &before, &what).await;
    reply.body
}

/// Like [`refused_raw`] with a JSON body (or none).
async fn refused(app: &TestApp, method: Method, path: &str, body: Option<Value>, status: u16, code: &str) -> Value {
    let before = snapshot(app).await;
    let what = format!(
        "{method} {path} {}",
        body.as_ref().map(Value::to_string).unwrap_or_default()
    );
    let reply = app.admin(method, path, body).await;
    assert_eq!(
        reply.status.as_u16(),
        status,
        "{what}: unexpected status; body: {}",
        reply.body
    );
    assert_eq!(
        reply.code(),
        code,
        "{what}: unexpected error code; body: {}",
        reply.body
    );
    assert_unchanged(app, &before, &what).await;
    reply.body
}

/// The documented shape of a `validation_failed` about a body field: the message starts with the field name and
/// `details.field` names it.
#[track_caller]
fn assert_names_field(body: &Value, field: &str) {
    let message = body["error"]["message"].as_str().expect("error message");
    assert!(
        message.starts_with(field),
        "message should start with `{field}`: {body}"
    );
    assert_eq!(
        body["error"]["details"]["field"], field,
        "details.field should be `{field}`: {body}"
    );
}

struct Seed {
    agent: String,
    task: String,
    other_task: String,
}

/// Some state for "nothing changed" to mean something: two agents, a task assigned and claimed, another task.
async fn seed(app: &TestApp) -> Seed {
    let (alice, _) = app
        .register(json!({"name": "alice", "role": "builder", "specializations": ["rust"]}))
        .await;
    app.agent("bob").await;
    let task = app
        .task(json!({"title": "Original title", "description": "kept", "assigneeId": "alice", "tags": ["a"]}))
        .await;
    app.admin(Method::POST, "/api/agents/alice/claim", None)
        .await
        .expect(200);
    let other = app.task(json!({"title": "Another", "priority": "P1"})).await;
    Seed {
        agent: id(&alice),
        task: id(&task),
        other_task: id(&other),
    }
}

async fn malformed_json_is_invalid_json(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = seed(&app).await;
    let task = format!("/api/tasks/{}", s.task);
    let agent = format!("/api/agents/{}", s.agent);
    for body in [
        r#"{"title":"#,
        r#"{"title": "x",}"#,
        "not json",
        r#"{"title": "x"} trailing"#,
        "{'title': 'x'}",
    ] {
        refused_raw(&app, Method::POST, "/api/tasks", body, 400, "invalid_json").await;
    }
    refused_raw(&app, Method::PATCH, &task, r#"{"title":"#, 400, "invalid_json").await;
    refused_raw(
        &app,
        Method::POST,
        "/api/agents",
        r#"{"name": "carol""#,
        400,
        "invalid_json",
    )
    .await;
    refused_raw(&app, Method::PATCH, &agent, r#"{"role": }"#, 400, "invalid_json").await;
    refused_raw(
        &app,
        Method::POST,
        &format!("{task}/transition"),
        r#"{"to": "review"#,
        400,
        "invalid_json",
    )
    .await;
    refused_raw(&app, Method::POST, &format!("{task}/fail"), "{", 400, "invalid_json").await;
    // An optional body must still be valid JSON when present.
    refused_raw(
        &app,
        Method::POST,
        &format!("{agent}/heartbeat"),
        r#"{"status":"#,
        400,
        "invalid_json",
    )
    .await;
    app.stop().await;
}

async fn empty_body_is_invalid_json(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = seed(&app).await;
    let task = format!("/api/tasks/{}", s.task);
    refused_raw(&app, Method::POST, "/api/tasks", "", 400, "invalid_json").await;
    refused_raw(&app, Method::POST, "/api/tasks", "  \n ", 400, "invalid_json").await;
    // No body at all (and no content type).
    refused(&app, Method::POST, "/api/tasks", None, 400, "invalid_json").await;
    refused_raw(&app, Method::POST, "/api/agents", "", 400, "invalid_json").await;
    refused_raw(&app, Method::PATCH, &task, "", 400, "invalid_json").await;
    refused_raw(
        &app,
        Method::POST,
        &format!("{task}/transition"),
        "",
        400,
        "invalid_json",
    )
    .await;
    refused_raw(&app, Method::POST, &format!("{task}/assign"), "", 400, "invalid_json").await;
    refused_raw(&app, Method::POST, &format!("{task}/complete"), "", 400, "invalid_json").await;
    refused_raw(
        &app,
        Method::POST,
        &format!("{task}/dependencies"),
        "",
        400,
        "invalid_json",
    )
    .await;
    app.stop().await;
}

async fn non_object_body_is_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = seed(&app).await;
    for body in [r#"[{"title": "x"}]"#, r#"["x"]"#, "[]", r#""x""#, "42", "null", "true"] {
        refused_raw(&app, Method::POST, "/api/tasks", body, 400, "validation_failed").await;
    }
    for body in [r#"[{"name": "carol"}]"#, r#"["carol"]"#, "null"] {
        refused_raw(&app, Method::POST, "/api/agents", body, 400, "validation_failed").await;
    }
    refused_raw(
        &app,
        Method::PATCH,
        &format!("/api/tasks/{}", s.task),
        r#"["x"]"#,
        400,
        "validation_failed",
    )
    .await;
    refused_raw(
        &app,
        Method::POST,
        &format!("/api/tasks/{}/transition", s.other_task),
        r#"["ready"]"#,
        400,
        "validation_failed",
    )
    .await;
    app.stop().await;
}

/// An array holding a value for every field, in declaration order, is still not an object.
async fn positional_array_body_is_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = seed(&app).await;
    let task = format!("/api/tasks/{}", s.task);
    let cases = [
        (
            Method::POST,
            "/api/tasks".to_string(),
            r#"["Sneaky", "", "P2", null, null, null, null, null, [], null, null, null, {}]"#,
        ),
        (
            Method::POST,
            "/api/agents".to_string(),
            r#"["carol", "", "specialist", "external", null, [], {}, null, null]"#,
        ),
        (Method::POST, format!("{task}/transition"), r#"["review", null]"#),
        (Method::POST, format!("{task}/assign"), r#"[null]"#),
        (
            Method::POST,
            format!("/api/agents/{}/heartbeat", s.agent),
            r#"["idle", null]"#,
        ),
    ];
    let mut problems = Vec::new();
    for (method, path, body) in cases {
        let before = snapshot(&app).await;
        let what = format!("{method} {path} {body}");
        let reply = app.raw(method, &path, Some(ADMIN_TOKEN), body.to_string()).await;
        if reply.status.as_u16() != 400 || reply.code() != "validation_failed" {
            problems.push(format!("{what} => {} {}", reply.status.as_u16(), reply.body));
        }
        if snapshot(&app).await != before {
            problems.push(format!("{what} changed the state"));
        }
    }
    assert!(
        problems.is_empty(),
        "expected 400 validation_failed and no change:\n{}",
        problems.join("\n")
    );
    app.stop().await;
}

async fn missing_required_field_is_validation_failed(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = seed(&app).await;
    let task = format!("/api/tasks/{}", s.task);
    let cases = [
        ("/api/tasks".to_string(), json!({"description": "no title"}), "title"),
        ("/api/tasks".to_string(), json!({}), "title"),
        ("/api/agents".to_string(), json!({"role": "no name"}), "name"),
        (format!("{task}/transition"), json!({"note": "where to?"}), "to"),
        (format!("{task}/complete"), json!({"notes": "no outcome"}), "outcome"),
        (format!("{task}/fail"), json!({"message": "no kind"}), "errorKind"),
        (
            format!("/api/tasks/{}/dependencies", s.other_task),
            json!({}),
            "blockedBy",
        ),
    ];
    for (path, body, field) in cases {
        let reply = refused(&app, Method::POST, &path, Some(body), 400, "validation_failed").await;
        let message = reply["error"]["message"].as_str().expect("message");
        assert!(
            message.contains(field),
            "POST {path}: the message should name `{field}`: {reply}"
        );
    }
    app.stop().await;
}

/// `{agentId: id | name | null}`: `agentId` is required (an explicit `null` unassigns); an empty object must not
/// quietly unassign the task and send it from `in_progress` back to `ready`.
async fn assign_without_agent_id_is_validation_failed(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = seed(&app).await;
    let path = format!("/api/tasks/{}/assign", s.task);
    let reply = refused(&app, Method::POST, &path, Some(json!({})), 400, "validation_failed").await;
    let message = reply["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("agentId"),
        "the message should name `agentId`: {reply}"
    );
    let task = app
        .admin(Method::GET, &format!("/api/tasks/{}", s.task), None)
        .await
        .expect(200);
    assert_eq!(task["status"], "in_progress");
    assert_eq!(task["assigneeId"], s.agent.as_str());
    app.stop().await;
}

/// docs/API.md: for body fields, `message` starts with the field name and `details.field` names it.
async fn missing_required_field_is_named_in_details(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    seed(&app).await;
    let reply = refused(
        &app,
        Method::POST,
        "/api/tasks",
        Some(json!({"description": "x"})),
        400,
        "validation_failed",
    )
    .await;
    assert_names_field(&reply, "title");
    let reply = refused(
        &app,
        Method::POST,
        "/api/agents",
        Some(json!({"role": "x"})),
        400,
        "validation_failed",
    )
    .await;
    assert_names_field(&reply, "name");
    app.stop().await;
}

async fn unknown_field_is_validation_failed(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = seed(&app).await;
    let task = format!("/api/tasks/{}", s.task);
    let agent = format!("/api/agents/{}", s.agent);
    let cases = [
        (
            Method::POST,
            "/api/tasks".to_string(),
            json!({"title": "x", "bogus": 1}),
            "bogus",
        ),
        (
            Method::POST,
            "/api/tasks".to_string(),
            json!({"title": "x", "Title": "y"}),
            "Title",
        ),
        (
            Method::POST,
            "/api/tasks".to_string(),
            json!({"title": "x", "assignee_id": "alice"}),
            "assignee_id",
        ),
        (
            Method::POST,
            "/api/agents".to_string(),
            json!({"name": "carol", "token": "mine"}),
            "token",
        ),
        (
            Method::PATCH,
            task.clone(),
            json!({"title": "changed", "owner": "me"}),
            "owner",
        ),
        // `status` is not a field of PATCH /api/tasks/{id}: use the transition endpoints.
        (Method::PATCH, task.clone(), json!({"status": "done"}), "status"),
        (
            Method::PATCH,
            agent.clone(),
            json!({"role": "changed", "name": "renamed"}),
            "name",
        ),
        (
            Method::POST,
            format!("{task}/transition"),
            json!({"to": "review", "force": true}),
            "force",
        ),
    ];
    for (method, path, body, field) in cases {
        let reply = refused(&app, method.clone(), &path, Some(body), 400, "validation_failed").await;
        assert_names_field(&reply, field);
    }
    // Nested objects refuse unknown fields too.
    let body = json!({"title": "x", "requirements": {"requiresGpu": true, "gpuModel": "h100"}});
    let reply = refused(&app, Method::POST, "/api/tasks", Some(body), 400, "validation_failed").await;
    let message = reply["error"]["message"].as_str().expect("message");
    assert!(message.contains("gpuModel"), "{reply}");
    let body = json!({"name": "carol", "constraints": {"hasInternet": true, "cores": 8}});
    let reply = refused(&app, Method::POST, "/api/agents", Some(body), 400, "validation_failed").await;
    let message = reply["error"]["message"].as_str().expect("message");
    assert!(message.contains("cores"), "{reply}");
    app.stop().await;
}

async fn unknown_enum_value_is_validation_failed(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = seed(&app).await;
    let task = format!("/api/tasks/{}", s.task);
    let agent = format!("/api/agents/{}", s.agent);
    let cases = [
        (
            Method::POST,
            "/api/tasks".to_string(),
            json!({"title": "x", "priority": "P9"}),
            "priority",
        ),
        (
            Method::POST,
            "/api/tasks".to_string(),
            json!({"title": "x", "priority": "p1"}),
            "priority",
        ),
        (
            Method::POST,
            "/api/tasks".to_string(),
            json!({"title": "x", "status": "done"}),
            "status",
        ),
        (
            Method::POST,
            "/api/tasks".to_string(),
            json!({"title": "x", "status": "in_progress"}),
            "status",
        ),
        (
            Method::POST,
            "/api/tasks".to_string(),
            json!({"title": "x", "status": "blocked"}),
            "status",
        ),
        (
            Method::POST,
            "/api/tasks".to_string(),
            json!({"title": "x", "status": "nope"}),
            "status",
        ),
        (
            Method::POST,
            "/api/tasks".to_string(),
            json!({"title": "x", "slaTier": "asap"}),
            "slaTier",
        ),
        (
            Method::POST,
            "/api/agents".to_string(),
            json!({"name": "carol", "level": "boss"}),
            "level",
        ),
        (
            Method::POST,
            "/api/agents".to_string(),
            json!({"name": "carol", "kind": "robot"}),
            "kind",
        ),
        (Method::PATCH, agent.clone(), json!({"status": "sleeping"}), "status"),
        (Method::PATCH, task.clone(), json!({"priority": "urgent"}), "priority"),
        (
            Method::POST,
            format!("{task}/transition"),
            json!({"to": "flying"}),
            "to",
        ),
        (
            Method::POST,
            format!("{task}/complete"),
            json!({"outcome": "cancelled"}),
            "outcome",
        ),
        (
            Method::POST,
            format!("{agent}/heartbeat"),
            json!({"status": "dancing"}),
            "status",
        ),
        // Real statuses a heartbeat may not report.
        (
            Method::POST,
            format!("{agent}/heartbeat"),
            json!({"status": "offline"}),
            "status",
        ),
        (
            Method::POST,
            format!("{agent}/heartbeat"),
            json!({"status": "suspended"}),
            "status",
        ),
    ];
    for (method, path, body, field) in cases {
        let reply = refused(&app, method.clone(), &path, Some(body), 400, "validation_failed").await;
        assert_names_field(&reply, field);
    }
    app.stop().await;
}

async fn wrong_type_or_out_of_range_is_validation_failed(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = seed(&app).await;
    let task = format!("/api/tasks/{}", s.task);
    let agent = format!("/api/agents/{}", s.agent);
    let cases = [
        (Method::POST, "/api/tasks".to_string(), json!({"title": 5}), "title"),
        (Method::POST, "/api/tasks".to_string(), json!({"title": null}), "title"),
        (Method::POST, "/api/tasks".to_string(), json!({"title": ["x"]}), "title"),
        (
            Method::POST,
            "/api/tasks".to_string(),
            json!({"title": "x", "tags": "a,b"}),
            "tags",
        ),
        (
            Method::POST,
            "/api/tasks".to_string(),
            json!({"title": "x", "estimatedMinutes": "ten"}),
            "estimatedMinutes",
        ),
        (
            Method::POST,
            "/api/tasks".to_string(),
            json!({"title": "x", "sloMs": 1.5}),
            "sloMs",
        ),
        (
            Method::POST,
            "/api/tasks".to_string(),
            json!({"title": "x", "sloMs": 0}),
            "sloMs",
        ),
        (
            Method::POST,
            "/api/tasks".to_string(),
            json!({"title": "x", "requirements": {"requiresGpu": "yes"}}),
            "requirements.requiresGpu",
        ),
        (Method::POST, "/api/agents".to_string(), json!({"name": 7}), "name"),
        (Method::POST, "/api/agents".to_string(), json!({"name": "c"}), "name"),
        (
            Method::POST,
            "/api/agents".to_string(),
            json!({"name": "1carol"}),
            "name",
        ),
        (
            Method::POST,
            "/api/agents".to_string(),
            json!({"name": "carol smith"}),
            "name",
        ),
        (
            Method::POST,
            "/api/agents".to_string(),
            json!({"name": "carol", "maxConcurrentTasks": "3"}),
            "maxConcurrentTasks",
        ),
        (
            Method::POST,
            "/api/agents".to_string(),
            json!({"name": "carol", "maxConcurrentTasks": 0}),
            "maxConcurrentTasks",
        ),
        (
            Method::POST,
            "/api/agents".to_string(),
            json!({"name": "carol", "maxConcurrentTasks": 101}),
            "maxConcurrentTasks",
        ),
        (
            Method::POST,
            "/api/agents".to_string(),
            json!({"name": "carol", "maxMinutesPerDay": 1441}),
            "maxMinutesPerDay",
        ),
        (
            Method::POST,
            "/api/agents".to_string(),
            json!({"name": "carol", "specializations": "rust"}),
            "specializations",
        ),
        (Method::PATCH, task.clone(), json!({"title": ""}), "title"),
        (Method::PATCH, task.clone(), json!({"title": "   "}), "title"),
        (Method::PATCH, task.clone(), json!({"tags": [1, 2]}), "tags[0]"),
        (
            Method::PATCH,
            agent.clone(),
            json!({"maxConcurrentTasks": -1}),
            "maxConcurrentTasks",
        ),
    ];
    for (method, path, body, field) in cases {
        let reply = refused(&app, method.clone(), &path, Some(body), 400, "validation_failed").await;
        assert_names_field(&reply, field);
    }
    // An agent cannot be its own lead.
    refused(
        &app,
        Method::PATCH,
        &agent,
        Some(json!({"leadId": s.agent})),
        400,
        "validation_failed",
    )
    .await;
    app.stop().await;
}

/// A number where a closed string set is expected is a wrong type (`validation_failed`), not a syntax error.
async fn wrong_type_for_enum_field_is_validation_failed(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = seed(&app).await;
    let task = format!("/api/tasks/{}", s.task);
    let agent = format!("/api/agents/{}", s.agent);
    let cases = [
        (
            Method::POST,
            "/api/tasks".to_string(),
            json!({"title": "x", "priority": 1}),
            "priority",
        ),
        (
            Method::POST,
            "/api/tasks".to_string(),
            json!({"title": "x", "status": true}),
            "status",
        ),
        (
            Method::POST,
            "/api/agents".to_string(),
            json!({"name": "carol", "level": 2}),
            "level",
        ),
        (Method::PATCH, agent.clone(), json!({"status": 1}), "status"),
        (Method::POST, format!("{task}/transition"), json!({"to": 3}), "to"),
        (
            Method::POST,
            format!("{task}/complete"),
            json!({"outcome": ["done"]}),
            "outcome",
        ),
    ];
    let mut problems = Vec::new();
    for (method, path, body, field) in cases {
        let before = snapshot(&app).await;
        let what = format!("{method} {path} {body}");
        let reply = app.admin(method, &path, Some(body)).await;
        let message = reply.body["error"]["message"].as_str().unwrap_or("");
        let named = message.starts_with(field) && reply.body["error"]["details"]["field"] == field;
        if reply.status.as_u16() != 400 || reply.code() != "validation_failed" || !named {
            problems.push(format!("{what} => {} {}", reply.status.as_u16(), reply.body));
        }
        assert_unchanged(&app, &before, &what).await;
    }
    assert!(
        problems.is_empty(),
        "expected 400 validation_failed naming the field:\n{}",
        problems.join("\n")
    );
    app.stop().await;
}

async fn title_and_description_lengths(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = seed(&app).await;
    let task = format!("/api/tasks/{}", s.task);

    // Titles: 1–200 characters, counted in characters.
    let reply = refused(
        &app,
        Method::POST,
        "/api/tasks",
        Some(json!({"title": "t".repeat(201)})),
        400,
        "validation_failed",
    )
    .await;
    assert_names_field(&reply, "title");
    let reply = refused(
        &app,
        Method::POST,
        "/api/tasks",
        Some(json!({"title": "é".repeat(201)})),
        400,
        "validation_failed",
    )
    .await;
    assert_names_field(&reply, "title");
    let reply = refused(
        &app,
        Method::POST,
        "/api/tasks",
        Some(json!({"title": ""})),
        400,
        "validation_failed",
    )
    .await;
    assert_names_field(&reply, "title");
    let reply = refused(
        &app,
        Method::PATCH,
        &task,
        Some(json!({"title": "t".repeat(201)})),
        400,
        "validation_failed",
    )
    .await;
    assert_names_field(&reply, "title");

    let created = app.task(json!({"title": "t".repeat(200)})).await;
    assert_eq!(created["title"], "t".repeat(200));
    let created = app.task(json!({"title": "é".repeat(200)})).await;
    assert_eq!(created["title"], "é".repeat(200));
    let fetched = app
        .admin(Method::GET, &format!("/api/tasks/{}", id(&created)), None)
        .await
        .expect(200);
    assert_eq!(fetched["title"], "é".repeat(200));
    let patched = app
        .admin(Method::PATCH, &task, Some(json!({"title": "u".repeat(200)})))
        .await
        .expect(200);
    assert_eq!(patched["title"], "u".repeat(200));

    // Descriptions: up to 10 000 characters.
    let body = json!({"title": "long", "description": "d".repeat(10_001)});
    let reply = refused(&app, Method::POST, "/api/tasks", Some(body), 400, "validation_failed").await;
    assert_names_field(&reply, "description");
    let reply = refused(
        &app,
        Method::PATCH,
        &task,
        Some(json!({"description": "d".repeat(10_001)})),
        400,
        "validation_failed",
    )
    .await;
    assert_names_field(&reply, "description");

    let created = app
        .task(json!({"title": "long", "description": "d".repeat(10_000)}))
        .await;
    let fetched = app
        .admin(Method::GET, &format!("/api/tasks/{}", id(&created)), None)
        .await
        .expect(200);
    assert_eq!(fetched["description"], "d".repeat(10_000));
    let patched = app
        .admin(Method::PATCH, &task, Some(json!({"description": "e".repeat(10_000)})))
        .await
        .expect(200);
    assert_eq!(patched["description"], "e".repeat(10_000));
    app.stop().await;
}

async fn body_over_the_limit_is_413(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.body_limit = 4096).await else {
        return;
    };
    let s = seed(&app).await;
    // About 8 KiB of otherwise valid JSON (the description alone would be accepted).
    let big = json!({"title": "big", "description": "x".repeat(8000)}).to_string();
    assert!(big.len() > 8000);
    refused_raw(&app, Method::POST, "/api/tasks", &big, 413, "payload_too_large").await;
    refused_raw(
        &app,
        Method::PATCH,
        &format!("/api/tasks/{}", s.task),
        &big,
        413,
        "payload_too_large",
    )
    .await;
    let big_agent = json!({"name": "carol", "role": "r".repeat(8000)}).to_string();
    refused_raw(&app, Method::POST, "/api/agents", &big_agent, 413, "payload_too_large").await;
    // Even invalid JSON over the limit is refused for its size.
    refused_raw(
        &app,
        Method::POST,
        "/api/tasks",
        &"{".repeat(8192),
        413,
        "payload_too_large",
    )
    .await;

    // Under the limit, the same kind of body is accepted.
    let small = json!({"title": "small", "description": "x".repeat(3000)}).to_string();
    let created = app
        .raw(Method::POST, "/api/tasks", Some(ADMIN_TOKEN), small)
        .await
        .expect(201);
    assert_eq!(created["description"], "x".repeat(3000));
    app.stop().await;
}

async fn unknown_ids_are_404(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = seed(&app).await;
    for missing in [MISSING, "nope"] {
        let t = format!("/api/tasks/{missing}");
        let a = format!("/api/agents/{missing}");
        let task_cases = [
            (Method::GET, t.clone(), None),
            (Method::PATCH, t.clone(), Some(json!({"title": "renamed"}))),
            (Method::DELETE, t.clone(), None),
            (Method::POST, format!("{t}/transition"), Some(json!({"to": "ready"}))),
            (Method::POST, format!("{t}/assign"), Some(json!({"agentId": "alice"}))),
            (Method::POST, format!("{t}/assign"), Some(json!({"agentId": null}))),
            (Method::POST, format!("{t}/complete"), Some(json!({"outcome": "done"}))),
            (
                Method::POST,
                format!("{t}/fail"),
                Some(json!({"errorKind": "timeout", "message": "slow"})),
            ),
            (
                Method::POST,
                format!("{t}/dependencies"),
                Some(json!({"blockedBy": s.other_task})),
            ),
            (Method::DELETE, format!("{t}/dependencies/{}", s.other_task), None),
            // An unknown blocker, parent or current task is a missing task too.
            (
                Method::POST,
                format!("/api/tasks/{}/dependencies", s.other_task),
                Some(json!({"blockedBy": missing})),
            ),
            (
                Method::POST,
                "/api/tasks".to_string(),
                Some(json!({"title": "child", "parentId": missing})),
            ),
            (
                Method::PATCH,
                format!("/api/tasks/{}", s.other_task),
                Some(json!({"parentId": missing})),
            ),
            (
                Method::POST,
                format!("/api/agents/{}/heartbeat", s.agent),
                Some(json!({"currentTaskId": missing})),
            ),
        ];
        for (method, path, body) in task_cases {
            refused(&app, method, &path, body, 404, "task_not_found").await;
        }
        let agent_cases = [
            (Method::GET, a.clone(), None),
            (Method::PATCH, a.clone(), Some(json!({"role": "ghost"}))),
            (Method::DELETE, a.clone(), None),
            (Method::DELETE, format!("{a}?force=true"), None),
            (Method::POST, format!("{a}/heartbeat"), None),
            (
                Method::POST,
                format!("{a}/heartbeat"),
                Some(json!({"status": "active"})),
            ),
            (Method::POST, format!("{a}/claim"), None),
            (Method::POST, format!("{a}/token/rotate"), None),
            // An unknown assignee or lead is a missing agent too.
            (
                Method::POST,
                format!("/api/tasks/{}/assign", s.other_task),
                Some(json!({"agentId": missing})),
            ),
            (
                Method::POST,
                "/api/tasks".to_string(),
                Some(json!({"title": "x", "assigneeId": missing})),
            ),
            (
                Method::POST,
                "/api/agents".to_string(),
                Some(json!({"name": "carol", "leadId": missing})),
            ),
            (
                Method::PATCH,
                format!("/api/agents/{}", s.agent),
                Some(json!({"leadId": missing})),
            ),
        ];
        for (method, path, body) in agent_cases {
            refused(&app, method, &path, body, 404, "agent_not_found").await;
        }
    }
    // Both tasks exist, but there is no such edge.
    let path = format!("/api/tasks/{}/dependencies/{}", s.task, s.other_task);
    refused(&app, Method::DELETE, &path, None, 404, "dependency_not_found").await;
    app.stop().await;
}

async fn invalid_transition_is_409(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = seed(&app).await;
    let other = format!("/api/tasks/{}/transition", s.other_task);
    // `other_task` is in backlog.
    let reply = refused(
        &app,
        Method::POST,
        &other,
        Some(json!({"to": "done"})),
        409,
        "invalid_transition",
    )
    .await;
    let details = &reply["error"]["details"];
    assert_eq!(details["from"], "backlog", "{reply}");
    assert_eq!(details["to"], "done", "{reply}");
    assert_eq!(details["allowed"], json!(["ready", "blocked", "cancelled"]), "{reply}");
    for to in ["in_progress", "review", "backlog"] {
        let reply = refused(
            &app,
            Method::POST,
            &other,
            Some(json!({"to": to})),
            409,
            "invalid_transition",
        )
        .await;
        assert_eq!(reply["error"]["details"]["from"], "backlog", "{reply}");
        assert_eq!(reply["error"]["details"]["to"], to, "{reply}");
    }
    // `task` is in progress.
    let task = format!("/api/tasks/{}/transition", s.task);
    let reply = refused(
        &app,
        Method::POST,
        &task,
        Some(json!({"to": "cancelled"})),
        409,
        "invalid_transition",
    )
    .await;
    assert_eq!(reply["error"]["details"]["from"], "in_progress", "{reply}");
    assert_eq!(
        reply["error"]["details"]["allowed"],
        json!(["review", "done", "blocked", "ready"]),
        "{reply}"
    );
    refused(
        &app,
        Method::POST,
        &task,
        Some(json!({"to": "backlog"})),
        409,
        "invalid_transition",
    )
    .await;

    // A ready task without an assignee cannot start.
    app.admin(Method::POST, &other, Some(json!({"to": "ready"})))
        .await
        .expect(200);
    refused(
        &app,
        Method::POST,
        &other,
        Some(json!({"to": "in_progress"})),
        409,
        "task_unassigned",
    )
    .await;

    // A finished task refuses every change.
    app.admin(Method::POST, &other, Some(json!({"to": "cancelled"})))
        .await
        .expect(200);
    for to in ["ready", "backlog", "done", "cancelled"] {
        refused(
            &app,
            Method::POST,
            &other,
            Some(json!({"to": to})),
            409,
            "task_finished",
        )
        .await;
    }
    let path = format!("/api/tasks/{}", s.other_task);
    refused(
        &app,
        Method::PATCH,
        &path,
        Some(json!({"title": "too late"})),
        409,
        "task_finished",
    )
    .await;
    app.stop().await;
}

async fn duplicate_agent_names_are_409(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    seed(&app).await;
    for name in ["alice", "Alice", "ALICE", "bob"] {
        refused(
            &app,
            Method::POST,
            "/api/agents",
            Some(json!({"name": name})),
            409,
            "duplicate_name",
        )
        .await;
    }
    // With other valid fields too.
    let body = json!({"name": "Bob", "level": "lead", "role": "imposter"});
    refused(&app, Method::POST, "/api/agents", Some(body), 409, "duplicate_name").await;
    let agents = all_items(&app, "/api/agents", 100).await;
    let names: Vec<&str> = agents.iter().map(|a| a["name"].as_str().expect("name")).collect();
    assert_eq!(names, ["alice", "bob"]);
    app.stop().await;
}

async fn dependency_cycle_is_409(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    seed(&app).await;
    let a = id(&app.task(json!({"title": "A"})).await);
    let b = id(&app.task(json!({"title": "B"})).await);
    let c = id(&app.task(json!({"title": "C"})).await);
    let dep = |task: &str| format!("/api/tasks/{task}/dependencies");

    // Self-dependency.
    refused(
        &app,
        Method::POST,
        &dep(&a),
        Some(json!({"blockedBy": a})),
        409,
        "dependency_cycle",
    )
    .await;

    // A ← B ← C; then C blocked by A, or B blocked by A, would close a cycle.
    app.admin(Method::POST, &dep(&a), Some(json!({"blockedBy": b})))
        .await
        .expect(201);
    let reply = refused(
        &app,
        Method::POST,
        &dep(&b),
        Some(json!({"blockedBy": a})),
        409,
        "dependency_cycle",
    )
    .await;
    let cycle = reply["error"]["details"]["cycle"].as_array().expect("details.cycle");
    for t in [&a, &b] {
        assert!(cycle.iter().any(|x| x == t.as_str()), "{t} not in the cycle: {reply}");
    }
    app.admin(Method::POST, &dep(&b), Some(json!({"blockedBy": c})))
        .await
        .expect(201);
    let reply = refused(
        &app,
        Method::POST,
        &dep(&c),
        Some(json!({"blockedBy": a})),
        409,
        "dependency_cycle",
    )
    .await;
    let cycle = reply["error"]["details"]["cycle"].as_array().expect("details.cycle");
    for t in [&a, &b, &c] {
        assert!(cycle.iter().any(|x| x == t.as_str()), "{t} not in the cycle: {reply}");
    }
    let detail = app
        .admin(Method::GET, &format!("/api/tasks/{c}"), None)
        .await
        .expect(200);
    assert_eq!(detail["status"], "backlog");
    assert_eq!(detail["blockedBy"], json!([]));
    app.stop().await;
}

async fn invalid_query_parameters_are_400(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = seed(&app).await;
    let paths = [
        "/api/tasks?limit=abc",
        "/api/tasks?limit=0",
        "/api/tasks?limit=101",
        "/api/tasks?limit=-1",
        "/api/tasks?limit=",
        "/api/tasks?status=nope",
        "/api/tasks?priority=P9",
        "/api/tasks?bogus=1",
        "/api/tasks?Status=ready",
        "/api/agents?limit=abc",
        "/api/agents?limit=1000",
        "/api/agents?status=nope",
        "/api/agents?level=boss",
        "/api/agents?bogus=1",
        "/api/activity?limit=abc",
        "/api/activity?limit=0",
        "/api/activity?kind=nope",
        "/api/activity?since=yesterday",
        "/api/activity?bogus=1",
    ];
    for path in paths {
        refused(&app, Method::GET, path, None, 400, "validation_failed").await;
    }
    // A bad query on a write changes nothing.
    let path = format!("/api/agents/{}?force=maybe", s.agent);
    refused(&app, Method::DELETE, &path, None, 400, "validation_failed").await;
    let path = format!("/api/agents/{}?really=true", s.agent);
    refused(&app, Method::DELETE, &path, None, 400, "validation_failed").await;
    app.admin(Method::GET, &format!("/api/agents/{}", s.agent), None)
        .await
        .expect(200);
    // The boundaries themselves are fine.
    for path in [
        "/api/tasks?limit=1",
        "/api/tasks?limit=100",
        "/api/agents?limit=100",
        "/api/activity?limit=1",
    ] {
        let page = app.admin(Method::GET, path, None).await.expect(200);
        assert!(page["items"].is_array(), "{path}: {page}");
    }
    app.stop().await;
}

async fn unknown_route_is_404(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = seed(&app).await;
    let paths = [
        (Method::GET, "/api/nope".to_string()),
        (Method::GET, "/nope".to_string()),
        (Method::GET, "/api/v2/tasks".to_string()),
        (Method::POST, "/api/task".to_string()),
        (Method::POST, format!("/api/tasks/{}/explode", s.task)),
        (Method::GET, format!("/api/agents/{}/tasks", s.agent)),
    ];
    for (method, path) in paths {
        let reply = refused(&app, method.clone(), &path, None, 404, "route_not_found").await;
        assert!(reply["error"]["message"].is_string(), "{reply}");
    }
    // Without a token too: the route is unknown before anyone is asked for credentials.
    let reply = app.call(Method::GET, "/api/nope", None, None).await;
    reply.expect_error(404, "route_not_found");
    app.stop().await;
}

async fn earlier_writes_survive_bad_requests(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let s = seed(&app).await;
    let path = format!("/api/tasks/{}", s.task);
    let patched = app
        .admin(
            Method::PATCH,
            &path,
            Some(json!({"title": "Patched title", "priority": "P0", "tags": ["x", "y"]})),
        )
        .await
        .expect(200);
    let before = app.admin(Method::GET, &path, None).await.expect(200);
    assert_eq!(before["title"], "Patched title");
    assert_eq!(before["priority"], "P0");
    assert_eq!(before["tags"], json!(["x", "y"]));
    assert_eq!(before["updatedAt"], patched["updatedAt"]);

    let bad_patches = [
        (r#"{"title":"#, 400, "invalid_json"),
        ("", 400, "invalid_json"),
        (r#"{"title": "Half", "priority": "P9"}"#, 400, "validation_failed"),
        (r#"{"title": "Half", "status": "done"}"#, 400, "validation_failed"),
        (r#"{"title": "Half", "description": 5}"#, 400, "validation_failed"),
        (r#"{"tags": ["ok"], "title": ""}"#, 400, "validation_failed"),
    ];
    for (body, status, code) in bad_patches {
        refused_raw(&app, Method::PATCH, &path, body, status, code).await;
    }
    let long_title = json!({"priority": "P3", "title": "t".repeat(201)});
    refused(&app, Method::PATCH, &path, Some(long_title), 400, "validation_failed").await;
    let after = app.admin(Method::GET, &path, None).await.expect(200);
    assert_eq!(after, before);

    // The same for an agent: a valid field next to an invalid one changes nothing.
    let agent = format!("/api/agents/{}", s.agent);
    app.admin(Method::PATCH, &agent, Some(json!({"role": "reviewer"})))
        .await
        .expect(200);
    let before = app.admin(Method::GET, &agent, None).await.expect(200);
    let body = json!({"role": "changed", "maxConcurrentTasks": 0});
    refused(&app, Method::PATCH, &agent, Some(body), 400, "validation_failed").await;
    let body = json!({"role": "changed", "specializations": ["ok", ""]});
    refused(&app, Method::PATCH, &agent, Some(body), 400, "validation_failed").await;
    let after = app.admin(Method::GET, &agent, None).await.expect(200);
    assert_eq!(after, before);
    assert_eq!(after["role"], "reviewer");
    app.stop().await;
}

on_both_backends!(
    malformed_json_is_invalid_json,
    empty_body_is_invalid_json,
    non_object_body_is_refused,
    positional_array_body_is_refused,
    missing_required_field_is_validation_failed,
    missing_required_field_is_named_in_details,
    assign_without_agent_id_is_validation_failed,
    unknown_field_is_validation_failed,
    unknown_enum_value_is_validation_failed,
    wrong_type_or_out_of_range_is_validation_failed,
    wrong_type_for_enum_field_is_validation_failed,
    title_and_description_lengths,
    body_over_the_limit_is_413,
    unknown_ids_are_404,
    invalid_transition_is_409,
    duplicate_agent_names_are_409,
    dependency_cycle_is_409,
    invalid_query_parameters_are_400,
    unknown_route_is_404,
    earlier_writes_survive_bad_requests,
);
