//! Messaging and the tick: acknowledgement deadlines escalate a message exactly once (its task up one
//! priority level, a system `alert` to the recipient's lead or to every lead), expired messages are deleted
//! with one activity row per sweep, and a task released by its last blocker tells its assignee.

use crate::common::*;
use crate::on_both_backends;
use mission_control::Clock;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const FIVE_MINUTES: i64 = 300_000;
const MINUTE: i64 = 60_000;

/// Sends a message as agent `from` with its own token; the send must succeed.
async fn send_as(app: &TestApp, from: &str, token: &str, body: Value) -> Value {
    app.call(
        Method::POST,
        &format!("/api/agents/{from}/messages"),
        Some(token),
        Some(body),
    )
    .await
    .expect(201)
}

/// The whole inbox of an agent (one page of up to 100), read as the admin.
async fn inbox(app: &TestApp, agent: &str) -> Value {
    app.admin(Method::GET, &format!("/api/agents/{agent}/messages?limit=100"), None)
        .await
        .expect(200)
}

/// The inbox items of an agent, without assignment notices.
async fn inbox_items(app: &TestApp, agent: &str) -> Vec<Value> {
    other_than_assignment_notices(array(&inbox(app, agent).await["items"]))
}

/// A message by id, read as the admin.
async fn message(app: &TestApp, id: &str) -> Value {
    app.admin(Method::GET, &format!("/api/messages/{id}"), None)
        .await
        .expect(200)
}

/// Every activity row of one kind.
async fn activity(app: &TestApp, kind: &str) -> Vec<Value> {
    all_items(app, &format!("/api/activity?kind={kind}"), 100).await
}

/// The system alerts in `items` about the message `original`.
fn alerts_about(items: &[Value], original: &str) -> Vec<Value> {
    items
        .iter()
        .filter(|m| m["type"] == "alert" && m["data"]["originalMessageId"] == original)
        .cloned()
        .collect()
}

fn alerts(items: &[Value]) -> Vec<Value> {
    items.iter().filter(|m| m["type"] == "alert").cloned().collect()
}

fn now(app: &TestApp) -> i64 {
    app.clock.now_ms()
}

/// Checks the shape of an escalation alert about `original` (a message to `recipient`).
#[track_caller]
fn assert_alert(alert: &Value, original: &Value, recipient: &Value, reason: &str) {
    assert_eq!(alert["senderKind"], "system", "{alert}");
    assert_eq!(alert["fromAgentId"], Value::Null, "{alert}");
    assert_eq!(alert["fromAgentName"], "system", "{alert}");
    assert_eq!(alert["type"], "alert", "{alert}");
    assert_eq!(alert["taskId"], original["taskId"], "{alert}");
    assert_eq!(alert["data"]["originalMessageId"], original["id"], "{alert}");
    assert_eq!(alert["data"]["recipientId"], recipient["id"], "{alert}");
    assert_eq!(alert["data"]["recipientName"], recipient["name"], "{alert}");
    assert_eq!(alert["data"]["reason"], reason, "{alert}");
    assert_eq!(
        alert["subject"],
        format!("Not acknowledged: {}", text(&original["subject"])),
        "{alert}"
    );
    let expected_priority = if original["priority"] == "critical" {
        "critical"
    } else {
        "high"
    };
    assert_eq!(alert["priority"], expected_priority, "{alert}");
    assert_eq!(alert["readAt"], Value::Null, "{alert}");
    assert_eq!(
        alert["ackDeadlineAt"],
        Value::Null,
        "an alert has no deadline of its own: {alert}"
    );
}

async fn deadline_escalates_message_task_and_lead(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (boss, _) = app.register(json!({"name": "boss", "level": "lead"})).await;
    let (bob, _) = app.register(json!({"name": "bob", "leadId": "boss"})).await;
    let (_alice, alice_token) = app.agent("alice").await;
    let task = app
        .task(json!({"title": "Ship the parser", "priority": "P2", "assigneeId": "bob"}))
        .await;
    let task_id = id(&task);
    assert_eq!(task["priority"], "P2");
    assert_eq!(task["escalationLevel"], 0);

    let sent_at = now(&app);
    let sent = send_as(
        &app,
        "alice",
        &alice_token,
        json!({"toAgentId": "bob", "type": "help_request", "subject": "Parser review", "body": "please look",
            "taskId": task_id, "ackWithinMs": FIVE_MINUTES, "escalationAction": "page the lead"}),
    )
    .await;
    let mid = id(&sent);
    assert_eq!(int(&sent["ackDeadlineAt"]), sent_at + FIVE_MINUTES);
    assert_eq!(sent["escalatedAt"], Value::Null);

    // One millisecond before the deadline: nothing happens.
    app.clock.advance_ms(FIVE_MINUTES - 1);
    let report = app.tick().await;
    assert!(report.escalated_message_ids.is_empty(), "{report:?}");
    assert_eq!(report.expired_messages, 0);
    assert_eq!(message(&app, &mid).await["escalatedAt"], Value::Null);
    let before = get_task(&app, &task_id).await;
    assert_eq!(before["priority"], "P2");
    assert_eq!(before["escalationLevel"], 0);
    assert!(inbox_items(&app, "boss").await.is_empty());
    assert!(activity(&app, "message_escalated").await.is_empty());
    assert!(activity(&app, "task_escalated").await.is_empty());

    // At the deadline: escalated, once.
    app.clock.advance_ms(1);
    let escalated_at = now(&app);
    let report = app.tick().await;
    assert_eq!(report.escalated_message_ids, vec![mid.clone()]);
    let stored = message(&app, &mid).await;
    assert_eq!(int(&stored["escalatedAt"]), escalated_at, "{stored}");
    assert_eq!(stored["acknowledgedAt"], Value::Null);
    assert_eq!(stored["escalationAction"], "page the lead");

    let after = get_task(&app, &task_id).await;
    assert_eq!(after["priority"], "P1", "{after}");
    assert_eq!(after["escalationLevel"], 1, "{after}");
    assert_eq!(int(&after["escalatedAt"]), escalated_at, "{after}");
    assert_eq!(after["assigneeId"], bob["id"], "escalation keeps the assignee");

    let boss_inbox = inbox(&app, "boss").await;
    let boss_items = array(&boss_inbox["items"]);
    assert_eq!(boss_items.len(), 1, "{boss_inbox}");
    assert_eq!(boss_inbox["unreadCount"], 1);
    let alert = &boss_items[0];
    assert_alert(alert, &sent, &bob, "page the lead");
    assert_eq!(alert["toAgentId"], boss["id"]);
    assert_eq!(alert["taskId"], task_id.as_str());
    // Nobody else is alerted: not the recipient, not the sender.
    assert!(alerts(&inbox_items(&app, "bob").await).is_empty());
    assert!(inbox_items(&app, "alice").await.is_empty());

    let rows = activity(&app, "message_escalated").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["taskId"], task_id.as_str());
    assert_eq!(rows[0]["agentId"], bob["id"]);
    assert_eq!(rows[0]["actorKind"], "system");
    assert_eq!(rows[0]["message"], "page the lead");
    assert_eq!(rows[0]["after"]["messageId"], mid.as_str());
    assert_eq!(int(&rows[0]["after"]["escalatedAt"]), escalated_at);
    let rows = activity(&app, "task_escalated").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["taskId"], task_id.as_str());
    assert_eq!(rows[0]["before"], json!({"priority": "P2", "escalationLevel": 0}));
    assert_eq!(rows[0]["after"], json!({"priority": "P1", "escalationLevel": 1}));

    // Later ticks do not escalate it again, nor does a restart.
    for _ in 0..3 {
        app.clock.advance_ms(10 * MINUTE);
        let report = app.tick().await;
        assert!(report.escalated_message_ids.is_empty(), "{report:?}");
    }
    let app = app.restart().await;
    app.clock.advance_ms(MINUTE);
    let report = app.tick().await;
    assert!(
        report.escalated_message_ids.is_empty(),
        "re-escalated after a restart: {report:?}"
    );
    assert_eq!(alerts(&inbox_items(&app, "boss").await).len(), 1);
    let task_now = get_task(&app, &task_id).await;
    assert_eq!(task_now["priority"], "P1");
    assert_eq!(task_now["escalationLevel"], 1);
    assert_eq!(int(&message(&app, &mid).await["escalatedAt"]), escalated_at);
    assert_eq!(activity(&app, "message_escalated").await.len(), 1);
    assert_eq!(activity(&app, "task_escalated").await.len(), 1);
    app.stop().await;
}

async fn without_a_lead_every_other_lead_is_alerted(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (l1, l1_token) = app.register(json!({"name": "l1", "level": "lead"})).await;
    let (l2, _) = app.register(json!({"name": "l2", "level": "lead"})).await;
    let (bob, _) = app.agent("bob").await;
    assert_eq!(bob["leadId"], Value::Null);
    let (_alice, alice_token) = app.agent("alice").await;

    let to_bob = send_as(
        &app,
        "alice",
        &alice_token,
        json!({"toAgentId": "bob", "type": "status_query", "subject": "Status?", "ackWithinMs": MINUTE}),
    )
    .await;
    // A lead without a lead: the others are alerted, never the lead itself.
    let to_l1 = send_as(
        &app,
        "alice",
        &alice_token,
        json!({"toAgentId": "l1", "type": "need_input", "subject": "Decide", "priority": "critical",
            "ackWithinMs": MINUTE}),
    )
    .await;
    assert_eq!(to_l1["priority"], "critical");

    app.clock.advance_ms(MINUTE);
    let report = app.tick().await;
    let escalated: BTreeSet<String> = report.escalated_message_ids.iter().cloned().collect();
    assert_eq!(report.escalated_message_ids.len(), 2, "{report:?}");
    assert_eq!(escalated, BTreeSet::from([id(&to_bob), id(&to_l1)]));

    let default_reason = |m: &Value| {
        format!(
            "message from alice not acknowledged by {}: {}",
            text(&m["toAgentName"]),
            text(&m["subject"])
        )
    };
    let l1_items = inbox_items(&app, "l1").await;
    assert_eq!(alerts(&l1_items).len(), 1, "l1 is alerted about bob only: {l1_items:?}");
    let about_bob = alerts_about(&l1_items, &id(&to_bob));
    assert_eq!(about_bob.len(), 1, "{l1_items:?}");
    assert_alert(&about_bob[0], &to_bob, &bob, &default_reason(&to_bob));
    assert!(
        alerts_about(&l1_items, &id(&to_l1)).is_empty(),
        "l1 alerted about itself"
    );
    assert_eq!(l1_items.len(), 2, "the message to l1 and one alert: {l1_items:?}");

    let l2_items = inbox_items(&app, "l2").await;
    assert_eq!(l2_items.len(), 2, "{l2_items:?}");
    let l2_about_bob = alerts_about(&l2_items, &id(&to_bob));
    assert_eq!(l2_about_bob.len(), 1, "{l2_items:?}");
    assert_alert(&l2_about_bob[0], &to_bob, &bob, &default_reason(&to_bob));
    let l2_about_l1 = alerts_about(&l2_items, &id(&to_l1));
    assert_eq!(l2_about_l1.len(), 1, "{l2_items:?}");
    assert_alert(&l2_about_l1[0], &to_l1, &l1, &default_reason(&to_l1));
    assert_eq!(l2_about_l1[0]["toAgentId"], l2["id"]);

    // Neither bob nor alice gets an alert.
    let bob_items = inbox_items(&app, "bob").await;
    assert_eq!(bob_items.len(), 1, "{bob_items:?}");
    assert_eq!(bob_items[0]["id"], to_bob["id"]);
    assert!(inbox_items(&app, "alice").await.is_empty());

    // An escalated message can still be acknowledged; it keeps its escalation.
    let acked = app
        .call(
            Method::POST,
            &format!("/api/agents/l1/messages/{}/acknowledge", id(&to_l1)),
            Some(&l1_token),
            Some(json!({"actionTaken": "decided"})),
        )
        .await
        .expect(200);
    assert_eq!(
        int(&acked["message"]["escalatedAt"]),
        int(&message(&app, &id(&to_l1)).await["escalatedAt"])
    );
    app.clock.advance_ms(MINUTE);
    assert!(app.tick().await.escalated_message_ids.is_empty());
    assert_eq!(alerts(&inbox_items(&app, "l2").await).len(), 2);
    app.stop().await;
}

async fn a_lone_lead_alerts_nobody(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (solo, _) = app.register(json!({"name": "solo", "level": "lead"})).await;
    let (_alice, alice_token) = app.agent("alice").await;
    let sent = send_as(
        &app,
        "alice",
        &alice_token,
        json!({"toAgentId": "solo", "type": "help_request", "subject": "Anyone?", "ackWithinMs": MINUTE}),
    )
    .await;
    app.clock.advance_ms(MINUTE);
    let report = app.tick().await;
    assert_eq!(report.escalated_message_ids, vec![id(&sent)]);
    assert!(int(&message(&app, &id(&sent)).await["escalatedAt"]) > 0);
    let items = inbox_items(&app, "solo").await;
    assert_eq!(items.len(), 1, "the only lead alerted itself: {items:?}");
    assert_eq!(items[0]["id"], sent["id"]);
    assert_eq!(solo["level"], "lead");
    assert!(inbox_items(&app, "alice").await.is_empty());
    app.stop().await;
}

async fn acknowledged_messages_never_escalate(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    app.register(json!({"name": "boss", "level": "lead"})).await;
    let (bob, bob_token) = app.register(json!({"name": "bob", "leadId": "boss"})).await;
    let (_alice, alice_token) = app.agent("alice").await;
    let mut ids = Vec::new();
    for subject in ["acknowledged", "read only", "untouched"] {
        let body = json!({"toAgentId": "bob", "type": "coordination", "subject": subject, "ackWithinMs": MINUTE});
        ids.push(id(&send_as(&app, "alice", &alice_token, body).await));
    }
    app.clock.advance_ms(30_000);
    app.call(
        Method::POST,
        &format!("/api/agents/bob/messages/{}/acknowledge", ids[0]),
        Some(&bob_token),
        None,
    )
    .await
    .expect(200);
    app.call(
        Method::POST,
        &format!("/api/agents/bob/messages/{}/read", ids[1]),
        Some(&bob_token),
        None,
    )
    .await
    .expect(200);

    app.clock.advance_ms(10 * MINUTE);
    let report = app.tick().await;
    let escalated: BTreeSet<String> = report.escalated_message_ids.iter().cloned().collect();
    assert_eq!(report.escalated_message_ids.len(), 2, "{report:?}");
    assert_eq!(
        escalated,
        BTreeSet::from([ids[1].clone(), ids[2].clone()]),
        "reading is not acknowledging; acknowledging prevents the escalation"
    );
    assert_eq!(message(&app, &ids[0]).await["escalatedAt"], Value::Null);
    let boss_items = inbox_items(&app, "boss").await;
    assert_eq!(boss_items.len(), 2, "{boss_items:?}");
    assert!(alerts_about(&boss_items, &ids[0]).is_empty());
    assert_eq!(alerts_about(&boss_items, &ids[1]).len(), 1);
    assert_eq!(alerts_about(&boss_items, &ids[2]).len(), 1);
    assert_eq!(boss_items[0]["data"]["recipientId"], bob["id"]);

    // Much later, still nothing more.
    app.clock.advance_ms(24 * 60 * MINUTE);
    assert!(app.tick().await.escalated_message_ids.is_empty());
    assert_eq!(message(&app, &ids[0]).await["escalatedAt"], Value::Null);
    assert_eq!(inbox_items(&app, "boss").await.len(), 2);
    assert_eq!(activity(&app, "message_escalated").await.len(), 2);
    app.stop().await;
}

async fn an_absolute_deadline_works_like_a_relative_one(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (boss, _) = app.register(json!({"name": "boss", "level": "lead"})).await;
    let (bob, _) = app.register(json!({"name": "bob", "leadId": "boss"})).await;
    let (_alice, alice_token) = app.agent("alice").await;
    let task = app
        .task(json!({"title": "Release", "priority": "P3", "assigneeId": "bob"}))
        .await;
    let deadline = now(&app) + 2 * MINUTE;
    let sent = send_as(
        &app,
        "alice",
        &alice_token,
        json!({"toAgentId": "bob", "type": "handoff", "subject": "Take over", "taskId": task["id"],
            "ackDeadlineAt": deadline}),
    )
    .await;
    assert_eq!(int(&sent["ackDeadlineAt"]), deadline);
    assert_eq!(sent["escalationAction"], Value::Null);

    app.clock.set_ms(deadline - 1);
    assert!(app.tick().await.escalated_message_ids.is_empty());
    assert_eq!(get_task(&app, &id(&task)).await["priority"], "P3");
    assert!(inbox_items(&app, "boss").await.is_empty());

    app.clock.set_ms(deadline);
    let report = app.tick().await;
    assert_eq!(report.escalated_message_ids, vec![id(&sent)]);
    assert_eq!(int(&message(&app, &id(&sent)).await["escalatedAt"]), deadline);
    let escalated = get_task(&app, &id(&task)).await;
    assert_eq!(escalated["priority"], "P2");
    assert_eq!(escalated["escalationLevel"], 1);
    let boss_items = inbox_items(&app, "boss").await;
    assert_eq!(boss_items.len(), 1, "{boss_items:?}");
    assert_alert(
        &boss_items[0],
        &sent,
        &bob,
        "message from alice not acknowledged by bob: Take over",
    );
    assert_eq!(boss_items[0]["toAgentId"], boss["id"]);
    let rows = activity(&app, "message_escalated").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0]["message"],
        "bob did not acknowledge \"Take over\" from alice in time"
    );
    assert_eq!(int(&rows[0]["after"]["ackDeadlineAt"]), deadline);
    app.stop().await;
}

async fn repeated_escalations_stop_at_p0_but_count_levels(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    app.register(json!({"name": "boss", "level": "lead"})).await;
    app.register(json!({"name": "bob", "leadId": "boss"})).await;
    let (_alice, alice_token) = app.agent("alice").await;
    let task = app
        .task(json!({"title": "Hot fix", "priority": "P2", "assigneeId": "bob"}))
        .await;
    let tid = id(&task);
    let mut sent = Vec::new();
    for (subject, within) in [("first", MINUTE), ("second", 2 * MINUTE), ("third", 3 * MINUTE)] {
        let body = json!({"toAgentId": "bob", "type": "task_update", "subject": subject, "taskId": tid,
            "ackWithinMs": within});
        sent.push(id(&send_as(&app, "alice", &alice_token, body).await));
    }
    for (n, expected) in [(1, "P1"), (2, "P0"), (3, "P0")] {
        app.clock.advance_ms(MINUTE);
        let report = app.tick().await;
        assert_eq!(report.escalated_message_ids, vec![sent[n - 1].clone()], "tick {n}");
        let now_task = get_task(&app, &tid).await;
        assert_eq!(now_task["priority"], expected, "after {n}: {now_task}");
        assert_eq!(int(&now_task["escalationLevel"]), n as i64, "after {n}: {now_task}");
    }
    let rows = activity(&app, "task_escalated").await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    // Newest first: level 3, 2, 1.
    let levels: Vec<i64> = rows.iter().map(|r| int(&r["after"]["escalationLevel"])).collect();
    assert_eq!(levels, vec![3, 2, 1]);
    assert_eq!(rows[2]["before"], json!({"priority": "P2", "escalationLevel": 0}));
    assert_eq!(rows[1]["before"], json!({"priority": "P1", "escalationLevel": 1}));
    assert_eq!(rows[0]["before"], json!({"priority": "P0", "escalationLevel": 2}));
    assert_eq!(rows[0]["after"], json!({"priority": "P0", "escalationLevel": 3}));
    assert_eq!(alerts(&inbox_items(&app, "boss").await).len(), 3);
    app.stop().await;
}

async fn a_finished_task_is_not_escalated_but_the_lead_is_alerted(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    app.register(json!({"name": "boss", "level": "lead"})).await;
    let (bob, _) = app.register(json!({"name": "bob", "leadId": "boss"})).await;
    let (_alice, alice_token) = app.agent("alice").await;
    let task = app
        .task(json!({"title": "Old news", "priority": "P2", "assigneeId": "bob"}))
        .await;
    let tid = id(&task);
    let sent = send_as(
        &app,
        "alice",
        &alice_token,
        json!({"toAgentId": "bob", "type": "task_update", "subject": "Done yet?", "taskId": tid,
            "ackWithinMs": MINUTE, "escalationAction": "ask again"}),
    )
    .await;
    move_to(&app, &tid, "in_progress").await.expect(200);
    app.admin(
        Method::POST,
        &format!("/api/tasks/{tid}/complete"),
        Some(json!({"outcome": "done"})),
    )
    .await
    .expect(200);
    app.clock.advance_ms(MINUTE);
    let report = app.tick().await;
    assert_eq!(report.escalated_message_ids, vec![id(&sent)]);
    let done = get_task(&app, &tid).await;
    assert_eq!(done["status"], "done");
    assert_eq!(done["priority"], "P2", "{done}");
    assert_eq!(done["escalationLevel"], 0, "{done}");
    assert!(activity(&app, "task_escalated").await.is_empty());
    let boss_items = inbox_items(&app, "boss").await;
    assert_eq!(boss_items.len(), 1, "{boss_items:?}");
    assert_alert(&boss_items[0], &sent, &bob, "ask again");
    app.stop().await;
}

/// Messages sent at t0 (unread; acknowledged; read only) and at t0 + 30 min, with a one-hour lifetime.
struct ExpiryScene {
    app: TestApp,
    bob_token: String,
    /// bob: unread, sent at t0.
    m1: String,
    /// bob: acknowledged, sent at t0.
    m1_acked: String,
    /// carol: read, not acknowledged, sent at t0.
    m1_read: String,
    /// bob, sent at t0 + 30 min.
    m2: String,
    /// carol, sent at t0 + 30 min.
    m2_carol: String,
    t0: i64,
}

async fn expiry_scene(backend: Backend) -> Option<ExpiryScene> {
    let app = spawn_app_with(backend, |c| c.messaging.ttl = std::time::Duration::from_secs(3600)).await?;
    let (_, bob_token) = app.agent("bob").await;
    let (_, carol_token) = app.agent("carol").await;
    let (_, alice_token) = app.agent("alice").await;
    let t0 = now(&app);
    let send = |to: &'static str, subject: &'static str| {
        let body = json!({"toAgentId": to, "type": "coordination", "subject": subject, "body": "hello"});
        let (app, token) = (&app, alice_token.as_str());
        async move { id(&send_as(app, "alice", token, body).await) }
    };
    let m1 = send("bob", "m1").await;
    let m1_acked = send("bob", "m1 acked").await;
    let m1_read = send("carol", "m1 read").await;
    let sent = message(&app, &m1).await;
    assert_eq!(int(&sent["expiresAt"]), t0 + 3_600_000, "{sent}");
    app.call(
        Method::POST,
        &format!("/api/agents/bob/messages/{m1_acked}/acknowledge"),
        Some(&bob_token),
        None,
    )
    .await
    .expect(200);
    app.call(
        Method::POST,
        &format!("/api/agents/carol/messages/{m1_read}/read"),
        Some(&carol_token),
        None,
    )
    .await
    .expect(200);
    app.clock.advance_ms(30 * MINUTE);
    let m2 = send("bob", "m2").await;
    let m2_carol = send("carol", "m2 carol").await;
    Some(ExpiryScene {
        app,
        bob_token,
        m1,
        m1_acked,
        m1_read,
        m2,
        m2_carol,
        t0,
    })
}

fn ids_of(items: &[Value]) -> Vec<String> {
    items.iter().map(id).collect()
}

async fn expired_messages_are_swept_once(backend: Backend) {
    let Some(scene) = expiry_scene(backend).await else {
        return;
    };
    let app = &scene.app;
    assert_eq!(
        ids_of(&inbox_items(app, "bob").await),
        vec![scene.m2.clone(), scene.m1_acked.clone(), scene.m1.clone()]
    );
    assert_eq!(
        ids_of(&inbox_items(app, "carol").await),
        vec![scene.m2_carol.clone(), scene.m1_read.clone()]
    );

    // t0 + 59 min: nothing has expired yet.
    app.clock.advance_ms(29 * MINUTE);
    let report = app.tick().await;
    assert_eq!(report.expired_messages, 0);
    assert!(activity(app, "messages_expired").await.is_empty());
    assert_eq!(inbox_items(app, "bob").await.len(), 3);

    // t0 + 61 min: the three messages from t0 go, whatever their state.
    app.clock.advance_ms(2 * MINUTE);
    let report = app.tick().await;
    assert_eq!(report.expired_messages, 3, "{report:?}");
    for gone in [&scene.m1, &scene.m1_acked, &scene.m1_read] {
        app.admin(Method::GET, &format!("/api/messages/{gone}"), None)
            .await
            .expect_error(404, "message_not_found");
    }
    app.call(
        Method::POST,
        &format!("/api/agents/bob/messages/{}/read", scene.m1),
        Some(&scene.bob_token),
        None,
    )
    .await
    .expect_error(404, "message_not_found");
    assert_eq!(ids_of(&inbox_items(app, "bob").await), vec![scene.m2.clone()]);
    assert_eq!(ids_of(&inbox_items(app, "carol").await), vec![scene.m2_carol.clone()]);
    assert_eq!(message(app, &scene.m2).await["subject"], "m2");
    let stats = app
        .admin(Method::GET, "/api/agents/bob/messages/stats", None)
        .await
        .expect(200);
    assert_eq!(stats["total"], 1, "{stats}");
    let rows = activity(app, "messages_expired").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["actorKind"], "system");
    assert_eq!(rows[0]["after"], json!({"deleted": 3}));
    assert_eq!(rows[0]["message"], "3 expired messages deleted from 2 inboxes");
    assert_eq!(int(&rows[0]["createdAt"]), scene.t0 + 61 * MINUTE);

    // Nothing more to sweep: 0 and no new row.
    let report = app.tick().await;
    assert_eq!(report.expired_messages, 0);
    app.clock.advance_ms(28 * MINUTE);
    let report = app.tick().await;
    assert_eq!(report.expired_messages, 0, "t0 + 89 min");
    assert_eq!(activity(app, "messages_expired").await.len(), 1);

    // t0 + 90 min: exactly one hour after m2, it goes too.
    app.clock.advance_ms(MINUTE);
    let report = app.tick().await;
    assert_eq!(report.expired_messages, 2, "{report:?}");
    assert!(inbox_items(app, "bob").await.is_empty());
    assert!(inbox_items(app, "carol").await.is_empty());
    let rows = activity(app, "messages_expired").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["after"], json!({"deleted": 2}));
    // The sent activity rows stay: the audit feed is not swept.
    assert_eq!(activity(app, "message_sent").await.len(), 5);
    scene.app.stop().await;
}

async fn expired_messages_cannot_be_read_before_the_sweep(backend: Backend) {
    let Some(scene) = expiry_scene(backend).await else {
        return;
    };
    let app = &scene.app;
    let bob_token = &scene.bob_token;
    // t0 + 60 min, no tick yet: m1 is past its expiry but not deleted.
    app.clock.advance_ms(30 * MINUTE);
    assert_eq!(
        ids_of(&inbox_items(app, "bob").await),
        vec![scene.m2.clone(), scene.m1_acked.clone(), scene.m1.clone()],
        "until the sweep expired messages still show in listings"
    );
    for action in ["read", "acknowledge"] {
        app.call(
            Method::POST,
            &format!("/api/agents/bob/messages/{}/{action}", scene.m1),
            Some(bob_token),
            None,
        )
        .await
        .expect_error(404, "message_not_found");
    }
    let receipt = app
        .call(
            Method::POST,
            "/api/agents/bob/messages/read",
            Some(bob_token),
            Some(json!({"messageIds": [scene.m1, scene.m2]})),
        )
        .await
        .expect(200);
    assert_eq!(receipt["marked"], 1, "{receipt}");
    assert_eq!(receipt["skipped"], json!([scene.m1]), "{receipt}");
    // The unexpired message is unaffected.
    app.call(
        Method::POST,
        &format!("/api/agents/bob/messages/{}/acknowledge", scene.m2),
        Some(bob_token),
        None,
    )
    .await
    .expect(200);
    let stored = message(app, &scene.m1).await;
    assert_eq!(stored["readAt"], Value::Null, "{stored}");
    assert_eq!(app.tick().await.expired_messages, 3);
    assert_eq!(ids_of(&inbox_items(app, "bob").await), vec![scene.m2.clone()]);
    scene.app.stop().await;
}

async fn a_message_expiring_before_its_deadline_never_escalates(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.messaging.ttl = std::time::Duration::from_secs(3600)).await else {
        return;
    };
    app.register(json!({"name": "boss", "level": "lead"})).await;
    app.register(json!({"name": "bob", "leadId": "boss"})).await;
    let (_alice, alice_token) = app.agent("alice").await;
    let task = app
        .task(json!({"title": "Slow", "priority": "P3", "assigneeId": "bob"}))
        .await;
    let sent = send_as(
        &app,
        "alice",
        &alice_token,
        json!({"toAgentId": "bob", "type": "status_query", "subject": "Later", "taskId": task["id"],
            "ackWithinMs": 2 * 3_600_000}),
    )
    .await;
    app.clock.advance_ms(2 * 3_600_000);
    let report = app.tick().await;
    assert_eq!(
        report.expired_messages, 2,
        "the message and bob's assignment notice: {report:?}"
    );
    assert!(report.escalated_message_ids.is_empty(), "{report:?}");
    app.clock.advance_ms(MINUTE);
    assert!(app.tick().await.escalated_message_ids.is_empty());
    app.admin(Method::GET, &format!("/api/messages/{}", id(&sent)), None)
        .await
        .expect_error(404, "message_not_found");
    assert!(inbox_items(&app, "boss").await.is_empty());
    let task_now = get_task(&app, &id(&task)).await;
    assert_eq!(task_now["priority"], "P3");
    assert_eq!(task_now["escalationLevel"], 0);
    assert!(activity(&app, "message_escalated").await.is_empty());
    app.stop().await;
}

async fn a_deleted_lead_falls_back_to_every_lead(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    app.register(json!({"name": "boss", "level": "lead"})).await;
    let (other, _) = app.register(json!({"name": "other", "level": "lead"})).await;
    let (bob, _) = app.register(json!({"name": "bob", "leadId": "boss"})).await;
    let (_alice, alice_token) = app.agent("alice").await;
    let sent = send_as(
        &app,
        "alice",
        &alice_token,
        json!({"toAgentId": "bob", "type": "help_request", "subject": "Help", "ackWithinMs": MINUTE}),
    )
    .await;
    app.admin(Method::DELETE, "/api/agents/boss", None).await.expect(200);
    let bob_now = app.admin(Method::GET, "/api/agents/bob", None).await.expect(200);
    assert_eq!(bob_now["leadId"], Value::Null, "{bob_now}");
    app.clock.advance_ms(MINUTE);
    assert_eq!(app.tick().await.escalated_message_ids, vec![id(&sent)]);
    let items = inbox_items(&app, "other").await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["toAgentId"], other["id"]);
    assert_alert(
        &items[0],
        &sent,
        &bob,
        "message from alice not acknowledged by bob: Help",
    );
    app.stop().await;
}

async fn a_suspended_lead_falls_back_to_every_other_lead(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    app.register(json!({"name": "boss", "level": "lead"})).await;
    let (other, _) = app.register(json!({"name": "other", "level": "lead"})).await;
    let (bob, _) = app.register(json!({"name": "bob", "leadId": "boss"})).await;
    let (_alice, alice_token) = app.agent("alice").await;
    let sent = send_as(
        &app,
        "alice",
        &alice_token,
        json!({"toAgentId": "bob", "type": "help_request", "subject": "Help", "ackWithinMs": MINUTE}),
    )
    .await;
    app.admin(Method::PATCH, "/api/agents/boss", Some(json!({"status": "suspended"})))
        .await
        .expect(200);
    app.clock.advance_ms(MINUTE);
    assert_eq!(app.tick().await.escalated_message_ids, vec![id(&sent)]);
    assert!(
        inbox_items(&app, "boss").await.is_empty(),
        "a suspended lead receives nothing"
    );
    let items = inbox_items(&app, "other").await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["toAgentId"], other["id"]);
    assert_alert(
        &items[0],
        &sent,
        &bob,
        "message from alice not acknowledged by bob: Help",
    );
    app.stop().await;
}

/// `(unreadCount, unacknowledgedCount)` of bob's and carol's inboxes.
async fn counts(app: &TestApp) -> Vec<(i64, i64)> {
    let mut all = Vec::new();
    for agent in ["bob", "carol"] {
        let page = inbox(app, agent).await;
        all.push((int(&page["unreadCount"]), int(&page["unacknowledgedCount"])));
    }
    all
}

async fn expiry_updates_the_inbox_counts(backend: Backend) {
    let Some(scene) = expiry_scene(backend).await else {
        return;
    };
    let app = scene.app;
    // bob: m1 and m2 unread; carol: m1 read (not acknowledged), m2 unread.
    assert_eq!(counts(&app).await, vec![(2, 2), (1, 2)]);

    app.clock.advance_ms(31 * MINUTE);
    assert_eq!(app.tick().await.expired_messages, 3);
    assert_eq!(inbox_items(&app, "bob").await.len(), 1);
    assert_eq!(inbox_items(&app, "carol").await.len(), 1);
    let live = counts(&app).await;
    let wake = app.admin(Method::POST, "/api/agents/bob/wake", None).await.expect(200);
    let live_wake = int(&wake["unreadCount"]);

    // From the store (after a restart) the counts are right...
    let app = app.restart().await;
    let restarted = counts(&app).await;
    assert_eq!(restarted, vec![(1, 1), (1, 1)]);
    // ...and the live inboxes must have agreed right after the sweep.
    assert_eq!(
        live, restarted,
        "after the sweep the inbox counts still included the deleted messages"
    );
    assert_eq!(live_wake, 1, "wake's unreadCount after the sweep: {wake}");
    app.stop().await;
}

/// Moves `task` (assigned) to in_progress and completes it as done, as the admin.
async fn finish(app: &TestApp, task: &str) {
    move_to(app, task, "in_progress").await.expect(200);
    let done = app
        .admin(
            Method::POST,
            &format!("/api/tasks/{task}/complete"),
            Some(json!({"outcome": "done"})),
        )
        .await
        .expect(200);
    assert_eq!(done["status"], "done");
}

async fn last_blocker_done_notifies_the_assignee(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (bob, _) = app.agent("bob").await;
    app.agent("carol").await;
    let a1 = id(&app.task(json!({"title": "Blocker one", "assigneeId": "carol"})).await);
    let a2 = id(&app.task(json!({"title": "Blocker two", "assigneeId": "carol"})).await);
    let b = id(&app.task(json!({"title": "Waits", "assigneeId": "bob"})).await);
    for blocker in [&a1, &a2] {
        let detail = app
            .admin(
                Method::POST,
                &format!("/api/tasks/{b}/dependencies"),
                Some(json!({"blockedBy": blocker})),
            )
            .await
            .expect(201);
        assert_eq!(detail["status"], "blocked");
    }

    // The first blocker done: B still waits for the second, no notice.
    finish(&app, &a1).await;
    assert_eq!(get_task(&app, &b).await["status"], "blocked");

    finish(&app, &a2).await;
    assert_eq!(get_task(&app, &b).await["status"], "ready");
    let polled = app
        .admin(
            Method::GET,
            "/api/agents/bob/messages?wait=5&type=blocker_resolved",
            None,
        )
        .await
        .expect(200);
    let items = array(&polled["items"]);
    assert_eq!(items.len(), 1, "no blocker_resolved notice within 5 s: {polled}");
    let notice = &items[0];
    assert_eq!(notice["type"], "blocker_resolved");
    assert_eq!(notice["senderKind"], "system");
    assert_eq!(notice["fromAgentId"], Value::Null);
    assert_eq!(notice["toAgentId"], bob["id"]);
    assert_eq!(notice["taskId"], b.as_str());
    assert_eq!(notice["priority"], "high");
    assert_eq!(notice["subject"], "Unblocked: Waits");
    // It names the blocker that finished last.
    assert_eq!(notice["relatedTaskIds"], json!([a2]), "{notice}");
    assert!(text(&notice["body"]).contains("\"Blocker two\""), "{notice}");

    // Exactly one notice (none for the first blocker), and none to the blockers' assignee.
    let bob_items = inbox_items(&app, "bob").await;
    assert_eq!(bob_items.len(), 1, "{bob_items:?}");
    assert_eq!(bob_items[0]["id"], notice["id"]);
    assert!(inbox_items(&app, "carol").await.is_empty());
    let sent: Vec<Value> = activity(&app, "message_sent")
        .await
        .into_iter()
        .filter(|row| !is_assignment_notice_sent(row))
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["actorKind"], "system");
    assert_eq!(sent[0]["taskId"], b.as_str());

    // It survives a restart like any message.
    let app = app.restart().await;
    let after = inbox_items(&app, "bob").await;
    assert_eq!(after, bob_items);
    app.stop().await;
}

on_both_backends!(
    deadline_escalates_message_task_and_lead,
    without_a_lead_every_other_lead_is_alerted,
    a_lone_lead_alerts_nobody,
    acknowledged_messages_never_escalate,
    an_absolute_deadline_works_like_a_relative_one,
    repeated_escalations_stop_at_p0_but_count_levels,
    a_finished_task_is_not_escalated_but_the_lead_is_alerted,
    expired_messages_are_swept_once,
    expired_messages_cannot_be_read_before_the_sweep,
    a_message_expiring_before_its_deadline_never_escalates,
    a_deleted_lead_falls_back_to_every_lead,
    last_blocker_done_notifies_the_assignee,
    expiry_updates_the_inbox_counts,
    a_suspended_lead_falls_back_to_every_other_lead,
);
