//! Agent-to-agent messaging over HTTP, black-box: exchanges and replies, every inbox filter, cursors, the
//! open counts, batch reads, acknowledgements, search, statistics, the activity feed, and refused input
//! that stores nothing.

use crate::common::*;
use crate::on_both_backends;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashSet;

/// A minimal valid message body.
fn draft(to: &str, kind: &str, subject: &str) -> Value {
    json!({ "toAgentId": to, "type": kind, "subject": subject })
}

/// `draft` plus extra fields.
fn draft_with(to: &str, kind: &str, subject: &str, extra: Value) -> Value {
    let mut body = draft(to, kind, subject);
    let (Some(fields), Some(more)) = (body.as_object_mut(), extra.as_object()) else {
        panic!("draft_with takes an object, got {extra}");
    };
    for (key, value) in more {
        fields.insert(key.clone(), value.clone());
    }
    body
}

/// Sends `body` as agent `from` (id or name) with `token`.
async fn send_as(app: &TestApp, from: &str, token: Option<&str>, body: Value) -> Reply {
    app.call(Method::POST, &format!("/api/agents/{from}/messages"), token, Some(body))
        .await
}

/// Sends and expects 201; returns the stored message.
async fn sent(app: &TestApp, from: &str, token: &str, body: Value) -> Value {
    send_as(app, from, Some(token), body).await.expect(201)
}

/// A GET with `token`, expecting 200.
async fn get_ok(app: &TestApp, path: &str, token: &str) -> Value {
    app.call(Method::GET, path, Some(token), None).await.expect(200)
}

/// The inbox of `agent` with a query string (`""` or `"?..."`), read with `token`.
async fn inbox(app: &TestApp, agent: &str, token: &str, query: &str) -> Value {
    get_ok(app, &format!("/api/agents/{agent}/messages{query}"), token).await
}

/// The ids of a page's items, in order.
fn item_ids(page: &Value) -> Vec<String> {
    array(&page["items"]).iter().map(id).collect()
}

fn ids(messages: &[&Value]) -> Vec<String> {
    messages.iter().map(|m| id(m)).collect()
}

async fn acknowledge(app: &TestApp, agent: &str, message: &str, token: &str, body: Option<Value>) -> Reply {
    app.call(
        Method::POST,
        &format!("/api/agents/{agent}/messages/{message}/acknowledge"),
        Some(token),
        body,
    )
    .await
}

async fn read_one(app: &TestApp, agent: &str, message: &str, token: &str) -> Reply {
    app.call(
        Method::POST,
        &format!("/api/agents/{agent}/messages/{message}/read"),
        Some(token),
        None,
    )
    .await
}

/// The admin's view of one activity kind, newest first.
async fn activity_of_kind(app: &TestApp, kind: &str, agent_id: Option<&str>) -> Vec<Value> {
    let path = match agent_id {
        Some(agent) => format!("/api/activity?kind={kind}&agentId={agent}&limit=100"),
        None => format!("/api/activity?kind={kind}&limit=100"),
    };
    array(&app.admin(Method::GET, &path, None).await.expect(200)["items"])
}

async fn two_agents_exchange_messages_and_replies(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (alice, alice_token) = app.agent("alice").await;
    let (bob, bob_token) = app.agent("bob").await;
    let (_, carol_token) = app.agent("carol").await;
    let (alice_id, bob_id) = (id(&alice), id(&bob));

    // Alice writes to Bob by name, through her id in the path; Bob writes to Alice by id, through his name.
    let m1 = sent(
        &app,
        &alice_id,
        &alice_token,
        draft_with(
            "bob",
            "help_request",
            "Parser",
            json!({"body": "stuck on lexing", "priority": "high"}),
        ),
    )
    .await;
    assert_eq!(m1["fromAgentId"], json!(alice_id));
    assert_eq!(m1["fromAgentName"], "alice");
    assert_eq!(m1["toAgentId"], json!(bob_id));
    assert_eq!(m1["toAgentName"], "bob");
    assert_eq!(m1["senderKind"], "agent");
    assert_eq!(m1["type"], "help_request");
    assert_eq!(m1["priority"], "high");
    assert_eq!(m1["body"], "stuck on lexing");
    assert_eq!(m1["readAt"], Value::Null);
    assert_eq!(m1["acknowledgedAt"], Value::Null);
    assert_eq!(m1["replyToId"], Value::Null);
    app.clock.advance_ms(5);
    let m2 = sent(&app, "bob", &bob_token, draft(&alice_id, "status_query", "Status?")).await;
    assert_eq!(m2["priority"], "normal", "the default priority");
    assert_eq!(m2["body"], "", "the default body");
    assert_eq!(m2["fromAgentId"], json!(bob_id));
    assert_eq!(m2["toAgentId"], json!(alice_id));

    // Bob answers Alice's message; Alice answers Bob's.
    app.clock.advance_ms(5);
    let acked1 = acknowledge(
        &app,
        "bob",
        &id(&m1),
        &bob_token,
        Some(json!({"response": "try the other lexer"})),
    )
    .await
    .expect(200);
    let r1 = acked1["reply"].clone();
    assert_eq!(acked1["message"]["id"], m1["id"]);
    assert_eq!(r1["type"], "coordination");
    assert_eq!(r1["subject"], "RE: Parser");
    assert_eq!(r1["body"], "try the other lexer");
    assert_eq!(r1["replyToId"], m1["id"]);
    assert_eq!(r1["fromAgentId"], json!(bob_id));
    assert_eq!(r1["toAgentId"], json!(alice_id));
    app.clock.advance_ms(5);
    let acked2 = acknowledge(
        &app,
        "alice",
        &id(&m2),
        &alice_token,
        Some(json!({"response": "green"})),
    )
    .await
    .expect(200);
    let r2 = acked2["reply"].clone();
    assert_eq!(r2["subject"], "RE: Status?");
    assert_eq!(r2["replyToId"], m2["id"]);
    assert_eq!(r2["fromAgentId"], json!(alice_id));
    assert_eq!(r2["toAgentId"], json!(bob_id));

    // Sent lists and inboxes, newest first, each as the owner sees it.
    let alice_sent = get_ok(&app, "/api/agents/alice/messages/sent", &alice_token).await;
    assert_eq!(item_ids(&alice_sent), ids(&[&r2, &m1]));
    assert_eq!(alice_sent["nextCursor"], Value::Null);
    let bob_sent = get_ok(&app, &format!("/api/agents/{bob_id}/messages/sent"), &bob_token).await;
    assert_eq!(item_ids(&bob_sent), ids(&[&r1, &m2]));
    let alice_inbox = inbox(&app, "alice", &alice_token, "").await;
    assert_eq!(item_ids(&alice_inbox), ids(&[&r1, &m2]));
    assert_eq!(alice_inbox["items"][0]["replyToId"], m1["id"]);
    assert_eq!(
        alice_inbox["unreadCount"], 1,
        "the reply is unread; m2 was acknowledged"
    );
    let bob_inbox = inbox(&app, "bob", &bob_token, "").await;
    assert_eq!(item_ids(&bob_inbox), ids(&[&r2, &m1]));
    assert_eq!(bob_inbox["items"][0]["replyToId"], m2["id"]);

    // A reply to a reply does not stack "RE: " prefixes.
    app.clock.advance_ms(5);
    let r3 = acknowledge(
        &app,
        "alice",
        &id(&r1),
        &alice_token,
        Some(json!({"response": "thanks"})),
    )
    .await
    .expect(200)["reply"]
        .clone();
    assert_eq!(r3["subject"], "RE: Parser");
    assert_eq!(r3["replyToId"], r1["id"]);
    assert_eq!(
        item_ids(&inbox(&app, "bob", &bob_token, "").await),
        ids(&[&r3, &r2, &m1])
    );

    // One message by id: sender, recipient and admin see the same stored message; a third agent may not.
    let as_sender = get_ok(&app, &format!("/api/messages/{}", id(&m1)), &alice_token).await;
    let as_recipient = get_ok(&app, &format!("/api/messages/{}", id(&m1)), &bob_token).await;
    let as_admin = get_ok(&app, &format!("/api/messages/{}", id(&m1)), ADMIN_TOKEN).await;
    assert_eq!(as_sender, as_recipient);
    assert_eq!(as_sender, as_admin);
    assert_eq!(as_sender["id"], m1["id"]);
    assert_eq!(as_sender["subject"], "Parser");
    assert!(as_sender["acknowledgedAt"].is_i64(), "{as_sender}");
    assert!(as_sender["readAt"].is_i64(), "acknowledging also reads: {as_sender}");
    app.call(
        Method::GET,
        &format!("/api/messages/{}", id(&m1)),
        Some(&carol_token),
        None,
    )
    .await
    .expect_error(403, "forbidden");
    app.call(
        Method::GET,
        &format!("/api/messages/{}", id(&r1)),
        Some(&carol_token),
        None,
    )
    .await
    .expect_error(403, "forbidden");
    app.call(Method::GET, "/api/messages/no-such-message", Some(ADMIN_TOKEN), None)
        .await
        .expect_error(404, "message_not_found");
    app.call(Method::GET, &format!("/api/messages/{}", id(&m1)), None, None)
        .await
        .expect_error(401, "unauthorized");
    app.stop().await;
}

async fn every_inbox_filter_narrows_the_list(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (alice, alice_token) = app.agent("alice").await;
    let (_, bob_token) = app.agent("bob").await;
    let (carol, carol_token) = app.agent("carol").await;
    let task = app.task(json!({"title": "Ship the parser"})).await;
    let other_task = app.task(json!({"title": "Something else"})).await;
    let task_id = id(&task);

    let a1 = sent(
        &app,
        "alice",
        &alice_token,
        draft_with(
            "bob",
            "help_request",
            "a1",
            json!({"priority": "high", "taskId": task_id}),
        ),
    )
    .await;
    assert_eq!(a1["taskId"], json!(task_id));
    app.clock.advance_ms(1000);
    let a2 = sent(
        &app,
        "alice",
        &alice_token,
        draft_with(
            "bob",
            "alert",
            "a2",
            json!({"priority": "low", "taskId": id(&other_task)}),
        ),
    )
    .await;
    app.clock.advance_ms(1000);
    let c1 = sent(
        &app,
        "carol",
        &carol_token,
        draft_with("bob", "task_update", "c1", json!({"taskId": task_id})),
    )
    .await;
    app.clock.advance_ms(10);
    let c2 = sent(
        &app,
        "carol",
        &carol_token,
        draft_with("BOB", "alert", "c2", json!({"priority": "critical"})),
    )
    .await;
    // Noise in another inbox, which no filter on Bob's inbox may return.
    sent(
        &app,
        "carol",
        &carol_token,
        draft_with("alice", "alert", "elsewhere", json!({"taskId": task_id})),
    )
    .await;

    // a2 read only; a1 acknowledged (which also reads it).
    read_one(&app, "bob", &id(&a2), &bob_token).await.expect(200);
    acknowledge(&app, "bob", &id(&a1), &bob_token, None).await.expect(200);

    let c1_at = int(&c1["createdAt"]);
    assert_eq!(
        c1_at - int(&a1["createdAt"]),
        2000,
        "createdAt follows the manual clock"
    );
    let cases: Vec<(String, Vec<&Value>)> = vec![
        (String::new(), vec![&c2, &c1, &a2, &a1]),
        ("unread=true".into(), vec![&c2, &c1]),
        ("unread=false".into(), vec![&a2, &a1]),
        ("unacknowledged=true".into(), vec![&c2, &c1, &a2]),
        ("unacknowledged=false".into(), vec![&a1]),
        ("type=alert".into(), vec![&c2, &a2]),
        ("type=task_update".into(), vec![&c1]),
        ("type=handoff".into(), vec![]),
        ("priority=critical".into(), vec![&c2]),
        ("priority=high".into(), vec![&a1]),
        ("priority=normal".into(), vec![&c1]),
        ("priority=low".into(), vec![&a2]),
        (format!("taskId={task_id}"), vec![&c1, &a1]),
        ("taskId=no-such-task".into(), vec![]),
        (format!("fromAgentId={}", id(&alice)), vec![&a2, &a1]),
        (format!("fromAgentId={}", id(&carol)), vec![&c2, &c1]),
        ("fromAgentId=carol".into(), vec![&c2, &c1]),
        ("fromAgentId=CAROL".into(), vec![&c2, &c1]),
        ("fromAgentId=alice".into(), vec![&a2, &a1]),
        ("fromAgentId=nobody".into(), vec![]),
        (format!("since={c1_at}"), vec![&c2, &c1]),
        (format!("since={}", c1_at + 1), vec![&c2]),
        (format!("since={}", int(&a1["createdAt"])), vec![&c2, &c1, &a2, &a1]),
        (format!("since={}", int(&c2["createdAt"]) + 1), vec![]),
        ("unread=true&type=alert&fromAgentId=carol".into(), vec![&c2]),
        ("unacknowledged=true&unread=false".into(), vec![&a2]),
    ];
    for (query, expected) in cases {
        let path = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        let page = inbox(&app, "bob", &bob_token, &path).await;
        assert_eq!(item_ids(&page), ids(&expected), "inbox filter `{query}`: {page}");
        assert_eq!(page["nextCursor"], Value::Null, "inbox filter `{query}`");
        // The counts describe the whole inbox, whatever the filter.
        assert_eq!(page["unreadCount"], 2, "inbox filter `{query}`");
        assert_eq!(page["unacknowledgedCount"], 3, "inbox filter `{query}`");
        // The admin sees the same.
        let as_admin = inbox(&app, "bob", ADMIN_TOKEN, &path).await;
        assert_eq!(item_ids(&as_admin), ids(&expected), "admin, inbox filter `{query}`");
    }

    // Filter values the API does not know are refused, naming the parameter or the value at fault.
    for (query, named) in [
        ("type=gossip", "gossip"),
        ("priority=urgent", "urgent"),
        ("unread=maybe", "query"),
        ("since=yesterday", "query"),
        ("limit=0", "limit"),
        ("bogus=1", "bogus"),
    ] {
        let reply = app
            .call(
                Method::GET,
                &format!("/api/agents/bob/messages?{query}"),
                Some(&bob_token),
                None,
            )
            .await;
        let body = reply.expect_error(400, "validation_failed");
        assert!(text(&body["error"]["message"]).contains(named), "`{query}`: {body}");
    }
    app.stop().await;
}

async fn inbox_and_sent_pages_follow_cursors_newest_first(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (_, alice_token) = app.agent("alice").await;
    let (_, bob_token) = app.agent("bob").await;
    let mut sent_ids = Vec::new();
    for n in 1..=5 {
        let message = sent(
            &app,
            "alice",
            &alice_token,
            draft("bob", "task_update", &format!("update {n}")),
        )
        .await;
        sent_ids.push(id(&message));
        app.clock.advance_ms(1);
    }
    let newest_first: Vec<String> = sent_ids.iter().rev().cloned().collect();

    for (path, token) in [
        ("/api/agents/bob/messages", bob_token.as_str()),
        ("/api/agents/alice/messages/sent", alice_token.as_str()),
    ] {
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = get_ok(&app, &page_url(path, 2, cursor.as_deref()), token).await;
            let batch = item_ids(&page);
            sizes.push(batch.len());
            seen.extend(batch);
            match page["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
            assert!(sizes.len() <= 5, "{path}: pagination does not end");
        }
        assert_eq!(sizes, vec![2, 2, 1], "{path}: page sizes");
        assert_eq!(seen, newest_first, "{path}: every message once, newest first");
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), 5, "{path}: no duplicates");
        // The admin walks the same list.
        let all = all_items(&app, path, 2).await;
        assert_eq!(all.iter().map(id).collect::<Vec<_>>(), newest_first, "{path}: as admin");
    }

    // A filter and a cursor together.
    let first = inbox(&app, "bob", &bob_token, "?unread=true&limit=3").await;
    assert_eq!(item_ids(&first), newest_first[..3].to_vec());
    let cursor = text(&first["nextCursor"]);
    let rest = inbox(
        &app,
        "bob",
        &bob_token,
        &format!("?unread=true&limit=3&cursor={}", encode(&cursor)),
    )
    .await;
    assert_eq!(item_ids(&rest), newest_first[3..].to_vec());
    assert_eq!(rest["nextCursor"], Value::Null);
    app.stop().await;
}

async fn open_counts_follow_reads_and_acknowledgements(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (_, alice_token) = app.agent("alice").await;
    let (_, bob_token) = app.agent("bob").await;
    let empty = inbox(&app, "bob", &bob_token, "").await;
    assert_eq!(
        (empty["unreadCount"].clone(), empty["unacknowledgedCount"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(empty["items"], json!([]));

    let m1 = sent(&app, "alice", &alice_token, draft("bob", "handoff", "one")).await;
    let m2 = sent(&app, "alice", &alice_token, draft("bob", "need_input", "two")).await;
    let m3 = sent(&app, "alice", &alice_token, draft("bob", "coordination", "three")).await;

    async fn counts(app: &TestApp, token: &str) -> (i64, i64) {
        let page = inbox(app, "bob", token, "").await;
        (int(&page["unreadCount"]), int(&page["unacknowledgedCount"]))
    }
    async fn stats_counts(app: &TestApp, token: &str) -> (i64, i64) {
        let stats = get_ok(app, "/api/agents/bob/messages/stats", token).await;
        (int(&stats["unread"]), int(&stats["unacknowledged"]))
    }
    assert_eq!(counts(&app, &bob_token).await, (3, 3));

    app.clock.advance_ms(100);
    let read = read_one(&app, "bob", &id(&m1), &bob_token).await.expect(200);
    assert_eq!(read["id"], m1["id"]);
    let read_at = int(&read["readAt"]);
    assert_eq!(read_at, int(&m1["createdAt"]) + 100, "readAt is the clock's time");
    assert_eq!(read["acknowledgedAt"], Value::Null);
    assert_eq!(counts(&app, &bob_token).await, (2, 3));
    assert_eq!(stats_counts(&app, &bob_token).await, (2, 3));

    // Reading again changes nothing.
    app.clock.advance_ms(100);
    let again = read_one(&app, "bob", &id(&m1), &bob_token).await.expect(200);
    assert_eq!(again, read, "a second read returns the message unchanged");
    assert_eq!(counts(&app, &bob_token).await, (2, 3));

    // Acknowledging an unread message reads it too.
    let acked = acknowledge(&app, "bob", &id(&m2), &bob_token, None).await.expect(200);
    assert_eq!(acked["reply"], Value::Null);
    assert!(acked["message"]["readAt"].is_i64(), "{acked}");
    assert_eq!(acked["message"]["readAt"], acked["message"]["acknowledgedAt"]);
    assert_eq!(counts(&app, &bob_token).await, (1, 2));
    assert_eq!(stats_counts(&app, &bob_token).await, (1, 2));

    // Acknowledging a read message keeps its first readAt.
    app.clock.advance_ms(100);
    let acked = acknowledge(&app, "bob", &id(&m1), &bob_token, None).await.expect(200);
    assert_eq!(int(&acked["message"]["readAt"]), read_at);
    assert_eq!(int(&acked["message"]["acknowledgedAt"]), read_at + 200);
    assert_eq!(counts(&app, &bob_token).await, (1, 1));

    // A read and acknowledged message can still be read back (it is no longer open): unchanged.
    let closed = read_one(&app, "bob", &id(&m1), &bob_token).await.expect(200);
    assert_eq!(closed, acked["message"]);

    let last = read_one(&app, "bob", &id(&m3), &bob_token).await.expect(200);
    assert!(last["readAt"].is_i64());
    assert_eq!(counts(&app, &bob_token).await, (0, 1));
    assert_eq!(
        counts(&app, ADMIN_TOKEN).await,
        (0, 1),
        "the admin sees the same counts"
    );
    assert_eq!(stats_counts(&app, &bob_token).await, (0, 1));
    // Alice's own counts never moved: nothing was sent to her.
    let alice_inbox = inbox(&app, "alice", &alice_token, "").await;
    assert_eq!(alice_inbox["unreadCount"], 0);
    assert_eq!(alice_inbox["items"], json!([]));
    app.stop().await;
}

async fn batch_read_marks_only_unread_messages_of_this_inbox(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (_, alice_token) = app.agent("alice").await;
    let (_, bob_token) = app.agent("bob").await;
    let (_, carol_token) = app.agent("carol").await;
    let m1 = sent(&app, "alice", &alice_token, draft("bob", "alert", "first")).await;
    let m2 = sent(&app, "alice", &alice_token, draft("bob", "alert", "second")).await;
    let m3 = sent(&app, "alice", &alice_token, draft("bob", "alert", "third")).await;
    let foreign = sent(&app, "alice", &alice_token, draft("carol", "alert", "for carol")).await;
    read_one(&app, "bob", &id(&m1), &bob_token).await.expect(200);
    let unknown = "01900000-0000-7000-8000-000000000000";

    app.clock.advance_ms(50);
    let receipt = app
        .call(
            Method::POST,
            "/api/agents/bob/messages/read",
            Some(&bob_token),
            Some(json!({"messageIds": [id(&m1), id(&m2), id(&foreign), unknown, id(&m3), id(&m2)]})),
        )
        .await
        .expect(200);
    assert_eq!(receipt["marked"], 2, "{receipt}");
    assert_eq!(receipt["markedIds"], json!([id(&m2), id(&m3)]));
    assert_eq!(
        receipt["skipped"],
        json!([id(&m1), id(&foreign), unknown, id(&m2)]),
        "already read, another inbox's, unknown, and the repeat"
    );

    let page = inbox(&app, "bob", &bob_token, "").await;
    assert_eq!(page["unreadCount"], 0);
    for message in array(&page["items"]) {
        assert!(message["readAt"].is_i64(), "{message}");
    }
    // Carol's message is still unread in her inbox.
    let carol_inbox = inbox(&app, "carol", &carol_token, "").await;
    assert_eq!(carol_inbox["unreadCount"], 1);
    assert_eq!(carol_inbox["items"][0]["readAt"], Value::Null);
    let stored = get_ok(&app, &format!("/api/messages/{}", id(&foreign)), ADMIN_TOKEN).await;
    assert_eq!(stored["readAt"], Value::Null);

    // Again: nothing left to mark.
    let again = app
        .call(
            Method::POST,
            "/api/agents/bob/messages/read",
            Some(&bob_token),
            Some(json!({"messageIds": [id(&m2), id(&m3)]})),
        )
        .await
        .expect(200);
    assert_eq!(
        again,
        json!({"marked": 0, "markedIds": [], "skipped": [id(&m2), id(&m3)]})
    );
    let empty = app
        .call(
            Method::POST,
            "/api/agents/bob/messages/read",
            Some(&bob_token),
            Some(json!({"messageIds": []})),
        )
        .await
        .expect(200);
    assert_eq!(empty["marked"], 0);

    // One activity row per message actually marked: m1 (single read), m2 and m3.
    let reads = activity_of_kind(&app, "message_read", None).await;
    let read_ids: Vec<Value> = reads.iter().map(|r| r["after"]["messageId"].clone()).collect();
    assert_eq!(read_ids, vec![m3["id"].clone(), m2["id"].clone(), m1["id"].clone()]);

    // Over 500 ids, or no list at all: refused.
    let too_many = vec![id(&m1); 501];
    let refused = app
        .call(
            Method::POST,
            "/api/agents/bob/messages/read",
            Some(&bob_token),
            Some(json!({ "messageIds": too_many })),
        )
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(refused["error"]["details"]["field"], "messageIds");
    let refused = app
        .call(
            Method::POST,
            "/api/agents/bob/messages/read",
            Some(&bob_token),
            Some(json!({})),
        )
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(refused["error"]["details"]["field"], "messageIds");

    // Carol's token may not mark Bob's messages; nor may Bob's token mark Carol's through her path.
    app.call(
        Method::POST,
        "/api/agents/carol/messages/read",
        Some(&bob_token),
        Some(json!({"messageIds": [id(&foreign)]})),
    )
    .await
    .expect_error(403, "forbidden");
    read_one(&app, "carol", &id(&foreign), &bob_token)
        .await
        .expect_error(403, "forbidden");
    // A foreign or unknown id through the single read is not found.
    read_one(&app, "bob", &id(&foreign), &bob_token)
        .await
        .expect_error(404, "message_not_found");
    read_one(&app, "bob", unknown, &bob_token)
        .await
        .expect_error(404, "message_not_found");
    assert_eq!(
        get_ok(&app, &format!("/api/messages/{}", id(&foreign)), ADMIN_TOKEN).await["readAt"],
        Value::Null
    );
    app.stop().await;
}

async fn acknowledge_with_a_reply_or_an_action(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (alice, alice_token) = app.agent("alice").await;
    let (_, bob_token) = app.agent("bob").await;
    let (_, carol_token) = app.agent("carol").await;
    let task = app.task(json!({"title": "Deploy"})).await;
    let m1 = sent(
        &app,
        "alice",
        &alice_token,
        draft_with("bob", "blocker_resolved", "Deploy", json!({"taskId": id(&task)})),
    )
    .await;
    let m2 = sent(&app, "alice", &alice_token, draft("bob", "alert", "Worker down")).await;
    let for_carol = sent(&app, "alice", &alice_token, draft("carol", "alert", "For carol")).await;

    // With a response: a coordination reply to Alice about the same task.
    app.clock.advance_ms(1500);
    let acked = acknowledge(
        &app,
        "bob",
        &id(&m1),
        &bob_token,
        Some(json!({"response": "deploying now"})),
    )
    .await
    .expect(200);
    let message = &acked["message"];
    let reply = &acked["reply"];
    assert_eq!(message["id"], m1["id"]);
    assert_eq!(int(&message["acknowledgedAt"]), int(&m1["createdAt"]) + 1500);
    assert_eq!(message["actionTaken"], Value::Null);
    assert_eq!(reply["type"], "coordination");
    assert_eq!(reply["subject"], "RE: Deploy");
    assert_eq!(reply["body"], "deploying now");
    assert_eq!(reply["replyToId"], m1["id"]);
    assert_eq!(reply["taskId"], json!(id(&task)), "the reply is about the same task");
    assert_eq!(reply["toAgentId"], alice["id"]);
    assert_eq!(reply["fromAgentName"], "bob");
    let alice_inbox = inbox(&app, "alice", &alice_token, "").await;
    assert_eq!(item_ids(&alice_inbox), vec![id(reply)]);
    assert_eq!(alice_inbox["unreadCount"], 1);
    assert_eq!(
        get_ok(&app, &format!("/api/messages/{}", id(reply)), &alice_token).await,
        *reply
    );

    // With actionTaken only: recorded, and no reply.
    let acked = acknowledge(
        &app,
        "bob",
        &id(&m2),
        &bob_token,
        Some(json!({"actionTaken": "restarted the worker"})),
    )
    .await
    .expect(200);
    assert_eq!(acked["reply"], Value::Null);
    assert_eq!(acked["message"]["actionTaken"], "restarted the worker");
    let stored = get_ok(&app, &format!("/api/messages/{}", id(&m2)), &alice_token).await;
    assert_eq!(stored["actionTaken"], "restarted the worker");
    assert!(stored["acknowledgedAt"].is_i64());
    assert_eq!(
        item_ids(&inbox(&app, "alice", &alice_token, "").await).len(),
        1,
        "no reply was sent"
    );

    // Twice: 409 with when it happened, and still no second reply.
    let first_ack = int(&message["acknowledgedAt"]);
    app.clock.advance_ms(1000);
    let twice = acknowledge(&app, "bob", &id(&m1), &bob_token, Some(json!({"response": "again"})))
        .await
        .expect_error(409, "already_acknowledged");
    assert_eq!(int(&twice["error"]["details"]["acknowledgedAt"]), first_ack);
    acknowledge(&app, "bob", &id(&m2), &bob_token, Some(json!({"actionTaken": "other"})))
        .await
        .expect_error(409, "already_acknowledged");
    acknowledge(&app, "bob", &id(&m2), &bob_token, None)
        .await
        .expect_error(409, "already_acknowledged");
    assert_eq!(item_ids(&inbox(&app, "alice", &alice_token, "").await).len(), 1);
    assert_eq!(
        get_ok(&app, &format!("/api/messages/{}", id(&m2)), ADMIN_TOKEN).await["actionTaken"],
        "restarted the worker",
        "a refused second acknowledgement changes nothing"
    );

    // Another inbox's message, or an unknown id, through Bob's inbox: not found; through Carol's with Bob's
    // token: forbidden. Carol's message stays open.
    acknowledge(
        &app,
        "bob",
        &id(&for_carol),
        &bob_token,
        Some(json!({"response": "mine?"})),
    )
    .await
    .expect_error(404, "message_not_found");
    acknowledge(&app, "bob", &id(&for_carol), &bob_token, None)
        .await
        .expect_error(404, "message_not_found");
    acknowledge(&app, "bob", "01900000-0000-7000-8000-000000000000", &bob_token, None)
        .await
        .expect_error(404, "message_not_found");
    acknowledge(&app, "carol", &id(&for_carol), &bob_token, None)
        .await
        .expect_error(403, "forbidden");
    let carol_inbox = inbox(&app, "carol", &carol_token, "").await;
    assert_eq!(carol_inbox["unacknowledgedCount"], 1);
    assert_eq!(carol_inbox["items"][0]["acknowledgedAt"], Value::Null);
    assert_eq!(item_ids(&inbox(&app, "alice", &alice_token, "").await).len(), 1);

    // Empty texts are refused and change nothing.
    let m3 = sent(&app, "alice", &alice_token, draft("bob", "alert", "Empty")).await;
    for body in [json!({"response": "  "}), json!({"actionTaken": ""})] {
        let refused = acknowledge(&app, "bob", &id(&m3), &bob_token, Some(body.clone()))
            .await
            .expect_error(400, "validation_failed");
        let field = if body.get("response").is_some() {
            "response"
        } else {
            "actionTaken"
        };
        assert_eq!(refused["error"]["details"]["field"], field, "{refused}");
    }
    let still_open = get_ok(&app, &format!("/api/messages/{}", id(&m3)), ADMIN_TOKEN).await;
    assert_eq!(still_open["acknowledgedAt"], Value::Null);
    assert_eq!(still_open["readAt"], Value::Null);
    app.stop().await;
}

async fn search_is_case_insensitive_over_subject_body_and_sender(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (_, alice_token) = app.agent("alice").await;
    let (_, bob_token) = app.agent("bob").await;
    let (_, carol_token) = app.agent("carol").await;
    let migration = sent(
        &app,
        "alice",
        &alice_token,
        draft_with(
            "bob",
            "coordination",
            "Database Migration",
            json!({"body": "the schema changes"}),
        ),
    )
    .await;
    let lunch = sent(
        &app,
        "carol",
        &carol_token,
        draft_with("bob", "status_query", "Lunch", json!({"body": "Pizza at NOON"})),
    )
    .await;
    let percent = sent(
        &app,
        "carol",
        &carol_token,
        draft_with("bob", "alert", "Disk 95% full", json!({"body": "clean up"})),
    )
    .await;
    // The same words in another inbox are never found in Bob's.
    sent(
        &app,
        "carol",
        &carol_token,
        draft_with("alice", "alert", "migration pizza", json!({})),
    )
    .await;

    let cases: Vec<(&str, Vec<&Value>)> = vec![
        ("migration", vec![&migration]),
        ("MIGRATION", vec![&migration]),
        ("database migr", vec![&migration]),
        ("SCHEMA", vec![&migration]),
        ("noon", vec![&lunch]),
        ("pizza at", vec![&lunch]),
        ("ALICE", vec![&migration]),
        ("Carol", vec![&percent, &lunch]),
        ("95%", vec![&percent]),
        ("%", vec![&percent]),
        ("nothing like this", vec![]),
        ("_", vec![]),
    ];
    for (q, expected) in cases {
        let page = get_ok(
            &app,
            &format!("/api/agents/bob/messages/search?q={}", encode(q)),
            &bob_token,
        )
        .await;
        assert_eq!(item_ids(&page), ids(&expected), "search `{q}`: {page}");
        assert_eq!(page["nextCursor"], Value::Null, "search `{q}`");
    }
    // Pages of search results follow the cursor.
    let first = get_ok(&app, "/api/agents/bob/messages/search?q=carol&limit=1", &bob_token).await;
    assert_eq!(item_ids(&first), ids(&[&percent]));
    let cursor = text(&first["nextCursor"]);
    let second = get_ok(
        &app,
        &format!(
            "/api/agents/bob/messages/search?q=carol&limit=1&cursor={}",
            encode(&cursor)
        ),
        &bob_token,
    )
    .await;
    assert_eq!(item_ids(&second), ids(&[&lunch]));
    assert_eq!(second["nextCursor"], Value::Null);
    // An empty query is refused.
    let empty = app
        .call(
            Method::GET,
            "/api/agents/bob/messages/search?q=%20",
            Some(&bob_token),
            None,
        )
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(empty["error"]["details"]["field"], "q");
    let long = app
        .call(
            Method::GET,
            &format!("/api/agents/bob/messages/search?q={}", "x".repeat(201)),
            Some(&bob_token),
            None,
        )
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(long["error"]["details"]["field"], "q");
    let missing = app
        .call(Method::GET, "/api/agents/bob/messages/search", Some(&bob_token), None)
        .await
        .expect_error(400, "validation_failed");
    assert!(text(&missing["error"]["message"]).contains("`q`"), "{missing}");
    app.stop().await;
}

async fn stats_count_types_priorities_and_average_ack_time(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (_, alice_token) = app.agent("alice").await;
    let (_, bob_token) = app.agent("bob").await;
    let all_types = [
        "task_update",
        "help_request",
        "blocker_resolved",
        "status_query",
        "coordination",
        "handoff",
        "alert",
        "need_input",
    ];
    let all_priorities = ["low", "normal", "high", "critical"];
    let zeros = |keys: &[&str]| -> Value { keys.iter().map(|k| (k.to_string(), json!(0))).collect() };

    let stats = get_ok(&app, "/api/agents/bob/messages/stats", &bob_token).await;
    assert_eq!(
        stats,
        json!({
            "total": 0, "unread": 0, "unacknowledged": 0, "acknowledged": 0, "averageAckSeconds": null,
            "byType": zeros(&all_types), "byPriority": zeros(&all_priorities),
        })
    );

    let m1 = sent(
        &app,
        "alice",
        &alice_token,
        draft_with("bob", "help_request", "one", json!({"priority": "high"})),
    )
    .await;
    let stats = get_ok(&app, "/api/agents/bob/messages/stats", &bob_token).await;
    assert_eq!(stats["total"], 1);
    assert_eq!(stats["averageAckSeconds"], Value::Null, "nothing acknowledged yet");
    app.clock.advance_ms(4000);
    acknowledge(&app, "bob", &id(&m1), &bob_token, None).await.expect(200);
    let stats = get_ok(&app, "/api/agents/bob/messages/stats", &bob_token).await;
    assert_eq!(stats["averageAckSeconds"].as_f64(), Some(4.0), "{stats}");

    let m2 = sent(
        &app,
        "alice",
        &alice_token,
        draft_with("bob", "alert", "two", json!({"priority": "critical"})),
    )
    .await;
    app.clock.advance_ms(2000);
    acknowledge(&app, "bob", &id(&m2), &bob_token, Some(json!({"actionTaken": "fixed"})))
        .await
        .expect(200);
    sent(
        &app,
        "alice",
        &alice_token,
        draft_with("bob", "alert", "three", json!({"priority": "low"})),
    )
    .await;
    let m4 = sent(&app, "alice", &alice_token, draft("bob", "handoff", "four")).await;
    read_one(&app, "bob", &id(&m4), &bob_token).await.expect(200);
    // Alice's inbox is not Bob's: this never counts in Bob's stats.
    sent(
        &app,
        "bob",
        &bob_token,
        draft("alice", "need_input", "not in bob's inbox"),
    )
    .await;

    let stats = get_ok(&app, "/api/agents/bob/messages/stats", &bob_token).await;
    let mut by_type = zeros(&all_types);
    by_type["help_request"] = json!(1);
    by_type["alert"] = json!(2);
    by_type["handoff"] = json!(1);
    let mut by_priority = zeros(&all_priorities);
    by_priority["high"] = json!(1);
    by_priority["critical"] = json!(1);
    by_priority["low"] = json!(1);
    by_priority["normal"] = json!(1);
    assert_eq!(
        stats,
        json!({
            "total": 4, "unread": 1, "unacknowledged": 2, "acknowledged": 2, "averageAckSeconds": 3.0,
            "byType": by_type, "byPriority": by_priority,
        }),
        "{stats}"
    );
    let as_admin = get_ok(&app, "/api/agents/bob/messages/stats", ADMIN_TOKEN).await;
    assert_eq!(as_admin, stats);
    let by_id = get_ok(
        &app,
        &format!("/api/agents/{}/messages/stats", text(&m1["toAgentId"])),
        &bob_token,
    )
    .await;
    assert_eq!(by_id, stats);

    // One decimal: 1234 ms alone would be 1.2 s; here (4000 + 2000 + 1234) / 3 = 2411.3 ms → 2.4 s.
    let m5 = sent(&app, "alice", &alice_token, draft("bob", "alert", "five")).await;
    app.clock.advance_ms(1234);
    acknowledge(&app, "bob", &id(&m5), &bob_token, None).await.expect(200);
    let stats = get_ok(&app, "/api/agents/bob/messages/stats", &bob_token).await;
    assert_eq!(stats["averageAckSeconds"].as_f64(), Some(2.4), "{stats}");
    assert_eq!(stats["acknowledged"], 3);
    app.stop().await;
}

async fn activity_feed_records_sends_reads_and_acknowledgements(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (alice, alice_token) = app.agent("alice").await;
    let (bob, bob_token) = app.agent("bob").await;
    let (carol, _) = app.agent("carol").await;
    let (alice_id, bob_id) = (id(&alice), id(&bob));
    let m1 = sent(&app, "alice", &alice_token, draft("bob", "help_request", "Read me")).await;
    let m2 = sent(&app, "alice", &alice_token, draft("bob", "alert", "Ack me")).await;
    app.clock.advance_ms(10);
    read_one(&app, "bob", &id(&m1), &bob_token).await.expect(200);
    app.clock.advance_ms(10);
    let acked = acknowledge(&app, "bob", &id(&m2), &bob_token, Some(json!({"response": "ok"})))
        .await
        .expect(200);
    let reply = acked["reply"].clone();

    let sends = activity_of_kind(&app, "message_sent", None).await;
    let sent_ids: Vec<Value> = sends.iter().map(|r| r["after"]["messageId"].clone()).collect();
    assert_eq!(sent_ids, vec![reply["id"].clone(), m2["id"].clone(), m1["id"].clone()]);
    let first = &sends[2];
    assert_eq!(first["actorKind"], "agent");
    assert_eq!(first["actorId"], json!(alice_id));
    assert_eq!(first["agentId"], json!(bob_id), "a send is about the recipient");
    assert_eq!(first["after"]["from"], "alice");
    assert_eq!(first["after"]["to"], "bob");
    assert_eq!(first["after"]["type"], "help_request");
    assert!(text(&first["message"]).contains("Read me"), "{first}");
    assert_eq!(int(&first["createdAt"]), int(&m1["createdAt"]));
    assert_eq!(sends[0]["actorId"], json!(bob_id), "the reply is sent by Bob");
    assert_eq!(sends[0]["agentId"], json!(alice_id));

    let reads = activity_of_kind(&app, "message_read", None).await;
    assert_eq!(reads.len(), 1, "acknowledging does not add a read row: {reads:?}");
    assert_eq!(reads[0]["after"]["messageId"], m1["id"]);
    assert_eq!(reads[0]["actorId"], json!(bob_id));
    assert_eq!(reads[0]["agentId"], json!(bob_id));
    assert_eq!(reads[0]["before"]["readAt"], Value::Null);
    assert_eq!(int(&reads[0]["after"]["readAt"]), int(&m1["createdAt"]) + 10);

    let acks = activity_of_kind(&app, "message_acknowledged", None).await;
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0]["after"]["messageId"], m2["id"]);
    assert_eq!(acks[0]["after"]["replyId"], reply["id"]);
    assert_eq!(acks[0]["actorId"], json!(bob_id));
    assert_eq!(int(&acks[0]["after"]["acknowledgedAt"]), int(&m2["createdAt"]) + 20);

    // The agent filter finds rows done by the agent or about it; Carol had nothing to do with any of this.
    assert_eq!(activity_of_kind(&app, "message_sent", Some(&bob_id)).await.len(), 3);
    assert_eq!(activity_of_kind(&app, "message_sent", Some(&alice_id)).await.len(), 3);
    assert_eq!(activity_of_kind(&app, "message_read", Some(&bob_id)).await.len(), 1);
    assert_eq!(activity_of_kind(&app, "message_read", Some(&alice_id)).await.len(), 0);
    for kind in ["message_sent", "message_read", "message_acknowledged"] {
        assert_eq!(
            activity_of_kind(&app, kind, Some(&id(&carol))).await,
            Vec::<Value>::new(),
            "{kind}"
        );
    }

    // The admin may send as any agent; the row records the admin as the actor.
    let by_admin = sent(&app, "alice", ADMIN_TOKEN, draft("carol", "alert", "From the admin")).await;
    assert_eq!(by_admin["fromAgentId"], json!(alice_id));
    let sends = activity_of_kind(&app, "message_sent", Some(&id(&carol))).await;
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0]["after"]["messageId"], by_admin["id"]);
    assert_eq!(sends[0]["actorKind"], "admin");
    assert_eq!(sends[0]["actorId"], Value::Null);
    app.stop().await;
}

/// The messages stored anywhere, as the admin sees them through Bob's inbox and Alice's sent list, plus the
/// message activity.
async fn assert_nothing_stored(app: &TestApp, what: &str) {
    let inbox = all_items(app, "/api/agents/bob/messages", 100).await;
    assert_eq!(inbox, Vec::<Value>::new(), "{what}: Bob's inbox");
    let sent = all_items(app, "/api/agents/alice/messages/sent", 100).await;
    assert_eq!(sent, Vec::<Value>::new(), "{what}: Alice's sent list");
    let stats = app
        .admin(Method::GET, "/api/agents/bob/messages/stats", None)
        .await
        .expect(200);
    assert_eq!(stats["total"], 0, "{what}: Bob's stats");
    assert_eq!(
        activity_of_kind(app, "message_sent", None).await,
        Vec::<Value>::new(),
        "{what}: activity"
    );
}

/// A send that must be refused: sender in the path, token, body, status, code, and the field `details` names.
type RefusedSend<'a> = (&'a str, Option<&'a str>, Value, u16, &'a str, Option<&'a str>);

async fn refused_sends_store_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (alice, alice_token) = app.agent("alice").await;
    let (_, bob_token) = app.agent("bob").await;
    let valid = || draft("bob", "alert", "Hello");
    let with = |extra: Value| draft_with("bob", "alert", "Hello", extra);
    let without = |field: &str| {
        let mut body = valid();
        if let Some(fields) = body.as_object_mut() {
            fields.remove(field);
        }
        body
    };

    let cases: Vec<RefusedSend> = vec![
        (
            "alice",
            Some(&alice_token),
            draft("nobody", "alert", "Hi"),
            404,
            "agent_not_found",
            None,
        ),
        ("nobody", Some(ADMIN_TOKEN), valid(), 404, "agent_not_found", None),
        ("nobody", Some(&alice_token), valid(), 404, "agent_not_found", None),
        (
            "alice",
            Some(&alice_token),
            with(json!({"taskId": "no-such-task"})),
            404,
            "task_not_found",
            None,
        ),
        (
            "alice",
            Some(&alice_token),
            with(json!({"relatedTaskIds": ["no-such-task"]})),
            404,
            "task_not_found",
            None,
        ),
        (
            "alice",
            Some(&alice_token),
            draft("bob", "alert", ""),
            400,
            "validation_failed",
            Some("subject"),
        ),
        (
            "alice",
            Some(&alice_token),
            draft("bob", "alert", "   "),
            400,
            "validation_failed",
            Some("subject"),
        ),
        (
            "alice",
            Some(&alice_token),
            draft("bob", "alert", &"s".repeat(201)),
            400,
            "validation_failed",
            Some("subject"),
        ),
        (
            "alice",
            Some(&alice_token),
            with(json!({"body": "b".repeat(20_001)})),
            400,
            "validation_failed",
            Some("body"),
        ),
        (
            "alice",
            Some(&alice_token),
            with(json!({"data": {"blob": "d".repeat(64 * 1024)}})),
            400,
            "validation_failed",
            Some("data"),
        ),
        (
            "alice",
            Some(&alice_token),
            with(json!({"data": [1, 2]})),
            400,
            "validation_failed",
            Some("data"),
        ),
        (
            "alice",
            Some(&alice_token),
            with(json!({"data": "text"})),
            400,
            "validation_failed",
            Some("data"),
        ),
        (
            "alice",
            Some(&alice_token),
            with(json!({"data": 7})),
            400,
            "validation_failed",
            Some("data"),
        ),
        (
            "alice",
            Some(&alice_token),
            draft("bob", "gossip", "Hi"),
            400,
            "validation_failed",
            Some("type"),
        ),
        (
            "alice",
            Some(&alice_token),
            with(json!({"priority": "urgent"})),
            400,
            "validation_failed",
            Some("priority"),
        ),
        (
            "alice",
            Some(&alice_token),
            without("type"),
            400,
            "validation_failed",
            Some("type"),
        ),
        (
            "alice",
            Some(&alice_token),
            without("subject"),
            400,
            "validation_failed",
            Some("subject"),
        ),
        (
            "alice",
            Some(&alice_token),
            without("toAgentId"),
            400,
            "validation_failed",
            Some("toAgentId"),
        ),
        (
            "alice",
            Some(&alice_token),
            with(json!({"colour": "red"})),
            400,
            "validation_failed",
            None,
        ),
        (
            "alice",
            Some(&alice_token),
            with(json!({"ackWithinMs": 0})),
            400,
            "validation_failed",
            Some("ackWithinMs"),
        ),
        (
            "alice",
            Some(&alice_token),
            with(json!({"escalationAction": "page someone"})),
            400,
            "validation_failed",
            Some("escalationAction"),
        ),
        (
            "alice",
            Some(&alice_token),
            draft("alice", "alert", "Me"),
            400,
            "validation_failed",
            Some("toAgentId"),
        ),
        (
            "alice",
            Some(&alice_token),
            draft(&id(&alice), "alert", "Me"),
            400,
            "validation_failed",
            Some("toAgentId"),
        ),
        ("alice", Some(&bob_token), valid(), 403, "forbidden", None),
        ("alice", None, valid(), 401, "unauthorized", None),
        ("alice", Some("not-a-token"), valid(), 401, "unauthorized", None),
    ];
    for (from, token, body, status, code, field) in cases {
        let mut what = format!("POST /api/agents/{from}/messages {body}");
        what.truncate(200);
        let reply = send_as(&app, from, token, body).await;
        assert_eq!(reply.status.as_u16(), status, "{what}: {}", reply.body);
        assert_eq!(reply.code(), code, "{what}: {}", reply.body);
        if let Some(field) = field {
            assert_eq!(reply.body["error"]["details"]["field"], field, "{what}: {}", reply.body);
            let message = text(&reply.body["error"]["message"]);
            assert!(
                message.starts_with(field),
                "{what}: the message names the field: {message}"
            );
        }
        assert_nothing_stored(&app, &what).await;
    }

    // The limits are inclusive, and none of the refusals above counted against Alice's send rate (10/min).
    let at_limits = sent(
        &app,
        "alice",
        &alice_token,
        draft_with(
            "bob",
            "alert",
            &"s".repeat(200),
            json!({"body": "b".repeat(20_000), "data": {"blob": "d".repeat(64 * 1024 - 20)}}),
        ),
    )
    .await;
    assert_eq!(text(&at_limits["subject"]).len(), 200);
    assert_eq!(text(&at_limits["body"]).len(), 20_000);
    // Lengths are counted in characters, not bytes.
    let wide = sent(
        &app,
        "alice",
        &alice_token,
        draft_with("bob", "alert", &"é".repeat(200), json!({"body": "ß".repeat(20_000)})),
    )
    .await;
    assert_eq!(text(&wide["subject"]).chars().count(), 200);
    assert_eq!(text(&wide["body"]).chars().count(), 20_000);
    let inbox = all_items(&app, "/api/agents/bob/messages", 100).await;
    assert_eq!(
        inbox.iter().map(id).collect::<Vec<_>>(),
        vec![id(&wide), id(&at_limits)]
    );
    // A reply to a subject at the limit is cut to the limit.
    let reply = acknowledge(
        &app,
        "bob",
        &id(&at_limits),
        &bob_token,
        Some(json!({"response": "ok"})),
    )
    .await
    .expect(200)["reply"]
        .clone();
    let subject = text(&reply["subject"]);
    assert_eq!(subject.chars().count(), 200);
    assert_eq!(subject, format!("RE: {}", "s".repeat(196)));
    app.stop().await;
}

async fn suspended_recipient_is_unavailable(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (_, alice_token) = app.agent("alice").await;
    let (_, bob_token) = app.agent("bob").await;
    let suspended = app
        .admin(Method::PATCH, "/api/agents/bob", Some(json!({"status": "suspended"})))
        .await
        .expect(200);
    assert_eq!(suspended["status"], "suspended");
    let refused = send_as(
        &app,
        "alice",
        Some(&alice_token),
        draft("bob", "alert", "Are you there?"),
    )
    .await
    .expect_error(409, "agent_unavailable");
    assert!(text(&refused["error"]["message"]).contains("bob"), "{refused}");
    send_as(&app, "alice", Some(ADMIN_TOKEN), draft("bob", "alert", "As admin"))
        .await
        .expect_error(409, "agent_unavailable");
    assert_nothing_stored(&app, "send to a suspended agent").await;

    // Back to active: the same message goes through.
    app.admin(Method::PATCH, "/api/agents/bob", Some(json!({"status": "active"})))
        .await
        .expect(200);
    let delivered = sent(&app, "alice", &alice_token, draft("bob", "alert", "Are you there?")).await;
    let page = inbox(&app, "bob", &bob_token, "").await;
    assert_eq!(item_ids(&page), vec![id(&delivered)]);
    app.stop().await;
}

/// A reply is a message to the original sender: a suspended sender cannot receive it.
async fn no_reply_reaches_a_suspended_sender(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (_, alice_token) = app.agent("alice").await;
    let (_, bob_token) = app.agent("bob").await;
    let question = sent(&app, "alice", &alice_token, draft("bob", "status_query", "Status?")).await;
    app.admin(Method::PATCH, "/api/agents/alice", Some(json!({"status": "suspended"})))
        .await
        .expect(200);
    // A reply is a message to Alice, and a suspended agent gets no messages: refused like any other send.
    acknowledge(
        &app,
        "bob",
        &id(&question),
        &bob_token,
        Some(json!({"response": "all green"})),
    )
    .await
    .expect_error(409, "agent_unavailable");
    let alice_inbox = all_items(&app, "/api/agents/alice/messages", 100).await;
    assert_eq!(
        alice_inbox,
        Vec::<Value>::new(),
        "no reply in the suspended agent's inbox"
    );
    let bob_sent = all_items(&app, "/api/agents/bob/messages/sent", 100).await;
    assert_eq!(bob_sent, Vec::<Value>::new());
    let original = get_ok(&app, &format!("/api/messages/{}", id(&question)), ADMIN_TOKEN).await;
    assert_eq!(
        original["acknowledgedAt"],
        Value::Null,
        "the refused acknowledgement changed nothing"
    );
    // Without a response there is nothing to deliver: the acknowledgement goes through.
    let acked = acknowledge(
        &app,
        "bob",
        &id(&question),
        &bob_token,
        Some(json!({"actionTaken": "checked"})),
    )
    .await
    .expect(200);
    assert_eq!(acked["reply"], Value::Null);
    app.stop().await;
}

/// Text typed exactly as stored is found on both backends, even with upper-case non-ASCII letters (SQLite's
/// `lower()` folds ASCII only, so the pattern must go through the same `lower()` as the columns).
async fn search_finds_non_ascii_text_as_written(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (_, alice_token) = app.agent("alice").await;
    let (_, bob_token) = app.agent("bob").await;
    let bridge = sent(
        &app,
        "alice",
        &alice_token,
        draft_with("bob", "alert", "Über die Brücke", json!({"body": "Ärger im Büro"})),
    )
    .await;
    sent(
        &app,
        "alice",
        &alice_token,
        draft_with("bob", "alert", "Unrelated", json!({"body": "nothing"})),
    )
    .await;
    // As written, and with only ASCII letters in another case: found on every backend, as documented.
    let mut queries = vec!["Über die", "Brücke", "Ärger", "brücke", "ÄRGER IM"];
    if backend == Backend::Postgres {
        // Full Unicode folding on PostgreSQL.
        queries.extend(["über DIE", "ärger"]);
    }
    for q in queries {
        let page = get_ok(
            &app,
            &format!("/api/agents/bob/messages/search?q={}", encode(q)),
            &bob_token,
        )
        .await;
        assert_eq!(item_ids(&page), vec![id(&bridge)], "search `{q}` ({backend:?}): {page}");
    }
    app.stop().await;
}

async fn agent_tokens_only_read_their_own_mail(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (_, alice_token) = app.agent("alice").await;
    let (bob, bob_token) = app.agent("bob").await;
    let message = sent(&app, "alice", &alice_token, draft("bob", "alert", "Private")).await;
    let paths = [
        "/api/agents/bob/messages".to_string(),
        format!("/api/agents/{}/messages", id(&bob)),
        "/api/agents/bob/messages?unread=true".to_string(),
        "/api/agents/bob/messages/sent".to_string(),
        "/api/agents/alice/messages/sent".to_string(),
        "/api/agents/bob/messages/search?q=private".to_string(),
        "/api/agents/bob/messages/stats".to_string(),
    ];
    let (_, carol_token) = app.agent("carol").await;
    for path in &paths {
        let owner_token = if path.contains("alice") {
            &alice_token
        } else {
            &bob_token
        };
        app.call(Method::GET, path, Some(&carol_token), None)
            .await
            .expect_error(403, "forbidden");
        app.call(Method::GET, path, None, None)
            .await
            .expect_error(401, "unauthorized");
        app.call(Method::GET, path, Some(owner_token), None).await.expect(200);
        app.call(Method::GET, path, Some(ADMIN_TOKEN), None).await.expect(200);
    }
    // Alice sent the message but may not read Bob's inbox, sent list, search or stats.
    for path in ["/api/agents/bob/messages", "/api/agents/bob/messages/search?q=private"] {
        app.call(Method::GET, path, Some(&alice_token), None)
            .await
            .expect_error(403, "forbidden");
    }
    // Unknown agents are not found, whoever asks.
    for path in ["/api/agents/nobody/messages", "/api/agents/nobody/messages/stats"] {
        app.call(Method::GET, path, Some(ADMIN_TOKEN), None)
            .await
            .expect_error(404, "agent_not_found");
    }
    // None of the refused reads marked anything.
    let stored = get_ok(&app, &format!("/api/messages/{}", id(&message)), ADMIN_TOKEN).await;
    assert_eq!(stored["readAt"], Value::Null);
    app.stop().await;
}

on_both_backends!(
    two_agents_exchange_messages_and_replies,
    every_inbox_filter_narrows_the_list,
    inbox_and_sent_pages_follow_cursors_newest_first,
    open_counts_follow_reads_and_acknowledgements,
    batch_read_marks_only_unread_messages_of_this_inbox,
    acknowledge_with_a_reply_or_an_action,
    search_is_case_insensitive_over_subject_body_and_sender,
    stats_count_types_priorities_and_average_ack_time,
    activity_feed_records_sends_reads_and_acknowledgements,
    refused_sends_store_nothing,
    suspended_recipient_is_unavailable,
    agent_tokens_only_read_their_own_mail,
    no_reply_reaches_a_suspended_sender,
    search_finds_non_ascii_text_as_written,
);
