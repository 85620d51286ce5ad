//! Authentication (bearer tokens) and the permission table: what an agent's token may do, suspension, and the
//! admin token.

// A reply without the expected shape should fail the test on the spot.

use crate::common::*;
use crate::on_both_backends;
use reqwest::Method;
use serde_json::{json, Value};

/// The agent as the admin reads it now.
async fn fetch_agent(app: &TestApp, key: &str) -> Value {
    app.admin(Method::GET, &format!("/api/agents/{key}"), None)
        .await
        .expect(200)
}

/// The task as the admin reads it now (without `blockedBy`/`blocks`).
async fn fetch_task(app: &TestApp, task: &Value) -> Value {
    let mut detail = app
        .admin(Method::GET, &format!("/api/tasks/{}", id(task)), None)
        .await
        .expect(200);
    if let Some(fields) = detail.as_object_mut() {
        fields.remove("blockedBy");
        fields.remove("blocks");
    }
    detail
}

fn task_path(task: &Value, action: &str) -> String {
    format!("/api/tasks/{}{action}", id(task))
}

async fn missing_token_is_401(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.agent("alice").await;
    let task = app.task(json!({"title": "t"})).await;
    let requests = [
        (Method::GET, "/api/agents".to_string(), None),
        (Method::GET, "/api/agents/alice".to_string(), None),
        (Method::POST, "/api/agents".to_string(), Some(json!({"name": "eve"}))),
        (Method::DELETE, "/api/agents/alice".to_string(), None),
        (Method::GET, "/api/tasks".to_string(), None),
        (Method::GET, task_path(&task, ""), None),
        (Method::POST, "/api/tasks".to_string(), Some(json!({"title": "x"}))),
        (Method::DELETE, task_path(&task, ""), None),
        (Method::GET, "/api/activity".to_string(), None),
    ];
    for (method, path, body) in requests {
        let reply = app.call(method.clone(), &path, None, body).await;
        assert_eq!(reply.code(), "unauthorized", "{method} {path}: {}", reply.body);
        reply.expect_error(401, "unauthorized");
    }
    // Nothing happened.
    app.admin(Method::GET, "/api/agents/eve", None)
        .await
        .expect_error(404, "agent_not_found");
    fetch_agent(&app, "alice").await;
    fetch_task(&app, &task).await;
    app.stop().await;
}

async fn unknown_token_is_401(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, token) = app.agent("alice").await;
    let wrong = [
        "nope".to_string(),
        format!("{ADMIN_TOKEN}x"),
        ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1].to_string(),
        format!("{token}x"),
        token.to_uppercase(),
    ];
    for bad in wrong {
        app.call(Method::GET, "/api/agents", Some(&bad), None)
            .await
            .expect_error(401, "unauthorized");
        let body = Some(json!({"name": "eve"}));
        app.call(Method::POST, "/api/agents", Some(&bad), body)
            .await
            .expect_error(401, "unauthorized");
    }
    app.admin(Method::GET, "/api/agents/eve", None)
        .await
        .expect_error(404, "agent_not_found");
    app.stop().await;
}

async fn malformed_authorization_header_is_401(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let headers = [
        "Basic x".to_string(),
        format!("Basic {ADMIN_TOKEN}"),
        "Bearer ".to_string(),
        "Bearer".to_string(),
        ADMIN_TOKEN.to_string(),
        format!("Token {ADMIN_TOKEN}"),
        format!("Bearer{ADMIN_TOKEN}"),
        String::new(),
    ];
    for header in headers {
        let req = app
            .request(Method::GET, "/api/agents", None)
            .header("authorization", header.as_str());
        let reply = app.send(req).await;
        assert_eq!(reply.status.as_u16(), 401, "header {header:?}: {}", reply.body);
        reply.expect_error(401, "unauthorized");
    }
    app.stop().await;
}

async fn healthz_needs_no_auth(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let reply = app.call(Method::GET, "/healthz", None, None).await.expect(200);
    assert_eq!(reply["status"], "ok");
    // The API next to it does need a token.
    app.call(Method::GET, "/api/agents", None, None)
        .await
        .expect_error(401, "unauthorized");
    app.stop().await;
}

async fn agent_token_can_read_agents_tasks_and_activity(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, token) = app.agent("alice").await;
    let (bob, _) = app.agent("bob").await;
    let task = app.task(json!({"title": "bob's task", "assigneeId": "bob"})).await;
    let agents = app
        .call(Method::GET, "/api/agents", Some(&token), None)
        .await
        .expect(200);
    assert_eq!(agents["items"].as_array().expect("items").len(), 2);
    let other = app
        .call(Method::GET, "/api/agents/bob", Some(&token), None)
        .await
        .expect(200);
    assert_eq!(other["id"], bob["id"]);
    let tasks = app
        .call(Method::GET, "/api/tasks", Some(&token), None)
        .await
        .expect(200);
    assert_eq!(tasks["items"][0]["id"], task["id"]);
    let one = app
        .call(Method::GET, &task_path(&task, ""), Some(&token), None)
        .await
        .expect(200);
    assert_eq!(one["id"], task["id"]);
    let feed = app
        .call(Method::GET, "/api/activity", Some(&token), None)
        .await
        .expect(200);
    assert!(!feed["items"].as_array().expect("items").is_empty());
    app.stop().await;
}

async fn agent_cannot_manage_agents_or_its_own_org_fields(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, lead_token) = app.register(json!({"name": "lena", "level": "lead"})).await;
    let (_, token) = app.register(json!({"name": "alice", "leadId": "lena"})).await;
    app.agent("bob").await;
    let alice = fetch_agent(&app, "alice").await;
    let bob = fetch_agent(&app, "bob").await;

    let body = Some(json!({"name": "eve"}));
    app.call(Method::POST, "/api/agents", Some(&token), body.clone())
        .await
        .expect_error(403, "forbidden");
    // Not even a lead's token may register agents.
    app.call(Method::POST, "/api/agents", Some(&lead_token), body)
        .await
        .expect_error(403, "forbidden");
    app.admin(Method::GET, "/api/agents/eve", None)
        .await
        .expect_error(404, "agent_not_found");

    app.call(Method::DELETE, "/api/agents/bob", Some(&token), None)
        .await
        .expect_error(403, "forbidden");
    app.call(Method::DELETE, "/api/agents/alice", Some(&token), None)
        .await
        .expect_error(403, "forbidden");
    app.call(Method::DELETE, "/api/agents/alice?force=true", Some(&token), None)
        .await
        .expect_error(403, "forbidden");

    let own_admin_fields = [
        json!({"status": "suspended"}),
        json!({"level": "lead"}),
        json!({"leadId": "bob"}),
        json!({"leadId": null}),
        json!({"role": "sneaky", "level": "lead"}),
    ];
    for patch in own_admin_fields {
        let reply = app
            .call(Method::PATCH, "/api/agents/alice", Some(&token), Some(patch.clone()))
            .await;
        assert_eq!(reply.code(), "forbidden", "patch {patch}: {}", reply.body);
        reply.expect_error(403, "forbidden");
    }
    assert_eq!(fetch_agent(&app, "alice").await, alice);
    assert_eq!(fetch_agent(&app, "bob").await, bob);
    let deleted = app
        .admin(Method::GET, "/api/activity?kind=agent_deleted", None)
        .await
        .expect(200);
    assert_eq!(deleted["items"], json!([]));
    // And its token still works afterwards: it was refused, not locked out.
    app.call(Method::GET, "/api/agents/alice", Some(&token), None)
        .await
        .expect(200);
    app.stop().await;
}

async fn agent_can_patch_its_own_profile(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (alice, token) = app.agent("alice").await;
    let patched = app
        .call(
            Method::PATCH,
            "/api/agents/alice",
            Some(&token),
            Some(json!({"role": "tester"})),
        )
        .await
        .expect(200);
    assert_eq!(patched["role"], "tester");
    assert_eq!(fetch_agent(&app, "alice").await["role"], "tester");

    let patch = json!({
        "specializations": ["qa"],
        "constraints": {"hasInternet": false, "canRunGpu": false, "maxMemoryMb": 1024, "preferAsync": true},
        "maxConcurrentTasks": 5,
        "maxMinutesPerDay": 120,
        "status": "blocked"
    });
    let path = format!("/api/agents/{}", id(&alice));
    let patched = app
        .call(Method::PATCH, &path, Some(&token), Some(patch))
        .await
        .expect(200);
    assert_eq!(patched["specializations"], json!(["qa"]));
    assert_eq!(patched["constraints"]["maxMemoryMb"], 1024);
    assert_eq!(patched["maxConcurrentTasks"], 5);
    assert_eq!(patched["maxMinutesPerDay"], 120);
    assert_eq!(patched["status"], "blocked");
    assert_eq!(patched["level"], "specialist");
    assert_eq!(fetch_agent(&app, "alice").await, patched);
    app.stop().await;
}

async fn agent_cannot_act_for_another_agent(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, alice_token) = app.agent("alice").await;
    let (_, bob_token) = app.agent("bob").await;
    let task = app.task(json!({"title": "bob's", "assigneeId": "bob"})).await;
    let bob = fetch_agent(&app, "bob").await;
    let as_alice = Some(alice_token.as_str());

    let role = Some(json!({"role": "hijacked"}));
    app.call(Method::PATCH, "/api/agents/bob", as_alice, role)
        .await
        .expect_error(403, "forbidden");
    app.call(Method::POST, "/api/agents/bob/heartbeat", as_alice, None)
        .await
        .expect_error(403, "forbidden");
    let beat = Some(json!({"status": "idle"}));
    app.call(Method::POST, "/api/agents/bob/heartbeat", as_alice, beat)
        .await
        .expect_error(403, "forbidden");
    app.call(Method::POST, "/api/agents/bob/token/rotate", as_alice, None)
        .await
        .expect_error(403, "forbidden");
    app.call(Method::POST, "/api/agents/bob/claim", as_alice, None)
        .await
        .expect_error(403, "forbidden");

    // Bob is untouched: same profile, same token, his task still waiting for him.
    assert_eq!(fetch_agent(&app, "bob").await, bob);
    app.call(Method::GET, "/api/agents", Some(&bob_token), None)
        .await
        .expect(200);
    let waiting = fetch_task(&app, &task).await;
    assert_eq!(waiting["status"], "ready");
    assert_eq!(waiting["attempts"], 0);
    // Bob himself may do all of these.
    app.call(Method::POST, "/api/agents/bob/heartbeat", Some(&bob_token), None)
        .await
        .expect(200);
    let claimed = app
        .call(Method::POST, "/api/agents/bob/claim", Some(&bob_token), None)
        .await
        .expect(200);
    assert_eq!(claimed["id"], task["id"]);
    app.stop().await;
}

async fn agent_works_only_on_tasks_assigned_to_it(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, alice_token) = app.agent("alice").await;
    let (_, bob_token) = app.agent("bob").await;
    let as_alice = Some(alice_token.as_str());
    let as_bob = Some(bob_token.as_str());
    let task = app.task(json!({"title": "bob's", "assigneeId": "bob"})).await;
    let unassigned = app.task(json!({"title": "nobody's", "status": "ready"})).await;
    let other = app.task(json!({"title": "other"})).await;

    // Alice may touch neither bob's task nor an unassigned one.
    for t in [&task, &unassigned] {
        let refused = [
            (
                Method::POST,
                task_path(t, "/transition"),
                Some(json!({"to": "in_progress"})),
            ),
            (
                Method::POST,
                task_path(t, "/transition"),
                Some(json!({"to": "cancelled"})),
            ),
            (
                Method::POST,
                task_path(t, "/complete"),
                Some(json!({"outcome": "done"})),
            ),
            (
                Method::POST,
                task_path(t, "/fail"),
                Some(json!({"errorKind": "x", "message": "y"})),
            ),
            (Method::PATCH, task_path(t, ""), Some(json!({"title": "renamed"}))),
            (
                Method::POST,
                task_path(t, "/dependencies"),
                Some(json!({"blockedBy": id(&other)})),
            ),
        ];
        let before = fetch_task(&app, t).await;
        for (method, path, body) in refused {
            let reply = app.call(method.clone(), &path, as_alice, body).await;
            assert_eq!(reply.code(), "forbidden", "{method} {path}: {}", reply.body);
            reply.expect_error(403, "forbidden");
        }
        assert_eq!(fetch_task(&app, t).await, before);
    }

    // Alice cannot fail or complete bob's task even while he works on it.
    let started = app
        .call(
            Method::POST,
            &task_path(&task, "/transition"),
            as_bob,
            Some(json!({"to": "in_progress"})),
        )
        .await
        .expect(200);
    assert_eq!(started["status"], "in_progress");
    let fail = json!({"errorKind": "timeout", "message": "too slow"});
    app.call(Method::POST, &task_path(&task, "/fail"), as_alice, Some(fail.clone()))
        .await
        .expect_error(403, "forbidden");
    app.call(
        Method::POST,
        &task_path(&task, "/complete"),
        as_alice,
        Some(json!({"outcome": "done"})),
    )
    .await
    .expect_error(403, "forbidden");
    assert_eq!(fetch_task(&app, &task).await["status"], "in_progress");

    // Bob, the assignee, may do all of it.
    let failed = app
        .call(Method::POST, &task_path(&task, "/fail"), as_bob, Some(fail))
        .await
        .expect(200);
    assert_eq!(failed["status"], "ready");
    let patched = app
        .call(
            Method::PATCH,
            &task_path(&task, ""),
            as_bob,
            Some(json!({"title": "bob's, renamed"})),
        )
        .await
        .expect(200);
    assert_eq!(patched["title"], "bob's, renamed");
    app.call(
        Method::POST,
        &task_path(&task, "/transition"),
        as_bob,
        Some(json!({"to": "in_progress"})),
    )
    .await
    .expect(200);
    let done = app
        .call(
            Method::POST,
            &task_path(&task, "/complete"),
            as_bob,
            Some(json!({"outcome": "done"})),
        )
        .await
        .expect(200);
    assert_eq!(done["status"], "done");
    app.stop().await;
}

async fn agent_may_take_an_unassigned_task_only_for_itself(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (alice, alice_token) = app.agent("alice").await;
    let (bob, bob_token) = app.agent("bob").await;
    let (_, carol_token) = app.agent("carol").await;
    let as_alice = Some(alice_token.as_str());
    let task = app.task(json!({"title": "free"})).await;
    assert_eq!(task["assigneeId"], Value::Null);
    let assign = task_path(&task, "/assign");

    // Giving an unassigned task to someone else is refused.
    app.call(Method::POST, &assign, as_alice, Some(json!({"agentId": "bob"})))
        .await
        .expect_error(403, "forbidden");
    let by_id = Some(json!({"agentId": id(&bob)}));
    app.call(Method::POST, &assign, as_alice, by_id)
        .await
        .expect_error(403, "forbidden");
    let unchanged = fetch_task(&app, &task).await;
    assert_eq!(unchanged["assigneeId"], Value::Null);
    assert_eq!(unchanged["status"], "backlog");

    // Taking it for itself works (a backlog task with an assignee becomes ready).
    let taken = app
        .call(Method::POST, &assign, as_alice, Some(json!({"agentId": "alice"})))
        .await
        .expect(200);
    assert_eq!(taken["assigneeId"], alice["id"]);
    assert_eq!(taken["status"], "ready");

    // Now that it is alice's, bob may not take it, and carol may not give it away.
    let take = Some(json!({"agentId": "bob"}));
    app.call(Method::POST, &assign, Some(&bob_token), take.clone())
        .await
        .expect_error(403, "forbidden");
    app.call(Method::POST, &assign, Some(&carol_token), take.clone())
        .await
        .expect_error(403, "forbidden");
    app.call(Method::POST, &assign, Some(&bob_token), Some(json!({"agentId": null})))
        .await
        .expect_error(403, "forbidden");
    assert_eq!(fetch_task(&app, &task).await["assigneeId"], alice["id"]);

    // The current assignee may hand it over.
    let handed = app.call(Method::POST, &assign, as_alice, take).await.expect(200);
    assert_eq!(handed["assigneeId"], bob["id"]);
    app.stop().await;
}

async fn only_the_creator_may_delete_a_task(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (alice, alice_token) = app.agent("alice").await;
    let (_, bob_token) = app.agent("bob").await;
    let created = app
        .call(
            Method::POST,
            "/api/tasks",
            Some(&alice_token),
            Some(json!({"title": "alice's idea"})),
        )
        .await
        .expect(201);
    assert_eq!(created["createdBy"], alice["id"]);
    assert_eq!(fetch_task(&app, &created).await["createdBy"], alice["id"]);

    let path = task_path(&created, "");
    app.call(Method::DELETE, &path, Some(&bob_token), None)
        .await
        .expect_error(403, "forbidden");
    fetch_task(&app, &created).await;
    let deleted = app
        .call(Method::DELETE, &path, Some(&alice_token), None)
        .await
        .expect(200);
    assert_eq!(deleted["id"], created["id"]);
    app.admin(Method::GET, &path, None)
        .await
        .expect_error(404, "task_not_found");

    // A task the admin created (even one assigned to alice) is not hers to delete.
    let admins = app.task(json!({"title": "admin's", "assigneeId": "alice"})).await;
    assert_eq!(admins["createdBy"], "admin");
    let path = task_path(&admins, "");
    app.call(Method::DELETE, &path, Some(&alice_token), None)
        .await
        .expect_error(403, "forbidden");
    fetch_task(&app, &admins).await;
    app.admin(Method::DELETE, &path, None).await.expect(200);
    app.stop().await;
}

async fn suspended_agent_token_is_refused_until_unsuspended(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (alice, token) = app.agent("alice").await;
    app.agent("bob").await;
    let task = app.task(json!({"title": "alice's", "assigneeId": "alice"})).await;
    let own = app
        .call(Method::POST, "/api/tasks", Some(&token), Some(json!({"title": "own"})))
        .await
        .expect(201);

    let suspended = app
        .admin(Method::PATCH, "/api/agents/alice", Some(json!({"status": "suspended"})))
        .await
        .expect(200);
    assert_eq!(suspended["status"], "suspended");

    let requests = [
        (Method::GET, "/api/agents".to_string(), None),
        (Method::GET, "/api/agents/alice".to_string(), None),
        (
            Method::PATCH,
            "/api/agents/alice".to_string(),
            Some(json!({"status": "idle"})),
        ),
        (
            Method::PATCH,
            "/api/agents/alice".to_string(),
            Some(json!({"role": "x"})),
        ),
        (Method::POST, "/api/agents/alice/heartbeat".to_string(), None),
        (Method::POST, "/api/agents/alice/token/rotate".to_string(), None),
        (Method::POST, "/api/agents/alice/claim".to_string(), None),
        (Method::GET, "/api/tasks".to_string(), None),
        (Method::GET, task_path(&task, ""), None),
        (Method::POST, "/api/tasks".to_string(), Some(json!({"title": "x"}))),
        (
            Method::POST,
            task_path(&task, "/transition"),
            Some(json!({"to": "in_progress"})),
        ),
        (Method::DELETE, task_path(&own, ""), None),
        (Method::GET, "/api/activity".to_string(), None),
    ];
    for (method, path, body) in &requests {
        let reply = app.call(method.clone(), path, Some(&token), body.clone()).await;
        assert_eq!(reply.code(), "agent_suspended", "{method} {path}: {}", reply.body);
        reply.expect_error(403, "agent_suspended");
    }
    // Nothing it tried happened.
    let still = fetch_agent(&app, "alice").await;
    assert_eq!(still["status"], "suspended");
    assert_eq!(still["role"], alice["role"]);
    assert_eq!(fetch_task(&app, &task).await["status"], "ready");
    fetch_task(&app, &own).await;
    // A heartbeat sent for it by the admin is refused too.
    app.admin(Method::POST, "/api/agents/alice/heartbeat", None)
        .await
        .expect_error(403, "agent_suspended");
    assert_eq!(fetch_agent(&app, "alice").await["status"], "suspended");

    // The admin lifts the suspension: the same token works again.
    let back = app
        .admin(Method::PATCH, "/api/agents/alice", Some(json!({"status": "idle"})))
        .await
        .expect(200);
    assert_eq!(back["status"], "idle");
    let me = app
        .call(Method::GET, "/api/agents/alice", Some(&token), None)
        .await
        .expect(200);
    assert_eq!(me["id"], alice["id"]);
    let beat = app
        .call(Method::POST, "/api/agents/alice/heartbeat", Some(&token), None)
        .await
        .expect(200);
    assert_eq!(beat["status"], "active");
    let claimed = app
        .call(Method::POST, "/api/agents/alice/claim", Some(&token), None)
        .await
        .expect(200);
    assert_eq!(claimed["id"], task["id"]);
    app.stop().await;
}

async fn suspended_agent_cannot_be_given_work(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (bob, _) = app.agent("bob").await;
    app.agent("carol").await;
    let free = app.task(json!({"title": "free"})).await;
    let bobs = app.task(json!({"title": "bob's", "assigneeId": "bob"})).await;
    app.admin(Method::PATCH, "/api/agents/bob", Some(json!({"status": "suspended"})))
        .await
        .expect(200);

    let assign = Some(json!({"agentId": "bob"}));
    app.admin(Method::POST, &task_path(&free, "/assign"), assign)
        .await
        .expect_error(409, "agent_unavailable");
    let by_id = Some(json!({"agentId": id(&bob)}));
    app.admin(Method::POST, &task_path(&free, "/assign"), by_id)
        .await
        .expect_error(409, "agent_unavailable");
    let unchanged = fetch_task(&app, &free).await;
    assert_eq!(unchanged["assigneeId"], Value::Null);
    assert_eq!(unchanged["status"], "backlog");

    let create = Some(json!({"title": "new", "assigneeId": "bob"}));
    app.admin(Method::POST, "/api/tasks", create)
        .await
        .expect_error(409, "agent_unavailable");
    let all = app.admin(Method::GET, "/api/tasks", None).await.expect(200);
    assert_eq!(all["items"].as_array().expect("items").len(), 2, "no task was created");
    app.admin(Method::POST, "/api/agents/bob/claim", None)
        .await
        .expect_error(409, "agent_unavailable");
    assert_eq!(fetch_task(&app, &bobs).await["status"], "ready");

    // Work can still go to others, and to bob once he is back.
    let to_carol = Some(json!({"agentId": "carol"}));
    app.admin(Method::POST, &task_path(&free, "/assign"), to_carol)
        .await
        .expect(200);
    app.admin(Method::PATCH, "/api/agents/bob", Some(json!({"status": "idle"})))
        .await
        .expect(200);
    let to_bob = Some(json!({"agentId": "bob"}));
    let reassigned = app
        .admin(Method::POST, &task_path(&free, "/assign"), to_bob)
        .await
        .expect(200);
    assert_eq!(reassigned["assigneeId"], bob["id"]);
    app.stop().await;
}

async fn admin_token_works_everywhere(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (lead, _) = app.register(json!({"name": "lena", "level": "lead"})).await;
    let (alice, alice_token) = app.agent("alice").await;
    let patch = json!({"level": "intern", "leadId": "lena", "role": "junior", "status": "suspended"});
    let patched = app
        .admin(Method::PATCH, "/api/agents/alice", Some(patch))
        .await
        .expect(200);
    assert_eq!(patched["level"], "intern");
    assert_eq!(patched["leadId"], lead["id"]);
    assert_eq!(patched["status"], "suspended");
    app.admin(
        Method::PATCH,
        "/api/agents/alice",
        Some(json!({"status": "idle", "leadId": null})),
    )
    .await
    .expect(200);
    let beat = app
        .admin(Method::POST, "/api/agents/alice/heartbeat", None)
        .await
        .expect(200);
    assert_eq!(beat["status"], "active");
    let rotated = app
        .admin(Method::POST, "/api/agents/alice/token/rotate", None)
        .await
        .expect(200);
    let alice_token_now = rotated["token"].as_str().expect("token").to_string();
    app.call(Method::GET, "/api/agents", Some(&alice_token), None)
        .await
        .expect_error(401, "unauthorized");

    // Tasks: create, assign, claim for the agent, transition, complete, fail, dependencies, delete.
    let by_agent = app
        .call(
            Method::POST,
            "/api/tasks",
            Some(&alice_token_now),
            Some(json!({"title": "by alice"})),
        )
        .await
        .expect(201);
    let task = app.task(json!({"title": "admin's"})).await;
    assert_eq!(task["createdBy"], "admin");
    app.admin(Method::PATCH, &task_path(&task, ""), Some(json!({"priority": "P0"})))
        .await
        .expect(200);
    app.admin(
        Method::POST,
        &task_path(&task, "/assign"),
        Some(json!({"agentId": "alice"})),
    )
    .await
    .expect(200);
    let claimed = app
        .admin(Method::POST, "/api/agents/alice/claim", None)
        .await
        .expect(200);
    assert_eq!(claimed["id"], task["id"]);
    let fail = json!({"errorKind": "flaky", "message": "retry"});
    app.admin(Method::POST, &task_path(&task, "/fail"), Some(fail))
        .await
        .expect(200);
    app.admin(
        Method::POST,
        &task_path(&task, "/transition"),
        Some(json!({"to": "in_progress"})),
    )
    .await
    .expect(200);
    let done = app
        .admin(
            Method::POST,
            &task_path(&task, "/complete"),
            Some(json!({"outcome": "done"})),
        )
        .await
        .expect(200);
    assert_eq!(done["status"], "done");
    let dep = json!({"blockedBy": id(&task)});
    app.admin(Method::POST, &task_path(&by_agent, "/dependencies"), Some(dep))
        .await
        .expect(201);
    let blocker = format!("/dependencies/{}", id(&task));
    app.admin(Method::DELETE, &task_path(&by_agent, &blocker), None)
        .await
        .expect(200);
    app.admin(Method::DELETE, &task_path(&by_agent, ""), None)
        .await
        .expect(200);
    app.admin(Method::GET, "/api/activity", None).await.expect(200);

    let deleted = app.admin(Method::DELETE, "/api/agents/alice", None).await.expect(200);
    assert_eq!(deleted["agent"]["id"], alice["id"]);
    app.stop().await;
}

on_both_backends!(
    missing_token_is_401,
    unknown_token_is_401,
    malformed_authorization_header_is_401,
    healthz_needs_no_auth,
    agent_token_can_read_agents_tasks_and_activity,
    agent_cannot_manage_agents_or_its_own_org_fields,
    agent_can_patch_its_own_profile,
    agent_cannot_act_for_another_agent,
    agent_works_only_on_tasks_assigned_to_it,
    agent_may_take_an_unassigned_task_only_for_itself,
    only_the_creator_may_delete_a_task,
    suspended_agent_token_is_refused_until_unsuspended,
    suspended_agent_cannot_be_given_work,
    admin_token_works_everywhere,
);
