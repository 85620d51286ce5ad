//! Tasks over HTTP: creation defaults and SLO deadlines, reading and listing (filters, cursor pagination),
//! patching, the state machine, assignment, claiming, completing, failing and deleting.

use crate::common::*;
use crate::on_both_backends;
use mission_control::Clock;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashSet;

fn task_path(id: &str) -> String {
    format!("/api/tasks/{id}")
}

async fn list(app: &TestApp, query: &str) -> Value {
    app.admin(Method::GET, &format!("/api/tasks{query}"), None)
        .await
        .expect(200)
}

async fn assign(app: &TestApp, id: &str, agent: Value) -> Reply {
    app.admin(
        Method::POST,
        &format!("/api/tasks/{id}/assign"),
        Some(json!({ "agentId": agent })),
    )
    .await
}

fn ids_of(page: &Value) -> Vec<String> {
    array(&page["items"]).iter().map(id).collect()
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

async fn create_defaults(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let now = app.clock.now_ms();
    let task = app
        .admin(Method::POST, "/api/tasks", Some(json!({"title": "Write docs"})))
        .await
        .expect(201);
    assert_eq!(task["title"], "Write docs");
    assert_eq!(task["description"], "");
    assert_eq!(task["status"], "backlog");
    assert_eq!(task["priority"], "P2");
    assert_eq!(task["createdBy"], "admin");
    assert_eq!(task["assigneeId"], Value::Null);
    assert_eq!(task["parentId"], Value::Null);
    assert_eq!(task["tags"], json!([]));
    assert_eq!(task["slaTier"], Value::Null);
    assert_eq!(task["sloDeadlineAt"], Value::Null);
    assert_eq!(task["attempts"], 0);
    assert_eq!(task["failures"], json!([]));
    assert_eq!(task["startedAt"], Value::Null);
    assert_eq!(task["completedAt"], Value::Null);
    assert_eq!(task["createdAt"], now);
    assert_eq!(task["updatedAt"], now);
    assert!(!id(&task).is_empty());

    // An agent creating a task is recorded as its creator.
    let (alice, token) = app.agent("alice").await;
    let by_agent = app
        .call(
            Method::POST,
            "/api/tasks",
            Some(&token),
            Some(json!({"title": "Agent task"})),
        )
        .await
        .expect(201);
    assert_eq!(by_agent["createdBy"], alice["id"]);
    app.stop().await;
}

async fn create_with_assignee_is_ready(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (alice, _) = app.agent("alice").await;
    let by_name = app.task(json!({"title": "By name", "assigneeId": "alice"})).await;
    assert_eq!(by_name["status"], "ready");
    assert_eq!(by_name["assigneeId"], alice["id"]);
    let by_id = app.task(json!({"title": "By id", "assigneeId": alice["id"]})).await;
    assert_eq!(by_id["status"], "ready");
    assert_eq!(by_id["assigneeId"], alice["id"]);
    // An explicit status wins over the assignee's default.
    let explicit = app
        .task(json!({"title": "Later", "assigneeId": "alice", "status": "backlog"}))
        .await;
    assert_eq!(explicit["status"], "backlog");
    assert_eq!(explicit["assigneeId"], alice["id"]);
    app.stop().await;
}

async fn create_computes_slo_deadline(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let critical = app.task(json!({"title": "Critical", "slaTier": "critical"})).await;
    let created = int(&critical["createdAt"]);
    assert_eq!(critical["slaTier"], "critical");
    assert_eq!(critical["sloDeadlineAt"], created + 3_600_000);

    let urgent = app.task(json!({"title": "Urgent", "slaTier": "urgent"})).await;
    assert_eq!(urgent["sloDeadlineAt"], int(&urgent["createdAt"]) + 4 * 3_600_000);

    let normal = app.task(json!({"title": "Normal", "slaTier": "normal"})).await;
    assert_eq!(normal["sloDeadlineAt"], int(&normal["createdAt"]) + 24 * 3_600_000);

    let overridden = app
        .task(json!({"title": "Override", "slaTier": "critical", "sloMs": 5_000}))
        .await;
    assert_eq!(overridden["sloMs"], 5_000);
    assert_eq!(overridden["sloDeadlineAt"], int(&overridden["createdAt"]) + 5_000);

    let only_ms = app.task(json!({"title": "Only ms", "sloMs": 60_000})).await;
    assert_eq!(only_ms["sloDeadlineAt"], int(&only_ms["createdAt"]) + 60_000);

    let backlog = app.task(json!({"title": "Someday", "slaTier": "backlog"})).await;
    assert_eq!(backlog["slaTier"], "backlog");
    assert_eq!(backlog["sloDeadlineAt"], Value::Null);

    // The deadline survives a read from the store.
    let fetched = get_task(&app, &id(&critical)).await;
    assert_eq!(fetched["sloDeadlineAt"], created + 3_600_000);
    app.stop().await;
}

async fn create_with_unknown_assignee_or_parent(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.admin(
        Method::POST,
        "/api/tasks",
        Some(json!({"title": "x", "assigneeId": "nobody"})),
    )
    .await
    .expect_error(404, "agent_not_found");
    app.admin(
        Method::POST,
        "/api/tasks",
        Some(json!({"title": "x", "parentId": "no-such-task"})),
    )
    .await
    .expect_error(404, "task_not_found");
    let page = list(&app, "").await;
    assert_eq!(page["items"], json!([]), "a refused creation stores nothing");
    app.stop().await;
}

async fn get_by_id_and_unknown(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let task = app
        .task(json!({"title": "Read me", "description": "details", "tags": ["a", "b"]}))
        .await;
    let fetched = get_task(&app, &id(&task)).await;
    assert_eq!(fetched["id"], task["id"]);
    assert_eq!(fetched["title"], "Read me");
    assert_eq!(fetched["description"], "details");
    assert_eq!(fetched["tags"], json!(["a", "b"]));
    assert_eq!(fetched["status"], "backlog");
    assert_eq!(fetched["createdAt"], task["createdAt"]);
    assert_eq!(fetched["blockedBy"], json!([]));
    assert_eq!(fetched["blocks"], json!([]));

    app.admin(Method::GET, "/api/tasks/does-not-exist", None)
        .await
        .expect_error(404, "task_not_found");
    app.stop().await;
}

async fn list_filters(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (alice, _) = app.agent("alice").await;
    let (bob, _) = app.agent("bob").await;
    let parent = app.task(json!({"title": "Parent", "priority": "P1"})).await;
    let a = app
        .task(
            json!({"title": "A", "assigneeId": "alice", "priority": "P0", "tags": ["ui", "web"],
            "missionId": "m1", "pillarId": "p1", "parentId": parent["id"]}),
        )
        .await;
    let b = app
        .task(
            json!({"title": "B", "assigneeId": "bob", "priority": "P0", "tags": ["backend"],
            "missionId": "m2", "pillarId": "p1"}),
        )
        .await;
    let c = app
        .task(
            json!({"title": "C", "tags": ["web_extra"], "missionId": "m1", "pillarId": "p2",
            "parentId": parent["id"]}),
        )
        .await;
    let d = app
        .task(json!({"title": "D", "assigneeId": "alice", "priority": "P3", "tags": ["web"]}))
        .await;
    move_to(&app, &id(&d), "cancelled").await.expect(200);

    let all = list(&app, "").await;
    assert_eq!(
        ids_of(&all),
        vec![id(&d), id(&c), id(&b), id(&a), id(&parent)],
        "newest first"
    );
    assert_eq!(all["nextCursor"], Value::Null);

    let cases: Vec<(String, Vec<String>)> = vec![
        ("?status=backlog".into(), vec![id(&c), id(&parent)]),
        ("?status=ready".into(), vec![id(&b), id(&a)]),
        ("?status=cancelled".into(), vec![id(&d)]),
        ("?status=in_progress".into(), vec![]),
        (format!("?assigneeId={}", text(&alice["id"])), vec![id(&d), id(&a)]),
        (format!("?assigneeId={}", text(&bob["id"])), vec![id(&b)]),
        ("?priority=P0".into(), vec![id(&b), id(&a)]),
        ("?priority=P1".into(), vec![id(&parent)]),
        ("?priority=P2".into(), vec![id(&c)]),
        ("?tag=web".into(), vec![id(&d), id(&a)]),
        ("?tag=backend".into(), vec![id(&b)]),
        ("?tag=web_extra".into(), vec![id(&c)]),
        ("?tag=nothing".into(), vec![]),
        ("?missionId=m1".into(), vec![id(&c), id(&a)]),
        ("?missionId=m2".into(), vec![id(&b)]),
        ("?pillarId=p1".into(), vec![id(&b), id(&a)]),
        ("?pillarId=p2".into(), vec![id(&c)]),
        (format!("?parentId={}", id(&parent)), vec![id(&c), id(&a)]),
        ("?missionId=m1&status=ready".into(), vec![id(&a)]),
        ("?tag=web&priority=P3".into(), vec![id(&d)]),
    ];
    for (query, expected) in cases {
        let page = list(&app, &query).await;
        assert_eq!(ids_of(&page), expected, "filter {query}");
    }

    app.admin(Method::GET, "/api/tasks?status=bogus", None)
        .await
        .expect_error(400, "validation_failed");
    app.admin(Method::GET, "/api/tasks?owner=alice", None)
        .await
        .expect_error(400, "validation_failed");
    app.stop().await;
}

async fn list_cursor_pagination(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut created = Vec::new();
    for n in 0..7 {
        created.push(id(&app.task(json!({"title": format!("Task {n}")})).await));
        app.clock.advance_ms(1);
    }
    let mut newest_first = created.clone();
    newest_first.reverse();

    let mut seen = Vec::new();
    let mut pages = 0;
    let mut query = "?limit=2".to_string();
    loop {
        let page = list(&app, &query).await;
        pages += 1;
        let items = ids_of(&page);
        assert!(items.len() <= 2, "page larger than the limit: {page}");
        assert!(!items.is_empty(), "empty page: {page}");
        seen.extend(items);
        match page["nextCursor"].as_str() {
            Some(cursor) => query = format!("?limit=2&cursor={cursor}"),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, 4);
    assert_eq!(seen, newest_first, "every task once, newest first");
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), 7);

    // Filters and cursors combine.
    let first = list(&app, "?limit=3&status=backlog").await;
    assert_eq!(ids_of(&first), newest_first[..3].to_vec());
    let cursor = text(&first["nextCursor"]);
    let second = list(&app, &format!("?limit=3&status=backlog&cursor={cursor}")).await;
    assert_eq!(ids_of(&second), newest_first[3..6].to_vec());

    // An exact fit has no next page.
    let all = list(&app, "?limit=7").await;
    assert_eq!(ids_of(&all).len(), 7);
    assert_eq!(all["nextCursor"], Value::Null);

    for bad in ["0", "101", "-1", "abc"] {
        app.admin(Method::GET, &format!("/api/tasks?limit={bad}"), None)
            .await
            .expect_error(400, "validation_failed");
    }
    app.stop().await;
}

async fn patch_fields(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let task = app
        .task(json!({"title": "Old", "missionId": "m1", "pillarId": "p1", "estimatedMinutes": 30, "sloMs": 1_000}))
        .await;
    let tid = id(&task);
    let created = int(&task["createdAt"]);
    app.clock.advance_ms(10_000);
    let later = app.clock.now_ms();

    let patched = app
        .admin(
            Method::PATCH,
            &task_path(&tid),
            Some(json!({"title": "New", "priority": "P0", "tags": ["x", "y"], "description": "more"})),
        )
        .await
        .expect(200);
    assert_eq!(patched["title"], "New");
    assert_eq!(patched["priority"], "P0");
    assert_eq!(patched["tags"], json!(["x", "y"]));
    assert_eq!(patched["description"], "more");
    assert_eq!(patched["status"], "backlog");
    assert_eq!(patched["updatedAt"], later);
    assert_eq!(patched["createdAt"], created);

    // The SLO deadline follows the tier, counted from creation; sloMs still overrides it.
    let tiered = app
        .admin(
            Method::PATCH,
            &task_path(&tid),
            Some(json!({"slaTier": "critical", "sloMs": null})),
        )
        .await
        .expect(200);
    assert_eq!(tiered["slaTier"], "critical");
    assert_eq!(tiered["sloMs"], Value::Null);
    assert_eq!(tiered["sloDeadlineAt"], created + 3_600_000);
    let with_ms = app
        .admin(Method::PATCH, &task_path(&tid), Some(json!({"sloMs": 2_000})))
        .await
        .expect(200);
    assert_eq!(with_ms["sloDeadlineAt"], created + 2_000);

    // Nullable fields are cleared with null.
    let cleared = app
        .admin(
            Method::PATCH,
            &task_path(&tid),
            Some(
                json!({"missionId": null, "pillarId": null, "slaTier": null, "sloMs": null, "estimatedMinutes": null}),
            ),
        )
        .await
        .expect(200);
    assert_eq!(cleared["missionId"], Value::Null);
    assert_eq!(cleared["pillarId"], Value::Null);
    assert_eq!(cleared["slaTier"], Value::Null);
    assert_eq!(cleared["sloMs"], Value::Null);
    assert_eq!(cleared["estimatedMinutes"], Value::Null);
    assert_eq!(cleared["sloDeadlineAt"], Value::Null);
    assert_eq!(cleared["title"], "New", "fields not named are kept");

    let fetched = get_task(&app, &tid).await;
    assert_eq!(fetched["title"], "New");
    assert_eq!(fetched["priority"], "P0");
    assert_eq!(fetched["tags"], json!(["x", "y"]));
    assert_eq!(fetched["missionId"], Value::Null);
    assert_eq!(fetched["sloDeadlineAt"], Value::Null);
    // The list reads the store: the patch is there too.
    let listed = list(&app, "?priority=P0").await;
    assert_eq!(ids_of(&listed), vec![tid.clone()]);
    assert_eq!(listed["items"][0]["title"], "New");

    app.admin(Method::PATCH, "/api/tasks/nope", Some(json!({"title": "x"})))
        .await
        .expect_error(404, "task_not_found");
    app.stop().await;
}

async fn patch_status_is_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let task = app.task(json!({"title": "Stay"})).await;
    let body = app
        .admin(Method::PATCH, &task_path(&id(&task)), Some(json!({"status": "ready"})))
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(body["error"]["details"]["field"], "status", "{body}");
    let fetched = get_task(&app, &id(&task)).await;
    assert_eq!(fetched["status"], "backlog");
    assert_eq!(fetched["updatedAt"], task["updatedAt"]);
    app.stop().await;
}

async fn patch_finished_task_is_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.agent("alice").await;
    let task = app.task(json!({"title": "Finish", "assigneeId": "alice"})).await;
    app.admin(Method::POST, "/api/agents/alice/claim", None)
        .await
        .expect(200);
    app.admin(
        Method::POST,
        &format!("/api/tasks/{}/complete", id(&task)),
        Some(json!({"outcome": "done"})),
    )
    .await
    .expect(200);
    app.admin(
        Method::PATCH,
        &task_path(&id(&task)),
        Some(json!({"title": "Too late"})),
    )
    .await
    .expect_error(409, "task_finished");
    let fetched = get_task(&app, &id(&task)).await;
    assert_eq!(fetched["title"], "Finish");
    assert_eq!(fetched["status"], "done");

    let cancelled = app.task(json!({"title": "Cancelled"})).await;
    move_to(&app, &id(&cancelled), "cancelled").await.expect(200);
    app.admin(
        Method::PATCH,
        &task_path(&id(&cancelled)),
        Some(json!({"priority": "P0"})),
    )
    .await
    .expect_error(409, "task_finished");
    app.stop().await;
}

async fn transition_full_path(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (alice, _) = app.agent("alice").await;
    let task = app
        .task(json!({"title": "Path", "assigneeId": "alice", "status": "backlog"}))
        .await;
    let tid = id(&task);
    assert_eq!(task["status"], "backlog");
    assert_eq!(task["assigneeId"], alice["id"]);

    app.clock.advance_ms(1_000);
    let ready = move_to(&app, &tid, "ready").await.expect(200);
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["attempts"], 0);
    assert_eq!(ready["startedAt"], Value::Null);
    assert_eq!(ready["statusChangedAt"], app.clock.now_ms());

    app.clock.advance_ms(1_000);
    let started_at = app.clock.now_ms();
    let working = move_to(&app, &tid, "in_progress").await.expect(200);
    assert_eq!(working["status"], "in_progress");
    assert_eq!(working["attempts"], 1);
    assert_eq!(working["startedAt"], started_at);
    assert_eq!(working["completedAt"], Value::Null);

    app.clock.advance_ms(1_000);
    let review = move_to(&app, &tid, "review").await.expect(200);
    assert_eq!(review["status"], "review");
    assert_eq!(review["attempts"], 1);
    assert_eq!(review["startedAt"], started_at);
    assert_eq!(review["completedAt"], Value::Null);

    app.clock.advance_ms(1_000);
    let done_at = app.clock.now_ms();
    let done = move_to(&app, &tid, "done").await.expect(200);
    assert_eq!(done["status"], "done");
    assert_eq!(done["attempts"], 1);
    assert_eq!(done["startedAt"], started_at);
    assert_eq!(done["completedAt"], done_at);
    assert_eq!(done["statusChangedAt"], done_at);

    // A finished task is read back from the store with the same fields.
    let fetched = get_task(&app, &tid).await;
    assert_eq!(fetched["status"], "done");
    assert_eq!(fetched["attempts"], 1);
    assert_eq!(fetched["startedAt"], started_at);
    assert_eq!(fetched["completedAt"], done_at);

    move_to(&app, &tid, "ready").await.expect_error(409, "task_finished");
    app.stop().await;
}

async fn reentering_in_progress_counts_attempts(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.agent("alice").await;
    let task = app.task(json!({"title": "Again", "assigneeId": "alice"})).await;
    let tid = id(&task);
    let first_start = app.clock.now_ms();
    move_to(&app, &tid, "in_progress").await.expect(200);
    app.clock.advance_ms(500);
    move_to(&app, &tid, "review").await.expect(200);
    app.clock.advance_ms(500);
    let again = move_to(&app, &tid, "in_progress").await.expect(200);
    assert_eq!(again["attempts"], 2);
    assert_eq!(again["startedAt"], first_start, "startedAt is the first start");
    move_to(&app, &tid, "ready").await.expect(200);
    let third = move_to(&app, &tid, "in_progress").await.expect(200);
    assert_eq!(third["attempts"], 3);
    assert_eq!(third["startedAt"], first_start);
    app.stop().await;
}

async fn invalid_transition_is_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let task = app.task(json!({"title": "Not yet"})).await;
    let tid = id(&task);
    app.clock.advance_ms(1_000);
    let body = move_to(&app, &tid, "done")
        .await
        .expect_error(409, "invalid_transition");
    let details = &body["error"]["details"];
    assert_eq!(details["from"], "backlog");
    assert_eq!(details["to"], "done");
    assert_eq!(details["allowed"], json!(["ready", "blocked", "cancelled"]));

    let fetched = get_task(&app, &tid).await;
    assert_eq!(fetched["status"], "backlog");
    assert_eq!(fetched["completedAt"], Value::Null);
    assert_eq!(fetched["updatedAt"], task["updatedAt"]);
    assert_eq!(fetched["statusChangedAt"], task["statusChangedAt"]);

    // Another refused move names its own allowed targets.
    move_to(&app, &tid, "ready").await.expect(200);
    let body = move_to(&app, &tid, "review")
        .await
        .expect_error(409, "invalid_transition");
    assert_eq!(body["error"]["details"]["from"], "ready");
    assert_eq!(
        body["error"]["details"]["allowed"],
        json!(["in_progress", "backlog", "blocked", "cancelled"])
    );

    // An unknown status is a validation error, and an unknown task a 404.
    move_to(&app, &tid, "finished")
        .await
        .expect_error(400, "validation_failed");
    move_to(&app, "no-such-task", "ready")
        .await
        .expect_error(404, "task_not_found");
    app.stop().await;
}

async fn in_progress_needs_an_assignee(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let task = app.task(json!({"title": "Nobody's"})).await;
    let tid = id(&task);
    move_to(&app, &tid, "ready").await.expect(200);
    move_to(&app, &tid, "in_progress")
        .await
        .expect_error(409, "task_unassigned");
    let fetched = get_task(&app, &tid).await;
    assert_eq!(fetched["status"], "ready");
    assert_eq!(fetched["attempts"], 0);
    assert_eq!(fetched["startedAt"], Value::Null);
    app.stop().await;
}

async fn cancelled_is_terminal(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.agent("alice").await;
    let task = app.task(json!({"title": "Drop it"})).await;
    let tid = id(&task);
    app.clock.advance_ms(1_000);
    let cancelled = move_to(&app, &tid, "cancelled").await.expect(200);
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["completedAt"], app.clock.now_ms());
    for to in [
        "backlog",
        "ready",
        "in_progress",
        "review",
        "done",
        "blocked",
        "cancelled",
    ] {
        move_to(&app, &tid, to).await.expect_error(409, "task_finished");
    }
    app.admin(
        Method::POST,
        &format!("/api/tasks/{tid}/assign"),
        Some(json!({"agentId": "alice"})),
    )
    .await
    .expect_error(409, "task_finished");
    app.admin(
        Method::POST,
        &format!("/api/tasks/{tid}/complete"),
        Some(json!({"outcome": "done"})),
    )
    .await
    .expect_error(409, "task_finished");
    let fetched = get_task(&app, &tid).await;
    assert_eq!(fetched["status"], "cancelled");
    assert_eq!(fetched["assigneeId"], Value::Null);
    app.stop().await;
}

async fn assign_and_unassign(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (alice, _) = app.agent("alice").await;
    let (bob, _) = app.agent("bob").await;
    let task = app.task(json!({"title": "Hand over"})).await;
    let tid = id(&task);

    // A backlog task given an assignee becomes ready.
    let assigned = assign(&app, &tid, json!("alice")).await.expect(200);
    assert_eq!(assigned["assigneeId"], alice["id"]);
    assert_eq!(assigned["status"], "ready");

    // Reassigning work in progress returns it to ready for the new owner.
    app.admin(Method::POST, "/api/agents/alice/claim", None)
        .await
        .expect(200);
    let reassigned = assign(&app, &tid, bob["id"].clone()).await.expect(200);
    assert_eq!(reassigned["assigneeId"], bob["id"]);
    assert_eq!(reassigned["status"], "ready");
    assert_eq!(reassigned["attempts"], 1);

    // Assigning to the current assignee changes nothing.
    let same = assign(&app, &tid, json!("bob")).await.expect(200);
    assert_eq!(same["assigneeId"], bob["id"]);
    assert_eq!(same["status"], "ready");

    // Unassign with null: the task keeps its status.
    let unassigned = assign(&app, &tid, Value::Null).await.expect(200);
    assert_eq!(unassigned["assigneeId"], Value::Null);
    assert_eq!(unassigned["status"], "ready");
    let fetched = get_task(&app, &tid).await;
    assert_eq!(fetched["assigneeId"], Value::Null);
    assert_eq!(fetched["status"], "ready");

    assign(&app, &tid, json!("nobody"))
        .await
        .expect_error(404, "agent_not_found");
    app.admin(
        Method::POST,
        "/api/tasks/no-such-task/assign",
        Some(json!({"agentId": "alice"})),
    )
    .await
    .expect_error(404, "task_not_found");
    app.stop().await;
}

async fn claim_order_priority_then_age(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (alice, token) = app.agent("alice").await;
    // Room for all four at once, so that only the order is under test.
    app.admin(
        Method::PATCH,
        "/api/agents/alice",
        Some(json!({"maxConcurrentTasks": 4})),
    )
    .await
    .expect(200);
    let mut make = Vec::new();
    for (title, priority) in [("p2", "P2"), ("p0 old", "P0"), ("p1", "P1"), ("p0 new", "P0")] {
        make.push(id(&app
            .task(json!({"title": title, "priority": priority, "assigneeId": "alice", "estimatedMinutes": 30}))
            .await));
        app.clock.advance_ms(1);
    }
    let expected = [make[1].clone(), make[3].clone(), make[2].clone(), make[0].clone()];
    for want in &expected {
        let claimed = app
            .call(Method::POST, "/api/agents/alice/claim", Some(&token), None)
            .await
            .expect(200);
        assert_eq!(&id(&claimed), want, "claimed {}", claimed["title"]);
        assert_eq!(claimed["status"], "in_progress");
        assert_eq!(claimed["assigneeId"], alice["id"]);
        assert_eq!(claimed["attempts"], 1);
    }
    app.call(Method::POST, "/api/agents/alice/claim", Some(&token), None)
        .await
        .expect_error(404, "no_task_available");
    app.stop().await;
}

async fn claim_only_takes_own_ready_tasks(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.agent("alice").await;
    let (bob, _) = app.agent("bob").await;
    app.admin(Method::POST, "/api/agents/alice/claim", None)
        .await
        .expect_error(404, "no_task_available");
    let bobs = app.task(json!({"title": "Bob's", "assigneeId": "bob"})).await;
    let unassigned = app.task(json!({"title": "Free", "status": "ready"})).await;
    app.task(json!({"title": "Alice's backlog", "assigneeId": "alice", "status": "backlog"}))
        .await;
    app.admin(Method::POST, "/api/agents/alice/claim", None)
        .await
        .expect_error(404, "no_task_available");
    assert_eq!(get_task(&app, &id(&bobs)).await["status"], "ready");
    assert_eq!(get_task(&app, &id(&unassigned)).await["status"], "ready");

    let claimed = app
        .admin(Method::POST, &format!("/api/agents/{}/claim", text(&bob["id"])), None)
        .await
        .expect(200);
    assert_eq!(id(&claimed), id(&bobs));
    app.admin(Method::POST, "/api/agents/bob/claim", None)
        .await
        .expect_error(404, "no_task_available");
    app.admin(Method::POST, "/api/agents/nobody/claim", None)
        .await
        .expect_error(404, "agent_not_found");
    app.stop().await;
}

async fn complete_done_from_in_progress(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, token) = app.agent("alice").await;
    let task = app.task(json!({"title": "Do it", "assigneeId": "alice"})).await;
    let tid = id(&task);
    app.call(Method::POST, "/api/agents/alice/claim", Some(&token), None)
        .await
        .expect(200);
    app.clock.advance_ms(5_000);
    let done = app
        .call(
            Method::POST,
            &format!("/api/tasks/{tid}/complete"),
            Some(&token),
            Some(json!({"outcome": "done", "notes": "all green", "actualMinutes": 42})),
        )
        .await
        .expect(200);
    assert_eq!(done["status"], "done");
    assert_eq!(done["completionNotes"], "all green");
    assert_eq!(done["actualMinutes"], 42);
    assert_eq!(done["completedAt"], app.clock.now_ms());
    let fetched = get_task(&app, &tid).await;
    assert_eq!(fetched["status"], "done");
    assert_eq!(fetched["completionNotes"], "all green");
    assert_eq!(fetched["actualMinutes"], 42);
    app.stop().await;
}

async fn complete_through_review(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.agent("alice").await;
    let task = app.task(json!({"title": "Check it", "assigneeId": "alice"})).await;
    let tid = id(&task);
    app.admin(Method::POST, "/api/agents/alice/claim", None)
        .await
        .expect(200);
    let review = app
        .admin(
            Method::POST,
            &format!("/api/tasks/{tid}/complete"),
            Some(json!({"outcome": "review", "notes": "please look"})),
        )
        .await
        .expect(200);
    assert_eq!(review["status"], "review");
    assert_eq!(review["completionNotes"], "please look");
    assert_eq!(review["completedAt"], Value::Null);
    let done = app
        .admin(
            Method::POST,
            &format!("/api/tasks/{tid}/complete"),
            Some(json!({"outcome": "done", "actualMinutes": 7})),
        )
        .await
        .expect(200);
    assert_eq!(done["status"], "done");
    assert_eq!(done["actualMinutes"], 7);
    assert_eq!(
        done["completionNotes"], "please look",
        "notes are kept when none are given"
    );
    assert!(done["completedAt"].is_i64());
    app.stop().await;
}

async fn complete_from_ready_is_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.agent("alice").await;
    let task = app.task(json!({"title": "Not started", "assigneeId": "alice"})).await;
    let tid = id(&task);
    let body = app
        .admin(
            Method::POST,
            &format!("/api/tasks/{tid}/complete"),
            Some(json!({"outcome": "done", "notes": "x"})),
        )
        .await
        .expect_error(409, "invalid_transition");
    assert_eq!(body["error"]["details"]["from"], "ready");
    assert_eq!(body["error"]["details"]["to"], "done");
    let fetched = get_task(&app, &tid).await;
    assert_eq!(fetched["status"], "ready");
    assert_eq!(fetched["completionNotes"], Value::Null);
    app.admin(
        Method::POST,
        &format!("/api/tasks/{tid}/complete"),
        Some(json!({"outcome": "finished"})),
    )
    .await
    .expect_error(400, "validation_failed");
    app.stop().await;
}

async fn fail_returns_to_ready(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (alice, token) = app.agent("alice").await;
    let task = app.task(json!({"title": "Flaky", "assigneeId": "alice"})).await;
    let tid = id(&task);

    // Failing a task that is not in progress is refused.
    app.call(
        Method::POST,
        &format!("/api/tasks/{tid}/fail"),
        Some(&token),
        Some(json!({"errorKind": "timeout", "message": "too early"})),
    )
    .await
    .expect_error(409, "invalid_transition");
    assert_eq!(get_task(&app, &tid).await["failures"], json!([]));

    app.call(Method::POST, "/api/agents/alice/claim", Some(&token), None)
        .await
        .expect(200);
    app.clock.advance_ms(2_000);
    let failed_at = app.clock.now_ms();
    let failed = app
        .call(
            Method::POST,
            &format!("/api/tasks/{tid}/fail"),
            Some(&token),
            Some(json!({"errorKind": "timeout", "message": "the build hung"})),
        )
        .await
        .expect(200);
    assert_eq!(failed["status"], "ready");
    assert_eq!(failed["attempts"], 1);
    assert_eq!(failed["assigneeId"], alice["id"]);
    let failures = array(&failed["failures"]);
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["errorKind"], "timeout");
    assert_eq!(failures[0]["message"], "the build hung");
    assert_eq!(failures[0]["agentId"], alice["id"]);
    assert_eq!(failures[0]["at"], failed_at);

    // The next attempt counts on, and the failure history is kept.
    let again = app
        .call(Method::POST, "/api/agents/alice/claim", Some(&token), None)
        .await
        .expect(200);
    assert_eq!(id(&again), tid);
    assert_eq!(again["attempts"], 2);
    let fetched = get_task(&app, &tid).await;
    assert_eq!(fetched["failures"][0]["errorKind"], "timeout");

    app.admin(
        Method::POST,
        &format!("/api/tasks/{tid}/fail"),
        Some(json!({"errorKind": "", "message": "x"})),
    )
    .await
    .expect_error(400, "validation_failed");
    app.stop().await;
}

async fn delete_task(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let task = app.task(json!({"title": "Goner"})).await;
    let tid = id(&task);
    let deleted = app.admin(Method::DELETE, &task_path(&tid), None).await.expect(200);
    assert_eq!(deleted["id"], task["id"]);
    assert_eq!(deleted["title"], "Goner");
    app.admin(Method::GET, &task_path(&tid), None)
        .await
        .expect_error(404, "task_not_found");
    app.admin(Method::DELETE, &task_path(&tid), None)
        .await
        .expect_error(404, "task_not_found");
    assert_eq!(list(&app, "").await["items"], json!([]));

    // A finished task can be deleted too.
    let cancelled = app.task(json!({"title": "Cancelled goner"})).await;
    move_to(&app, &id(&cancelled), "cancelled").await.expect(200);
    let deleted = app
        .admin(Method::DELETE, &task_path(&id(&cancelled)), None)
        .await
        .expect(200);
    assert_eq!(deleted["status"], "cancelled");
    app.admin(Method::GET, &task_path(&id(&cancelled)), None)
        .await
        .expect_error(404, "task_not_found");
    app.stop().await;
}

async fn children_lose_parent_when_it_is_deleted(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let parent = app.task(json!({"title": "Parent"})).await;
    let pid = id(&parent);
    let open_child = app.task(json!({"title": "Open child", "parentId": pid})).await;
    let done_child = app.task(json!({"title": "Cancelled child", "parentId": pid})).await;
    move_to(&app, &id(&done_child), "cancelled").await.expect(200);
    assert_eq!(open_child["parentId"], parent["id"]);
    assert_eq!(
        sorted(ids_of(&list(&app, &format!("?parentId={pid}")).await)),
        sorted(vec![id(&open_child), id(&done_child)])
    );

    app.admin(Method::DELETE, &task_path(&pid), None).await.expect(200);
    assert_eq!(get_task(&app, &id(&open_child)).await["parentId"], Value::Null);
    assert_eq!(get_task(&app, &id(&done_child)).await["parentId"], Value::Null);
    assert_eq!(list(&app, &format!("?parentId={pid}")).await["items"], json!([]));

    // The open child's in-memory copy and the stored one agree: a later patch does not bring the parent back.
    let patched = app
        .admin(
            Method::PATCH,
            &task_path(&id(&open_child)),
            Some(json!({"title": "Orphan"})),
        )
        .await
        .expect(200);
    assert_eq!(patched["parentId"], Value::Null);
    app.stop().await;
}

on_both_backends!(
    create_defaults,
    create_with_assignee_is_ready,
    create_computes_slo_deadline,
    create_with_unknown_assignee_or_parent,
    get_by_id_and_unknown,
    list_filters,
    list_cursor_pagination,
    patch_fields,
    patch_status_is_refused,
    patch_finished_task_is_refused,
    transition_full_path,
    reentering_in_progress_counts_attempts,
    invalid_transition_is_refused,
    in_progress_needs_an_assignee,
    cancelled_is_terminal,
    assign_and_unassign,
    claim_order_priority_then_age,
    claim_only_takes_own_ready_tasks,
    complete_done_from_in_progress,
    complete_through_review,
    complete_from_ready_is_refused,
    fail_returns_to_ready,
    delete_task,
    children_lose_parent_when_it_is_deleted,
);
