//! Task dependencies over HTTP: adding and removing edges, cycles, blocking and unblocking.

use crate::common::*;
use crate::on_both_backends;
use reqwest::Method;
use serde_json::{json, Value};

async fn add_dep(app: &TestApp, task: &str, blocker: &str) -> Reply {
    app.admin(
        Method::POST,
        &format!("/api/tasks/{task}/dependencies"),
        Some(json!({ "blockedBy": blocker })),
    )
    .await
}

async fn remove_dep(app: &TestApp, task: &str, blocker: &str) -> Reply {
    app.admin(
        Method::DELETE,
        &format!("/api/tasks/{task}/dependencies/{blocker}"),
        None,
    )
    .await
}

/// Claims the agent's next task (which must be `task`) and completes it as done.
async fn finish(app: &TestApp, agent: &str, task: &str) -> Value {
    let claimed = app
        .admin(Method::POST, &format!("/api/agents/{agent}/claim"), None)
        .await
        .expect(200);
    assert_eq!(id(&claimed), task, "{agent} claimed another task");
    app.admin(
        Method::POST,
        &format!("/api/tasks/{task}/complete"),
        Some(json!({"outcome": "done"})),
    )
    .await
    .expect(200)
}

/// The ids in a `blockedBy` or `blocks` list.
fn ref_ids(refs: &Value) -> Vec<String> {
    let mut ids: Vec<String> = array(refs).iter().map(id).collect();
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

async fn add_dependency_blocks_the_task(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (alice, _) = app.agent("alice").await;
    let task = app.task(json!({"title": "Dependent", "assigneeId": "alice"})).await;
    let blocker = app.task(json!({"title": "Blocker"})).await;
    let (tid, bid) = (id(&task), id(&blocker));
    assert_eq!(task["status"], "ready");

    let detail = add_dep(&app, &tid, &bid).await.expect(201);
    assert_eq!(detail["id"], task["id"]);
    assert_eq!(detail["status"], "blocked");
    assert_eq!(detail["assigneeId"], alice["id"], "blocking keeps the assignee");
    assert_eq!(
        detail["blockedBy"],
        json!([{"id": bid, "title": "Blocker", "status": "backlog"}])
    );
    assert_eq!(detail["blocks"], json!([]));

    let fetched = get_task(&app, &tid).await;
    assert_eq!(fetched["status"], "blocked");
    assert_eq!(
        fetched["blockedBy"],
        json!([{"id": bid, "title": "Blocker", "status": "backlog"}])
    );
    assert_eq!(fetched["blocks"], json!([]));
    let fetched_blocker = get_task(&app, &bid).await;
    assert_eq!(fetched_blocker["status"], "backlog");
    assert_eq!(fetched_blocker["blockedBy"], json!([]));
    assert_eq!(
        fetched_blocker["blocks"],
        json!([{"id": tid, "title": "Dependent", "status": "blocked"}])
    );

    // The list (read from the store) agrees.
    let blocked = app
        .admin(Method::GET, "/api/tasks?status=blocked", None)
        .await
        .expect(200);
    assert_eq!(array(&blocked["items"]).len(), 1);
    assert_eq!(blocked["items"][0]["id"], task["id"]);

    // The same edge again: 200 and nothing changes.
    let again = add_dep(&app, &tid, &bid).await.expect(200);
    assert_eq!(again["status"], "blocked");
    assert_eq!(ref_ids(&again["blockedBy"]), vec![bid.clone()]);
    assert_eq!(array(&get_task(&app, &bid).await["blocks"]).len(), 1);
    app.stop().await;
}

async fn self_dependency_is_a_cycle(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let task = app.task(json!({"title": "Me"})).await;
    let tid = id(&task);
    add_dep(&app, &tid, &tid).await.expect_error(409, "dependency_cycle");
    let fetched = get_task(&app, &tid).await;
    assert_eq!(fetched["status"], "backlog");
    assert_eq!(fetched["blockedBy"], json!([]));
    assert_eq!(fetched["blocks"], json!([]));
    app.stop().await;
}

async fn direct_cycle_is_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let a = id(&app.task(json!({"title": "A"})).await);
    let b = id(&app.task(json!({"title": "B"})).await);
    add_dep(&app, &a, &b).await.expect(201);

    let body = add_dep(&app, &b, &a).await.expect_error(409, "dependency_cycle");
    let cycle: Vec<String> = body["error"]["details"]["cycle"]
        .as_array()
        .unwrap_or_else(|| panic!("details.cycle missing: {body}"))
        .iter()
        .map(text)
        .collect();
    assert_eq!(cycle, vec![b.clone(), a.clone(), b.clone()], "{body}");

    // Nothing changed: B is not blocked and has no blockers; A still waits for B only.
    let fetched_b = get_task(&app, &b).await;
    assert_eq!(fetched_b["status"], "backlog");
    assert_eq!(fetched_b["blockedBy"], json!([]));
    assert_eq!(ref_ids(&fetched_b["blocks"]), vec![a.clone()]);
    let fetched_a = get_task(&app, &a).await;
    assert_eq!(fetched_a["status"], "blocked");
    assert_eq!(ref_ids(&fetched_a["blockedBy"]), vec![b.clone()]);
    assert_eq!(fetched_a["blocks"], json!([]));
    app.stop().await;
}

async fn three_cycle_is_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let a = id(&app.task(json!({"title": "A"})).await);
    let b = id(&app.task(json!({"title": "B"})).await);
    let c = id(&app.task(json!({"title": "C"})).await);
    add_dep(&app, &a, &b).await.expect(201);
    add_dep(&app, &b, &c).await.expect(201);

    let body = add_dep(&app, &c, &a).await.expect_error(409, "dependency_cycle");
    let cycle: Vec<String> = body["error"]["details"]["cycle"]
        .as_array()
        .unwrap_or_else(|| panic!("details.cycle missing: {body}"))
        .iter()
        .map(text)
        .collect();
    assert_eq!(cycle, vec![c.clone(), a.clone(), b.clone(), c.clone()], "{body}");

    let fetched_c = get_task(&app, &c).await;
    assert_eq!(fetched_c["status"], "backlog", "C was not blocked");
    assert_eq!(fetched_c["blockedBy"], json!([]));
    assert_eq!(ref_ids(&fetched_c["blocks"]), vec![b.clone()]);
    assert_eq!(get_task(&app, &a).await["blocks"], json!([]));

    // A redundant edge that closes no cycle is fine.
    add_dep(&app, &a, &c).await.expect(201);
    assert_eq!(
        ref_ids(&get_task(&app, &a).await["blockedBy"]),
        sorted(vec![b.clone(), c.clone()])
    );
    app.stop().await;
}

async fn unknown_blocker_or_task(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let task = app.task(json!({"title": "Lonely"})).await;
    let tid = id(&task);
    add_dep(&app, &tid, "no-such-task")
        .await
        .expect_error(404, "task_not_found");
    add_dep(&app, "no-such-task", &tid)
        .await
        .expect_error(404, "task_not_found");
    let fetched = get_task(&app, &tid).await;
    assert_eq!(fetched["status"], "backlog");
    assert_eq!(fetched["blockedBy"], json!([]));
    assert_eq!(fetched["blocks"], json!([]));
    app.admin(Method::POST, &format!("/api/tasks/{tid}/dependencies"), Some(json!({})))
        .await
        .expect_error(400, "validation_failed");
    app.stop().await;
}

async fn blocked_task_cannot_move_forward(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let a = id(&app.task(json!({"title": "A"})).await);
    let b = id(&app.task(json!({"title": "B"})).await);
    add_dep(&app, &a, &b).await.expect(201);

    let body = move_to(&app, &a, "ready")
        .await
        .expect_error(409, "blocked_by_dependencies");
    assert_eq!(body["error"]["details"]["blockedBy"], json!([b]));
    assert_eq!(get_task(&app, &a).await["status"], "blocked");

    // Waiting in the backlog is allowed, but moving on from there is not.
    move_to(&app, &a, "backlog").await.expect(200);
    let body = move_to(&app, &a, "ready")
        .await
        .expect_error(409, "blocked_by_dependencies");
    assert_eq!(body["error"]["details"]["blockedBy"], json!([b]));
    assert_eq!(get_task(&app, &a).await["status"], "backlog");

    // Cancelling is always allowed.
    move_to(&app, &a, "cancelled").await.expect(200);
    app.stop().await;
}

async fn finishing_the_blocker_unblocks(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.agent("alice").await;
    let dependent = id(&app.task(json!({"title": "Dependent"})).await);
    let blocker = id(&app.task(json!({"title": "Blocker", "assigneeId": "alice"})).await);
    add_dep(&app, &dependent, &blocker).await.expect(201);
    assert_eq!(get_task(&app, &dependent).await["status"], "blocked");

    // In progress is not finished yet.
    let claimed = app
        .admin(Method::POST, "/api/agents/alice/claim", None)
        .await
        .expect(200);
    assert_eq!(id(&claimed), blocker);
    assert_eq!(get_task(&app, &dependent).await["status"], "blocked");

    let done = app
        .admin(
            Method::POST,
            &format!("/api/tasks/{blocker}/complete"),
            Some(json!({"outcome": "done"})),
        )
        .await
        .expect(200);
    assert_eq!(done["status"], "done");

    let fetched = get_task(&app, &dependent).await;
    assert_eq!(fetched["status"], "ready");
    assert_eq!(
        fetched["blockedBy"],
        json!([{"id": blocker, "title": "Blocker", "status": "done"}])
    );
    let ready = app
        .admin(Method::GET, "/api/tasks?status=ready", None)
        .await
        .expect(200);
    assert_eq!(
        ready["items"][0]["id"],
        json!(dependent),
        "the store has the unblocked status"
    );

    let unblocked = app
        .admin(
            Method::GET,
            &format!("/api/activity?kind=task_unblocked&taskId={dependent}"),
            None,
        )
        .await
        .expect(200);
    let rows = array(&unblocked["items"]);
    assert_eq!(rows.len(), 1, "{unblocked}");
    assert_eq!(rows[0]["kind"], "task_unblocked");
    assert_eq!(rows[0]["taskId"], json!(dependent));
    assert_eq!(rows[0]["actorKind"], "system");
    app.stop().await;
}

async fn two_blockers_need_both_finished(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.agent("alice").await;
    app.agent("bob").await;
    let dependent = id(&app.task(json!({"title": "Dependent"})).await);
    let first = id(&app.task(json!({"title": "First", "assigneeId": "alice"})).await);
    let second = id(&app.task(json!({"title": "Second", "assigneeId": "bob"})).await);
    add_dep(&app, &dependent, &first).await.expect(201);
    let detail = add_dep(&app, &dependent, &second).await.expect(201);
    assert_eq!(detail["status"], "blocked");
    assert_eq!(
        ref_ids(&detail["blockedBy"]),
        sorted(vec![first.clone(), second.clone()])
    );

    finish(&app, "alice", &first).await;
    let fetched = get_task(&app, &dependent).await;
    assert_eq!(fetched["status"], "blocked", "one unfinished blocker keeps it blocked");
    let body = move_to(&app, &dependent, "ready")
        .await
        .expect_error(409, "blocked_by_dependencies");
    assert_eq!(body["error"]["details"]["blockedBy"], json!([second]));

    finish(&app, "bob", &second).await;
    assert_eq!(get_task(&app, &dependent).await["status"], "ready");
    app.stop().await;
}

async fn removing_a_dependency_releases(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let a = id(&app.task(json!({"title": "A"})).await);
    let b = id(&app.task(json!({"title": "B"})).await);
    let c = id(&app.task(json!({"title": "C"})).await);
    add_dep(&app, &a, &b).await.expect(201);
    add_dep(&app, &a, &c).await.expect(201);

    let detail = remove_dep(&app, &a, &b).await.expect(200);
    assert_eq!(detail["status"], "blocked", "C still blocks A");
    assert_eq!(ref_ids(&detail["blockedBy"]), vec![c.clone()]);
    assert_eq!(get_task(&app, &b).await["blocks"], json!([]));

    let detail = remove_dep(&app, &a, &c).await.expect(200);
    assert_eq!(detail["id"], json!(a));
    assert_eq!(detail["status"], "ready");
    assert_eq!(detail["blockedBy"], json!([]));
    let fetched = get_task(&app, &a).await;
    assert_eq!(fetched["status"], "ready");
    assert_eq!(fetched["blockedBy"], json!([]));
    assert_eq!(get_task(&app, &c).await["blocks"], json!([]));

    remove_dep(&app, &a, &c).await.expect_error(404, "dependency_not_found");
    remove_dep(&app, &b, &a).await.expect_error(404, "dependency_not_found");
    remove_dep(&app, &a, "no-such-task")
        .await
        .expect_error(404, "dependency_not_found");
    remove_dep(&app, "no-such-task", &a)
        .await
        .expect_error(404, "task_not_found");
    app.stop().await;
}

async fn done_blocker_does_not_block(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.agent("alice").await;
    let blocker = id(&app.task(json!({"title": "Already done", "assigneeId": "alice"})).await);
    finish(&app, "alice", &blocker).await;
    let task = id(&app.task(json!({"title": "Later"})).await);

    let detail = add_dep(&app, &task, &blocker).await.expect(201);
    assert_eq!(detail["status"], "backlog");
    assert_eq!(
        detail["blockedBy"],
        json!([{"id": blocker, "title": "Already done", "status": "done"}])
    );
    assert_eq!(
        get_task(&app, &blocker).await["blocks"],
        json!([{"id": task, "title": "Later", "status": "backlog"}])
    );
    move_to(&app, &task, "ready").await.expect(200);
    app.stop().await;
}

async fn cancelled_blocker_keeps_blocking(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let a = id(&app.task(json!({"title": "A"})).await);
    let b = id(&app.task(json!({"title": "B"})).await);
    add_dep(&app, &a, &b).await.expect(201);
    move_to(&app, &b, "cancelled").await.expect(200);
    let fetched = get_task(&app, &a).await;
    assert_eq!(fetched["status"], "blocked");
    assert_eq!(fetched["blockedBy"][0]["status"], "cancelled");
    move_to(&app, &a, "ready")
        .await
        .expect_error(409, "blocked_by_dependencies");
    remove_dep(&app, &a, &b).await.expect(200);
    assert_eq!(get_task(&app, &a).await["status"], "ready");
    app.stop().await;
}

async fn deleting_the_blocker_unblocks(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let a = id(&app.task(json!({"title": "A"})).await);
    let b = id(&app.task(json!({"title": "B"})).await);
    add_dep(&app, &a, &b).await.expect(201);
    assert_eq!(get_task(&app, &a).await["status"], "blocked");

    app.admin(Method::DELETE, &format!("/api/tasks/{b}"), None)
        .await
        .expect(200);
    let fetched = get_task(&app, &a).await;
    assert_eq!(fetched["status"], "ready");
    assert_eq!(fetched["blockedBy"], json!([]));
    let listed = app
        .admin(Method::GET, "/api/tasks?status=ready", None)
        .await
        .expect(200);
    assert_eq!(listed["items"][0]["id"], json!(a));
    remove_dep(&app, &a, &b).await.expect_error(404, "dependency_not_found");
    app.stop().await;
}

async fn finished_task_cannot_get_dependencies(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.agent("alice").await;
    let done = id(&app.task(json!({"title": "Done", "assigneeId": "alice"})).await);
    finish(&app, "alice", &done).await;
    let other = id(&app.task(json!({"title": "Other"})).await);

    add_dep(&app, &done, &other).await.expect_error(409, "task_finished");
    let fetched = get_task(&app, &done).await;
    assert_eq!(fetched["status"], "done");
    assert_eq!(fetched["blockedBy"], json!([]));
    assert_eq!(get_task(&app, &other).await["blocks"], json!([]));

    let cancelled = id(&app.task(json!({"title": "Cancelled"})).await);
    move_to(&app, &cancelled, "cancelled").await.expect(200);
    add_dep(&app, &cancelled, &other)
        .await
        .expect_error(409, "task_finished");
    app.stop().await;
}

on_both_backends!(
    add_dependency_blocks_the_task,
    self_dependency_is_a_cycle,
    direct_cycle_is_refused,
    three_cycle_is_refused,
    unknown_blocker_or_task,
    blocked_task_cannot_move_forward,
    finishing_the_blocker_unblocks,
    two_blockers_need_both_finished,
    removing_a_dependency_releases,
    done_blocker_does_not_block,
    cancelled_blocker_keeps_blocking,
    deleting_the_blocker_unblocks,
    finished_task_cannot_get_dependencies,
);
