//! Capacity over HTTP: an agent's load figures and how they follow its work and the clock, the capacity
//! settings and their validation, the forecast, the fleet view, the capacity check on assign, claim and a transition to
//! `in_progress` (and `?force=true`), the figures in the wake-up call, and the figures after a restart.

use crate::common::*;
use crate::on_both_backends;
use mission_control::Clock;
use reqwest::Method;
use serde_json::{json, Value};

on_both_backends!(
    idle_agent_capacity_and_forecast,
    figures_follow_assignment_claim_time_completion_and_failure,
    unknown_estimates_count_240_and_overruns_floor_at_15,
    set_capacity_applies_at_once_and_resets_omitted_fields,
    set_capacity_permissions,
    set_capacity_validation_keeps_earlier_settings,
    forecast_lays_the_queue_end_to_end,
    fleet_capacity_totals_every_agent,
    assign_is_refused_at_the_concurrency_limit,
    claim_is_refused_at_80_percent_utilization,
    changed_limits_govern_the_next_claim,
    unassigning_and_reassigning_are_never_refused,
    wake_reports_the_agents_load,
    capacity_is_rebuilt_after_a_restart,
    starting_work_by_transition_counts_like_a_claim,
);

const MINUTE: i64 = 60_000;

/// The fields of an agent's load, shared by the capacity report, the fleet view, the 409 details and the
/// wake-up call.
const LOAD_FIELDS: [&str; 13] = [
    "agentId",
    "agentName",
    "agentStatus",
    "maxConcurrentTasks",
    "maxMinutesPerDay",
    "inProgressCount",
    "readyCount",
    "blockedCount",
    "estimatedMinutesRemaining",
    "utilizationPercent",
    "availableMinutes",
    "isOverloaded",
    "canAcceptWork",
];

fn capacity_path(agent: &str) -> String {
    format!("/api/agents/{agent}/capacity")
}

/// `GET /api/agents/{agent}/capacity` as the admin.
async fn capacity(app: &TestApp, agent: &str) -> Value {
    app.admin(Method::GET, &capacity_path(agent), None).await.expect(200)
}

/// `GET /api/agents/{agent}/forecast` as the admin.
async fn forecast(app: &TestApp, agent: &str) -> Value {
    app.admin(Method::GET, &format!("/api/agents/{agent}/forecast"), None)
        .await
        .expect(200)
}

async fn fleet(app: &TestApp) -> Value {
    app.admin(Method::GET, "/api/capacity", None).await.expect(200)
}

/// `PUT /api/agents/{agent}/capacity` with the given token.
async fn set_capacity(app: &TestApp, agent: &str, token: &str, body: Value) -> Reply {
    app.call(Method::PUT, &capacity_path(agent), Some(token), Some(body))
        .await
}

/// `POST /api/agents/{agent}/claim` with the given token.
async fn claim(app: &TestApp, agent: &str, token: &str) -> Reply {
    app.call(Method::POST, &format!("/api/agents/{agent}/claim"), Some(token), None)
        .await
}

async fn claim_forced(app: &TestApp, agent: &str, token: &str) -> Reply {
    app.call(
        Method::POST,
        &format!("/api/agents/{agent}/claim?force=true"),
        Some(token),
        None,
    )
    .await
}

/// `POST /api/tasks/{task}/assign` with the given token; `query` is appended to the path.
async fn assign(app: &TestApp, task: &str, agent: Value, token: &str, query: &str) -> Reply {
    app.call(
        Method::POST,
        &format!("/api/tasks/{task}/assign{query}"),
        Some(token),
        Some(json!({ "agentId": agent })),
    )
    .await
}

async fn complete(app: &TestApp, task: &str) -> Value {
    app.admin(
        Method::POST,
        &format!("/api/tasks/{task}/complete"),
        Some(json!({"outcome": "done"})),
    )
    .await
    .expect(200)
}

async fn fail(app: &TestApp, task: &str) -> Value {
    app.admin(
        Method::POST,
        &format!("/api/tasks/{task}/fail"),
        Some(json!({"errorKind": "x", "message": "y"})),
    )
    .await
    .expect(200)
}

/// The load part of a capacity report (or of anything carrying the load fields).
fn load_of(report: &Value) -> Value {
    let mut load = serde_json::Map::new();
    for field in LOAD_FIELDS {
        load.insert(field.to_string(), report[field].clone());
    }
    Value::Object(load)
}

/// Asserts every field of `expected` (an object) against `actual`.
#[track_caller]
fn assert_fields(actual: &Value, expected: Value) {
    let Some(expected) = expected.as_object() else {
        panic!("expected an object, got {expected}");
    };
    for (field, value) in expected {
        assert_eq!(&actual[field], value, "field {field}; in {actual}");
    }
}

/// The load of an agent with no open work.
fn idle_load(agent: &Value, max_concurrent: i64, max_minutes: i64) -> Value {
    json!({
        "agentId": agent["id"],
        "agentName": agent["name"],
        "agentStatus": agent["status"],
        "maxConcurrentTasks": max_concurrent,
        "maxMinutesPerDay": max_minutes,
        "inProgressCount": 0,
        "readyCount": 0,
        "blockedCount": 0,
        "estimatedMinutesRemaining": 0,
        "utilizationPercent": 0.0,
        "availableMinutes": max_minutes,
        "isOverloaded": false,
        "canAcceptWork": true,
    })
}

fn default_constraints() -> Value {
    json!({"hasInternet": true, "canRunGpu": false, "maxMemoryMb": 4096, "preferAsync": true})
}

fn ready_item(task: &Value) -> Value {
    json!({
        "id": task["id"],
        "title": task["title"],
        "priority": task["priority"],
        "estimatedMinutes": task["estimatedMinutes"],
    })
}

fn in_progress_item(task: &Value, remaining: i64, since: i64) -> Value {
    json!({
        "id": task["id"],
        "title": task["title"],
        "priority": task["priority"],
        "estimatedMinutes": task["estimatedMinutes"],
        "remainingMinutes": remaining,
        "inProgressSince": since,
    })
}

async fn idle_agent_capacity_and_forecast(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let constraints = json!({"hasInternet": false, "canRunGpu": true, "maxMemoryMb": 8192, "preferAsync": false});
    let (alice, _) = app
        .register(json!({
            "name": "alice",
            "maxConcurrentTasks": 2,
            "maxMinutesPerDay": 480,
            "specializations": ["rust", "sql"],
            "constraints": constraints,
        }))
        .await;
    let (_, bob_token) = app.agent("bob").await;

    // The whole report, with nothing more and nothing less.
    let mut expected = idle_load(&alice, 2, 480);
    expected["agentStatus"] = json!("idle");
    expected["specializations"] = json!(["rust", "sql"]);
    expected["constraints"] = constraints;
    expected["inProgressTasks"] = json!([]);
    expected["readyTasks"] = json!([]);
    assert_eq!(capacity(&app, &id(&alice)).await, expected);
    assert_eq!(capacity(&app, "alice").await, expected);
    // Any authenticated caller may read it; an anonymous one may not.
    let as_bob = app
        .call(Method::GET, &capacity_path("alice"), Some(&bob_token), None)
        .await
        .expect(200);
    assert_eq!(as_bob, expected);
    app.call(Method::GET, &capacity_path("alice"), None, None)
        .await
        .expect_error(401, "unauthorized");
    app.admin(Method::GET, &capacity_path("nobody"), None)
        .await
        .expect_error(404, "agent_not_found");

    // An idle agent is available now, with an empty queue.
    let now = app.clock.now_ms();
    let idle = forecast(&app, "alice").await;
    assert_eq!(
        idle,
        json!({
            "agentId": alice["id"],
            "agentName": "alice",
            "generatedAt": now,
            "availableAt": now,
            "totalMinutes": 0,
            "queue": [],
        })
    );
    assert_eq!(forecast(&app, &id(&alice)).await, idle);
    app.admin(Method::GET, "/api/agents/nobody/forecast", None)
        .await
        .expect_error(404, "agent_not_found");
    app.stop().await;
}

async fn figures_follow_assignment_claim_time_completion_and_failure(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (alice, token) = app
        .register(json!({"name": "alice", "maxConcurrentTasks": 2, "maxMinutesPerDay": 480}))
        .await;
    assert_fields(&capacity(&app, "alice").await, idle_load(&alice, 2, 480));

    // Assigned at creation: queued work, counted but not load.
    let a = app
        .task(json!({"title": "A", "assigneeId": "alice", "status": "ready", "priority": "P1", "estimatedMinutes": 60}))
        .await;
    app.clock.advance_ms(1_000);
    let b = app
        .task(
            json!({"title": "B", "assigneeId": "alice", "status": "ready", "priority": "P2", "estimatedMinutes": 120}),
        )
        .await;
    app.clock.advance_ms(1_000);
    let c = app
        .task(json!({"title": "C", "assigneeId": "alice", "status": "ready", "priority": "P3"}))
        .await;
    app.clock.advance_ms(1_000);
    // Assigned afterwards: a backlog task becomes ready for its new owner.
    let d = app
        .task(json!({"title": "D", "status": "backlog", "priority": "P2", "estimatedMinutes": 30}))
        .await;
    let assigned = assign(&app, &id(&d), json!("alice"), ADMIN_TOKEN, "").await.expect(200);
    assert_eq!(assigned["status"], "ready");
    let d = get_task(&app, &id(&d)).await;

    let report = capacity(&app, "alice").await;
    assert_fields(
        &report,
        json!({"readyCount": 4, "inProgressCount": 0, "blockedCount": 0, "estimatedMinutesRemaining": 0,
               "utilizationPercent": 0.0, "availableMinutes": 480, "isOverloaded": false, "canAcceptWork": true}),
    );
    assert_eq!(report["inProgressTasks"], json!([]));
    // Claim order: priority first, then age.
    assert_eq!(
        report["readyTasks"],
        json!([ready_item(&a), ready_item(&b), ready_item(&d), ready_item(&c)])
    );

    // The first claim takes A (P1): 60 of 480 minutes.
    app.clock.advance_ms(MINUTE);
    let t1 = app.clock.now_ms();
    let claimed = claim(&app, "alice", &token).await.expect(200);
    assert_eq!(claimed["id"], a["id"]);
    let report = capacity(&app, "alice").await;
    assert_fields(
        &report,
        json!({"inProgressCount": 1, "readyCount": 3, "blockedCount": 0, "estimatedMinutesRemaining": 60,
               "utilizationPercent": 12.5, "availableMinutes": 420, "isOverloaded": false, "canAcceptWork": true}),
    );
    assert_eq!(report["inProgressTasks"], json!([in_progress_item(&a, 60, t1)]));
    assert_eq!(
        report["readyTasks"],
        json!([ready_item(&b), ready_item(&d), ready_item(&c)])
    );

    // 25 whole minutes later (and 59 seconds), 35 minutes remain: 35 / 480 = 7.29 %.
    app.clock.advance_ms(25 * MINUTE + 59_000);
    assert_fields(
        &capacity(&app, "alice").await,
        json!({"estimatedMinutesRemaining": 35, "utilizationPercent": 7.3, "availableMinutes": 445}),
    );

    // The second claim takes B: two of two concurrent tasks, 35 + 120 = 155 minutes (32.29 %).
    let t2 = app.clock.now_ms();
    let claimed = claim(&app, "alice", &token).await.expect(200);
    assert_eq!(claimed["id"], b["id"]);
    let report = capacity(&app, "alice").await;
    assert_fields(
        &report,
        json!({"inProgressCount": 2, "readyCount": 2, "estimatedMinutesRemaining": 155, "utilizationPercent": 32.3,
               "availableMinutes": 325, "isOverloaded": true, "canAcceptWork": false}),
    );
    assert_eq!(
        report["inProgressTasks"],
        json!([in_progress_item(&a, 35, t1), in_progress_item(&b, 120, t2)])
    );

    // 50 minutes on: A has overrun (75 minutes spent of 60) and counts 15; B has 70 left. 85 / 480 = 17.71 %.
    app.clock.advance_ms(50 * MINUTE);
    let report = capacity(&app, "alice").await;
    assert_fields(
        &report,
        json!({"estimatedMinutesRemaining": 85, "utilizationPercent": 17.7, "availableMinutes": 395}),
    );
    assert_eq!(
        report["inProgressTasks"],
        json!([in_progress_item(&a, 15, t1), in_progress_item(&b, 70, t2)])
    );

    // Completing A frees its minutes and a slot: 70 / 480 = 14.58 %.
    complete(&app, &id(&a)).await;
    let report = capacity(&app, "alice").await;
    assert_fields(
        &report,
        json!({"inProgressCount": 1, "readyCount": 2, "estimatedMinutesRemaining": 70, "utilizationPercent": 14.6,
               "availableMinutes": 410, "isOverloaded": false, "canAcceptWork": true}),
    );
    assert_eq!(report["inProgressTasks"], json!([in_progress_item(&b, 70, t2)]));

    // A failed attempt puts B back in the queue (the oldest P2, so first) and frees its load.
    let failed = fail(&app, &id(&b)).await;
    assert_eq!(failed["status"], "ready");
    let report = capacity(&app, "alice").await;
    assert_fields(
        &report,
        json!({"inProgressCount": 0, "readyCount": 3, "estimatedMinutesRemaining": 0, "utilizationPercent": 0.0,
               "availableMinutes": 480, "isOverloaded": false, "canAcceptWork": true}),
    );
    assert_eq!(report["inProgressTasks"], json!([]));
    assert_eq!(
        report["readyTasks"],
        json!([ready_item(&b), ready_item(&d), ready_item(&c)])
    );

    // Retried, B starts over from its full estimate.
    app.clock.advance_ms(MINUTE);
    let t3 = app.clock.now_ms();
    let claimed = claim(&app, "alice", &token).await.expect(200);
    assert_eq!(claimed["id"], b["id"]);
    app.clock.advance_ms(MINUTE);
    let report = capacity(&app, "alice").await;
    assert_fields(
        &report,
        json!({"inProgressCount": 1, "readyCount": 2, "estimatedMinutesRemaining": 119,
               "utilizationPercent": 24.8, "availableMinutes": 361}),
    );
    assert_eq!(report["inProgressTasks"], json!([in_progress_item(&b, 119, t3)]));

    // A blocked task is counted as blocked, not ready, and adds no load.
    move_to(&app, &id(&c), "blocked").await.expect(200);
    let report = capacity(&app, "alice").await;
    assert_fields(
        &report,
        json!({"inProgressCount": 1, "readyCount": 1, "blockedCount": 1, "estimatedMinutesRemaining": 119,
               "utilizationPercent": 24.8}),
    );
    assert_eq!(report["readyTasks"], json!([ready_item(&d)]));

    // Cancelled and deleted tasks leave the figures.
    move_to(&app, &id(&d), "cancelled").await.expect(200);
    app.admin(Method::DELETE, &format!("/api/tasks/{}", id(&c)), None)
        .await
        .expect(200);
    let report = capacity(&app, "alice").await;
    assert_fields(
        &report,
        json!({"inProgressCount": 1, "readyCount": 0, "blockedCount": 0, "estimatedMinutesRemaining": 119}),
    );
    assert_eq!(report["readyTasks"], json!([]));
    app.stop().await;
}

async fn unknown_estimates_count_240_and_overruns_floor_at_15(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, token) = app
        .register(json!({"name": "alice", "maxConcurrentTasks": 3, "maxMinutesPerDay": 600}))
        .await;
    let first = app.task(json!({"title": "First", "assigneeId": "alice"})).await;
    assert_eq!(first["estimatedMinutes"], Value::Null);
    claim(&app, "alice", &token).await.expect(200);
    assert_fields(
        &capacity(&app, "alice").await,
        json!({"estimatedMinutesRemaining": 240, "utilizationPercent": 40.0, "availableMinutes": 360,
               "canAcceptWork": true}),
    );

    // Two unknown tasks: 480 of 600 minutes is exactly the 80 % limit.
    app.task(json!({"title": "Second", "assigneeId": "alice"})).await;
    claim(&app, "alice", &token).await.expect(200);
    assert_fields(
        &capacity(&app, "alice").await,
        json!({"inProgressCount": 2, "estimatedMinutesRemaining": 480, "utilizationPercent": 80.0,
               "availableMinutes": 120, "isOverloaded": false, "canAcceptWork": false}),
    );

    // Forced past the limit, utilization exceeds 100 % and no minutes are available.
    app.task(json!({"title": "Third", "assigneeId": "alice"})).await;
    claim_forced(&app, "alice", ADMIN_TOKEN).await.expect(200);
    assert_fields(
        &capacity(&app, "alice").await,
        json!({"inProgressCount": 3, "estimatedMinutesRemaining": 720, "utilizationPercent": 120.0,
               "availableMinutes": 0, "isOverloaded": true, "canAcceptWork": false}),
    );

    // Five hours on, every task has overrun its estimate and counts 15 minutes: 45 / 600 = 7.5 %.
    app.clock.advance_ms(300 * MINUTE);
    let report = capacity(&app, "alice").await;
    assert_fields(
        &report,
        json!({"estimatedMinutesRemaining": 45, "utilizationPercent": 7.5, "availableMinutes": 555,
               "isOverloaded": true, "canAcceptWork": false}),
    );
    let remaining: Vec<i64> = array(&report["inProgressTasks"])
        .iter()
        .map(|t| int(&t["remainingMinutes"]))
        .collect();
    assert_eq!(remaining, vec![15, 15, 15]);
    app.stop().await;
}

async fn set_capacity_applies_at_once_and_resets_omitted_fields(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (alice, token) = app
        .register(json!({"name": "alice", "maxConcurrentTasks": 2, "maxMinutesPerDay": 480}))
        .await;
    app.task(json!({"title": "Work", "assigneeId": "alice", "estimatedMinutes": 90}))
        .await;
    claim(&app, "alice", &token).await.expect(200);

    // The whole configuration, by id: the reply has the figures under the new settings.
    let constraints = json!({"hasInternet": false, "canRunGpu": true, "maxMemoryMb": 16384, "preferAsync": false});
    let reply = set_capacity(
        &app,
        &id(&alice),
        ADMIN_TOKEN,
        json!({"maxConcurrentTasks": 1, "maxMinutesPerDay": 100, "specializations": ["gpu", "ml"],
               "constraints": constraints}),
    )
    .await
    .expect(200);
    assert_fields(
        &reply,
        json!({"agentId": alice["id"], "agentName": "alice", "maxConcurrentTasks": 1, "maxMinutesPerDay": 100,
               "inProgressCount": 1, "readyCount": 0, "blockedCount": 0, "estimatedMinutesRemaining": 90,
               "utilizationPercent": 90.0, "availableMinutes": 10, "isOverloaded": true, "canAcceptWork": false,
               "specializations": ["gpu", "ml"], "constraints": constraints}),
    );
    assert_eq!(array(&reply["inProgressTasks"]).len(), 1);
    assert_eq!(reply["readyTasks"], json!([]));
    assert_eq!(capacity(&app, "alice").await, reply);
    let profile = app.admin(Method::GET, "/api/agents/alice", None).await.expect(200);
    assert_fields(
        &profile,
        json!({"maxConcurrentTasks": 1, "maxMinutesPerDay": 100, "specializations": ["gpu", "ml"],
               "constraints": constraints}),
    );

    // By name, omitting the lists: they go back to their defaults.
    let reply = set_capacity(
        &app,
        "alice",
        ADMIN_TOKEN,
        json!({"maxConcurrentTasks": 4, "maxMinutesPerDay": 900}),
    )
    .await
    .expect(200);
    assert_fields(
        &reply,
        json!({"maxConcurrentTasks": 4, "maxMinutesPerDay": 900, "estimatedMinutesRemaining": 90,
               "utilizationPercent": 10.0, "availableMinutes": 810, "isOverloaded": false, "canAcceptWork": true,
               "specializations": [], "constraints": default_constraints()}),
    );
    assert_eq!(capacity(&app, &id(&alice)).await, reply);
    let profile = app
        .admin(Method::GET, &format!("/api/agents/{}", id(&alice)), None)
        .await
        .expect(200);
    assert_fields(
        &profile,
        json!({"maxConcurrentTasks": 4, "maxMinutesPerDay": 900, "specializations": [],
               "constraints": default_constraints()}),
    );

    // Constraints given in part: the rest take their defaults.
    let reply = set_capacity(
        &app,
        "alice",
        ADMIN_TOKEN,
        json!({"maxConcurrentTasks": 4, "maxMinutesPerDay": 900, "constraints": {"canRunGpu": true}}),
    )
    .await
    .expect(200);
    assert_eq!(
        reply["constraints"],
        json!({"hasInternet": true, "canRunGpu": true, "maxMemoryMb": 4096, "preferAsync": true})
    );

    // The bounds themselves are accepted.
    for (concurrent, minutes) in [(1, 1), (100, 1440)] {
        let reply = set_capacity(
            &app,
            "alice",
            ADMIN_TOKEN,
            json!({"maxConcurrentTasks": concurrent, "maxMinutesPerDay": minutes}),
        )
        .await
        .expect(200);
        assert_fields(
            &reply,
            json!({"maxConcurrentTasks": concurrent, "maxMinutesPerDay": minutes}),
        );
    }
    app.stop().await;
}

async fn set_capacity_permissions(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (alice, alice_token) = app.agent("alice").await;
    let (_, bob_token) = app.agent("bob").await;
    assert_fields(&capacity(&app, "alice").await, idle_load(&alice, 3, 480));

    // The agent itself may set its own capacity.
    let reply = set_capacity(
        &app,
        "alice",
        &alice_token,
        json!({"maxConcurrentTasks": 5, "maxMinutesPerDay": 300, "specializations": ["docs"]}),
    )
    .await
    .expect(200);
    assert_fields(
        &reply,
        json!({"maxConcurrentTasks": 5, "maxMinutesPerDay": 300, "availableMinutes": 300,
               "specializations": ["docs"]}),
    );

    // Another agent may not, and changes nothing.
    set_capacity(
        &app,
        "alice",
        &bob_token,
        json!({"maxConcurrentTasks": 1, "maxMinutesPerDay": 60}),
    )
    .await
    .expect_error(403, "forbidden");
    set_capacity(
        &app,
        &id(&alice),
        &bob_token,
        json!({"maxConcurrentTasks": 1, "maxMinutesPerDay": 60}),
    )
    .await
    .expect_error(403, "forbidden");
    // Nor may an anonymous caller.
    app.call(
        Method::PUT,
        &capacity_path("alice"),
        None,
        Some(json!({"maxConcurrentTasks": 1, "maxMinutesPerDay": 60})),
    )
    .await
    .expect_error(401, "unauthorized");
    assert_fields(
        &capacity(&app, "alice").await,
        json!({"maxConcurrentTasks": 5, "maxMinutesPerDay": 300, "specializations": ["docs"]}),
    );

    // An unknown agent.
    set_capacity(
        &app,
        "nobody",
        ADMIN_TOKEN,
        json!({"maxConcurrentTasks": 1, "maxMinutesPerDay": 60}),
    )
    .await
    .expect_error(404, "agent_not_found");
    app.stop().await;
}

async fn set_capacity_validation_keeps_earlier_settings(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, token) = app.agent("alice").await;
    let constraints = json!({"hasInternet": false, "canRunGpu": true, "maxMemoryMb": 2048, "preferAsync": false});
    let settings = json!({"maxConcurrentTasks": 4, "maxMinutesPerDay": 600, "specializations": ["rust"],
                          "constraints": constraints});
    set_capacity(&app, "alice", ADMIN_TOKEN, settings).await.expect(200);
    let before = capacity(&app, "alice").await;
    assert_fields(
        &before,
        json!({"maxConcurrentTasks": 4, "maxMinutesPerDay": 600, "specializations": ["rust"],
               "constraints": constraints}),
    );

    let bad = [
        json!({"maxConcurrentTasks": 0, "maxMinutesPerDay": 480}),
        json!({"maxConcurrentTasks": 101, "maxMinutesPerDay": 480}),
        json!({"maxConcurrentTasks": -1, "maxMinutesPerDay": 480}),
        json!({"maxConcurrentTasks": 3, "maxMinutesPerDay": 0}),
        json!({"maxConcurrentTasks": 3, "maxMinutesPerDay": 1441}),
        json!({"maxMinutesPerDay": 480}),
        json!({"maxConcurrentTasks": 3}),
        json!({}),
        json!({"maxConcurrentTasks": 3, "maxMinutesPerDay": 480, "colour": "blue"}),
        json!({"maxConcurrentTasks": 3, "maxMinutesPerDay": 480, "constraints": {"hasGpu": true}}),
        json!({"maxConcurrentTasks": 3, "maxMinutesPerDay": 480, "constraints": {"maxMemoryMb": -1}}),
        json!({"maxConcurrentTasks": "3", "maxMinutesPerDay": 480}),
        json!({"maxConcurrentTasks": 3, "maxMinutesPerDay": 480, "specializations": "rust"}),
    ];
    for body in bad {
        let reply = set_capacity(&app, "alice", ADMIN_TOKEN, body.clone()).await;
        assert_eq!(reply.status.as_u16(), 400, "{body} → {}", reply.body);
        assert_eq!(reply.code(), "validation_failed", "{body} → {}", reply.body);
        // The agent's own token gets the same answer.
        set_capacity(&app, "alice", &token, body.clone())
            .await
            .expect_error(400, "validation_failed");
        assert_eq!(capacity(&app, "alice").await, before, "after {body}");
    }
    // Not JSON at all.
    app.raw(
        Method::PUT,
        &capacity_path("alice"),
        Some(ADMIN_TOKEN),
        "{\"maxConcurrentTasks\": ",
    )
    .await
    .expect_error(400, "invalid_json");
    assert_eq!(capacity(&app, "alice").await, before);
    let profile = app.admin(Method::GET, "/api/agents/alice", None).await.expect(200);
    assert_fields(
        &profile,
        json!({"maxConcurrentTasks": 4, "maxMinutesPerDay": 600, "specializations": ["rust"],
               "constraints": constraints}),
    );
    app.stop().await;
}

async fn forecast_lays_the_queue_end_to_end(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (alice, token) = app
        .register(json!({"name": "alice", "maxConcurrentTasks": 5, "maxMinutesPerDay": 1440}))
        .await;

    // A task in review is not workable and stays out of the forecast.
    let review = app
        .task(json!({"title": "In review", "assigneeId": "alice", "priority": "P0", "estimatedMinutes": 50}))
        .await;
    claim(&app, "alice", &token).await.expect(200);
    app.admin(
        Method::POST,
        &format!("/api/tasks/{}/complete", id(&review)),
        Some(json!({"outcome": "review"})),
    )
    .await
    .expect(200);

    // Two tasks in progress: the P2 one started first, so it comes first, before the later P0.
    let x = app
        .task(json!({"title": "X", "assigneeId": "alice", "priority": "P2", "estimatedMinutes": 40}))
        .await;
    claim(&app, "alice", &token).await.expect(200);
    app.clock.advance_ms(10 * MINUTE);
    let y = app
        .task(json!({"title": "Y", "assigneeId": "alice", "priority": "P0", "estimatedMinutes": 45}))
        .await;
    claim(&app, "alice", &token).await.expect(200);

    // Ready tasks follow in claim order: priority, then age. A blocked task is left out.
    app.clock.advance_ms(1_000);
    let r1 = app
        .task(json!({"title": "R1", "assigneeId": "alice", "priority": "P2", "estimatedMinutes": 20}))
        .await;
    app.clock.advance_ms(1_000);
    let r2 = app
        .task(json!({"title": "R2", "assigneeId": "alice", "priority": "P1"}))
        .await;
    app.clock.advance_ms(1_000);
    let r3 = app
        .task(json!({"title": "R3", "assigneeId": "alice", "priority": "P2", "estimatedMinutes": 10}))
        .await;
    let blocked = app
        .task(json!({"title": "Blocked", "assigneeId": "alice", "priority": "P0", "estimatedMinutes": 100}))
        .await;
    move_to(&app, &id(&blocked), "blocked").await.expect(200);

    // X has spent 15 whole minutes of 40, Y 5 of 45.
    app.clock.advance_ms(5 * MINUTE);
    let now = app.clock.now_ms();
    let entry = |task: &Value, status: &str, minutes: i64, start: i64| {
        json!({
            "taskId": task["id"],
            "title": task["title"],
            "status": status,
            "priority": task["priority"],
            "minutes": minutes,
            "projectedStartAt": now + start * MINUTE,
            "projectedFinishAt": now + (start + minutes) * MINUTE,
        })
    };
    let expected = json!({
        "agentId": alice["id"],
        "agentName": "alice",
        "generatedAt": now,
        "availableAt": now + 335 * MINUTE,
        "totalMinutes": 335,
        "queue": [
            entry(&x, "in_progress", 25, 0),
            entry(&y, "in_progress", 40, 25),
            entry(&r2, "ready", 240, 65),
            entry(&r1, "ready", 20, 305),
            entry(&r3, "ready", 10, 325),
        ],
    });
    assert_eq!(forecast(&app, "alice").await, expected);
    assert_eq!(forecast(&app, &id(&alice)).await, expected);

    // Half an hour on, both tasks in progress have overrun and count 15 minutes each.
    app.clock.advance_ms(30 * MINUTE);
    let now = app.clock.now_ms();
    let later = forecast(&app, "alice").await;
    assert_eq!(later["generatedAt"], now);
    assert_eq!(later["totalMinutes"], 300);
    assert_eq!(later["availableAt"], now + 300 * MINUTE);
    let minutes: Vec<i64> = array(&later["queue"]).iter().map(|e| int(&e["minutes"])).collect();
    assert_eq!(minutes, vec![15, 15, 240, 20, 10]);
    let starts: Vec<i64> = array(&later["queue"])
        .iter()
        .map(|e| (int(&e["projectedStartAt"]) - now) / MINUTE)
        .collect();
    assert_eq!(starts, vec![0, 15, 30, 270, 290]);

    // Finishing X moves everything up.
    complete(&app, &id(&x)).await;
    let after = forecast(&app, "alice").await;
    let order: Vec<String> = array(&after["queue"]).iter().map(|e| text(&e["taskId"])).collect();
    assert_eq!(order, vec![id(&y), id(&r2), id(&r1), id(&r3)]);
    assert_eq!(after["totalMinutes"], 285);
    assert_eq!(after["availableAt"], now + 285 * MINUTE);
    app.stop().await;
}

async fn fleet_capacity_totals_every_agent(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // Registered out of name order; the fleet lists them by name.
    let (carol, _) = app.agent("carol").await;
    let (alice, alice_token) = app
        .register(json!({"name": "alice", "maxConcurrentTasks": 1, "maxMinutesPerDay": 480}))
        .await;
    let (bob, _) = app
        .register(json!({"name": "bob", "maxConcurrentTasks": 2, "maxMinutesPerDay": 200}))
        .await;

    let empty = fleet(&app).await;
    assert_eq!(empty["generatedAt"], app.clock.now_ms());
    assert_eq!(
        empty["totals"],
        json!({"agents": 3, "acceptingWork": 3, "overloaded": 0, "inProgressCount": 0, "readyCount": 0,
               "blockedCount": 0, "estimatedMinutesRemaining": 0, "capacityMinutes": 1160,
               "availableMinutes": 1160, "utilizationPercent": 0.0})
    );

    // alice: one task in progress (100 minutes, her only slot) and one ready.
    app.task(json!({"title": "A1", "assigneeId": "alice", "estimatedMinutes": 100}))
        .await;
    claim(&app, "alice", &alice_token).await.expect(200);
    app.task(json!({"title": "A2", "assigneeId": "alice", "estimatedMinutes": 30}))
        .await;
    // bob: one ready and one blocked, and suspended: able to take work by the figures, but not accepting it.
    app.task(json!({"title": "B1", "assigneeId": "bob", "estimatedMinutes": 30}))
        .await;
    let b2 = app
        .task(json!({"title": "B2", "assigneeId": "bob", "estimatedMinutes": 30}))
        .await;
    move_to(&app, &id(&b2), "blocked").await.expect(200);
    app.admin(Method::PATCH, "/api/agents/bob", Some(json!({"status": "suspended"})))
        .await
        .expect(200);
    // Unassigned work belongs to nobody.
    app.task(json!({"title": "Nobody's", "status": "ready", "estimatedMinutes": 30}))
        .await;

    app.clock.advance_ms(MINUTE);
    let now = app.clock.now_ms();
    let view = fleet(&app).await;
    assert_eq!(view["generatedAt"], now);
    // 99 of 1160 minutes remain: 8.53 %.
    assert_eq!(
        view["totals"],
        json!({"agents": 3, "acceptingWork": 1, "overloaded": 1, "inProgressCount": 1, "readyCount": 2,
               "blockedCount": 1, "estimatedMinutesRemaining": 99, "capacityMinutes": 1160,
               "availableMinutes": 1061, "utilizationPercent": 8.5})
    );
    let agents = array(&view["agents"]);
    let names: Vec<String> = agents.iter().map(|a| text(&a["agentName"])).collect();
    assert_eq!(names, vec!["alice", "bob", "carol"]);
    assert_eq!(
        agents[0],
        json!({"agentId": alice["id"], "agentName": "alice", "agentStatus": "idle", "maxConcurrentTasks": 1,
               "maxMinutesPerDay": 480, "inProgressCount": 1, "readyCount": 1, "blockedCount": 0,
               "estimatedMinutesRemaining": 99, "utilizationPercent": 20.6, "availableMinutes": 381,
               "isOverloaded": true, "canAcceptWork": false})
    );
    assert_eq!(
        agents[1],
        json!({"agentId": bob["id"], "agentName": "bob", "agentStatus": "suspended", "maxConcurrentTasks": 2,
               "maxMinutesPerDay": 200, "inProgressCount": 0, "readyCount": 1, "blockedCount": 1,
               "estimatedMinutesRemaining": 0, "utilizationPercent": 0.0, "availableMinutes": 200,
               "isOverloaded": false, "canAcceptWork": true})
    );
    assert_eq!(agents[2], idle_load(&carol, 3, 480));
    // Each entry is the load the agent's own capacity report shows.
    for (agent, name) in agents.iter().zip(["alice", "bob", "carol"]) {
        assert_eq!(*agent, load_of(&capacity(&app, name).await));
    }

    // An offline agent may have room by the figures, but is not counted as accepting work either.
    let (dave, dave_token) = app.agent("dave").await;
    app.call(Method::POST, "/api/agents/dave/wake", Some(&dave_token), None)
        .await
        .expect(200);
    app.clock.advance_ms(6 * MINUTE);
    app.tick().await;
    let view = fleet(&app).await;
    let agents = array(&view["agents"]);
    let mut expected = idle_load(&dave, 3, 480);
    expected["agentStatus"] = json!("offline");
    assert_eq!(agents[3], expected);
    assert_fields(
        &view["totals"],
        json!({"agents": 4, "acceptingWork": 1, "overloaded": 1, "capacityMinutes": 1640}),
    );
    app.stop().await;
}

async fn assign_is_refused_at_the_concurrency_limit(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (alice, alice_token) = app
        .register(json!({"name": "alice", "maxConcurrentTasks": 1, "maxMinutesPerDay": 480}))
        .await;
    app.task(json!({"title": "Busy", "assigneeId": "alice", "estimatedMinutes": 60}))
        .await;
    claim(&app, "alice", &alice_token).await.expect(200);
    let spare = app
        .task(json!({"title": "Spare", "status": "backlog", "estimatedMinutes": 30}))
        .await;
    app.clock.advance_ms(MINUTE);
    let before = get_task(&app, &id(&spare)).await;

    // One of one slots in use: refused, with the figures in the details.
    let refused = assign(&app, &id(&spare), json!("alice"), ADMIN_TOKEN, "")
        .await
        .expect_error(409, "agent_at_capacity");
    assert_eq!(
        refused["error"]["details"],
        json!({"agentId": alice["id"], "agentName": "alice", "agentStatus": "idle", "maxConcurrentTasks": 1,
               "maxMinutesPerDay": 480, "inProgressCount": 1, "readyCount": 0, "blockedCount": 0,
               "estimatedMinutesRemaining": 59, "utilizationPercent": 12.3, "availableMinutes": 421,
               "isOverloaded": true, "canAcceptWork": false})
    );
    assert_eq!(get_task(&app, &id(&spare)).await, before);
    // By id, and by the agent taking the unassigned task for itself: the same.
    assign(&app, &id(&spare), alice["id"].clone(), ADMIN_TOKEN, "")
        .await
        .expect_error(409, "agent_at_capacity");
    assign(&app, &id(&spare), json!("alice"), &alice_token, "")
        .await
        .expect_error(409, "agent_at_capacity");
    // Only the admin may force; the agent's attempt is forbidden and changes nothing.
    assign(&app, &id(&spare), json!("alice"), &alice_token, "?force=true")
        .await
        .expect_error(403, "forbidden");
    assert_eq!(get_task(&app, &id(&spare)).await, before);
    assert_fields(
        &capacity(&app, "alice").await,
        json!({"inProgressCount": 1, "readyCount": 0}),
    );

    let forced = assign(&app, &id(&spare), json!("alice"), ADMIN_TOKEN, "?force=true")
        .await
        .expect(200);
    assert_eq!(forced["assigneeId"], alice["id"]);
    assert_eq!(forced["status"], "ready");
    assert_fields(
        &capacity(&app, "alice").await,
        json!({"inProgressCount": 1, "readyCount": 1, "isOverloaded": true, "canAcceptWork": false}),
    );
    // And claiming it is refused in turn.
    let refused = claim(&app, "alice", &alice_token)
        .await
        .expect_error(409, "agent_at_capacity");
    assert_fields(
        &refused["error"]["details"],
        json!({"inProgressCount": 1, "readyCount": 1, "isOverloaded": true, "canAcceptWork": false}),
    );
    assert_eq!(get_task(&app, &id(&spare)).await["status"], "ready");
    app.stop().await;
}

async fn claim_is_refused_at_80_percent_utilization(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (alice, alice_token) = app
        .register(json!({"name": "alice", "maxConcurrentTasks": 5, "maxMinutesPerDay": 100}))
        .await;
    let (_, bob_token) = app
        .register(json!({"name": "bob", "maxConcurrentTasks": 5, "maxMinutesPerDay": 100}))
        .await;

    // 80 of 100 minutes: exactly the limit, so no more work, though slots are free.
    app.task(json!({"title": "Eighty", "assigneeId": "alice", "estimatedMinutes": 80}))
        .await;
    claim(&app, "alice", &alice_token).await.expect(200);
    let small = app
        .task(json!({"title": "Small", "assigneeId": "alice", "estimatedMinutes": 5}))
        .await;
    let refused = claim(&app, "alice", &alice_token)
        .await
        .expect_error(409, "agent_at_capacity");
    assert_eq!(
        refused["error"]["details"],
        json!({"agentId": alice["id"], "agentName": "alice", "agentStatus": "idle", "maxConcurrentTasks": 5,
               "maxMinutesPerDay": 100, "inProgressCount": 1, "readyCount": 1, "blockedCount": 0,
               "estimatedMinutesRemaining": 80, "utilizationPercent": 80.0, "availableMinutes": 20,
               "isOverloaded": false, "canAcceptWork": false})
    );
    let small_now = get_task(&app, &id(&small)).await;
    assert_eq!(small_now["status"], "ready");
    assert_eq!(small_now["attempts"], 0);
    let spare = app
        .task(json!({"title": "Spare", "status": "backlog", "estimatedMinutes": 5}))
        .await;
    assign(&app, &id(&spare), json!("alice"), ADMIN_TOKEN, "")
        .await
        .expect_error(409, "agent_at_capacity");
    assert_eq!(get_task(&app, &id(&spare)).await["assigneeId"], Value::Null);

    // 79 of 100: below the limit, so work is taken.
    app.task(json!({"title": "Seventy-nine", "assigneeId": "bob", "estimatedMinutes": 79}))
        .await;
    claim(&app, "bob", &bob_token).await.expect(200);
    assert_fields(
        &capacity(&app, "bob").await,
        json!({"estimatedMinutesRemaining": 79, "utilizationPercent": 79.0, "canAcceptWork": true}),
    );
    let to_bob = assign(&app, &id(&spare), json!("bob"), ADMIN_TOKEN, "")
        .await
        .expect(200);
    assert_eq!(to_bob["status"], "ready");

    // A minute later alice has 79 minutes left, and may claim again.
    app.clock.advance_ms(MINUTE);
    assert_fields(
        &capacity(&app, "alice").await,
        json!({"estimatedMinutesRemaining": 79, "utilizationPercent": 79.0, "canAcceptWork": true}),
    );
    let claimed = claim(&app, "alice", &alice_token).await.expect(200);
    assert_eq!(claimed["id"], small["id"]);
    // A 5-minute task counts the 15-minute floor from the start: 79 + 15.
    assert_fields(
        &capacity(&app, "alice").await,
        json!({"inProgressCount": 2, "estimatedMinutesRemaining": 94, "utilizationPercent": 94.0,
               "canAcceptWork": false}),
    );

    // Forcing the claim: not with the agent's token, only with the admin's.
    let last = app
        .task(json!({"title": "Last", "assigneeId": "alice", "estimatedMinutes": 5}))
        .await;
    claim_forced(&app, "alice", &alice_token)
        .await
        .expect_error(403, "forbidden");
    assert_eq!(get_task(&app, &id(&last)).await["status"], "ready");
    let forced = claim_forced(&app, "alice", ADMIN_TOKEN).await.expect(200);
    assert_eq!(forced["id"], last["id"]);
    assert_eq!(forced["status"], "in_progress");
    assert_fields(
        &capacity(&app, "alice").await,
        json!({"inProgressCount": 3, "estimatedMinutesRemaining": 109, "utilizationPercent": 109.0, "availableMinutes": 0}),
    );
    app.stop().await;
}

async fn changed_limits_govern_the_next_claim(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, token) = app
        .register(json!({"name": "alice", "maxConcurrentTasks": 3, "maxMinutesPerDay": 480}))
        .await;
    app.task(json!({"title": "One", "assigneeId": "alice", "estimatedMinutes": 30}))
        .await;
    claim(&app, "alice", &token).await.expect(200);
    let two = app
        .task(json!({"title": "Two", "assigneeId": "alice", "estimatedMinutes": 30}))
        .await;

    // Down to one concurrent task: alice is at her limit at once.
    let reply = set_capacity(
        &app,
        "alice",
        &token,
        json!({"maxConcurrentTasks": 1, "maxMinutesPerDay": 480}),
    )
    .await
    .expect(200);
    assert_fields(
        &reply,
        json!({"maxConcurrentTasks": 1, "inProgressCount": 1, "isOverloaded": true, "canAcceptWork": false}),
    );
    claim(&app, "alice", &token)
        .await
        .expect_error(409, "agent_at_capacity");

    // Two slots, but a 36-minute day: 30 / 36 = 83.3 % is over the utilization limit.
    let reply = set_capacity(
        &app,
        "alice",
        &token,
        json!({"maxConcurrentTasks": 2, "maxMinutesPerDay": 36}),
    )
    .await
    .expect(200);
    assert_fields(
        &reply,
        json!({"utilizationPercent": 83.3, "availableMinutes": 6, "isOverloaded": false, "canAcceptWork": false}),
    );
    let refused = claim(&app, "alice", &token)
        .await
        .expect_error(409, "agent_at_capacity");
    assert_fields(
        &refused["error"]["details"],
        json!({"maxConcurrentTasks": 2, "maxMinutesPerDay": 36, "utilizationPercent": 83.3}),
    );

    // Room again: the claim goes through.
    set_capacity(
        &app,
        "alice",
        &token,
        json!({"maxConcurrentTasks": 2, "maxMinutesPerDay": 480}),
    )
    .await
    .expect(200);
    let claimed = claim(&app, "alice", &token).await.expect(200);
    assert_eq!(claimed["id"], two["id"]);
    assert_fields(
        &capacity(&app, "alice").await,
        json!({"inProgressCount": 2, "estimatedMinutesRemaining": 60, "utilizationPercent": 12.5,
               "isOverloaded": true, "canAcceptWork": false}),
    );
    app.stop().await;
}

async fn unassigning_and_reassigning_are_never_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (alice, alice_token) = app
        .register(json!({"name": "alice", "maxConcurrentTasks": 1, "maxMinutesPerDay": 480}))
        .await;
    let (bob, _) = app.agent("bob").await;
    let busy = app
        .task(json!({"title": "Busy", "assigneeId": "alice", "estimatedMinutes": 60}))
        .await;
    claim(&app, "alice", &alice_token).await.expect(200);
    let queued = app
        .task(json!({"title": "Queued", "assigneeId": "alice", "estimatedMinutes": 30}))
        .await;
    assert_fields(
        &capacity(&app, "alice").await,
        json!({"inProgressCount": 1, "readyCount": 1, "canAcceptWork": false}),
    );

    // Assigning a task to the agent that already has it, although she is at capacity: nothing changes.
    let same = assign(&app, &id(&busy), json!("alice"), ADMIN_TOKEN, "")
        .await
        .expect(200);
    assert_eq!(same["status"], "in_progress");
    assert_eq!(same["assigneeId"], alice["id"]);
    assign(&app, &id(&queued), json!("alice"), &alice_token, "")
        .await
        .expect(200);

    // Unassigning, by the admin or by the assignee itself.
    let unassigned = assign(&app, &id(&queued), Value::Null, &alice_token, "")
        .await
        .expect(200);
    assert_eq!(unassigned["assigneeId"], Value::Null);
    assert_fields(
        &capacity(&app, "alice").await,
        json!({"inProgressCount": 1, "readyCount": 0, "canAcceptWork": false}),
    );

    // Work in progress handed to bob goes back to ready with him, and leaves alice's load.
    let moved = assign(&app, &id(&busy), json!("bob"), ADMIN_TOKEN, "")
        .await
        .expect(200);
    assert_eq!(moved["status"], "ready");
    assert_eq!(moved["assigneeId"], bob["id"]);
    assert_fields(
        &capacity(&app, "alice").await,
        json!({"inProgressCount": 0, "readyCount": 0, "estimatedMinutesRemaining": 0, "isOverloaded": false,
               "canAcceptWork": true}),
    );
    let bob_load = capacity(&app, "bob").await;
    assert_fields(
        &bob_load,
        json!({"inProgressCount": 0, "readyCount": 1, "estimatedMinutesRemaining": 0}),
    );
    assert_eq!(bob_load["readyTasks"], json!([ready_item(&busy)]));

    // Unassigning it from bob, the admin's way.
    assign(&app, &id(&busy), Value::Null, ADMIN_TOKEN, "").await.expect(200);
    assert_fields(&capacity(&app, "bob").await, json!({"readyCount": 0}));
    app.stop().await;
}

async fn wake_reports_the_agents_load(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (alice, token) = app
        .register(json!({"name": "alice", "maxConcurrentTasks": 2, "maxMinutesPerDay": 400}))
        .await;

    // Nothing to do yet.
    let woken = app
        .call(Method::POST, "/api/agents/alice/wake", Some(&token), None)
        .await
        .expect(200);
    let mut expected = idle_load(&alice, 2, 400);
    expected["agentStatus"] = json!("active");
    assert_eq!(woken["capacity"], expected);

    app.task(json!({"title": "Doing", "assigneeId": "alice", "estimatedMinutes": 100}))
        .await;
    claim(&app, "alice", &token).await.expect(200);
    app.task(json!({"title": "Next", "assigneeId": "alice", "estimatedMinutes": 50}))
        .await;
    let waiting = app
        .task(json!({"title": "Waiting", "assigneeId": "alice", "estimatedMinutes": 50}))
        .await;
    move_to(&app, &id(&waiting), "blocked").await.expect(200);
    app.clock.advance_ms(10 * MINUTE);

    let woken = app
        .call(
            Method::POST,
            &format!("/api/agents/{}/wake", id(&alice)),
            Some(&token),
            None,
        )
        .await
        .expect(200);
    assert_eq!(
        woken["capacity"],
        json!({"agentId": alice["id"], "agentName": "alice", "agentStatus": "active", "maxConcurrentTasks": 2,
               "maxMinutesPerDay": 400, "inProgressCount": 1, "readyCount": 1, "blockedCount": 1,
               "estimatedMinutesRemaining": 90, "utilizationPercent": 22.5, "availableMinutes": 310,
               "isOverloaded": false, "canAcceptWork": true})
    );
    assert_eq!(array(&woken["inProgress"]).len(), 1);
    assert_eq!(array(&woken["ready"]).len(), 1);
    // The same figures as the capacity report.
    assert_eq!(woken["capacity"], load_of(&capacity(&app, "alice").await));
    app.stop().await;
}

async fn capacity_is_rebuilt_after_a_restart(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, alice_token) = app
        .register(json!({"name": "alice", "maxConcurrentTasks": 2, "maxMinutesPerDay": 300}))
        .await;
    let (_, bob_token) = app.agent("bob").await;
    set_capacity(
        &app,
        "bob",
        &bob_token,
        json!({"maxConcurrentTasks": 7, "maxMinutesPerDay": 700, "specializations": ["ops"],
               "constraints": {"canRunGpu": true, "maxMemoryMb": 1024}}),
    )
    .await
    .expect(200);
    app.task(json!({"title": "Doing", "assigneeId": "alice", "priority": "P1", "estimatedMinutes": 100}))
        .await;
    claim(&app, "alice", &alice_token).await.expect(200);
    app.clock.advance_ms(MINUTE);
    app.task(json!({"title": "Next", "assigneeId": "alice", "priority": "P2", "estimatedMinutes": 40}))
        .await;
    app.task(json!({"title": "Later", "assigneeId": "alice", "priority": "P3"}))
        .await;
    let waiting = app
        .task(json!({"title": "Waiting", "assigneeId": "alice", "estimatedMinutes": 10}))
        .await;
    move_to(&app, &id(&waiting), "blocked").await.expect(200);
    let done = app
        .task(json!({"title": "Done", "assigneeId": "bob", "estimatedMinutes": 20}))
        .await;
    claim(&app, "bob", &bob_token).await.expect(200);
    complete(&app, &id(&done)).await;
    app.clock.advance_ms(10 * MINUTE);

    let alice_before = capacity(&app, "alice").await;
    assert_fields(
        &alice_before,
        json!({"inProgressCount": 1, "readyCount": 2, "blockedCount": 1, "estimatedMinutesRemaining": 89,
               "utilizationPercent": 29.7, "availableMinutes": 211}),
    );
    let bob_before = capacity(&app, "bob").await;
    let forecast_before = forecast(&app, "alice").await;
    let fleet_before = fleet(&app).await;

    let app = app.restart().await;
    assert_eq!(capacity(&app, "alice").await, alice_before);
    assert_eq!(capacity(&app, "bob").await, bob_before);
    assert_fields(
        &capacity(&app, "bob").await,
        json!({"maxConcurrentTasks": 7, "maxMinutesPerDay": 700, "specializations": ["ops"],
               "constraints": {"hasInternet": true, "canRunGpu": true, "maxMemoryMb": 1024, "preferAsync": true},
               "inProgressCount": 0, "estimatedMinutesRemaining": 0}),
    );
    assert_eq!(forecast(&app, "alice").await, forecast_before);
    assert_eq!(fleet(&app).await, fleet_before);

    // Time still counts from when the task entered in_progress, as stored.
    app.clock.advance_ms(5 * MINUTE);
    assert_fields(
        &capacity(&app, "alice").await,
        json!({"estimatedMinutesRemaining": 84, "utilizationPercent": 28.0, "availableMinutes": 216}),
    );
    // And the capacity check still sees the work in progress.
    set_capacity(
        &app,
        "alice",
        &alice_token,
        json!({"maxConcurrentTasks": 1, "maxMinutesPerDay": 300}),
    )
    .await
    .expect(200);
    claim(&app, "alice", &alice_token)
        .await
        .expect_error(409, "agent_at_capacity");
    app.stop().await;
}

/// Moving a ready task to `in_progress` by transition is starting work, like a claim: an agent at its limit is
/// refused unless the admin forces it.
async fn starting_work_by_transition_counts_like_a_claim(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, token) = app
        .register(json!({"name": "alice", "maxConcurrentTasks": 1, "maxMinutesPerDay": 480}))
        .await;
    let busy = app
        .task(json!({"title": "Busy", "assigneeId": "alice", "estimatedMinutes": 60}))
        .await;
    claim(&app, "alice", &token).await.expect(200);
    let second = app
        .task(json!({"title": "Second", "assigneeId": "alice", "estimatedMinutes": 30}))
        .await;
    let start = |force: &'static str| format!("/api/tasks/{}/transition{force}", id(&second));
    let to_in_progress = json!({"to": "in_progress"});

    let refused = app
        .call(Method::POST, &start(""), Some(&token), Some(to_in_progress.clone()))
        .await
        .expect_error(409, "agent_at_capacity");
    assert_fields(
        &refused["error"]["details"],
        json!({"inProgressCount": 1, "readyCount": 1, "isOverloaded": true, "canAcceptWork": false}),
    );
    assert_eq!(get_task(&app, &id(&second)).await["status"], "ready");
    app.call(
        Method::POST,
        &start("?force=true"),
        Some(&token),
        Some(to_in_progress.clone()),
    )
    .await
    .expect_error(403, "forbidden");
    // A task in review is not load: the running task may go to review and come back to work.
    move_to(&app, &id(&busy), "review").await.expect(200);
    move_to(&app, &id(&busy), "in_progress").await.expect(200);

    let forced = app
        .admin(Method::POST, &start("?force=true"), Some(to_in_progress))
        .await
        .expect(200);
    assert_eq!(forced["status"], "in_progress");
    assert_fields(
        &capacity(&app, "alice").await,
        json!({"inProgressCount": 2, "estimatedMinutesRemaining": 90, "isOverloaded": true}),
    );
    app.stop().await;
}
