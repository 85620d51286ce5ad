//! Messaging: two agents exchange messages and replies.

use crate::common::*;
use crate::on_both_backends;
use reqwest::Method;
use serde_json::json;

async fn exchange_with_reply(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (alice, alice_token) = app.agent("alice").await;
    let (bob, bob_token) = app.agent("bob").await;
    let sent = app
        .call(
            Method::POST,
            &format!("/api/agents/{}/messages", id(&alice)),
            Some(&alice_token),
            Some(json!({"toAgentId": "bob", "type": "help_request", "subject": "Parser", "body": "stuck"})),
        )
        .await
        .expect(201);
    assert_eq!(sent["toAgentId"], bob["id"]);
    assert_eq!(sent["fromAgentName"], "alice");
    let inbox = app
        .call(Method::GET, "/api/agents/bob/messages", Some(&bob_token), None)
        .await
        .expect(200);
    assert_eq!(array(&inbox["items"]).len(), 1);
    assert_eq!(inbox["unreadCount"], 1);
    let acked = app
        .call(
            Method::POST,
            &format!("/api/agents/bob/messages/{}/acknowledge", id(&sent)),
            Some(&bob_token),
            Some(json!({"response": "on it"})),
        )
        .await
        .expect(200);
    assert_eq!(acked["reply"]["subject"], "RE: Parser");
    let alice_inbox = app
        .call(Method::GET, "/api/agents/alice/messages", Some(&alice_token), None)
        .await
        .expect(200);
    assert_eq!(alice_inbox["items"][0]["replyToId"], sent["id"]);
    assert_eq!(alice_inbox["unreadCount"], 1);
    app.call(
        Method::POST,
        &format!("/api/agents/bob/messages/{}/acknowledge", id(&sent)),
        Some(&bob_token),
        None,
    )
    .await
    .expect_error(409, "already_acknowledged");
    app.stop().await;
}

on_both_backends!(exchange_with_reply);
