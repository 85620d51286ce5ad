//! The action outbox seen from outside: a webhook that never answers delays nobody else's escalation, a
//! failing webhook is retried with backoff (same `Idempotency-Key` every time) and ends `dead` after
//! `MC_OUTBOX_MAX_ATTEMPTS`, an operator's retry delivers a dead row, the listing and its errors, and the
//! assignment notice that wakes an agent on new work. The crash cases are in `persistence.rs`.

use crate::common::sink::Sink;
use crate::common::*;
use crate::on_both_backends;
use mission_control::Clock;
use reqwest::Method;
use serde_json::{json, Value};
use std::net::TcpListener;

const MINUTE: i64 = 60_000;

/// A rule for tasks tagged `tag` that sit ready and unassigned for more than a minute.
async fn rule(app: &TestApp, name: &str, tag: &str, actions: Value) {
    let body = json!({"name": name, "appliesTo": {"tags": [tag]},
        "triggers": [{"kind": "unassigned", "durationMs": MINUTE}], "actions": actions});
    app.admin(Method::POST, "/api/escalation-rules", Some(body))
        .await
        .expect(201);
}

async fn waiting_task(app: &TestApp, title: &str, tag: &str) -> String {
    id(&app
        .task(json!({"title": title, "status": "ready", "tags": [tag]}))
        .await)
}

async fn escalation_of(app: &TestApp, task: &str) -> Value {
    let rows = all_items(app, &format!("/api/escalations?taskId={task}"), 100).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows[0].clone()
}

async fn row(app: &TestApp, id: &str) -> Value {
    app.admin(Method::GET, &format!("/api/outbox/{id}"), None)
        .await
        .expect(200)
}

async fn a_webhook_that_never_answers_delays_no_other_escalation(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    // Accepts connections (the kernel's backlog) and never reads or answers.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", silent.local_addr().expect("address"));
    app.register(json!({"name": "boss", "level": "lead"})).await;
    rule(
        &app,
        "to a silent server",
        "a",
        json!([{"kind": "webhook", "url": url}]),
    )
    .await;
    rule(
        &app,
        "to the boss",
        "b",
        json!([{"kind": "escalate", "to": "agent:boss"}]),
    )
    .await;
    let hanging = waiting_task(&app, "hangs", "a").await;
    let other = waiting_task(&app, "alerts", "b").await;

    app.clock.advance_ms(MINUTE + 1);
    let report = app.tick().await;
    // The tick is back with both firings while the webhook's first attempt is still waiting for an answer.
    assert_eq!(report.escalations.len(), 2, "{:?}", report.escalations);
    let fired = |task: &str| {
        report
            .escalations
            .iter()
            .find(|e| e.task_id.as_deref() == Some(task))
            .unwrap_or_else(|| panic!("no firing for {task}"))
            .clone()
    };
    assert_eq!(fired(&hanging).actions[0].status.as_str(), "pending");
    assert_eq!(
        fired(&other).actions[0].status.as_str(),
        "executed",
        "{:?}",
        fired(&other)
    );
    let hook_row = fired(&hanging).actions[0].outbox_id.clone().expect("an outbox row");
    assert_eq!(
        row(&app, &hook_row).await["attempts"],
        0,
        "its first attempt has not ended"
    );
    let alerts: Vec<Value> = all_items(&app, "/api/agents/boss/messages", 100)
        .await
        .into_iter()
        .filter(|m| m["taskId"] == other.as_str())
        .collect();
    assert_eq!(alerts.len(), 1, "the other task's alert is in the inbox already");
    drop(silent);
    app.stop().await;
}

async fn a_failing_webhook_backs_off_dies_and_an_operator_retry_delivers_it(backend: Backend) {
    let sink = Sink::start(500).await;
    let Some(app) = spawn_app_with(backend, |config| config.escalation.outbox_max_attempts = 3).await else {
        return;
    };
    disable_escalation_rules(&app).await;
    rule(
        &app,
        "to a broken server",
        "a",
        json!([{"kind": "webhook", "url": sink.url}]),
    )
    .await;
    let task = waiting_task(&app, "answered 500", "a").await;
    app.clock.advance_ms(MINUTE + 1);
    app.tick().await;
    app.settle().await;
    let hook_row = text(&escalation_of(&app, &task).await["actions"][0]["outboxId"]);
    let first = row(&app, &hook_row).await;
    assert_eq!(first["attempts"], 1, "{first}");
    assert_eq!(first["lastError"], format!("POST {}: HTTP 500", sink.url), "{first}");
    // The first retry waits 2.5–5 s (5 s with up to half of it jitter); nothing is retried before.
    let wait = int(&first["nextAttemptAt"]) - app.clock.now_ms();
    assert!((2_500..=5_000).contains(&wait), "{first}");
    app.tick().await;
    app.settle().await;
    assert_eq!(sink.hits().len(), 1, "not retried before its time");

    app.clock.advance_ms(wait);
    app.tick().await;
    app.settle().await;
    let second = row(&app, &hook_row).await;
    assert_eq!(second["attempts"], 2, "{second}");
    let wait = int(&second["nextAttemptAt"]) - app.clock.now_ms();
    assert!((5_000..=10_000).contains(&wait), "the backoff doubles: {second}");
    let action = &escalation_of(&app, &task).await["actions"][0];
    assert_eq!(action["status"], "failed", "retrying: {action}");
    assert!(text(&action["detail"]).contains("attempt 2 failed"), "{action}");

    app.clock.advance_ms(wait);
    app.tick().await;
    app.settle().await;
    let dead = row(&app, &hook_row).await;
    assert_eq!(dead["attempts"], 3, "{dead}");
    assert!(dead["deadAt"].is_i64(), "dead after the last attempt: {dead}");
    let action = &escalation_of(&app, &task).await["actions"][0];
    assert_eq!(action["status"], "dead", "{action}");
    assert!(text(&action["detail"]).contains("gave up after 3 attempts"), "{action}");
    let listed = all_items(&app, "/api/outbox?status=dead", 100).await;
    assert_eq!(
        listed.iter().map(id).collect::<Vec<_>>(),
        std::slice::from_ref(&hook_row)
    );
    // Longer than the longest backoff (15 min), shorter than the rule's cooldown (30 min, no new firing).
    app.clock.advance_ms(20 * MINUTE);
    app.tick().await;
    app.settle().await;
    assert_eq!(sink.hits().len(), 3, "a dead row waits for an operator");
    let keys: Vec<Option<String>> = sink
        .hits()
        .iter()
        .map(|h| h.headers.get("idempotency-key").cloned())
        .collect();
    assert_eq!(keys, vec![Some(hook_row.clone()); 3], "one key for every attempt");

    sink.answer(200);
    let retried = app
        .admin(Method::POST, &format!("/api/outbox/{hook_row}/retry"), None)
        .await
        .expect(200);
    assert!(retried["deliveredAt"].is_i64(), "{retried}");
    assert_eq!(retried["result"], format!("POST {}: HTTP 200", sink.url));
    assert_eq!(sink.hits().len(), 4);
    let action = &escalation_of(&app, &task).await["actions"][0];
    assert_eq!(action["status"], "executed", "{action}");
    app.admin(Method::POST, &format!("/api/outbox/{hook_row}/retry"), None)
        .await
        .expect_error(409, "already_delivered");
    assert!(all_items(&app, "/api/outbox?status=dead", 100).await.is_empty());
    sink.stop().await;
    app.stop().await;
}

async fn the_outbox_is_the_admins_and_masks_header_values(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    let (_, bob_token) = app.agent("bob").await;
    let dead = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}/hook", listener.local_addr().expect("address"))
    };
    let actions = json!([{"kind": "webhook", "url": dead, "headers": {"Authorization": "Bearer s3cret"}}]);
    rule(&app, "with a secret", "a", actions).await;
    waiting_task(&app, "secret", "a").await;
    app.clock.advance_ms(MINUTE + 1);
    app.tick().await;
    app.settle().await;
    let rows = all_items(&app, "/api/outbox?status=pending", 100).await;
    let hook = rows.iter().find(|r| r["kind"] == "webhook").expect("the webhook row");
    assert_eq!(hook["effect"]["headers"]["Authorization"], "***", "{hook}");
    assert!(!hook.to_string().contains("s3cret"));
    app.call(Method::GET, "/api/outbox", Some(&bob_token), None)
        .await
        .expect_error(403, "forbidden");
    app.call(
        Method::POST,
        &format!("/api/outbox/{}/retry", id(hook)),
        Some(&bob_token),
        None,
    )
    .await
    .expect_error(403, "forbidden");
    app.admin(Method::GET, "/api/outbox?status=lost", None)
        .await
        .expect_error(400, "validation_failed");
    app.admin(Method::GET, "/api/outbox/nope", None)
        .await
        .expect_error(404, "outbox_item_not_found");
    app.admin(Method::POST, "/api/outbox/nope/retry", None)
        .await
        .expect_error(404, "outbox_item_not_found");
    app.stop().await;
}

async fn an_assignment_by_someone_else_tells_the_assignee(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    let (bob, bob_token) = app.agent("bob").await;
    let created = id(&app.task(json!({"title": "Ship it", "assigneeId": "bob"})).await);
    let later = id(&app.task(json!({"title": "Then this"})).await);
    app.admin(
        Method::POST,
        &format!("/api/tasks/{later}/assign"),
        Some(json!({"agentId": "bob"})),
    )
    .await
    .expect(200);
    // Taking an unassigned task for oneself tells nobody.
    let own = id(&app.task(json!({"title": "Mine", "status": "ready"})).await);
    app.call(
        Method::POST,
        &format!("/api/tasks/{own}/assign"),
        Some(&bob_token),
        Some(json!({"agentId": "bob"})),
    )
    .await
    .expect(200);
    app.settle().await;
    let inbox = app
        .call(
            Method::GET,
            "/api/agents/bob/messages?type=task_update",
            Some(&bob_token),
            None,
        )
        .await
        .expect(200);
    let notices = array(&inbox["items"]);
    let tasks: Vec<&Value> = notices.iter().map(|n| &n["taskId"]).collect();
    assert_eq!(tasks, [&json!(later), &json!(created)], "{notices:?}");
    for notice in &notices {
        assert!(is_assignment_notice(notice), "{notice}");
        assert_eq!(notice["toAgentId"], bob["id"]);
    }
    assert_eq!(notices[0]["subject"], "assigned: Then this");
    app.stop().await;
}

on_both_backends!(
    a_webhook_that_never_answers_delays_no_other_escalation,
    a_failing_webhook_backs_off_dies_and_an_operator_retry_delivers_it,
    the_outbox_is_the_admins_and_masks_header_values,
    an_assignment_by_someone_else_tells_the_assignee,
);
