//! `/api/agents`: registration, listing, reading, patching, deletion, token rotation, heartbeats and the
//! heartbeat monitor.

// A reply without the expected shape should fail the test on the spot.

use crate::common::*;
use crate::on_both_backends;
use mission_control::Clock;
use reqwest::Method;
use serde_json::{json, Value};

/// The agent as the admin reads it now.
async fn fetch(app: &TestApp, key: &str) -> Value {
    app.admin(Method::GET, &format!("/api/agents/{key}"), None)
        .await
        .expect(200)
}

/// The names on one page of a listing, in order.
fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|a| a["name"].as_str().expect("name").to_string())
        .collect()
}

/// The names returned by `GET /api/agents?{query}` (one page).
async fn listed(app: &TestApp, query: &str) -> Vec<String> {
    names(
        &app.admin(Method::GET, &format!("/api/agents?{query}"), None)
            .await
            .expect(200),
    )
}

/// The ids of the rows of one page of a listing.
fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().expect("items").iter().map(id).collect()
}

#[track_caller]
fn assert_field(body: &Value, field: &str) {
    assert_eq!(body["error"]["details"]["field"], field, "body: {body}");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.starts_with(field), "message should start with {field}: {body}");
}

async fn register_returns_token_and_applies_defaults(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let reply = app
        .admin(Method::POST, "/api/agents", Some(json!({"name": "MixedCase_Name-2"})))
        .await
        .expect(201);
    let token = reply["token"].as_str().expect("token");
    assert!(!token.is_empty());
    let agent = &reply["agent"];
    assert_eq!(agent["name"], "mixedcase_name-2");
    assert_eq!(agent["role"], "");
    assert_eq!(agent["level"], "specialist");
    assert_eq!(agent["kind"], "external");
    assert_eq!(agent["status"], "idle");
    assert_eq!(agent["leadId"], Value::Null);
    assert_eq!(agent["specializations"], json!([]));
    assert_eq!(
        agent["constraints"],
        json!({"hasInternet": true, "canRunGpu": false, "maxMemoryMb": 4096, "preferAsync": true})
    );
    assert_eq!(agent["maxConcurrentTasks"], 3);
    assert_eq!(agent["maxMinutesPerDay"], 480);
    assert_eq!(agent["currentTaskId"], Value::Null);
    assert_eq!(agent["lastHeartbeatAt"], Value::Null);
    assert_eq!(agent["createdAt"], app.clock.now_ms());
    assert!(
        reply["agent"].get("token").is_none(),
        "the token is not part of the agent"
    );

    // The token authenticates as that agent.
    let own = app
        .call(Method::GET, "/api/agents/mixedcase_name-2", Some(token), None)
        .await
        .expect(200);
    assert_eq!(own["id"], agent["id"]);

    // Explicit values are kept; a lead can be named by name and is stored as its id.
    let full = json!({
        "name": "Bob",
        "role": "reviewer",
        "level": "intern",
        "kind": "llm",
        "leadId": "MixedCase_Name-2",
        "specializations": ["rust", "sql"],
        "constraints": {"canRunGpu": true},
        "maxConcurrentTasks": 7,
        "maxMinutesPerDay": 60
    });
    let (bob, _) = app.register(full).await;
    assert_eq!(bob["name"], "bob");
    assert_eq!(bob["role"], "reviewer");
    assert_eq!(bob["level"], "intern");
    assert_eq!(bob["kind"], "llm");
    assert_eq!(bob["leadId"], agent["id"]);
    assert_eq!(bob["specializations"], json!(["rust", "sql"]));
    assert_eq!(
        bob["constraints"],
        json!({"hasInternet": true, "canRunGpu": true, "maxMemoryMb": 4096, "preferAsync": true})
    );
    assert_eq!(bob["maxConcurrentTasks"], 7);
    assert_eq!(bob["maxMinutesPerDay"], 60);
    assert_eq!(bob["status"], "idle");
    assert_eq!(fetch(&app, "bob").await, bob);
    app.stop().await;
}

async fn duplicate_name_is_refused_and_the_first_agent_is_unchanged(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (first, token) = app
        .register(json!({"name": "alice", "role": "first", "level": "lead"}))
        .await;
    for name in ["alice", "ALICE", "Alice"] {
        let body = json!({"name": name, "role": "second", "level": "intern"});
        app.admin(Method::POST, "/api/agents", Some(body))
            .await
            .expect_error(409, "duplicate_name");
    }
    assert_eq!(fetch(&app, "alice").await, first);
    let all = app.admin(Method::GET, "/api/agents", None).await.expect(200);
    assert_eq!(ids(&all), vec![id(&first)]);
    // The first agent's token still works.
    let own = app
        .call(Method::GET, &format!("/api/agents/{}", id(&first)), Some(&token), None)
        .await
        .expect(200);
    assert_eq!(own["role"], "first");
    app.stop().await;
}

async fn invalid_registrations_name_the_field(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let long_name = format!("a{}", "b".repeat(50));
    let cases = [
        (json!({"name": "a"}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": long_name}), "name"),
        (json!({"name": "1abc"}), "name"),
        (json!({"name": "_abc"}), "name"),
        (json!({"name": "has space"}), "name"),
        (json!({"name": "bad!name"}), "name"),
        (json!({"name": "ok", "maxConcurrentTasks": 0}), "maxConcurrentTasks"),
        (json!({"name": "ok", "maxConcurrentTasks": 101}), "maxConcurrentTasks"),
        (
            json!({"name": "ok", "maxConcurrentTasks": "three"}),
            "maxConcurrentTasks",
        ),
        (json!({"name": "ok", "maxMinutesPerDay": 0}), "maxMinutesPerDay"),
        (json!({"name": "ok", "maxMinutesPerDay": 1441}), "maxMinutesPerDay"),
        (json!({"name": "ok", "level": "boss"}), "level"),
        (json!({"name": "ok", "kind": "robot"}), "kind"),
    ];
    for (body, field) in cases {
        let reply = app.admin(Method::POST, "/api/agents", Some(body.clone())).await;
        let error = reply.expect_error(400, "validation_failed");
        assert_field(&error, field);
    }
    let none = app.admin(Method::GET, "/api/agents", None).await.expect(200);
    assert_eq!(none["items"], json!([]), "nothing was registered");

    // The boundaries themselves are accepted.
    let fifty = format!("a{}", "b".repeat(49));
    let ok = [
        json!({"name": "ab", "maxConcurrentTasks": 1, "maxMinutesPerDay": 1}),
        json!({"name": fifty, "maxConcurrentTasks": 100, "maxMinutesPerDay": 1440}),
        json!({"name": "x_1-y"}),
    ];
    for body in ok {
        app.admin(Method::POST, "/api/agents", Some(body)).await.expect(201);
    }
    app.stop().await;
}

async fn unknown_lead_is_404(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let body = json!({"name": "bob", "leadId": "ghost"});
    app.admin(Method::POST, "/api/agents", Some(body))
        .await
        .expect_error(404, "agent_not_found");
    app.admin(Method::GET, "/api/agents/bob", None)
        .await
        .expect_error(404, "agent_not_found");
    app.stop().await;
}

async fn list_filters_by_status_level_and_specialization(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.register(json!({"name": "lena", "level": "lead", "specializations": ["rust"]}))
        .await;
    app.register(json!({"name": "bob", "specializations": ["python", "rust"]}))
        .await;
    app.register(json!({"name": "carol", "level": "intern", "specializations": ["python"]}))
        .await;
    app.register(json!({"name": "dave", "level": "intern"})).await;
    app.admin(Method::POST, "/api/agents/bob/heartbeat", None)
        .await
        .expect(200);

    assert_eq!(listed(&app, "").await, ["lena", "bob", "carol", "dave"]);
    assert_eq!(listed(&app, "status=active").await, ["bob"]);
    assert_eq!(listed(&app, "status=idle").await, ["lena", "carol", "dave"]);
    assert!(listed(&app, "status=offline").await.is_empty());
    assert_eq!(listed(&app, "level=intern").await, ["carol", "dave"]);
    assert_eq!(listed(&app, "level=lead").await, ["lena"]);
    assert_eq!(listed(&app, "specialization=python").await, ["bob", "carol"]);
    assert_eq!(listed(&app, "specialization=rust").await, ["lena", "bob"]);
    assert!(listed(&app, "specialization=go").await.is_empty());
    assert_eq!(listed(&app, "level=intern&specialization=python").await, ["carol"]);
    assert_eq!(listed(&app, "status=idle&specialization=rust").await, ["lena"]);

    for bad in ["status=sleeping", "level=boss", "bogus=1"] {
        app.admin(Method::GET, &format!("/api/agents?{bad}"), None)
            .await
            .expect_error(400, "validation_failed");
    }
    app.stop().await;
}

async fn list_pages_with_a_cursor(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let registered = ["a1", "a2", "a3", "a4", "a5"];
    for name in registered {
        app.agent(name).await;
    }

    // limit=1 walks every agent, one per page, in registration order.
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/api/agents?limit=1&cursor={c}"),
            None => "/api/agents?limit=1".to_string(),
        };
        let page = app.admin(Method::GET, &path, None).await.expect(200);
        assert_eq!(page["items"].as_array().expect("items").len(), 1, "page: {page}");
        walked.extend(names(&page));
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(walked, registered);

    // limit=2: pages of 2, 2 and 1; the last one has no cursor.
    let first = app.admin(Method::GET, "/api/agents?limit=2", None).await.expect(200);
    assert_eq!(names(&first), ["a1", "a2"]);
    let next = first["nextCursor"].as_str().expect("cursor");
    let second = app
        .admin(Method::GET, &format!("/api/agents?limit=2&cursor={next}"), None)
        .await
        .expect(200);
    assert_eq!(names(&second), ["a3", "a4"]);
    let next = second["nextCursor"].as_str().expect("cursor");
    let third = app
        .admin(Method::GET, &format!("/api/agents?limit=2&cursor={next}"), None)
        .await
        .expect(200);
    assert_eq!(names(&third), ["a5"]);
    assert_eq!(third["nextCursor"], Value::Null);

    // limit=5 fits all: no next page.
    let all = app.admin(Method::GET, "/api/agents?limit=5", None).await.expect(200);
    assert_eq!(names(&all), registered);
    assert_eq!(all["nextCursor"], Value::Null);
    app.admin(Method::GET, "/api/agents?limit=100", None).await.expect(200);

    for bad in ["limit=0", "limit=101", "limit=-1", "limit=abc"] {
        app.admin(Method::GET, &format!("/api/agents?{bad}"), None)
            .await
            .expect_error(400, "validation_failed");
    }
    app.stop().await;
}

async fn get_by_id_and_by_name(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (alice, _) = app.register(json!({"name": "alice", "role": "writer"})).await;
    let by_id = fetch(&app, &id(&alice)).await;
    let by_name = fetch(&app, "alice").await;
    assert_eq!(by_id, alice);
    assert_eq!(by_name, alice);
    app.admin(Method::GET, "/api/agents/nobody", None)
        .await
        .expect_error(404, "agent_not_found");
    let unknown_id = "01890a5d-ac96-774b-bcce-b302099a8057";
    app.admin(Method::GET, &format!("/api/agents/{unknown_id}"), None)
        .await
        .expect_error(404, "agent_not_found");
    app.stop().await;
}

async fn patch_changes_fields_and_sets_and_clears_the_lead(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (lead, _) = app.register(json!({"name": "lena", "level": "lead"})).await;
    let (bob, _) = app.agent("bob").await;
    app.clock.advance_ms(5_000);

    let patch = json!({
        "role": "backend",
        "level": "lead",
        "specializations": ["rust"],
        "constraints": {"hasInternet": false, "canRunGpu": true, "maxMemoryMb": 8192, "preferAsync": false},
        "status": "blocked",
        "maxConcurrentTasks": 10,
        "maxMinutesPerDay": 600
    });
    let patched = app
        .admin(Method::PATCH, "/api/agents/bob", Some(patch))
        .await
        .expect(200);
    assert_eq!(patched["role"], "backend");
    assert_eq!(patched["level"], "lead");
    assert_eq!(patched["specializations"], json!(["rust"]));
    assert_eq!(
        patched["constraints"],
        json!({"hasInternet": false, "canRunGpu": true, "maxMemoryMb": 8192, "preferAsync": false})
    );
    assert_eq!(patched["status"], "blocked");
    assert_eq!(patched["maxConcurrentTasks"], 10);
    assert_eq!(patched["maxMinutesPerDay"], 600);
    assert_eq!(patched["name"], "bob");
    assert_eq!(patched["createdAt"], bob["createdAt"]);
    assert_eq!(patched["updatedAt"], app.clock.now_ms());
    assert_eq!(fetch(&app, "bob").await, patched);

    // leadId by name is stored as the lead's id; absent leaves it; null clears it.
    let with_lead = app
        .admin(Method::PATCH, "/api/agents/bob", Some(json!({"leadId": "lena"})))
        .await
        .expect(200);
    assert_eq!(with_lead["leadId"], lead["id"]);
    let kept = app
        .admin(Method::PATCH, "/api/agents/bob", Some(json!({"role": "api"})))
        .await
        .expect(200);
    assert_eq!(kept["leadId"], lead["id"]);
    assert_eq!(kept["role"], "api");
    let cleared = app
        .admin(Method::PATCH, "/api/agents/bob", Some(json!({"leadId": null})))
        .await
        .expect(200);
    assert_eq!(cleared["leadId"], Value::Null);
    assert_eq!(fetch(&app, "bob").await["leadId"], Value::Null);
    let by_id = json!({"leadId": id(&lead)});
    let with_lead = app
        .admin(Method::PATCH, &format!("/api/agents/{}", id(&bob)), Some(by_id))
        .await
        .expect(200);
    assert_eq!(with_lead["leadId"], lead["id"]);

    // An agent cannot be its own lead, by id or by name; nothing changes.
    let before = fetch(&app, "bob").await;
    for me in [id(&bob), "bob".to_string()] {
        let reply = app
            .admin(Method::PATCH, "/api/agents/bob", Some(json!({"leadId": me})))
            .await;
        assert_field(&reply.expect_error(400, "validation_failed"), "leadId");
    }
    // Unknown lead, out-of-range limits: refused, nothing changes.
    let ghost = json!({"leadId": "ghost", "role": "changed"});
    app.admin(Method::PATCH, "/api/agents/bob", Some(ghost))
        .await
        .expect_error(404, "agent_not_found");
    for (body, field) in [
        (
            json!({"maxConcurrentTasks": 0, "role": "changed"}),
            "maxConcurrentTasks",
        ),
        (json!({"maxConcurrentTasks": 101}), "maxConcurrentTasks"),
        (json!({"maxMinutesPerDay": 1441}), "maxMinutesPerDay"),
        (json!({"level": "boss"}), "level"),
    ] {
        let reply = app.admin(Method::PATCH, "/api/agents/bob", Some(body)).await;
        assert_field(&reply.expect_error(400, "validation_failed"), field);
    }
    assert_eq!(fetch(&app, "bob").await, before);

    app.admin(Method::PATCH, "/api/agents/ghost", Some(json!({"role": "x"})))
        .await
        .expect_error(404, "agent_not_found");
    app.stop().await;
}

async fn delete_removes_the_agent(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (alice, token) = app.agent("alice").await;
    app.agent("bob").await;
    let reply = app.admin(Method::DELETE, "/api/agents/alice", None).await.expect(200);
    assert_eq!(reply["agent"]["id"], alice["id"]);
    assert_eq!(reply["releasedTaskIds"], json!([]));
    app.admin(Method::GET, "/api/agents/alice", None)
        .await
        .expect_error(404, "agent_not_found");
    app.admin(Method::GET, &format!("/api/agents/{}", id(&alice)), None)
        .await
        .expect_error(404, "agent_not_found");
    app.admin(Method::DELETE, "/api/agents/alice", None)
        .await
        .expect_error(404, "agent_not_found");
    assert_eq!(listed(&app, "").await, ["bob"]);
    // Its token is gone with it.
    app.call(Method::GET, "/api/agents", Some(&token), None)
        .await
        .expect_error(401, "unauthorized");
    // The name is free again.
    app.agent("alice").await;
    app.stop().await;
}

async fn delete_with_open_tasks_needs_force(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (alice, _) = app.agent("alice").await;
    let (bob, _) = app.agent("bob").await;
    let ready = app.task(json!({"title": "ready one", "assigneeId": "alice"})).await;
    let working = app
        .task(json!({"title": "in progress one", "assigneeId": "alice", "priority": "P0"}))
        .await;
    let claimed = app
        .admin(Method::POST, "/api/agents/alice/claim", None)
        .await
        .expect(200);
    assert_eq!(claimed["id"], working["id"]);
    let blocker = app.task(json!({"title": "blocker"})).await;
    let blocked = app.task(json!({"title": "blocked one", "assigneeId": "alice"})).await;
    let dep = json!({"blockedBy": id(&blocker)});
    let path = format!("/api/tasks/{}/dependencies", id(&blocked));
    app.admin(Method::POST, &path, Some(dep)).await.expect(201);
    let finished = app.task(json!({"title": "finished one", "assigneeId": "alice"})).await;
    let path = format!("/api/tasks/{}/transition", id(&finished));
    app.admin(Method::POST, &path, Some(json!({"to": "cancelled"})))
        .await
        .expect(200);
    let others = app.task(json!({"title": "bob's", "assigneeId": "bob"})).await;

    let task_of = |t: &Value| format!("/api/tasks/{}", id(t));
    let mut open = vec![id(&ready), id(&working), id(&blocked)];
    open.sort();
    let before: Vec<Value> = {
        let mut all = Vec::new();
        for t in [&ready, &working, &blocked] {
            all.push(app.admin(Method::GET, &task_of(t), None).await.expect(200));
        }
        all
    };

    let refused = app.admin(Method::DELETE, "/api/agents/alice", None).await;
    let error = refused.expect_error(409, "agent_has_open_tasks");
    let mut listed_ids: Vec<String> = error["error"]["details"]["taskIds"]
        .as_array()
        .expect("details.taskIds")
        .iter()
        .map(|v| v.as_str().expect("task id").to_string())
        .collect();
    listed_ids.sort();
    assert_eq!(listed_ids, open);
    // Nothing changed: the agent and its tasks are as they were, and no deletion was recorded.
    assert_eq!(fetch(&app, "alice").await, alice);
    for (t, was) in [&ready, &working, &blocked].into_iter().zip(&before) {
        assert_eq!(&app.admin(Method::GET, &task_of(t), None).await.expect(200), was);
    }
    let deleted = app
        .admin(Method::GET, "/api/activity?kind=agent_deleted", None)
        .await
        .expect(200);
    assert_eq!(deleted["items"], json!([]));
    let refused = app.admin(Method::DELETE, "/api/agents/alice?force=false", None).await;
    refused.expect_error(409, "agent_has_open_tasks");

    let reply = app
        .admin(Method::DELETE, "/api/agents/alice?force=true", None)
        .await
        .expect(200);
    assert_eq!(reply["agent"]["id"], alice["id"]);
    let mut released: Vec<String> = reply["releasedTaskIds"]
        .as_array()
        .expect("releasedTaskIds")
        .iter()
        .map(|v| v.as_str().expect("task id").to_string())
        .collect();
    released.sort();
    assert_eq!(released, open);
    app.admin(Method::GET, "/api/agents/alice", None)
        .await
        .expect_error(404, "agent_not_found");

    for t in [&ready, &working] {
        let task = app.admin(Method::GET, &task_of(t), None).await.expect(200);
        assert_eq!(task["status"], "ready", "task: {task}");
        assert_eq!(task["assigneeId"], Value::Null, "task: {task}");
    }
    let still_blocked = app.admin(Method::GET, &task_of(&blocked), None).await.expect(200);
    assert_eq!(still_blocked["status"], "blocked");
    assert_eq!(still_blocked["assigneeId"], Value::Null);
    let done = app.admin(Method::GET, &task_of(&finished), None).await.expect(200);
    assert_eq!(done["status"], "cancelled");
    let untouched = app.admin(Method::GET, &task_of(&others), None).await.expect(200);
    assert_eq!(untouched["assigneeId"], bob["id"]);
    assert_eq!(untouched["status"], "ready");
    let deleted = app
        .admin(Method::GET, "/api/activity?kind=agent_deleted", None)
        .await
        .expect(200);
    assert_eq!(deleted["items"].as_array().expect("items").len(), 1);

    // The release is stored: after a restart the agent is still gone and its tasks still free.
    let app = app.restart().await;
    app.admin(Method::GET, "/api/agents/alice", None)
        .await
        .expect_error(404, "agent_not_found");
    for t in [&ready, &working, &blocked] {
        let task = app.admin(Method::GET, &task_of(t), None).await.expect(200);
        assert_eq!(task["assigneeId"], Value::Null, "task: {task}");
    }
    app.stop().await;
}

async fn deleting_a_lead_clears_its_reports_lead(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (boss, _) = app.register(json!({"name": "boss", "level": "lead"})).await;
    let (other, _) = app.register(json!({"name": "other", "level": "lead"})).await;
    app.register(json!({"name": "bob", "leadId": "boss"})).await;
    app.register(json!({"name": "carol", "leadId": id(&boss)})).await;
    app.register(json!({"name": "dave", "leadId": "other"})).await;
    assert_eq!(fetch(&app, "bob").await["leadId"], boss["id"]);

    app.admin(Method::DELETE, "/api/agents/boss", None).await.expect(200);
    assert_eq!(fetch(&app, "bob").await["leadId"], Value::Null);
    assert_eq!(fetch(&app, "carol").await["leadId"], Value::Null);
    assert_eq!(fetch(&app, "dave").await["leadId"], other["id"]);
    let page = app.admin(Method::GET, "/api/agents", None).await.expect(200);
    for agent in page["items"].as_array().expect("items") {
        assert_ne!(agent["leadId"], boss["id"], "agent: {agent}");
    }
    // The cleared leads are stored, not only remembered.
    let app = app.restart().await;
    assert_eq!(fetch(&app, "bob").await["leadId"], Value::Null);
    assert_eq!(fetch(&app, "carol").await["leadId"], Value::Null);
    assert_eq!(fetch(&app, "dave").await["leadId"], other["id"]);
    app.stop().await;
}

async fn token_rotation_replaces_the_token(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (alice, old) = app.agent("alice").await;
    let reply = app
        .admin(Method::POST, "/api/agents/alice/token/rotate", None)
        .await
        .expect(200);
    assert_eq!(reply["agent"]["id"], alice["id"]);
    let new = reply["token"].as_str().expect("token").to_string();
    assert_ne!(new, old);
    app.call(Method::GET, "/api/agents", Some(&old), None)
        .await
        .expect_error(401, "unauthorized");
    let me = app
        .call(Method::GET, "/api/agents/alice", Some(&new), None)
        .await
        .expect(200);
    assert_eq!(me["id"], alice["id"]);

    // The agent may rotate its own token, by id; the previous one dies at once.
    let path = format!("/api/agents/{}/token/rotate", id(&alice));
    let reply = app.call(Method::POST, &path, Some(&new), None).await.expect(200);
    let newest = reply["token"].as_str().expect("token").to_string();
    app.call(Method::GET, "/api/agents", Some(&new), None)
        .await
        .expect_error(401, "unauthorized");
    app.call(Method::GET, "/api/agents", Some(&old), None)
        .await
        .expect_error(401, "unauthorized");
    app.call(Method::GET, "/api/agents", Some(&newest), None)
        .await
        .expect(200);
    let rotated = app
        .admin(Method::GET, "/api/activity?kind=agent_token_rotated", None)
        .await
        .expect(200);
    assert_eq!(rotated["items"].as_array().expect("items").len(), 2);

    // After a restart only the newest token works.
    let app = app.restart().await;
    for stale in [&old, &new] {
        app.call(Method::GET, "/api/agents", Some(stale), None)
            .await
            .expect_error(401, "unauthorized");
    }
    app.call(Method::GET, "/api/agents", Some(&newest), None)
        .await
        .expect(200);

    app.admin(Method::POST, "/api/agents/ghost/token/rotate", None)
        .await
        .expect_error(404, "agent_not_found");
    app.stop().await;
}

async fn heartbeat_records_status_time_and_current_task(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (alice, token) = app.agent("alice").await;
    let task = app.task(json!({"title": "work", "assigneeId": "alice"})).await;
    app.clock.advance_ms(1_234);

    // No body: status active, lastHeartbeatAt = now.
    let beat = app
        .call(Method::POST, "/api/agents/alice/heartbeat", Some(&token), None)
        .await
        .expect(200);
    assert_eq!(beat["id"], alice["id"]);
    assert_eq!(beat["status"], "active");
    assert_eq!(beat["lastHeartbeatAt"], app.clock.now_ms());
    assert_eq!(fetch(&app, "alice").await["lastHeartbeatAt"], app.clock.now_ms());

    // An explicit status and the current task.
    app.clock.advance_ms(10_000);
    let body = json!({"status": "blocked", "currentTaskId": id(&task)});
    let beat = app
        .call(Method::POST, "/api/agents/alice/heartbeat", Some(&token), Some(body))
        .await
        .expect(200);
    assert_eq!(beat["status"], "blocked");
    assert_eq!(beat["currentTaskId"], task["id"]);
    assert_eq!(beat["lastHeartbeatAt"], app.clock.now_ms());
    let stored = fetch(&app, "alice").await;
    assert_eq!(stored["status"], "blocked");
    assert_eq!(stored["currentTaskId"], task["id"]);
    let body = json!({"status": "idle", "currentTaskId": id(&task)});
    let beat = app
        .admin(Method::POST, "/api/agents/alice/heartbeat", Some(body))
        .await
        .expect(200);
    assert_eq!(beat["status"], "idle");

    // Refused heartbeats change nothing.
    let before = fetch(&app, "alice").await;
    app.clock.advance_ms(1_000);
    let unknown = json!({"currentTaskId": "01890a5d-ac96-774b-bcce-b302099a8057"});
    app.admin(Method::POST, "/api/agents/alice/heartbeat", Some(unknown))
        .await
        .expect_error(404, "task_not_found");
    for status in ["offline", "suspended"] {
        let body = json!({"status": status});
        let reply = app.admin(Method::POST, "/api/agents/alice/heartbeat", Some(body)).await;
        assert_field(&reply.expect_error(400, "validation_failed"), "status");
    }
    let bogus = json!({"status": "sleeping"});
    app.admin(Method::POST, "/api/agents/alice/heartbeat", Some(bogus))
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(fetch(&app, "alice").await, before);

    app.admin(Method::POST, "/api/agents/ghost/heartbeat", None)
        .await
        .expect_error(404, "agent_not_found");
    app.stop().await;
}

async fn heartbeat_monitor_marks_silent_active_agents_offline(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (alice, token) = app.agent("alice").await;
    app.agent("bob").await;
    let beat = app
        .call(Method::POST, "/api/agents/alice/heartbeat", Some(&token), None)
        .await
        .expect(200);
    assert_eq!(beat["status"], "active");
    let lost = "/api/activity?kind=agent_heartbeat_lost";

    app.clock.advance_ms(4 * 60_000);
    assert!(app.tick().await.went_offline.is_empty());
    assert_eq!(fetch(&app, "alice").await["status"], "active");

    // Exactly the timeout is not yet "older than" it.
    app.clock.advance_ms(60_000);
    assert!(app.tick().await.went_offline.is_empty());
    assert_eq!(fetch(&app, "alice").await["status"], "active");
    assert_eq!(app.admin(Method::GET, lost, None).await.expect(200)["items"], json!([]));

    app.clock.advance_ms(1_000);
    let report = app.tick().await;
    assert_eq!(report.went_offline, vec!["alice".to_string()]);
    assert_eq!(fetch(&app, "alice").await["status"], "offline");
    assert_eq!(fetch(&app, "bob").await["status"], "idle");
    let feed = app.admin(Method::GET, lost, None).await.expect(200);
    let items = feed["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "feed: {feed}");
    assert_eq!(items[0]["agentId"], alice["id"]);
    assert_eq!(items[0]["kind"], "agent_heartbeat_lost");
    assert_eq!(items[0]["actorKind"], "system");
    assert_eq!(items[0]["createdAt"], app.clock.now_ms());

    // Already offline: later ticks change nothing.
    app.clock.advance_ms(60 * 60_000);
    assert!(app.tick().await.went_offline.is_empty());
    let feed = app.admin(Method::GET, lost, None).await.expect(200);
    assert_eq!(feed["items"].as_array().expect("items").len(), 1);
    // Offline is stored: a restart neither forgets it nor reports it again.
    let app = app.restart().await;
    assert_eq!(fetch(&app, "alice").await["status"], "offline");
    assert!(app.tick().await.went_offline.is_empty());

    // A new heartbeat brings it back, and the clock starts again from there.
    let beat = app
        .call(Method::POST, "/api/agents/alice/heartbeat", Some(&token), None)
        .await
        .expect(200);
    assert_eq!(beat["status"], "active");
    assert_eq!(beat["lastHeartbeatAt"], app.clock.now_ms());
    app.clock.advance_ms(4 * 60_000);
    assert!(app.tick().await.went_offline.is_empty());
    assert_eq!(fetch(&app, "alice").await["status"], "active");
    app.clock.advance_ms(2 * 60_000);
    assert_eq!(app.tick().await.went_offline, vec!["alice".to_string()]);
    app.stop().await;
}

async fn agents_that_are_not_active_are_never_marked_offline(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.agent("silent").await;
    app.agent("idler").await;
    app.agent("stuck").await;
    app.admin(
        Method::POST,
        "/api/agents/idler/heartbeat",
        Some(json!({"status": "idle"})),
    )
    .await
    .expect(200);
    app.admin(
        Method::POST,
        "/api/agents/stuck/heartbeat",
        Some(json!({"status": "blocked"})),
    )
    .await
    .expect(200);

    app.clock.advance_ms(60 * 60_000);
    let report = app.tick().await;
    assert!(report.went_offline.is_empty(), "report: {report:?}");
    assert_eq!(fetch(&app, "silent").await["status"], "idle");
    assert_eq!(fetch(&app, "idler").await["status"], "idle");
    assert_eq!(fetch(&app, "stuck").await["status"], "blocked");
    let feed = app
        .admin(Method::GET, "/api/activity?kind=agent_heartbeat_lost", None)
        .await
        .expect(200);
    assert_eq!(feed["items"], json!([]));
    app.stop().await;
}

on_both_backends!(
    register_returns_token_and_applies_defaults,
    duplicate_name_is_refused_and_the_first_agent_is_unchanged,
    invalid_registrations_name_the_field,
    unknown_lead_is_404,
    list_filters_by_status_level_and_specialization,
    list_pages_with_a_cursor,
    get_by_id_and_by_name,
    patch_changes_fields_and_sets_and_clears_the_lead,
    delete_removes_the_agent,
    delete_with_open_tasks_needs_force,
    deleting_a_lead_clears_its_reports_lead,
    token_rotation_replaces_the_token,
    heartbeat_records_status_time_and_current_task,
    heartbeat_monitor_marks_silent_active_agents_offline,
    agents_that_are_not_active_are_never_marked_offline,
);
