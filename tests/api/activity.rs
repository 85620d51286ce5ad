//! The activity feed over HTTP: which actions write rows, who is recorded as the actor, filters, pagination,
//! and that refused requests write nothing.

use crate::common::*;
use crate::on_both_backends;
use mission_control::Clock;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashSet;

async fn feed(app: &TestApp, query: &str) -> Value {
    app.admin(Method::GET, &format!("/api/activity{query}"), None)
        .await
        .expect(200)
}

/// The rows of a page, without the sending of assignment notices (tested in `outbox.rs`).
fn rows(page: &Value) -> Vec<Value> {
    array(&page["items"])
        .into_iter()
        .filter(|row| !is_assignment_notice_sent(row))
        .collect()
}

fn kinds(page: &Value) -> Vec<String> {
    rows(page).iter().map(|r| text(&r["kind"])).collect()
}

fn row_ids(page: &Value) -> Vec<String> {
    rows(page).iter().map(id).collect()
}

async fn actions_are_recorded_newest_first(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // Rows written while the runtime started (such as setting the admin token) come before this test's.
    let baseline = row_ids(&feed(&app, "?limit=100").await);
    let (alice, token) = app.agent("alice").await;
    let aid = id(&alice);
    app.clock.advance_ms(10);
    let task = app.task(json!({"title": "Audit me"})).await;
    let tid = id(&task);
    app.clock.advance_ms(10);
    app.admin(
        Method::POST,
        &format!("/api/tasks/{tid}/assign"),
        Some(json!({"agentId": "alice"})),
    )
    .await
    .expect(200);
    app.clock.advance_ms(10);
    app.call(Method::POST, "/api/agents/alice/claim", Some(&token), None)
        .await
        .expect(200);
    app.clock.advance_ms(10);
    move_to(&app, &tid, "review").await.expect(200);
    app.clock.advance_ms(10);
    app.call(
        Method::POST,
        &format!("/api/tasks/{tid}/complete"),
        Some(&token),
        Some(json!({"outcome": "done"})),
    )
    .await
    .expect(200);

    let page = feed(&app, "").await;
    let all_ids = row_ids(&page);
    assert_eq!(&all_ids[6..], &baseline[..], "older rows come last");
    let items: Vec<Value> = rows(&page).into_iter().take(6).collect();
    let new_kinds: Vec<String> = items.iter().map(|r| text(&r["kind"])).collect();
    assert_eq!(
        new_kinds,
        vec![
            "task_completed",
            "task_status_changed",
            "task_claimed",
            "task_assigned",
            "task_created",
            "agent_registered"
        ],
        "{page}"
    );
    assert_eq!(page["nextCursor"], Value::Null);
    for row in &items[..5] {
        assert_eq!(row["taskId"], json!(tid), "{row}");
        assert!(row["message"].as_str().is_some_and(|m| !m.is_empty()), "{row}");
    }
    assert_eq!(items[5]["agentId"], json!(aid));
    assert_eq!(items[5]["taskId"], Value::Null);
    // Newest first: times go down the list.
    let times: Vec<i64> = items.iter().map(|r| int(&r["createdAt"])).collect();
    for pair in times.windows(2) {
        assert!(pair[0] > pair[1], "not newest first: {times:?}");
    }
    assert_eq!(times[0], app.clock.now_ms());
    // Rows about the task carry its assignee.
    assert_eq!(items[0]["agentId"], json!(aid));
    assert_eq!(items[3]["agentId"], json!(aid));
    assert_eq!(items[3]["after"]["assigneeId"], json!(aid));
    assert_eq!(items[3]["after"]["status"], "ready");
    assert_eq!(items[3]["before"]["status"], "backlog");
    app.stop().await;
}

async fn actor_kind_and_id(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (alice, token) = app.agent("alice").await;
    let aid = id(&alice);
    let by_admin = app.task(json!({"title": "From admin"})).await;
    let by_agent = app
        .call(
            Method::POST,
            "/api/tasks",
            Some(&token),
            Some(json!({"title": "From alice"})),
        )
        .await
        .expect(201);

    let created = feed(&app, "?kind=task_created").await;
    let items = rows(&created);
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["taskId"], by_agent["id"]);
    assert_eq!(items[0]["actorKind"], "agent");
    assert_eq!(items[0]["actorId"], json!(aid));
    assert_eq!(items[1]["taskId"], by_admin["id"]);
    assert_eq!(items[1]["actorKind"], "admin");
    assert_eq!(items[1]["actorId"], Value::Null);

    let registered = feed(&app, "?kind=agent_registered").await;
    assert_eq!(rows(&registered)[0]["actorKind"], "admin");
    assert_eq!(rows(&registered)[0]["agentId"], json!(aid));

    // The runtime itself acts when a dependent is unblocked.
    let dependent = id(&app.task(json!({"title": "Dependent"})).await);
    let blocker = id(&app.task(json!({"title": "Blocker", "assigneeId": "alice"})).await);
    app.admin(
        Method::POST,
        &format!("/api/tasks/{dependent}/dependencies"),
        Some(json!({"blockedBy": blocker})),
    )
    .await
    .expect(201);
    app.call(Method::POST, "/api/agents/alice/claim", Some(&token), None)
        .await
        .expect(200);
    app.call(
        Method::POST,
        &format!("/api/tasks/{blocker}/complete"),
        Some(&token),
        Some(json!({"outcome": "done"})),
    )
    .await
    .expect(200);
    let claimed = rows(&feed(&app, "?kind=task_claimed").await);
    assert_eq!(claimed[0]["actorKind"], "agent");
    assert_eq!(claimed[0]["actorId"], json!(aid));
    let completed = rows(&feed(&app, "?kind=task_completed").await);
    assert_eq!(completed[0]["actorKind"], "agent");
    assert_eq!(completed[0]["actorId"], json!(aid));
    let unblocked = rows(&feed(&app, "?kind=task_unblocked").await);
    assert_eq!(unblocked.len(), 1);
    assert_eq!(unblocked[0]["actorKind"], "system");
    assert_eq!(unblocked[0]["actorId"], Value::Null);
    assert_eq!(unblocked[0]["taskId"], json!(dependent));
    app.stop().await;
}

async fn status_change_has_before_and_after(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let task = app.task(json!({"title": "Move me"})).await;
    let tid = id(&task);
    move_to(&app, &tid, "ready").await.expect(200);
    let changed = rows(&feed(&app, &format!("?kind=task_status_changed&taskId={tid}")).await);
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0]["before"], json!({"status": "backlog"}));
    assert_eq!(changed[0]["after"], json!({"status": "ready"}));
    assert_eq!(changed[0]["actorKind"], "admin");

    move_to(&app, &tid, "cancelled").await.expect(200);
    let changed = rows(&feed(&app, &format!("?kind=task_status_changed&taskId={tid}")).await);
    assert_eq!(changed.len(), 2);
    assert_eq!(changed[0]["before"], json!({"status": "ready"}));
    assert_eq!(changed[0]["after"], json!({"status": "cancelled"}));

    // A patch records only the fields that changed.
    let other = id(&app.task(json!({"title": "Old title", "priority": "P3"})).await);
    app.admin(
        Method::PATCH,
        &format!("/api/tasks/{other}"),
        Some(json!({"title": "New title"})),
    )
    .await
    .expect(200);
    let updated = rows(&feed(&app, &format!("?kind=task_updated&taskId={other}")).await);
    assert_eq!(updated.len(), 1);
    assert_eq!(updated[0]["before"], json!({"title": "Old title"}));
    assert_eq!(updated[0]["after"], json!({"title": "New title"}));
    app.stop().await;
}

async fn filter_by_agent_task_and_kind(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (alice, alice_token) = app.agent("alice").await;
    let (bob, _) = app.agent("bob").await;
    let (aid, bid) = (id(&alice), id(&bob));
    let alices = id(&app.task(json!({"title": "For alice", "assigneeId": "alice"})).await);
    let bobs = id(&app.task(json!({"title": "For bob", "assigneeId": "bob"})).await);
    // Done by alice, about nobody: still alice's activity.
    let by_alice = app
        .call(
            Method::POST,
            "/api/tasks",
            Some(&alice_token),
            Some(json!({"title": "Alice wrote this"})),
        )
        .await
        .expect(201);
    app.call(Method::POST, "/api/agents/alice/claim", Some(&alice_token), None)
        .await
        .expect(200);

    let alice_rows = rows(&feed(&app, &format!("?agentId={aid}")).await);
    let alice_kinds: Vec<String> = alice_rows.iter().map(|r| text(&r["kind"])).collect();
    assert_eq!(
        alice_kinds,
        vec!["task_claimed", "task_created", "task_created", "agent_registered"]
    );
    for row in &alice_rows {
        assert!(row["agentId"] == json!(aid) || row["actorId"] == json!(aid), "{row}");
    }
    assert_eq!(alice_rows[1]["taskId"], by_alice["id"]);
    assert_eq!(alice_rows[2]["taskId"], json!(alices));

    let bob_rows = rows(&feed(&app, &format!("?agentId={bid}")).await);
    let bob_kinds: Vec<String> = bob_rows.iter().map(|r| text(&r["kind"])).collect();
    assert_eq!(bob_kinds, vec!["task_created", "agent_registered"]);
    assert_eq!(bob_rows[0]["taskId"], json!(bobs));

    let task_rows = rows(&feed(&app, &format!("?taskId={alices}")).await);
    let task_kinds: Vec<String> = task_rows.iter().map(|r| text(&r["kind"])).collect();
    assert_eq!(task_kinds, vec!["task_claimed", "task_created"]);
    assert!(task_rows.iter().all(|r| r["taskId"] == json!(alices)));

    let created = feed(&app, "?kind=task_created").await;
    assert_eq!(kinds(&created), vec!["task_created"; 3]);
    let registered = feed(&app, "?kind=agent_registered").await;
    assert_eq!(
        rows(&registered)
            .iter()
            .map(|r| r["agentId"].clone())
            .collect::<Vec<_>>(),
        vec![json!(bid), json!(aid)]
    );

    // Filters combine.
    let combined = feed(&app, &format!("?agentId={aid}&kind=task_created")).await;
    assert_eq!(rows(&combined).len(), 2);
    let combined = feed(&app, &format!("?taskId={bobs}&kind=task_claimed")).await;
    assert_eq!(rows(&combined).len(), 0);
    let unknown = feed(&app, "?agentId=nobody").await;
    assert_eq!(unknown["items"], json!([]));
    app.stop().await;
}

async fn filter_since(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let baseline = rows(&feed(&app, "?limit=100").await).len();
    app.agent("alice").await;
    let early = id(&app.task(json!({"title": "Early"})).await);
    app.clock.advance_ms(60_000);
    let since = app.clock.now_ms();
    let late = id(&app.task(json!({"title": "Late"})).await);
    move_to(&app, &early, "ready").await.expect(200);
    app.clock.advance_ms(5);
    move_to(&app, &late, "ready").await.expect(200);

    let recent = feed(&app, &format!("?since={since}")).await;
    let items = rows(&recent);
    assert_eq!(
        kinds(&recent),
        vec!["task_status_changed", "task_status_changed", "task_created"]
    );
    assert_eq!(items[0]["taskId"], json!(late));
    assert_eq!(items[1]["taskId"], json!(early));
    assert_eq!(items[2]["taskId"], json!(late));
    assert!(items.iter().all(|r| int(&r["createdAt"]) >= since));

    // `since` is inclusive, and after the last row nothing is left.
    let last = feed(&app, &format!("?since={}", app.clock.now_ms())).await;
    assert_eq!(rows(&last).len(), 1);
    let none = feed(&app, &format!("?since={}", app.clock.now_ms() + 1)).await;
    assert_eq!(none["items"], json!([]));
    let all = feed(&app, "?since=0").await;
    assert_eq!(rows(&all).len(), baseline + 5);
    app.admin(Method::GET, "/api/activity?since=yesterday", None)
        .await
        .expect_error(400, "validation_failed");
    app.stop().await;
}

async fn pagination_with_cursor(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let baseline = rows(&feed(&app, "?limit=100").await).len();
    for n in 0..4 {
        app.agent(&format!("agent{n}")).await;
        app.task(json!({"title": format!("Task {n}")})).await;
        app.clock.advance_ms(1);
    }
    let all = feed(&app, "?limit=100").await;
    let everything = row_ids(&all);
    assert_eq!(everything.len(), baseline + 8);
    assert_eq!(all["nextCursor"], Value::Null);

    let mut seen = Vec::new();
    let mut query = "?limit=3".to_string();
    let mut pages = 0;
    loop {
        let page = feed(&app, &query).await;
        pages += 1;
        let ids = row_ids(&page);
        assert!(!ids.is_empty() && ids.len() <= 3, "{page}");
        seen.extend(ids);
        match page["nextCursor"].as_str() {
            Some(cursor) => query = format!("?limit=3&cursor={cursor}"),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, everything.len().div_ceil(3));
    assert_eq!(seen, everything, "every row once, in order");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), everything.len());

    // The default page size is 20; a cursor combines with a filter.
    let first = feed(&app, "?kind=task_created&limit=2").await;
    assert_eq!(kinds(&first), vec!["task_created"; 2]);
    let cursor = text(&first["nextCursor"]);
    let second = feed(&app, &format!("?kind=task_created&limit=2&cursor={cursor}")).await;
    assert_eq!(kinds(&second), vec!["task_created"; 2]);
    assert_eq!(second["nextCursor"], Value::Null);
    let mut both = row_ids(&first);
    both.extend(row_ids(&second));
    assert_eq!(both.iter().collect::<HashSet<_>>().len(), 4);

    for bad in ["0", "101"] {
        app.admin(Method::GET, &format!("/api/activity?limit={bad}"), None)
            .await
            .expect_error(400, "validation_failed");
    }
    app.stop().await;
}

async fn invalid_kind_is_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.admin(Method::GET, "/api/activity?kind=task_exploded", None)
        .await
        .expect_error(400, "validation_failed");
    app.admin(Method::GET, "/api/activity?colour=red", None)
        .await
        .expect_error(400, "validation_failed");
    // Any token may read the feed; no token may not.
    let (alice, token) = app.agent("alice").await;
    let page = app
        .call(Method::GET, "/api/activity?kind=agent_registered", Some(&token), None)
        .await
        .expect(200);
    assert_eq!(kinds(&page), vec!["agent_registered"]);
    assert_eq!(rows(&page)[0]["agentId"], alice["id"]);
    app.call(Method::GET, "/api/activity", None, None)
        .await
        .expect_error(401, "unauthorized");
    app.stop().await;
}

async fn refused_requests_write_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, token) = app.agent("alice").await;
    app.agent("bob").await;
    let task = id(&app.task(json!({"title": "Guarded"})).await);
    let bobs = id(&app.task(json!({"title": "Bob's", "assigneeId": "bob"})).await);
    let blocker = id(&app.task(json!({"title": "Blocker"})).await);
    let before = feed(&app, "?limit=100").await;
    app.clock.advance_ms(1_000);

    move_to(&app, &task, "done")
        .await
        .expect_error(409, "invalid_transition");
    move_to(&app, &task, "ready").await.expect(200);
    let after_ok = feed(&app, "?limit=100").await;
    assert_eq!(
        row_ids(&after_ok).len(),
        row_ids(&before).len() + 1,
        "the allowed move wrote one row"
    );
    let before = after_ok;

    move_to(&app, &task, "in_progress")
        .await
        .expect_error(409, "task_unassigned");
    move_to(&app, &task, "review")
        .await
        .expect_error(409, "invalid_transition");
    app.admin(
        Method::PATCH,
        &format!("/api/tasks/{task}"),
        Some(json!({"status": "done"})),
    )
    .await
    .expect_error(400, "validation_failed");
    app.admin(
        Method::POST,
        &format!("/api/tasks/{task}/complete"),
        Some(json!({"outcome": "done"})),
    )
    .await
    .expect_error(409, "invalid_transition");
    app.admin(
        Method::POST,
        &format!("/api/tasks/{task}/fail"),
        Some(json!({"errorKind": "x", "message": "y"})),
    )
    .await
    .expect_error(409, "invalid_transition");
    app.admin(
        Method::POST,
        &format!("/api/tasks/{task}/dependencies"),
        Some(json!({"blockedBy": task})),
    )
    .await
    .expect_error(409, "dependency_cycle");
    app.admin(Method::POST, "/api/agents/alice/claim", None)
        .await
        .expect_error(404, "no_task_available");
    app.admin(
        Method::POST,
        "/api/tasks",
        Some(json!({"title": "x", "assigneeId": "nobody"})),
    )
    .await
    .expect_error(404, "agent_not_found");
    app.admin(Method::POST, "/api/agents", Some(json!({"name": "alice"})))
        .await
        .expect_error(409, "duplicate_name");
    app.call(
        Method::POST,
        &format!("/api/tasks/{bobs}/transition"),
        Some(&token),
        Some(json!({"to": "in_progress"})),
    )
    .await
    .expect_error(403, "forbidden");
    app.admin(
        Method::DELETE,
        &format!("/api/tasks/{task}/dependencies/{blocker}"),
        None,
    )
    .await
    .expect_error(404, "dependency_not_found");

    let after = feed(&app, "?limit=100").await;
    assert_eq!(
        row_ids(&after),
        row_ids(&before),
        "refused requests wrote activity: {after}"
    );
    let since = feed(&app, &format!("?since={}", app.clock.now_ms())).await;
    assert_eq!(
        kinds(&since),
        vec!["task_status_changed"],
        "only the allowed move is recent"
    );
    app.stop().await;
}

on_both_backends!(
    actions_are_recorded_newest_first,
    actor_kind_and_id,
    status_change_has_before_and_after,
    filter_by_agent_task_and_kind,
    filter_since,
    pagination_with_cursor,
    invalid_kind_is_refused,
    refused_requests_write_nothing,
);
