//! Messaging delivery: templates and sends from them, the per-sender rate limit, idempotent sends, long
//! polling, the WebSocket stream and the wake-up call.

use crate::common::*;
use crate::on_both_backends;
use awc::error::{WsClientError, WsProtocolError};
use awc::ws;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use mission_control::Clock;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A plain message draft to `to`.
fn draft(to: &str, subject: &str) -> Value {
    json!({"toAgentId": to, "type": "help_request", "subject": subject, "body": "details"})
}

/// Sends `body` as agent `from` (id or name) with its token.
async fn send_as(app: &TestApp, from: &str, token: &str, body: Value) -> Reply {
    app.call(
        Method::POST,
        &format!("/api/agents/{from}/messages"),
        Some(token),
        Some(body),
    )
    .await
}

/// Sends `body` as agent `from` with an `Idempotency-Key`.
async fn send_keyed(app: &TestApp, from: &str, token: &str, key: &str, body: Value) -> Reply {
    let req = app
        .request(Method::POST, &format!("/api/agents/{from}/messages"), Some(token))
        .header("Idempotency-Key", key)
        .json(&body);
    app.send(req).await
}

/// The ids of every message in an agent's inbox (read as the admin), newest first.
async fn inbox_ids(app: &TestApp, agent: &str) -> Vec<String> {
    all_items(app, &format!("/api/agents/{agent}/messages"), 100)
        .await
        .iter()
        .map(id)
        .collect()
}

/// The ids of every message an agent sent (read as the admin), newest first.
async fn sent_ids(app: &TestApp, agent: &str) -> Vec<String> {
    all_items(app, &format!("/api/agents/{agent}/messages/sent"), 100)
        .await
        .iter()
        .map(id)
        .collect()
}

#[track_caller]
fn retry_after(reply: &Reply) -> u64 {
    let value = reply
        .headers
        .get("retry-after")
        .unwrap_or_else(|| panic!("a Retry-After header; headers: {:?}", reply.headers));
    let text = value.to_str().expect("Retry-After is ASCII");
    text.parse()
        .unwrap_or_else(|_| panic!("Retry-After '{text}' is not whole seconds"))
}

fn replayed(reply: &Reply) -> Option<String> {
    reply
        .headers
        .get("idempotent-replayed")
        .map(|v| v.to_str().expect("ASCII header").to_string())
}

fn ws_url(app: &TestApp, agent: &str) -> String {
    format!("{}/api/agents/{agent}/stream", app.base.replacen("http://", "ws://", 1))
}

/// The next text frame as JSON (control frames are skipped). Fails after 10 s so a missing frame does not
/// hang the test.
async fn next_json<S>(socket: &mut S) -> Value
where
    S: Stream<Item = Result<ws::Frame, WsProtocolError>> + Unpin,
{
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame within 10 s")
            .expect("the stream is still open")
            .expect("a valid frame");
        match frame {
            ws::Frame::Text(bytes) => return serde_json::from_slice(&bytes).expect("a JSON text frame"),
            ws::Frame::Ping(_) | ws::Frame::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

async fn send_frame<S>(socket: &mut S, frame: Value)
where
    S: Sink<ws::Message, Error = WsProtocolError> + Unpin,
{
    socket
        .send(ws::Message::Text(frame.to_string().into()))
        .await
        .expect("frame sent");
}

/// The status of a refused WebSocket handshake.
#[track_caller]
fn refused<T>(outcome: Result<T, WsClientError>) -> u16 {
    match outcome {
        Ok(_) => panic!("the handshake should have been refused"),
        Err(WsClientError::InvalidResponseStatus(status)) => status.as_u16(),
        Err(other) => panic!("unexpected handshake error: {other}"),
    }
}

// ---------------------------------------------------------------------------------------------------------
// 1. Templates

async fn seeded_templates_are_listed_to_any_caller(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (_, alice_token) = app.agent("alice").await;
    for token in [ADMIN_TOKEN, alice_token.as_str()] {
        let listed = app
            .call(Method::GET, "/api/message-templates", Some(token), None)
            .await
            .expect(200);
        let names: Vec<String> = array(&listed["items"]).iter().map(|t| text(&t["name"])).collect();
        assert_eq!(names, ["blocker_resolved", "handoff", "help_request"], "{listed}");
        let help = &listed["items"][2];
        assert_eq!(help["type"], "help_request");
        assert_eq!(help["priority"], "high");
        assert_eq!(help["subjectTemplate"], "Help needed: {taskTitle}");
        assert_eq!(help["requiredVars"], json!(["taskTitle", "agentName", "reason"]));
        assert_eq!(help["optionalVars"], json!(["expectedResolution"]));
        assert_eq!(listed["items"][0]["type"], "blocker_resolved");
        assert_eq!(listed["items"][1]["type"], "handoff");
        assert_eq!(listed["items"][1]["priority"], "normal");
    }
    let one = app
        .call(Method::GET, "/api/message-templates/handoff", Some(&alice_token), None)
        .await
        .expect(200);
    assert_eq!(one["requiredVars"], json!(["taskTitle", "fromName", "state"]));
    app.call(Method::GET, "/api/message-templates", None, None)
        .await
        .expect_error(401, "unauthorized");
    app.stop().await;
}

async fn admin_manages_templates(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (_, alice_token) = app.agent("alice").await;
    let draft = json!({
        "name": "deploy_notice",
        "type": "alert",
        "priority": "critical",
        "subjectTemplate": "Deploy {service}",
        "bodyTemplate": "{service} goes out at {time}. {{not a var}}",
        "requiredVars": ["service"],
        "optionalVars": ["time"],
    });
    let created = app
        .admin(Method::POST, "/api/message-templates", Some(draft.clone()))
        .await
        .expect(201);
    assert_eq!(created["name"], "deploy_notice");
    assert_eq!(created["type"], "alert");
    assert_eq!(created["priority"], "critical");
    assert_eq!(created["subjectTemplate"], "Deploy {service}");
    assert_eq!(created["requiredVars"], json!(["service"]));
    assert_eq!(created["optionalVars"], json!(["time"]));
    let listed = app.admin(Method::GET, "/api/message-templates", None).await.expect(200);
    assert_eq!(array(&listed["items"]).len(), 4, "{listed}");

    app.admin(Method::POST, "/api/message-templates", Some(draft.clone()))
        .await
        .expect_error(409, "duplicate_name");
    let mut shouted = draft.clone();
    shouted["name"] = json!("Deploy_Notice");
    app.admin(Method::POST, "/api/message-templates", Some(shouted))
        .await
        .expect_error(409, "duplicate_name");

    let mut other = draft.clone();
    other["name"] = json!("agent_made");
    app.call(Method::POST, "/api/message-templates", Some(&alice_token), Some(other))
        .await
        .expect_error(403, "forbidden");
    app.admin(Method::GET, "/api/message-templates/agent_made", None)
        .await
        .expect_error(404, "template_not_found");

    let undeclared = json!({
        "name": "typo",
        "type": "alert",
        "subjectTemplate": "Deploy {servcie}",
        "requiredVars": ["service"],
    });
    let rejected = app
        .admin(Method::POST, "/api/message-templates", Some(undeclared))
        .await
        .expect_error(400, "validation_failed");
    assert!(rejected.to_string().contains("servcie"), "{rejected}");
    app.admin(Method::GET, "/api/message-templates/typo", None)
        .await
        .expect_error(404, "template_not_found");

    let patched = app
        .admin(
            Method::PATCH,
            "/api/message-templates/deploy_notice",
            Some(json!({"subjectTemplate": "Shipping {service}"})),
        )
        .await
        .expect(200);
    assert_eq!(patched["subjectTemplate"], "Shipping {service}");
    assert_eq!(patched["id"], created["id"]);
    app.admin(
        Method::PATCH,
        "/api/message-templates/deploy_notice",
        Some(json!({"name": "renamed"})),
    )
    .await
    .expect_error(400, "validation_failed");
    app.call(
        Method::PATCH,
        "/api/message-templates/deploy_notice",
        Some(&alice_token),
        Some(json!({"subjectTemplate": "Mine {service}"})),
    )
    .await
    .expect_error(403, "forbidden");
    app.admin(
        Method::PATCH,
        "/api/message-templates/deploy_notice",
        Some(json!({"subjectTemplate": "Shipping {svc}"})),
    )
    .await
    .expect_error(400, "validation_failed");

    // The change is durable.
    let app = app.restart().await;
    let read = app
        .admin(Method::GET, "/api/message-templates/deploy_notice", None)
        .await
        .expect(200);
    assert_eq!(read["subjectTemplate"], "Shipping {service}");
    assert_eq!(read["bodyTemplate"], "{service} goes out at {time}. {{not a var}}");

    app.call(
        Method::DELETE,
        "/api/message-templates/deploy_notice",
        Some(&alice_token),
        None,
    )
    .await
    .expect_error(403, "forbidden");
    let deleted = app
        .admin(Method::DELETE, "/api/message-templates/deploy_notice", None)
        .await
        .expect(200);
    assert_eq!(deleted["name"], "deploy_notice");
    app.admin(Method::GET, "/api/message-templates/deploy_notice", None)
        .await
        .expect_error(404, "template_not_found");
    app.admin(Method::DELETE, "/api/message-templates/deploy_notice", None)
        .await
        .expect_error(404, "template_not_found");
    let listed = app.admin(Method::GET, "/api/message-templates", None).await.expect(200);
    assert_eq!(array(&listed["items"]).len(), 3, "{listed}");
    app.stop().await;
}

async fn sends_from_a_template(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (alice, alice_token) = app.agent("alice").await;
    let (bob, bob_token) = app.agent("bob").await;
    let path = format!("/api/agents/{}/messages/from-template", id(&alice));

    // A missing required variable: 400 naming it, and nothing is sent.
    let missing = app
        .call(
            Method::POST,
            &path,
            Some(&alice_token),
            Some(json!({"template": "help_request", "toAgentId": "bob",
                "vars": {"taskTitle": "Parser", "agentName": "alice"}})),
        )
        .await
        .expect_error(400, "validation_failed");
    let problem = text(&missing["error"]["message"]);
    assert!(problem.contains("reason"), "{missing}");
    let blank = app
        .call(
            Method::POST,
            &path,
            Some(&alice_token),
            Some(json!({"template": "help_request", "toAgentId": "bob",
                "vars": {"taskTitle": "Parser", "agentName": "alice", "reason": "  "}})),
        )
        .await
        .expect_error(400, "validation_failed");
    assert!(text(&blank["error"]["message"]).contains("reason"), "{blank}");
    app.call(
        Method::POST,
        &path,
        Some(&alice_token),
        Some(json!({"template": "help_request", "toAgentId": "bob",
            "vars": {"taskTitle": "Parser", "agentName": "alice", "reason": "r", "mood": "sad"}})),
    )
    .await
    .expect_error(400, "validation_failed");
    app.call(
        Method::POST,
        &path,
        Some(&alice_token),
        Some(json!({"template": "no_such_template", "toAgentId": "bob", "vars": {}})),
    )
    .await
    .expect_error(404, "template_not_found");
    let inbox = app
        .call(Method::GET, "/api/agents/bob/messages", Some(&bob_token), None)
        .await
        .expect(200);
    assert_eq!(array(&inbox["items"]).len(), 0, "{inbox}");
    assert_eq!(inbox["unreadCount"], 0);
    assert!(sent_ids(&app, "alice").await.is_empty());

    // Rendered exactly; type and priority come from the template.
    let sent = app
        .call(
            Method::POST,
            &path,
            Some(&alice_token),
            Some(json!({"template": "help_request", "toAgentId": "bob",
                "vars": {"taskTitle": "Parser", "agentName": "alice", "reason": "stuck on lifetimes"}})),
        )
        .await
        .expect(201);
    assert_eq!(sent["subject"], "Help needed: Parser");
    assert_eq!(
        sent["body"],
        "alice needs help with \"Parser\": stuck on lifetimes\n\nExpected resolution: "
    );
    assert_eq!(sent["type"], "help_request");
    assert_eq!(sent["priority"], "high");
    assert_eq!(sent["toAgentId"], bob["id"]);
    assert_eq!(sent["fromAgentId"], alice["id"]);
    let inbox = app
        .call(Method::GET, "/api/agents/bob/messages", Some(&bob_token), None)
        .await
        .expect(200);
    assert_eq!(array(&inbox["items"]).len(), 1, "{inbox}");
    assert_eq!(inbox["items"][0]["id"], sent["id"]);
    assert_eq!(inbox["items"][0]["body"], sent["body"]);

    // Optional variables, numbers, a priority override and a template named by id.
    let handoff = app
        .admin(Method::GET, "/api/message-templates/handoff", None)
        .await
        .expect(200);
    let sent = app
        .call(
            Method::POST,
            &path,
            Some(&alice_token),
            Some(json!({"template": handoff["id"], "toAgentId": "bob", "priority": "low",
                "vars": {"taskTitle": "Lexer", "fromName": "alice", "state": 42, "nextSteps": "write tests"}})),
        )
        .await
        .expect(201);
    assert_eq!(sent["subject"], "Handoff: Lexer");
    assert_eq!(
        sent["body"],
        "alice is handing \"Lexer\" over to you.\n\nState: 42\nNext steps: write tests"
    );
    assert_eq!(sent["type"], "handoff");
    assert_eq!(sent["priority"], "low");

    // Literal braces in an admin-made template.
    app.admin(
        Method::POST,
        "/api/message-templates",
        Some(
            json!({"name": "braces", "type": "coordination", "subjectTemplate": "{{x}} is {what}",
            "bodyTemplate": "}}{{", "requiredVars": ["what"]}),
        ),
    )
    .await
    .expect(201);
    let sent = app
        .call(
            Method::POST,
            &path,
            Some(&alice_token),
            Some(json!({"template": "braces", "toAgentId": "bob", "vars": {"what": true}})),
        )
        .await
        .expect(201);
    assert_eq!(sent["subject"], "{x} is true");
    assert_eq!(sent["body"], "}{");
    assert_eq!(sent["type"], "coordination");
    assert_eq!(sent["priority"], "normal");
    assert_eq!(inbox_ids(&app, "bob").await.len(), 3);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// 2. Rate limit

async fn the_rate_limit_is_per_sender_and_slides(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (_, alice_token) = app.agent("alice").await;
    let (_, _bob_token) = app.agent("bob").await;
    let (_, carol_token) = app.agent("carol").await;
    for i in 0..10 {
        send_as(&app, "alice", &alice_token, draft("bob", &format!("m{i}")))
            .await
            .expect(201);
    }
    let limited = send_as(&app, "alice", &alice_token, draft("bob", "one too many")).await;
    let wait = retry_after(&limited);
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    // Every send happened at the same (manual) instant: the oldest leaves the window in a full minute.
    assert_eq!(wait, 60);
    limited.expect_error(429, "rate_limited");

    // Another sender is not affected.
    send_as(&app, "carol", &carol_token, draft("bob", "from carol"))
        .await
        .expect(201);

    // Half a minute later the window still holds ten sends.
    app.clock.advance_ms(30_000);
    let limited = send_as(&app, "alice", &alice_token, draft("bob", "still too many")).await;
    assert_eq!(retry_after(&limited), 30);
    limited.expect_error(429, "rate_limited");
    app.clock.advance_ms(29_999);
    let limited = send_as(&app, "alice", &alice_token, draft("bob", "almost")).await;
    assert_eq!(retry_after(&limited), 1);
    limited.expect_error(429, "rate_limited");

    // The 429s stored nothing.
    assert_eq!(sent_ids(&app, "alice").await.len(), 10);
    let inbox = app
        .admin(Method::GET, "/api/agents/bob/messages", None)
        .await
        .expect(200);
    assert_eq!(inbox["unreadCount"], 11);
    assert_eq!(inbox_ids(&app, "bob").await.len(), 11);
    let subjects: Vec<String> = all_items(&app, "/api/agents/bob/messages", 100)
        .await
        .iter()
        .map(|m| text(&m["subject"]))
        .collect();
    assert!(!subjects
        .iter()
        .any(|s| s == "one too many" || s == "still too many" || s == "almost"));

    // A full minute after the burst: allowed again.
    app.clock.advance_ms(1);
    let again = send_as(&app, "alice", &alice_token, draft("bob", "after a minute"))
        .await
        .expect(201);
    assert_eq!(again["subject"], "after a minute");
    assert_eq!(sent_ids(&app, "alice").await.len(), 11);
    app.stop().await;
}

async fn the_rate_is_configurable_and_failed_sends_do_not_count(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.messaging.rate_per_min = 3).await else {
        return;
    };
    let (_, alice_token) = app.agent("alice").await;
    app.agent("bob").await;
    // Sends that fail (unknown task, invalid draft, unknown recipient) do not use up the allowance.
    for _ in 0..4 {
        let mut bad = draft("bob", "about a task");
        bad["taskId"] = json!("no-such-task");
        send_as(&app, "alice", &alice_token, bad)
            .await
            .expect_error(404, "task_not_found");
        send_as(&app, "alice", &alice_token, draft("bob", " "))
            .await
            .expect_error(400, "validation_failed");
        send_as(&app, "alice", &alice_token, draft("nobody", "hi"))
            .await
            .expect_error(404, "agent_not_found");
    }
    for i in 0..3 {
        send_as(&app, "alice", &alice_token, draft("bob", &format!("m{i}")))
            .await
            .expect(201);
    }
    let limited = send_as(&app, "alice", &alice_token, draft("bob", "fourth")).await;
    assert!((1..=60).contains(&retry_after(&limited)));
    limited.expect_error(429, "rate_limited");
    // A send from a template counts against the same window.
    app.call(
        Method::POST,
        "/api/agents/alice/messages/from-template",
        Some(&alice_token),
        Some(json!({"template": "blocker_resolved", "toAgentId": "bob",
            "vars": {"taskTitle": "A", "blockerTitle": "B"}})),
    )
    .await
    .expect_error(429, "rate_limited");
    assert_eq!(inbox_ids(&app, "bob").await.len(), 3);
    app.clock.advance_ms(60_000);
    send_as(&app, "alice", &alice_token, draft("bob", "next minute"))
        .await
        .expect(201);
    app.stop().await;
}

async fn a_concurrent_burst_gets_exactly_the_allowance(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (_, alice_token) = app.agent("alice").await;
    app.agent("bob").await;
    let sends = (0..15).map(|i| send_as(&app, "alice", &alice_token, draft("bob", &format!("burst {i}"))));
    let replies = futures_util::future::join_all(sends).await;
    let created = replies.iter().filter(|r| r.status.as_u16() == 201).count();
    let limited: Vec<&Reply> = replies.iter().filter(|r| r.status.as_u16() == 429).collect();
    assert_eq!(
        created,
        10,
        "statuses: {:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(limited.len(), 5);
    for reply in limited {
        assert_eq!(reply.code(), "rate_limited");
        assert!((1..=60).contains(&retry_after(reply)));
    }
    assert_eq!(inbox_ids(&app, "bob").await.len(), 10);
    assert_eq!(sent_ids(&app, "alice").await.len(), 10);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// 3. Idempotency

async fn idempotency_keys_replay_the_first_send(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (_, alice_token) = app.agent("alice").await;
    let (_, bob_token) = app.agent("bob").await;
    let (_, carol_token) = app.agent("carol").await;
    let body = draft("bob", "Deploy window");

    let first = send_keyed(&app, "alice", &alice_token, "key-1", body.clone()).await;
    assert_eq!(replayed(&first), None, "a first send is not a replay");
    let first = first.expect(201);
    let again = send_keyed(&app, "alice", &alice_token, "key-1", body.clone()).await;
    assert_eq!(replayed(&again).as_deref(), Some("true"));
    let again = again.expect(201);
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["subject"], "Deploy window");
    assert_eq!(again["createdAt"], first["createdAt"]);
    let inbox = app
        .call(Method::GET, "/api/agents/bob/messages", Some(&bob_token), None)
        .await
        .expect(200);
    assert_eq!(array(&inbox["items"]).len(), 1, "{inbox}");
    assert_eq!(inbox["unreadCount"], 1);

    // A different key: a new message.
    let other = send_keyed(&app, "alice", &alice_token, "key-2", body.clone()).await;
    assert_eq!(replayed(&other), None);
    let other = other.expect(201);
    assert_ne!(other["id"], first["id"]);
    // The same key from another sender: its own message.
    let carols = send_keyed(&app, "carol", &carol_token, "key-1", body.clone()).await;
    assert_eq!(replayed(&carols), None);
    let carols = carols.expect(201);
    assert_ne!(carols["id"], first["id"]);
    assert_eq!(carols["fromAgentName"], "carol");
    assert_eq!(inbox_ids(&app, "bob").await.len(), 3);

    // Keys survive a restart.
    let app = app.restart().await;
    let after = send_keyed(&app, "alice", &alice_token, "key-1", body.clone()).await;
    assert_eq!(replayed(&after).as_deref(), Some("true"));
    assert_eq!(after.expect(201)["id"], first["id"]);
    let after = send_keyed(&app, "carol", &carol_token, "key-1", body.clone()).await;
    assert_eq!(after.expect(201)["id"], carols["id"]);
    assert_eq!(inbox_ids(&app, "bob").await.len(), 3);
    assert_eq!(sent_ids(&app, "alice").await.len(), 2);

    // A key is remembered for 24 hours.
    app.clock.advance_ms(24 * 3_600_000 - 1);
    let late = send_keyed(&app, "alice", &alice_token, "key-1", body.clone()).await;
    assert_eq!(late.expect(201)["id"], first["id"]);
    app.clock.advance_ms(1);
    let fresh = send_keyed(&app, "alice", &alice_token, "key-1", body.clone()).await;
    assert_eq!(replayed(&fresh), None);
    assert_ne!(fresh.expect(201)["id"], first["id"]);
    assert_eq!(inbox_ids(&app, "bob").await.len(), 4);

    // A bad key is refused before anything is sent.
    send_keyed(&app, "alice", &alice_token, &"k".repeat(201), body.clone())
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(inbox_ids(&app, "bob").await.len(), 4);
    app.stop().await;
}

async fn concurrent_retries_and_template_sends_are_idempotent(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (_, alice_token) = app.agent("alice").await;
    app.agent("bob").await;
    let body = draft("bob", "Racing");
    let (a, b, c) = tokio::join!(
        send_keyed(&app, "alice", &alice_token, "race", body.clone()),
        send_keyed(&app, "alice", &alice_token, "race", body.clone()),
        send_keyed(&app, "alice", &alice_token, "race", body.clone()),
    );
    let firsts = [&a, &b, &c].iter().filter(|r| replayed(r).is_none()).count();
    assert_eq!(firsts, 1, "exactly one send is not a replay: {a:?} {b:?} {c:?}");
    let (a, b, c) = (a.expect(201), b.expect(201), c.expect(201));
    assert_eq!(a["id"], b["id"]);
    assert_eq!(a["id"], c["id"]);
    assert_eq!(inbox_ids(&app, "bob").await.len(), 1);

    let req = || {
        app.request(
            Method::POST,
            "/api/agents/alice/messages/from-template",
            Some(&alice_token),
        )
        .header("Idempotency-Key", "tpl")
        .json(&json!({"template": "blocker_resolved", "toAgentId": "bob",
            "vars": {"taskTitle": "A", "blockerTitle": "B"}}))
    };
    let first = app.send(req()).await;
    assert_eq!(replayed(&first), None);
    let first = first.expect(201);
    assert_eq!(first["subject"], "Unblocked: A");
    let second = app.send(req()).await;
    assert_eq!(replayed(&second).as_deref(), Some("true"));
    assert_eq!(second.expect(201)["id"], first["id"]);
    assert_eq!(inbox_ids(&app, "bob").await.len(), 2);
    app.stop().await;
}

async fn a_replay_is_not_rate_limited(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.messaging.rate_per_min = 1).await else {
        return;
    };
    let (_, alice_token) = app.agent("alice").await;
    app.agent("bob").await;
    let first = send_keyed(&app, "alice", &alice_token, "once", draft("bob", "only one"))
        .await
        .expect(201);
    let again = send_keyed(&app, "alice", &alice_token, "once", draft("bob", "only one")).await;
    assert_eq!(replayed(&again).as_deref(), Some("true"));
    assert_eq!(again.expect(201)["id"], first["id"]);
    send_keyed(&app, "alice", &alice_token, "twice", draft("bob", "a second"))
        .await
        .expect_error(429, "rate_limited");
    // The key of a refused send is not remembered: it works once the window has room.
    app.clock.advance_ms(60_000);
    let later = send_keyed(&app, "alice", &alice_token, "twice", draft("bob", "a second")).await;
    assert_eq!(replayed(&later), None);
    assert_ne!(later.expect(201)["id"], first["id"]);
    assert_eq!(inbox_ids(&app, "bob").await.len(), 2);
    app.stop().await;
}

async fn a_template_retry_replays_after_the_template_is_deleted(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (_, alice_token) = app.agent("alice").await;
    app.agent("bob").await;
    app.admin(
        Method::POST,
        "/api/message-templates",
        Some(
            json!({"name": "short_lived", "type": "alert", "subjectTemplate": "Heads up {what}",
            "requiredVars": ["what"]}),
        ),
    )
    .await
    .expect(201);
    let req = || {
        app.request(
            Method::POST,
            "/api/agents/alice/messages/from-template",
            Some(&alice_token),
        )
        .header("Idempotency-Key", "retry-me")
        .json(&json!({"template": "short_lived", "toAgentId": "bob", "vars": {"what": "now"}}))
    };
    let first = app.send(req()).await.expect(201);
    app.admin(Method::DELETE, "/api/message-templates/short_lived", None)
        .await
        .expect(200);
    // The client never saw the first answer and retries: the message was sent, so the retry must say so.
    let retry = app.send(req()).await;
    assert_eq!(replayed(&retry).as_deref(), Some("true"), "{:?}", retry.body);
    assert_eq!(retry.expect(201)["id"], first["id"]);
    assert_eq!(inbox_ids(&app, "bob").await.len(), 1);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// 4. Long poll

async fn long_poll_waits_for_a_matching_message(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (_, alice_token) = app.agent("alice").await;
    let (_, bob_token) = app.agent("bob").await;

    // Nothing arrives: an empty page after about the wait.
    let start = Instant::now();
    let empty = app
        .call(Method::GET, "/api/agents/bob/messages?wait=1", Some(&bob_token), None)
        .await
        .expect(200);
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(900), "returned after {waited:?}");
    assert!(waited < Duration::from_secs(5), "returned after {waited:?}");
    assert_eq!(array(&empty["items"]).len(), 0, "{empty}");
    assert_eq!(empty["unreadCount"], 0);

    app.call(Method::GET, "/api/agents/bob/messages?wait=61", Some(&bob_token), None)
        .await
        .expect_error(400, "validation_failed");
    app.call(Method::GET, "/api/agents/bob/messages?wait=1", Some(&alice_token), None)
        .await
        .expect_error(403, "forbidden");

    // Three polls park; alice sends a help_request. The unfiltered and the help_request polls get it, the
    // alert poll keeps waiting until its own timeout.
    let poll = |path: &'static str| {
        let (app, token) = (&app, bob_token.clone());
        async move {
            let start = Instant::now();
            let reply = app.call(Method::GET, path, Some(&token), None).await;
            (reply, start.elapsed())
        }
    };
    let (any, help, alert, sent) = tokio::join!(
        poll("/api/agents/bob/messages?wait=5"),
        poll("/api/agents/bob/messages?wait=5&type=help_request&unread=true"),
        poll("/api/agents/bob/messages?wait=1&type=alert"),
        async {
            // Real time, so the polls are parked on the server before the message arrives.
            actix_rt::time::sleep(Duration::from_millis(300)).await;
            send_as(&app, "alice", &alice_token, draft("bob", "Wake up")).await
        }
    );
    let sent = sent.expect(201);
    for (reply, took) in [any, help] {
        assert!(took < Duration::from_secs(3), "the poll took {took:?}");
        let page = reply.expect(200);
        let items = array(&page["items"]);
        assert_eq!(items.len(), 1, "{page}");
        assert_eq!(items[0]["id"], sent["id"]);
        assert_eq!(items[0]["subject"], "Wake up");
        assert_eq!(page["unreadCount"], 1);
    }
    let (reply, took) = alert;
    assert!(
        took >= Duration::from_millis(900),
        "the alert poll returned after {took:?}"
    );
    let page = reply.expect(200);
    assert_eq!(array(&page["items"]).len(), 0, "{page}");

    // Something already matches: no waiting.
    let start = Instant::now();
    let page = app
        .call(Method::GET, "/api/agents/bob/messages?wait=5", Some(&bob_token), None)
        .await
        .expect(200);
    assert!(start.elapsed() < Duration::from_secs(3), "took {:?}", start.elapsed());
    assert_eq!(array(&page["items"]).len(), 1, "{page}");
    assert_eq!(page["items"][0]["id"], sent["id"]);

    // A message alice receives does not wake bob's poll.
    let (mine, _) = tokio::join!(poll("/api/agents/bob/messages?wait=1&type=alert"), async {
        // Lets the poll park on the server first; the outcome asserted is the same if it has not yet.
        actix_rt::time::sleep(Duration::from_millis(200)).await;
        let mut alert = draft("alice", "Not for bob");
        alert["type"] = json!("alert");
        send_as(&app, "bob", &bob_token, alert).await.expect(201)
    });
    let (reply, took) = mine;
    assert!(took >= Duration::from_millis(900), "returned after {took:?}");
    assert_eq!(array(&reply.expect(200)["items"]).len(), 0);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// 5. WebSocket stream

async fn the_stream_pushes_messages_and_takes_frames(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (alice, alice_token) = app.agent("alice").await;
    let (bob, bob_token) = app.agent("bob").await;
    let earlier = send_as(&app, "alice", &alice_token, draft("bob", "Before the stream"))
        .await
        .expect(201);

    let (response, mut socket) = awc::Client::new()
        .ws(ws_url(&app, "bob"))
        .bearer_auth(&bob_token)
        .connect()
        .await
        .expect("WebSocket handshake");
    assert_eq!(response.status().as_u16(), 101);
    let hello = next_json(&mut socket).await;
    assert_eq!(hello["type"], "hello", "{hello}");
    assert_eq!(hello["agentId"], bob["id"]);
    assert_eq!(hello["agentName"], "bob");
    assert_eq!(hello["unreadCount"], 1);
    assert_eq!(hello["unacknowledgedCount"], 1);

    // A message to bob is pushed.
    let sent = send_as(&app, "alice", &alice_token, draft("bob", "Pushed"))
        .await
        .expect(201);
    let pushed = next_json(&mut socket).await;
    assert_eq!(pushed["type"], "message", "{pushed}");
    assert_eq!(pushed["message"]["id"], sent["id"]);
    assert_eq!(pushed["message"]["subject"], "Pushed");
    assert_eq!(pushed["message"]["fromAgentId"], alice["id"]);

    // Acknowledge over the stream.
    send_frame(
        &mut socket,
        json!({"type": "ack", "messageId": sent["id"], "requestId": "r1", "actionTaken": "looked"}),
    )
    .await;
    let acked = next_json(&mut socket).await;
    assert_eq!(acked["type"], "acknowledged", "{acked}");
    assert_eq!(acked["requestId"], "r1");
    assert_eq!(acked["message"]["id"], sent["id"]);
    assert!(acked["message"]["acknowledgedAt"].is_i64(), "{acked}");
    let stored = app
        .call(
            Method::GET,
            &format!("/api/messages/{}", id(&sent)),
            Some(&bob_token),
            None,
        )
        .await
        .expect(200);
    assert!(stored["acknowledgedAt"].is_i64(), "{stored}");
    assert!(stored["readAt"].is_i64(), "{stored}");
    assert_eq!(stored["actionTaken"], "looked");
    app.call(
        Method::POST,
        &format!("/api/agents/bob/messages/{}/acknowledge", id(&sent)),
        Some(&bob_token),
        None,
    )
    .await
    .expect_error(409, "already_acknowledged");
    // Acknowledging it again over the stream: an error frame with the request id.
    send_frame(
        &mut socket,
        json!({"type": "ack", "messageId": sent["id"], "requestId": "r2"}),
    )
    .await;
    let again = next_json(&mut socket).await;
    assert_eq!(again["type"], "error", "{again}");
    assert_eq!(again["requestId"], "r2");
    assert_eq!(again["code"], "already_acknowledged");

    // Mark the earlier message read over the stream.
    send_frame(
        &mut socket,
        json!({"type": "read", "messageIds": [earlier["id"], "not-a-message"], "requestId": "r3"}),
    )
    .await;
    let read = next_json(&mut socket).await;
    assert_eq!(read["type"], "read", "{read}");
    assert_eq!(read["requestId"], "r3");
    assert_eq!(read["marked"], 1);
    assert_eq!(read["markedIds"], json!([earlier["id"]]));
    assert_eq!(read["skipped"], json!(["not-a-message"]));
    let stored = app
        .call(
            Method::GET,
            &format!("/api/messages/{}", id(&earlier)),
            Some(&bob_token),
            None,
        )
        .await
        .expect(200);
    assert!(stored["readAt"].is_i64(), "{stored}");
    assert!(stored["acknowledgedAt"].is_null(), "{stored}");

    // Bad frames get an error and the connection stays usable.
    send_frame(&mut socket, json!({"type": "bogus", "requestId": "r4"})).await;
    let error = next_json(&mut socket).await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["code"], "validation_failed");
    assert_eq!(error["requestId"], "r4");
    socket
        .send(ws::Message::Text("not json".into()))
        .await
        .expect("frame sent");
    let error = next_json(&mut socket).await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["code"], "invalid_json");
    send_frame(&mut socket, json!({"type": "ack"})).await;
    let error = next_json(&mut socket).await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["code"], "validation_failed");

    // Mail to someone else is not pushed here: the next frame answers the ping.
    send_as(&app, "bob", &bob_token, draft("alice", "From bob"))
        .await
        .expect(201);
    send_frame(&mut socket, json!({"type": "ping", "requestId": "p1"})).await;
    let pong = next_json(&mut socket).await;
    assert_eq!(pong["type"], "pong", "{pong}");
    assert_eq!(pong["requestId"], "p1");

    socket.send(ws::Message::Close(None)).await.expect("close sent");
    drop(socket);
    app.stop().await;
}

async fn the_stream_checks_who_connects(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (_, alice_token) = app.agent("alice").await;
    let (_, bob_token) = app.agent("bob").await;

    let wrong_agent = awc::Client::new()
        .ws(ws_url(&app, "bob"))
        .bearer_auth(&alice_token)
        .connect()
        .await;
    assert_eq!(refused(wrong_agent), 403);
    let anonymous = awc::Client::new().ws(ws_url(&app, "bob")).connect().await;
    assert_eq!(refused(anonymous), 401);
    let bad_token = awc::Client::new()
        .ws(ws_url(&app, "bob"))
        .bearer_auth("not-a-token")
        .connect()
        .await;
    assert_eq!(refused(bad_token), 401);
    let nobody = awc::Client::new()
        .ws(ws_url(&app, "nobody"))
        .bearer_auth(ADMIN_TOKEN)
        .connect()
        .await;
    assert_eq!(refused(nobody), 404);

    // No upgrade: a plain GET is a bad request; without a token it is 401.
    app.call(Method::GET, "/api/agents/bob/stream", Some(&bob_token), None)
        .await
        .expect_error(400, "validation_failed");
    app.call(Method::GET, "/api/agents/bob/stream", None, None)
        .await
        .expect_error(401, "unauthorized");

    // ?token= works for clients that cannot set headers, and the admin may watch any agent's stream.
    let (_, mut by_query) = awc::Client::new()
        .ws(format!("{}?token={}", ws_url(&app, "bob"), encode(&bob_token)))
        .connect()
        .await
        .expect("handshake with ?token=");
    let hello = next_json(&mut by_query).await;
    assert_eq!(hello["type"], "hello", "{hello}");
    assert_eq!(hello["agentName"], "bob");
    let (_, mut admin) = awc::Client::new()
        .ws(ws_url(&app, "bob"))
        .bearer_auth(ADMIN_TOKEN)
        .connect()
        .await
        .expect("admin handshake");
    assert_eq!(next_json(&mut admin).await["type"], "hello");

    // Both open streams get the message.
    let sent = send_as(&app, "alice", &alice_token, draft("bob", "Twice"))
        .await
        .expect(201);
    for socket in [&mut by_query, &mut admin] {
        let pushed = next_json(socket).await;
        assert_eq!(pushed["type"], "message", "{pushed}");
        assert_eq!(pushed["message"]["id"], sent["id"]);
    }
    for mut socket in [by_query, admin] {
        socket.send(ws::Message::Close(None)).await.expect("close sent");
    }
    app.stop().await;
}

async fn replies_reach_streams_and_polls(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (_, alice_token) = app.agent("alice").await;
    let (_, bob_token) = app.agent("bob").await;
    let question = send_as(&app, "alice", &alice_token, draft("bob", "Schema?"))
        .await
        .expect(201);
    let (_, mut socket) = awc::Client::new()
        .ws(ws_url(&app, "alice"))
        .bearer_auth(&alice_token)
        .connect()
        .await
        .expect("handshake");
    let hello = next_json(&mut socket).await;
    assert_eq!(hello["type"], "hello", "{hello}");
    assert_eq!(hello["unreadCount"], 0);

    // Alice's long poll and her stream both get bob's reply, sent by acknowledging with a response.
    let (polled, acked) = tokio::join!(
        app.call(
            Method::GET,
            "/api/agents/alice/messages?wait=5&type=coordination",
            Some(&alice_token),
            None
        ),
        async {
            // Lets the poll park on the server first; the outcome asserted is the same if it has not yet.
            actix_rt::time::sleep(Duration::from_millis(300)).await;
            app.call(
                Method::POST,
                &format!("/api/agents/bob/messages/{}/acknowledge", id(&question)),
                Some(&bob_token),
                Some(json!({"response": "v2"})),
            )
            .await
        }
    );
    let reply = acked.expect(200)["reply"].clone();
    assert_eq!(reply["subject"], "RE: Schema?");
    let page = polled.expect(200);
    let items = array(&page["items"]);
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["id"], reply["id"]);
    assert_eq!(items[0]["replyToId"], question["id"]);
    let pushed = next_json(&mut socket).await;
    assert_eq!(pushed["type"], "message", "{pushed}");
    assert_eq!(pushed["message"]["id"], reply["id"]);
    assert_eq!(pushed["message"]["body"], "v2");
    socket.send(ws::Message::Close(None)).await.expect("close sent");
    app.stop().await;
}

async fn deleting_the_agent_closes_its_stream(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (_, bob_token) = app.agent("bob").await;
    let (_, mut socket) = awc::Client::new()
        .ws(ws_url(&app, "bob"))
        .bearer_auth(&bob_token)
        .connect()
        .await
        .expect("handshake");
    assert_eq!(next_json(&mut socket).await["type"], "hello");
    app.admin(Method::DELETE, "/api/agents/bob", None).await.expect(200);
    let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("a frame within 10 s")
        .expect("a close frame before the end")
        .expect("a valid frame");
    match frame {
        ws::Frame::Close(Some(reason)) => assert_eq!(reason.code, ws::CloseCode::Away),
        other => panic!("expected a close frame, got {other:?}"),
    }
    app.stop().await;
}

async fn a_parked_poll_ends_cleanly_when_the_agent_is_deleted(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (_, bob_token) = app.agent("bob").await;
    let (polled, deleted) = tokio::join!(
        app.call(Method::GET, "/api/agents/bob/messages?wait=5", Some(&bob_token), None),
        async {
            // Lets the poll park on the server first; the outcome asserted is the same if it has not yet.
            actix_rt::time::sleep(Duration::from_millis(300)).await;
            app.admin(Method::DELETE, "/api/agents/bob", None).await
        }
    );
    deleted.expect(200);
    // Asked again, the same request is a 404: the parked one should end the same way, not with a 503
    // telling the client the runtime is overloaded.
    polled.expect_error(404, "agent_not_found");
    app.admin(Method::GET, "/api/agents/bob/messages?wait=1", None)
        .await
        .expect_error(404, "agent_not_found");
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// 6. Wake

async fn wake_returns_the_agents_mail_and_work(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.messaging.rate_per_min = 0).await else {
        return;
    };
    let (alice, alice_token) = app.agent("alice").await;
    let (bob, bob_token) = app.agent("bob").await;
    assert_eq!(bob["status"], "idle");

    // Another agent may not wake bob, and its attempt records nothing.
    app.call(Method::POST, "/api/agents/bob/wake", Some(&alice_token), None)
        .await
        .expect_error(403, "forbidden");
    let profile = app.admin(Method::GET, "/api/agents/bob", None).await.expect(200);
    assert!(profile["lastHeartbeatAt"].is_null(), "{profile}");
    assert_eq!(profile["status"], "idle");

    // Nothing yet.
    let woken = app
        .call(Method::POST, "/api/agents/bob/wake", Some(&bob_token), None)
        .await
        .expect(200);
    assert_eq!(woken["agent"]["status"], "active");
    assert_eq!(woken["agent"]["lastHeartbeatAt"], json!(app.clock.now_ms()));
    assert_eq!(array(&woken["messages"]).len(), 0);
    assert_eq!(woken["unreadCount"], 0);
    assert_eq!(woken["unacknowledgedCount"], 0);
    assert_eq!(array(&woken["inProgress"]).len(), 0);
    assert_eq!(array(&woken["ready"]).len(), 0);

    // Work: two ready tasks for bob, one moved to in_progress; others that must not show.
    let started = app
        .task(json!({"title": "Started", "assigneeId": "bob", "status": "ready"}))
        .await;
    let waiting = app
        .task(json!({"title": "Waiting", "assigneeId": "bob", "status": "ready"}))
        .await;
    let backlog = app
        .task(json!({"title": "Someday", "assigneeId": "bob", "status": "backlog"}))
        .await;
    let hers = app
        .task(json!({"title": "Hers", "assigneeId": "alice", "status": "ready"}))
        .await;
    let unassigned = app.task(json!({"title": "Nobody's", "status": "ready"})).await;
    app.acknowledge_assignment_notices("bob", &bob_token).await;
    // The premise: these are bob's backlog, alice's ready work and an unassigned ready task.
    assert_eq!(started["assigneeId"], bob["id"]);
    assert_eq!(
        (&backlog["status"], &backlog["assigneeId"]),
        (&json!("backlog"), &bob["id"])
    );
    assert_eq!((&hers["status"], &hers["assigneeId"]), (&json!("ready"), &alice["id"]));
    assert_eq!(
        (&unassigned["status"], &unassigned["assigneeId"]),
        (&json!("ready"), &Value::Null)
    );
    app.call(
        Method::POST,
        &format!("/api/tasks/{}/transition", id(&started)),
        Some(&bob_token),
        Some(json!({"to": "in_progress"})),
    )
    .await
    .expect(200);

    // Mail: twelve messages, three of each priority, sent in turn.
    let priorities = ["low", "normal", "high", "critical"];
    let mut sent: Vec<(String, usize)> = Vec::new();
    for i in 0..12 {
        let urgency = i % 4;
        let mut body = draft("bob", &format!("m{i}"));
        body["priority"] = json!(priorities[urgency]);
        let message = send_as(&app, "alice", &alice_token, body).await.expect(201);
        assert_eq!(message["priority"], priorities[urgency]);
        sent.push((id(&message), urgency));
    }
    // A message bob sent is not in his wake-up; nor is one he already read.
    send_as(&app, "bob", &bob_token, draft("alice", "outgoing"))
        .await
        .expect(201);
    let read_one = sent
        .iter()
        .rposition(|(_, urgency)| *urgency == 3)
        .expect("a critical message");
    let (read_id, _) = sent.remove(read_one);
    app.call(
        Method::POST,
        &format!("/api/agents/bob/messages/{read_id}/read"),
        Some(&bob_token),
        None,
    )
    .await
    .expect(200);

    app.clock.advance_ms(5_000);
    let woken = app
        .call(Method::POST, "/api/agents/bob/wake", Some(&bob_token), None)
        .await
        .expect(200);
    assert_eq!(woken["agent"]["id"], bob["id"]);
    assert_eq!(woken["agent"]["status"], "active");
    assert_eq!(woken["agent"]["lastHeartbeatAt"], json!(app.clock.now_ms()));
    assert_eq!(woken["unreadCount"], 11);
    assert_eq!(woken["unacknowledgedCount"], 12);
    let mut expected = sent.clone();
    expected.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    let expected: Vec<String> = expected.into_iter().take(10).map(|(id, _)| id).collect();
    let got: Vec<String> = array(&woken["messages"]).iter().map(id).collect();
    assert_eq!(got, expected, "most urgent first, then newest; at most 10");
    let got_priorities: Vec<String> = array(&woken["messages"]).iter().map(|m| text(&m["priority"])).collect();
    assert_eq!(
        got_priorities,
        ["critical", "critical", "high", "high", "high", "normal", "normal", "normal", "low", "low"]
    );
    for message in array(&woken["messages"]) {
        assert!(message["readAt"].is_null(), "{message}");
        assert_eq!(message["fromAgentId"], alice["id"]);
    }

    let in_progress: Vec<String> = array(&woken["inProgress"]).iter().map(id).collect();
    assert_eq!(in_progress, [id(&started)]);
    assert_eq!(woken["inProgress"][0]["status"], "in_progress");
    let ready: Vec<String> = array(&woken["ready"]).iter().map(id).collect();
    assert_eq!(ready, [id(&waiting)]);

    // Waking does not read the messages.
    let again = app
        .call(Method::POST, "/api/agents/bob/wake", Some(&bob_token), None)
        .await
        .expect(200);
    assert_eq!(again["unreadCount"], 11);
    let again_ids: Vec<String> = array(&again["messages"]).iter().map(id).collect();
    assert_eq!(again_ids, got);
    app.call(Method::POST, "/api/agents/bob/wake", Some(&alice_token), None)
        .await
        .expect_error(403, "forbidden");

    // The admin may wake bob; a suspended agent may not wake.
    let by_admin = app.admin(Method::POST, "/api/agents/bob/wake", None).await.expect(200);
    assert_eq!(by_admin["unreadCount"], 11);
    app.admin(Method::PATCH, "/api/agents/bob", Some(json!({"status": "suspended"})))
        .await
        .expect(200);
    app.call(Method::POST, "/api/agents/bob/wake", Some(&bob_token), None)
        .await
        .expect_error(403, "agent_suspended");
    app.stop().await;
}

on_both_backends!(
    seeded_templates_are_listed_to_any_caller,
    admin_manages_templates,
    sends_from_a_template,
    the_rate_limit_is_per_sender_and_slides,
    the_rate_is_configurable_and_failed_sends_do_not_count,
    a_concurrent_burst_gets_exactly_the_allowance,
    idempotency_keys_replay_the_first_send,
    concurrent_retries_and_template_sends_are_idempotent,
    a_replay_is_not_rate_limited,
    long_poll_waits_for_a_matching_message,
    the_stream_pushes_messages_and_takes_frames,
    the_stream_checks_who_connects,
    replies_reach_streams_and_polls,
    deleting_the_agent_closes_its_stream,
    wake_returns_the_agents_mail_and_work,
    a_template_retry_replays_after_the_template_is_deleted,
    a_parked_poll_ends_cleanly_when_the_agent_is_deleted,
);
