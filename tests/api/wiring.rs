//! End-to-end wiring: each test follows one chain of cause and effect across several actors over HTTP, so a
//! link left unconnected between the task board, the agents' inboxes, the capacity registry and the escalation
//! scheduler shows up here even when each piece passes its own tests.
//!
//! 1. Wake reads the inbox before work: unread mail from agents and from the system, most urgent first, with
//!    the open work and the load, as a heartbeat the monitor and the rules see, without reading the mail.
//! 2. Assignment, claim, a transition into `in_progress` and auto-assignment consult capacity; the admin may
//!    force; finishing work makes room again.
//! 3. Every status change of a task (transition, complete, fail, assign, unassign, dependencies) evaluates the
//!    escalation rules for it at once: firing and resolution are in the history with no tick in between.
//! 4. An SLO breach writes an `slo_breach` escalation and alerts the assignee's lead about the task.
//! 5. A blocker done releases its dependent and tells the dependent's assignee; failing or cancelling it does
//!    neither.
//!
//! No test here calls `tick` unless the behaviour is documented as happening on a tick (the SLO monitor, the
//! heartbeat monitor, time-based triggers); the test configuration runs no timer, so nothing else ticks.

use crate::common::*;
use crate::on_both_backends;
use mission_control::Clock;
use reqwest::Method;
use serde_json::{json, Value};

on_both_backends!(
    wake_returns_unread_mail_from_every_sender_with_open_work_and_load,
    wake_is_a_heartbeat_for_the_monitor_and_the_escalation_rules,
    a_full_agent_is_refused_work_everywhere_until_it_finishes_some,
    an_agent_at_its_utilization_limit_is_refused_like_a_full_one,
    transitions_into_and_out_of_a_matching_status_escalate_and_resolve_at_once,
    completing_and_failing_are_evaluated_at_once,
    assigning_and_unassigning_are_evaluated_at_once,
    dependencies_that_block_and_release_a_task_are_evaluated_at_once,
    an_slo_breach_alerts_the_assignees_lead_and_resolves_when_the_task_finishes,
    a_late_change_writes_the_slo_breach_escalation_without_a_tick,
    the_last_blocker_done_tells_the_assignee_who_can_then_take_the_task,
    a_failed_or_cancelled_blocker_keeps_the_task_blocked_and_sends_no_notice,
);

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

fn now(app: &TestApp) -> i64 {
    app.clock.now_ms()
}

fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(id).collect()
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
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

/// Sends a message from `from` to `to` with `from`'s own token; the send must succeed.
async fn send_as(app: &TestApp, from: &str, token: &str, to: &str, subject: &str, priority: &str) -> Value {
    let body = json!({"toAgentId": to, "type": "status_query", "subject": subject, "priority": priority});
    app.call(
        Method::POST,
        &format!("/api/agents/{from}/messages"),
        Some(token),
        Some(body),
    )
    .await
    .expect(201)
}

/// Every message in an agent's inbox (one page of up to 100), newest first, read as the admin, without assignment notices.
async fn inbox(app: &TestApp, agent: &str) -> Vec<Value> {
    let page = app
        .admin(Method::GET, &format!("/api/agents/{agent}/messages?limit=100"), None)
        .await
        .expect(200);
    other_than_assignment_notices(array(&page["items"]))
}

/// The `blocker_resolved` notices of an agent. The notice is sent after the task's commit, so it may arrive
/// just after the reply that released the task: a long poll waits for it instead of racing it.
async fn notices(app: &TestApp, agent: &str) -> Vec<Value> {
    let page = app
        .admin(
            Method::GET,
            &format!("/api/agents/{agent}/messages?wait=5&type=blocker_resolved&limit=100"),
            None,
        )
        .await
        .expect(200);
    array(&page["items"])
}

/// `POST /api/agents/{agent}/wake` with the agent's own token.
async fn wake(app: &TestApp, agent: &str, token: &str) -> Value {
    app.call(Method::POST, &format!("/api/agents/{agent}/wake"), Some(token), None)
        .await
        .expect(200)
}

async fn profile(app: &TestApp, agent: &str) -> Value {
    app.admin(Method::GET, &format!("/api/agents/{agent}"), None)
        .await
        .expect(200)
}

async fn capacity(app: &TestApp, agent: &str) -> Value {
    app.admin(Method::GET, &format!("/api/agents/{agent}/capacity"), None)
        .await
        .expect(200)
}

/// `POST /api/agents/{agent}/claim{query}` with the given token.
async fn claim(app: &TestApp, agent: &str, token: &str, query: &str) -> Reply {
    app.call(
        Method::POST,
        &format!("/api/agents/{agent}/claim{query}"),
        Some(token),
        None,
    )
    .await
}

/// `POST /api/tasks/{task}/assign{query}` with the given token; `agent` may be `null` to unassign.
async fn assign(app: &TestApp, task: &str, agent: Value, token: &str, query: &str) -> Reply {
    app.call(
        Method::POST,
        &format!("/api/tasks/{task}/assign{query}"),
        Some(token),
        Some(json!({ "agentId": agent })),
    )
    .await
}

/// `POST /api/tasks/{task}/transition{query}` with the given token.
async fn transition(app: &TestApp, task: &str, to: &str, token: &str, query: &str) -> Reply {
    app.call(
        Method::POST,
        &format!("/api/tasks/{task}/transition{query}"),
        Some(token),
        Some(json!({ "to": to })),
    )
    .await
}

async fn auto_assign(app: &TestApp, task: &str) -> Reply {
    app.admin(Method::POST, &format!("/api/tasks/{task}/auto-assign"), None)
        .await
}

/// Completes a task with `outcome` (done or review) using the given token.
async fn complete(app: &TestApp, task: &str, token: &str, outcome: &str) -> Value {
    let done = app
        .call(
            Method::POST,
            &format!("/api/tasks/{task}/complete"),
            Some(token),
            Some(json!({ "outcome": outcome })),
        )
        .await
        .expect(200);
    assert_eq!(done["status"], outcome, "{done}");
    done
}

/// Records a failed attempt of an in-progress task using the given token.
async fn fail(app: &TestApp, task: &str, token: &str) -> Value {
    let failed = app
        .call(
            Method::POST,
            &format!("/api/tasks/{task}/fail"),
            Some(token),
            Some(json!({"errorKind": "timeout", "message": "the import timed out"})),
        )
        .await
        .expect(200);
    assert_eq!(failed["status"], "ready", "{failed}");
    failed
}

/// Makes `task` wait for `blocker`; replies with the task's detail.
async fn depend(app: &TestApp, task: &str, blocker: &str) -> Value {
    app.admin(
        Method::POST,
        &format!("/api/tasks/{task}/dependencies"),
        Some(json!({ "blockedBy": blocker })),
    )
    .await
    .expect(201)
}

/// Starts and finishes an assigned task as the admin.
async fn finish(app: &TestApp, task: &str) {
    move_to(app, task, "in_progress").await.expect(200);
    complete(app, task, ADMIN_TOKEN, "done").await;
}

async fn create_rule(app: &TestApp, body: Value) -> Value {
    app.admin(Method::POST, "/api/escalation-rules", Some(body))
        .await
        .expect(201)
}

/// A rule for tasks tagged `tag` that fires as soon as such a task is in `status`: its trigger (1 % of the
/// SLO used) already holds for every test task with an SLO once the clock has moved, so only the status
/// decides, and the moment of the status change is the moment of the firing.
fn on_status_rule(name: &str, tag: &str, status: &str) -> Value {
    json!({
        "name": name, "priority": 70, "appliesTo": {"tags": [tag], "statuses": [status]},
        "triggers": [{"kind": "slo_consumed", "percent": 1}],
        "actions": [{"kind": "notify_assignee", "subject": format!("Now {status}")}],
    })
}

/// The escalation history of a task, newest first. The listing is answered by the scheduler, queued behind
/// the task events of every write that replied before it, so it shows what those events caused.
async fn escalations(app: &TestApp, task: &str) -> Vec<Value> {
    let page = app
        .admin(Method::GET, &format!("/api/escalations?taskId={task}&limit=100"), None)
        .await
        .expect(200);
    assert_eq!(page["nextCursor"], Value::Null, "{page}");
    array(&without_outbox_ids(&page["items"]))
}

async fn open_escalations(app: &TestApp, task: &str) -> Vec<Value> {
    let page = app
        .admin(
            Method::GET,
            &format!("/api/escalations?taskId={task}&open=true&limit=100"),
            None,
        )
        .await
        .expect(200);
    array(&page["items"])
}

/// Checks a firing of `rule` for `task`: open, at `level`, for `reason`, triggered at `at`, its notice sent to
/// `notified` (or skipped when the task has no assignee).
#[track_caller]
fn assert_fired(row: &Value, rule: &Value, task: &str, (level, at): (i64, i64), reason: &str, notified: Option<&str>) {
    let action = match notified {
        Some(agent) => {
            json!({"kind": "notify_assignee", "status": "executed", "detail": format!("notice sent to {agent}")})
        }
        None => json!({"kind": "notify_assignee", "status": "skipped", "detail": "the task has no assignee"}),
    };
    let trigger = &rule["triggers"][0]["kind"];
    assert_eq!(
        row,
        &json!({
            "id": row["id"], "ruleId": rule["id"], "ruleName": rule["name"], "taskId": task, "messageId": null,
            "level": level, "trigger": trigger, "reason": reason, "actions": [action], "triggeredAt": at,
            "resolvedAt": null, "useful": null, "ratedAt": null,
        })
    );
}

/// The system alerts in an agent's inbox, newest first.
async fn alerts(app: &TestApp, agent: &str) -> Vec<Value> {
    inbox(app, agent)
        .await
        .into_iter()
        .filter(|m| m["type"] == "alert" && m["senderKind"] == "system")
        .collect()
}

// ---------------------------------------------------------------------------------------------------------
// 1. Wake reads the inbox before work

async fn wake_returns_unread_mail_from_every_sender_with_open_work_and_load(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    let (_, lena_token) = app.register(json!({"name": "lena", "level": "lead"})).await;
    let (yuri, yuri_token) = app.register(json!({"name": "yuri", "leadId": "lena"})).await;
    let (_, ada_token) = app.agent("ada").await;

    // Work: one task in progress, one ready, one that a blocker releases, one in the backlog (not open work),
    // and someone else's.
    let parser = app
        .task(json!({"title": "Parser", "assigneeId": "yuri", "estimatedMinutes": 57}))
        .await;
    let claimed = claim(&app, "yuri", &yuri_token, "").await.expect(200);
    assert_eq!(claimed["id"], parser["id"]);
    let lexer = app
        .task(json!({"title": "Lexer", "assigneeId": "yuri", "estimatedMinutes": 30}))
        .await;
    let schema = app.task(json!({"title": "Schema", "assigneeId": "ada"})).await;
    let migrations = app
        .task(json!({"title": "Migrations", "assigneeId": "yuri", "estimatedMinutes": 20}))
        .await;
    assert_eq!(depend(&app, &id(&migrations), &id(&schema)).await["status"], "blocked");
    app.task(json!({"title": "Docs", "assigneeId": "yuri", "status": "backlog"}))
        .await;
    app.acknowledge_assignment_notices("yuri", &yuri_token).await;
    finish(&app, &id(&schema)).await;
    let from_system = notices(&app, "yuri").await;
    assert_eq!(from_system.len(), 1, "{from_system:?}");
    let notice = &from_system[0];

    // Mail from people, one after another: every priority, normal twice.
    let n1 = send_as(&app, "ada", &ada_token, "yuri", "n1", "normal").await;
    let c1 = send_as(&app, "ada", &ada_token, "yuri", "c1", "critical").await;
    let l1 = send_as(&app, "ada", &ada_token, "yuri", "l1", "low").await;
    let h1 = send_as(&app, "ada", &ada_token, "yuri", "h1", "high").await;
    let n2 = send_as(&app, "ada", &ada_token, "yuri", "n2", "normal").await;
    // Neither what yuri sent nor what he has already read is waiting for him.
    send_as(&app, "yuri", &yuri_token, "ada", "outgoing", "critical").await;
    let read = send_as(&app, "lena", &lena_token, "yuri", "already read", "critical").await;
    app.call(
        Method::POST,
        &format!("/api/agents/yuri/messages/{}/read", id(&read)),
        Some(&yuri_token),
        None,
    )
    .await
    .expect(200);

    app.clock.advance_ms(9 * MINUTE);
    let woken = wake(&app, "yuri", &yuri_token).await;

    // The heartbeat is recorded, and the profile says so too.
    assert_fields(
        &woken["agent"],
        json!({"id": yuri["id"], "status": "active", "lastHeartbeatAt": now(&app)}),
    );
    assert_fields(
        &profile(&app, "yuri").await,
        json!({"status": "active", "lastHeartbeatAt": now(&app)}),
    );

    // Critical, then high, then normal, then low; newest first within a priority. The system's notice is
    // among the high ones, older than h1.
    let expected = [&c1, &h1, notice, &n2, &n1, &l1].map(id).to_vec();
    let messages = array(&woken["messages"]);
    assert_eq!(ids(&messages), expected, "{woken}");
    let priorities: Vec<String> = messages.iter().map(|m| text(&m["priority"])).collect();
    assert_eq!(priorities, ["critical", "high", "high", "normal", "normal", "low"]);
    assert_fields(
        &messages[2],
        json!({"type": "blocker_resolved", "senderKind": "system", "taskId": migrations["id"]}),
    );
    for message in &messages {
        assert_eq!(message["readAt"], Value::Null, "{message}");
        assert_eq!(message["toAgentId"], yuri["id"], "{message}");
    }
    // Seven unacknowledged: the six unread and the one read but not acknowledged.
    assert_eq!((int(&woken["unreadCount"]), int(&woken["unacknowledgedCount"])), (6, 7));

    // Open work: in progress and ready (the released task included), not the backlog nor ada's.
    assert_eq!(ids(&array(&woken["inProgress"])), [id(&parser)]);
    assert_eq!(
        sorted(ids(&array(&woken["ready"]))),
        sorted(vec![id(&lexer), id(&migrations)])
    );
    // The load: 57 − 9 = 48 minutes left of a 480-minute day, two tasks queued.
    let load = json!({"agentId": yuri["id"], "agentName": "yuri", "agentStatus": "active",
        "maxConcurrentTasks": 3, "maxMinutesPerDay": 480, "inProgressCount": 1, "readyCount": 2, "blockedCount": 0,
        "estimatedMinutesRemaining": 48, "utilizationPercent": 10.0, "availableMinutes": 432,
        "isOverloaded": false, "canAcceptWork": true});
    assert_eq!(woken["capacity"], load);
    // The same figures as the capacity registry's report, which learnt of the heartbeat from its event.
    let report = capacity(&app, "yuri").await;
    for (field, value) in load.as_object().expect("object") {
        assert_eq!(&report[field], value, "capacity report field {field}: {report}");
    }

    // Waking did not read anything: the inbox still lists the six as unread, and a second wake returns them.
    let unread = app
        .call(
            Method::GET,
            "/api/agents/yuri/messages?unread=true&limit=100",
            Some(&yuri_token),
            None,
        )
        .await
        .expect(200);
    assert_eq!(sorted(ids(&array(&unread["items"]))), sorted(expected.clone()));
    assert_eq!(unread["unreadCount"], 6);
    let again = wake(&app, "yuri", &yuri_token).await;
    assert_eq!(ids(&array(&again["messages"])), expected);
    assert_eq!(again["unreadCount"], 6);
    app.stop().await;
}

async fn wake_is_a_heartbeat_for_the_monitor_and_the_escalation_rules(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    // Speaks up when the assignee of work in progress is silent for more than 10 minutes.
    let rule = create_rule(
        &app,
        json!({"name": "silent assignee", "priority": 60,
               "triggers": [{"kind": "no_heartbeat", "durationMs": 10 * MINUTE}],
               "actions": [{"kind": "notify_assignee", "subject": "Still there?"}]}),
    )
    .await;
    app.register(json!({"name": "lena", "level": "lead"})).await;
    let (_, yuri_token) = app.register(json!({"name": "yuri", "leadId": "lena"})).await;
    let task = app
        .task(json!({"title": "Parser", "assigneeId": "yuri", "estimatedMinutes": 120}))
        .await;
    let task_id = id(&task);
    claim(&app, "yuri", &yuri_token, "").await.expect(200);
    app.call(
        Method::POST,
        "/api/agents/yuri/heartbeat",
        Some(&yuri_token),
        Some(json!({"status": "active", "currentTaskId": task_id})),
    )
    .await
    .expect(200);

    // Nine minutes of silence, then a wake: a heartbeat that keeps the current task.
    app.clock.advance_ms(9 * MINUTE);
    let woken = wake(&app, "yuri", &yuri_token).await;
    let woke_at = now(&app);
    assert_fields(
        &woken["agent"],
        json!({"status": "active", "lastHeartbeatAt": woke_at, "currentTaskId": task_id}),
    );

    // Thirteen minutes after the heartbeat, four after the wake: had the wake not reached them, the heartbeat
    // monitor (5-minute timeout) would mark yuri offline and the rule (10 minutes) would fire.
    app.clock.advance_ms(4 * MINUTE);
    let report = app.tick().await;
    assert!(report.went_offline.is_empty(), "{report:?}");
    assert!(report.escalations.is_empty(), "{report:?}");
    assert_eq!(profile(&app, "yuri").await["status"], "active");
    assert!(escalations(&app, &task_id).await.is_empty());

    // Eleven minutes after the wake both see the silence.
    app.clock.advance_ms(7 * MINUTE);
    let report = app.tick().await;
    assert_eq!(report.went_offline, ["yuri"]);
    let fired = escalations(&app, &task_id).await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_fired(
        &fired[0],
        &rule,
        &task_id,
        (1, now(&app)),
        "assignee silent for 11 min",
        Some("yuri"),
    );

    // Waking again: active, the rule's notice first (it is the only high-priority mail), and the rule stops
    // matching, so the next tick resolves its firing.
    let woken = wake(&app, "yuri", &yuri_token).await;
    assert_eq!(woken["agent"]["status"], "active");
    let first = &woken["messages"][0];
    assert_fields(
        first,
        json!({"type": "alert", "subject": "Still there?", "taskId": task_id, "readAt": null}),
    );
    assert_eq!(first["data"]["escalationId"], fired[0]["id"]);
    app.clock.advance_ms(MINUTE);
    let report = app.tick().await;
    assert_eq!(report.resolved_escalations, 1, "{report:?}");
    assert_eq!(int(&escalations(&app, &task_id).await[0]["resolvedAt"]), now(&app));
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// 2. Assignment and claim consult capacity

async fn a_full_agent_is_refused_work_everywhere_until_it_finishes_some(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (alice, alice_token) = app
        .register(json!({"name": "alice", "maxConcurrentTasks": 1, "specializations": ["rust"]}))
        .await;
    let (bob, bob_token) = app.register(json!({"name": "bob", "maxConcurrentTasks": 1})).await;
    let rust_task =
        |title: &str| json!({"title": title, "estimatedMinutes": 30, "requirements": {"capabilities": ["rust"]}});
    let mut first = rust_task("One");
    first["assigneeId"] = json!("alice");
    let one = id(&app.task(first).await);
    assert_eq!(id(&claim(&app, "alice", &alice_token, "").await.expect(200)), one);

    // Alice is at her one task: the admin's assignment and her own taking of a task are refused with her
    // figures, and the task stays as it was.
    let two = id(&app.task(rust_task("Two")).await);
    let refused = assign(&app, &two, json!("alice"), ADMIN_TOKEN, "")
        .await
        .expect_error(409, "agent_at_capacity");
    assert_fields(
        &refused["error"]["details"],
        json!({"agentId": alice["id"], "maxConcurrentTasks": 1, "inProgressCount": 1, "isOverloaded": true,
               "canAcceptWork": false}),
    );
    assign(&app, &two, json!("alice"), &alice_token, "")
        .await
        .expect_error(409, "agent_at_capacity");
    assert_fields(
        &get_task(&app, &two).await,
        json!({"assigneeId": null, "status": "backlog"}),
    );

    // Auto-assignment passes over her although only she has the skill: bob can take it.
    let auto = auto_assign(&app, &two).await.expect(200);
    assert_fields(
        &auto["chosen"],
        json!({"agentId": bob["id"], "agentName": "bob", "canAcceptWork": true}),
    );
    assert_fields(&auto["task"], json!({"assigneeId": bob["id"], "status": "ready"}));
    assert_eq!(id(&claim(&app, "bob", &bob_token, "").await.expect(200)), two);

    // Both full: nobody for a third task, which stays unassigned.
    let three = id(&app.task(rust_task("Three")).await);
    let nobody = auto_assign(&app, &three).await.expect_error(404, "no_suitable_agent");
    let candidates = array(&nobody["error"]["details"]["candidates"]);
    let names: Vec<String> = candidates.iter().map(|c| text(&c["agentName"])).collect();
    assert_eq!(sorted(names), ["alice", "bob"]);
    assert!(candidates.iter().all(|c| c["canAcceptWork"] == false), "{nobody}");
    assert_eq!(get_task(&app, &three).await["assigneeId"], Value::Null);

    // The admin may force past alice's limit, by assignment and then by a transition; neither her claim nor
    // her own transition (forced or not) gets the task started.
    let forced = assign(&app, &three, json!("alice"), ADMIN_TOKEN, "?force=true")
        .await
        .expect(200);
    assert_fields(&forced, json!({"assigneeId": alice["id"], "status": "ready"}));
    claim(&app, "alice", &alice_token, "")
        .await
        .expect_error(409, "agent_at_capacity");
    transition(&app, &three, "in_progress", &alice_token, "")
        .await
        .expect_error(409, "agent_at_capacity");
    transition(&app, &three, "in_progress", &alice_token, "?force=true")
        .await
        .expect_error(403, "forbidden");
    transition(&app, &three, "in_progress", ADMIN_TOKEN, "")
        .await
        .expect_error(409, "agent_at_capacity");
    assert_eq!(get_task(&app, &three).await["status"], "ready");
    let started = transition(&app, &three, "in_progress", ADMIN_TOKEN, "?force=true")
        .await
        .expect(200);
    assert_eq!(started["status"], "in_progress");
    // And past bob's by a claim.
    let four = id(&app.task(rust_task("Four")).await);
    assign(&app, &four, json!("bob"), ADMIN_TOKEN, "?force=true")
        .await
        .expect(200);
    claim(&app, "bob", &bob_token, "")
        .await
        .expect_error(409, "agent_at_capacity");
    claim(&app, "bob", &bob_token, "?force=true")
        .await
        .expect_error(403, "forbidden");
    assert_eq!(
        id(&claim(&app, "bob", ADMIN_TOKEN, "?force=true").await.expect(200)),
        four
    );
    for agent in ["alice", "bob"] {
        assert_fields(
            &capacity(&app, agent).await,
            json!({"inProgressCount": 2, "isOverloaded": true, "canAcceptWork": false}),
        );
    }

    // Alice finishes one task: still at her limit with the other.
    complete(&app, &one, &alice_token, "done").await;
    let five = id(&app.task(rust_task("Five")).await);
    let refused = assign(&app, &five, json!("alice"), ADMIN_TOKEN, "")
        .await
        .expect_error(409, "agent_at_capacity");
    assert_eq!(refused["error"]["details"]["inProgressCount"], 1);
    // She finishes the other: work reaches her again, by auto-assignment (bob is still full) and claim.
    complete(&app, &three, &alice_token, "done").await;
    assert_fields(
        &capacity(&app, "alice").await,
        json!({"inProgressCount": 0, "isOverloaded": false, "canAcceptWork": true}),
    );
    let auto = auto_assign(&app, &five).await.expect(200);
    assert_eq!(auto["chosen"]["agentName"], "alice");
    assert_eq!(id(&claim(&app, "alice", &alice_token, "").await.expect(200)), five);

    // Bob: a failed attempt frees the slot its task held, but he is still at his limit with the other; once
    // that is done he may take the failed task up again.
    fail(&app, &four, &bob_token).await;
    claim(&app, "bob", &bob_token, "")
        .await
        .expect_error(409, "agent_at_capacity");
    complete(&app, &two, &bob_token, "done").await;
    let retried = claim(&app, "bob", &bob_token, "").await.expect(200);
    assert_fields(&retried, json!({"id": four, "status": "in_progress", "attempts": 2}));
    app.stop().await;
}

async fn an_agent_at_its_utilization_limit_is_refused_like_a_full_one(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let limits = json!({"maxConcurrentTasks": 5, "maxMinutesPerDay": 100});
    let mut alice = limits.clone();
    alice["name"] = json!("alice");
    let (alice, alice_token) = app.register(alice).await;
    let mut carol = limits;
    carol["name"] = json!("carol");
    let (carol, _) = app.register(carol).await;
    let big = app
        .task(json!({"title": "Big", "assigneeId": "alice", "estimatedMinutes": 80}))
        .await;
    claim(&app, "alice", &alice_token, "").await.expect(200);

    // 80 of her 100 minutes: at the utilization limit with four slots free.
    assert_fields(
        &capacity(&app, "alice").await,
        json!({"inProgressCount": 1, "utilizationPercent": 80.0, "isOverloaded": false, "canAcceptWork": false}),
    );
    let small = id(&app.task(json!({"title": "Small", "estimatedMinutes": 10})).await);
    let refused = assign(&app, &small, json!("alice"), ADMIN_TOKEN, "")
        .await
        .expect_error(409, "agent_at_capacity");
    assert_fields(
        &refused["error"]["details"],
        json!({"agentId": alice["id"], "utilizationPercent": 80.0, "isOverloaded": false, "canAcceptWork": false}),
    );
    assign(&app, &small, json!("alice"), ADMIN_TOKEN, "?force=true")
        .await
        .expect(200);
    claim(&app, "alice", &alice_token, "")
        .await
        .expect_error(409, "agent_at_capacity");
    transition(&app, &small, "in_progress", &alice_token, "")
        .await
        .expect_error(409, "agent_at_capacity");
    assert_eq!(get_task(&app, &small).await["status"], "ready");

    // Auto-assignment gives another task to carol, who has room.
    let other = id(&app.task(json!({"title": "Other", "estimatedMinutes": 10})).await);
    let auto = auto_assign(&app, &other).await.expect(200);
    assert_eq!(auto["chosen"]["agentId"], carol["id"]);
    assert_eq!(auto["task"]["assigneeId"], carol["id"]);

    // The big task done, her day is free again: the claim takes the small one.
    complete(&app, &id(&big), &alice_token, "done").await;
    assert_fields(
        &capacity(&app, "alice").await,
        json!({"inProgressCount": 0, "utilizationPercent": 0.0, "canAcceptWork": true}),
    );
    let claimed = claim(&app, "alice", &alice_token, "").await.expect(200);
    assert_fields(&claimed, json!({"id": small, "status": "in_progress"}));
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// 3. Every task status change triggers an immediate escalation evaluation of that task

async fn transitions_into_and_out_of_a_matching_status_escalate_and_resolve_at_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    let rule = create_rule(&app, on_status_rule("blocked now", "wiring", "blocked")).await;
    let (_, bob_token) = app.agent("bob").await;
    let task = app
        .task(json!({"title": "Billing API", "assigneeId": "bob", "tags": ["wiring"], "sloMs": 10 * HOUR}))
        .await;
    let task_id = id(&task);
    app.clock.advance_ms(30 * MINUTE);

    // Started: a change, but the rule does not apply to work in progress.
    claim(&app, "bob", &bob_token, "").await.expect(200);
    assert!(escalations(&app, &task_id).await.is_empty());

    // Blocked by its assignee: fired at once, and bob told.
    transition(&app, &task_id, "blocked", &bob_token, "").await.expect(200);
    let rows = escalations(&app, &task_id).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_fired(
        &rows[0],
        &rule,
        &task_id,
        (1, now(&app)),
        "5% of the SLO used (9 h 30 min left)",
        Some("bob"),
    );
    let told = alerts(&app, "bob").await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert_fields(&told[0], json!({"subject": "Now blocked", "taskId": task_id}));
    assert_eq!(told[0]["data"]["escalationId"], rows[0]["id"]);

    // Out of blocked: resolved at once.
    app.clock.advance_ms(MINUTE);
    transition(&app, &task_id, "ready", &bob_token, "").await.expect(200);
    let rows = escalations(&app, &task_id).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(int(&rows[0]["resolvedAt"]), now(&app));

    // Blocked again (by the admin): the closed ladder starts over at level 1, again at once.
    app.clock.advance_ms(MINUTE);
    move_to(&app, &task_id, "blocked").await.expect(200);
    let rows = escalations(&app, &task_id).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_fired(
        &rows[0],
        &rule,
        &task_id,
        (1, now(&app)),
        "5% of the SLO used (9 h 28 min left)",
        Some("bob"),
    );
    assert_eq!(alerts(&app, "bob").await.len(), 2);

    // Cancelled: a finished task resolves everything open for it, at once.
    app.clock.advance_ms(MINUTE);
    move_to(&app, &task_id, "cancelled").await.expect(200);
    assert!(open_escalations(&app, &task_id).await.is_empty());
    assert_eq!(int(&escalations(&app, &task_id).await[0]["resolvedAt"]), now(&app));
    app.stop().await;
}

async fn completing_and_failing_are_evaluated_at_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    let review_rule = create_rule(&app, on_status_rule("waiting for review", "review", "review")).await;
    let retry_rule = create_rule(
        &app,
        json!({"name": "failed once", "priority": 70, "appliesTo": {"tags": ["retry"], "statuses": ["ready"]},
               "triggers": [{"kind": "attempts_exceeded", "attempts": 1}],
               "actions": [{"kind": "notify_assignee", "subject": "Try again"}]}),
    )
    .await;
    let (_, bob_token) = app.agent("bob").await;
    let notes = id(&app
        .task(json!({"title": "Release notes", "assigneeId": "bob", "tags": ["review"], "sloMs": 10 * HOUR}))
        .await);
    let import = id(&app
        .task(json!({"title": "Flaky import", "assigneeId": "bob", "tags": ["retry"]}))
        .await);
    app.clock.advance_ms(30 * MINUTE);

    // Completed into review: fired at once.
    transition(&app, &notes, "in_progress", &bob_token, "")
        .await
        .expect(200);
    complete(&app, &notes, &bob_token, "review").await;
    let rows = escalations(&app, &notes).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_fired(
        &rows[0],
        &review_rule,
        &notes,
        (1, now(&app)),
        "5% of the SLO used (9 h 30 min left)",
        Some("bob"),
    );
    // Completed as done: resolved at once.
    app.clock.advance_ms(MINUTE);
    complete(&app, &notes, &bob_token, "done").await;
    assert_eq!(int(&escalations(&app, &notes).await[0]["resolvedAt"]), now(&app));

    // A failed attempt sends the task back to ready with a failure on record: fired at once.
    transition(&app, &import, "in_progress", &bob_token, "")
        .await
        .expect(200);
    assert!(escalations(&app, &import).await.is_empty());
    fail(&app, &import, &bob_token).await;
    let rows = escalations(&app, &import).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_fired(
        &rows[0],
        &retry_rule,
        &import,
        (1, now(&app)),
        "1 failed attempts by its assignee",
        Some("bob"),
    );
    // Claimed again: resolved at once; finished: nothing new.
    app.clock.advance_ms(MINUTE);
    assert_eq!(id(&claim(&app, "bob", &bob_token, "").await.expect(200)), import);
    let resolved_at = now(&app);
    assert_eq!(int(&escalations(&app, &import).await[0]["resolvedAt"]), resolved_at);
    app.clock.advance_ms(MINUTE);
    complete(&app, &import, &bob_token, "done").await;
    let rows = escalations(&app, &import).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(int(&rows[0]["resolvedAt"]), resolved_at);

    let subjects: Vec<String> = alerts(&app, "bob").await.iter().map(|m| text(&m["subject"])).collect();
    assert_eq!(subjects, ["Try again", "Now review"]);
    app.stop().await;
}

async fn assigning_and_unassigning_are_evaluated_at_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    let rule = create_rule(&app, on_status_rule("ready to start", "handover", "ready")).await;
    let (_, bob_token) = app.agent("bob").await;
    let (_, carol_token) = app.agent("carol").await;
    let task = app
        .task(json!({"title": "Cache layer", "tags": ["handover"], "sloMs": 10 * HOUR}))
        .await;
    let task_id = id(&task);
    assert_eq!(task["status"], "backlog");
    app.clock.advance_ms(30 * MINUTE);

    // Assigning the backlog task makes it ready: fired at once, and the new assignee told.
    let assigned = assign(&app, &task_id, json!("bob"), ADMIN_TOKEN, "").await.expect(200);
    assert_eq!(assigned["status"], "ready");
    let rows = escalations(&app, &task_id).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let reason = "5% of the SLO used (9 h 30 min left)";
    assert_fired(&rows[0], &rule, &task_id, (1, now(&app)), reason, Some("bob"));

    // Bob starts: resolved at once.
    app.clock.advance_ms(MINUTE);
    claim(&app, "bob", &bob_token, "").await.expect(200);
    assert_eq!(int(&escalations(&app, &task_id).await[0]["resolvedAt"]), now(&app));

    // Handed to carol: the work goes back to ready, fired again at level 1, and carol told.
    app.clock.advance_ms(MINUTE);
    let handed = assign(&app, &task_id, json!("carol"), ADMIN_TOKEN, "")
        .await
        .expect(200);
    assert_eq!(handed["status"], "ready");
    let rows = escalations(&app, &task_id).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let reason = "5% of the SLO used (9 h 28 min left)";
    assert_fired(&rows[0], &rule, &task_id, (1, now(&app)), reason, Some("carol"));

    // Carol starts (resolved), then the admin takes the task from her: back to ready with nobody to tell.
    app.clock.advance_ms(MINUTE);
    claim(&app, "carol", &carol_token, "").await.expect(200);
    assert_eq!(int(&escalations(&app, &task_id).await[0]["resolvedAt"]), now(&app));
    app.clock.advance_ms(MINUTE);
    let unassigned = assign(&app, &task_id, Value::Null, ADMIN_TOKEN, "").await.expect(200);
    assert_fields(&unassigned, json!({"status": "ready", "assigneeId": null}));
    let rows = escalations(&app, &task_id).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    let reason = "5% of the SLO used (9 h 26 min left)";
    assert_fired(&rows[0], &rule, &task_id, (1, now(&app)), reason, None);

    assert_eq!(alerts(&app, "bob").await.len(), 1);
    assert_eq!(alerts(&app, "carol").await.len(), 1);
    app.stop().await;
}

async fn dependencies_that_block_and_release_a_task_are_evaluated_at_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    let rule = create_rule(&app, on_status_rule("waiting on others", "deps", "blocked")).await;
    app.agent("bob").await;
    app.agent("ada").await;
    let task_id = id(&app
        .task(json!({"title": "Reports", "assigneeId": "bob", "tags": ["deps"], "sloMs": 10 * HOUR}))
        .await);
    let schema = id(&app.task(json!({"title": "Schema", "assigneeId": "ada"})).await);
    let fixtures = id(&app.task(json!({"title": "Fixtures", "assigneeId": "ada"})).await);
    let cleanup = id(&app.task(json!({"title": "Cleanup"})).await);
    app.clock.advance_ms(30 * MINUTE);

    // A dependency on an unfinished task blocks it: fired at once.
    assert_eq!(depend(&app, &task_id, &schema).await["status"], "blocked");
    let rows = escalations(&app, &task_id).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let reason = "5% of the SLO used (9 h 30 min left)";
    assert_fired(&rows[0], &rule, &task_id, (1, now(&app)), reason, Some("bob"));

    // Its blocker done: the task is released, and the firing resolved at once.
    app.clock.advance_ms(MINUTE);
    finish(&app, &schema).await;
    assert_eq!(get_task(&app, &task_id).await["status"], "ready");
    assert_eq!(int(&escalations(&app, &task_id).await[0]["resolvedAt"]), now(&app));

    // Blocked by another task, then released by removing the dependency.
    app.clock.advance_ms(MINUTE);
    assert_eq!(depend(&app, &task_id, &fixtures).await["status"], "blocked");
    let rows = escalations(&app, &task_id).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["resolvedAt"], Value::Null, "{rows:?}");
    app.clock.advance_ms(MINUTE);
    let released = app
        .admin(
            Method::DELETE,
            &format!("/api/tasks/{task_id}/dependencies/{fixtures}"),
            None,
        )
        .await
        .expect(200);
    assert_eq!(released["status"], "ready");
    assert_eq!(int(&escalations(&app, &task_id).await[0]["resolvedAt"]), now(&app));

    // Blocked a third time, then released by deleting the blocker.
    app.clock.advance_ms(MINUTE);
    assert_eq!(depend(&app, &task_id, &cleanup).await["status"], "blocked");
    assert_eq!(open_escalations(&app, &task_id).await.len(), 1);
    app.clock.advance_ms(MINUTE);
    app.admin(Method::DELETE, &format!("/api/tasks/{cleanup}"), None)
        .await
        .expect(200);
    assert_eq!(get_task(&app, &task_id).await["status"], "ready");
    let rows = escalations(&app, &task_id).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(int(&rows[0]["resolvedAt"]), now(&app));
    assert!(open_escalations(&app, &task_id).await.is_empty());
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// 4. An SLO breach produces an escalation message

async fn an_slo_breach_alerts_the_assignees_lead_and_resolves_when_the_task_finishes(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    app.register(json!({"name": "director", "level": "lead"})).await;
    let (lena, lena_token) = app
        .register(json!({"name": "lena", "level": "lead", "leadId": "director"}))
        .await;
    app.register(json!({"name": "omar", "level": "lead"})).await;
    let (yuri, yuri_token) = app.register(json!({"name": "yuri", "leadId": "lena"})).await;
    let task = app
        .task(json!({"title": "Invoice run", "assigneeId": "yuri", "sloMs": HOUR, "estimatedMinutes": 30}))
        .await;
    let task_id = id(&task);
    claim(&app, "yuri", &yuri_token, "").await.expect(200);

    // A millisecond before the deadline: nothing.
    app.clock.advance_ms(HOUR - 1);
    let report = app.tick().await;
    assert!(
        report.slo_breaches.is_empty() && report.escalations.is_empty(),
        "{report:?}"
    );
    assert!(escalations(&app, &task_id).await.is_empty());

    // At the deadline the tick records the breaches and writes one escalation that alerted yuri's lead.
    app.clock.advance_ms(1);
    let at = now(&app);
    let report = app.tick().await;
    let kinds: Vec<&str> = report.slo_breaches.iter().map(|b| b.kind.as_str()).collect();
    assert_eq!(kinds, ["deadline_missed", "in_progress_timeout"]);
    let rows = escalations(&app, &task_id).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        rows[0],
        json!({
            "id": rows[0]["id"], "ruleId": null, "ruleName": "slo_breach", "taskId": task_id, "messageId": null,
            "level": 1, "trigger": "slo_breach",
            "reason": "SLO breach (3600000 ms deadline passed): deadline_missed, in_progress_timeout",
            "actions": [{"kind": "escalate", "status": "executed", "detail": "priority raised; alerted lena"}],
            "triggeredAt": at, "resolvedAt": null, "useful": null, "ratedAt": null,
        })
    );
    let breaches = app
        .admin(Method::GET, "/api/slo/breaches?limit=100", None)
        .await
        .expect(200);
    for breach in array(&breaches["items"]) {
        assert_fields(
            &breach,
            json!({"taskId": task_id, "agentId": yuri["id"], "detectedAt": at, "escalatedAt": at}),
        );
    }
    assert_eq!(array(&breaches["items"]).len(), 2);
    assert_fields(
        &get_task(&app, &task_id).await,
        json!({"priority": "P1", "escalationLevel": 1}),
    );

    // The alert: in lena's inbox only, about the task.
    let to_lena = inbox(&app, "lena").await;
    assert_eq!(to_lena.len(), 1, "{to_lena:?}");
    let alert = &to_lena[0];
    assert_fields(
        alert,
        json!({"type": "alert", "senderKind": "system", "fromAgentId": null, "toAgentId": lena["id"],
               "taskId": task_id, "priority": "high", "subject": "SLO breached: Invoice run"}),
    );
    assert_eq!(alert["data"]["reason"], "slo_breach");
    assert!(text(&alert["body"]).contains(&task_id), "{alert}");
    for agent in ["director", "omar", "yuri"] {
        assert!(inbox(&app, agent).await.is_empty(), "{agent} was alerted");
    }
    // Lena's wake puts it first.
    let woken = wake(&app, "lena", &lena_token).await;
    assert_eq!(ids(&array(&woken["messages"])), [id(alert)]);

    // Finishing the task resolves the breach's escalation at once, without a tick.
    app.clock.advance_ms(MINUTE);
    complete(&app, &task_id, &yuri_token, "done").await;
    assert!(open_escalations(&app, &task_id).await.is_empty());
    assert_eq!(int(&escalations(&app, &task_id).await[0]["resolvedAt"]), now(&app));
    app.stop().await;
}

async fn a_late_change_writes_the_slo_breach_escalation_without_a_tick(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    app.register(json!({"name": "lena", "level": "lead"})).await;
    let (_, yuri_token) = app.register(json!({"name": "yuri", "leadId": "lena"})).await;
    let task_id = id(&app
        .task(json!({"title": "Hotfix", "assigneeId": "yuri", "sloMs": 30 * MINUTE}))
        .await);

    // Past the deadline, no tick: yuri's late claim is the change that is checked.
    app.clock.advance_ms(31 * MINUTE);
    claim(&app, "yuri", &yuri_token, "").await.expect(200);
    let rows = escalations(&app, &task_id).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_fields(
        &rows[0],
        json!({"ruleName": "slo_breach", "trigger": "slo_breach", "level": 1, "triggeredAt": now(&app),
               "reason": "SLO breach (1800000 ms deadline passed): deadline_missed, in_progress_timeout",
               "actions": [{"kind": "escalate", "status": "executed", "detail": "priority raised; alerted lena"}],
               "resolvedAt": null}),
    );
    let to_lena = inbox(&app, "lena").await;
    assert_eq!(to_lena.len(), 1, "{to_lena:?}");
    assert_fields(
        &to_lena[0],
        json!({"type": "alert", "taskId": task_id, "subject": "SLO breached: Hotfix"}),
    );

    // Put back and cancelled: resolved at once.
    app.clock.advance_ms(MINUTE);
    move_to(&app, &task_id, "ready").await.expect(200);
    move_to(&app, &task_id, "cancelled").await.expect(200);
    assert_eq!(int(&escalations(&app, &task_id).await[0]["resolvedAt"]), now(&app));
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// 5. Dependency completion notifies the blocked task's assignee

async fn the_last_blocker_done_tells_the_assignee_who_can_then_take_the_task(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    let (yuri, yuri_token) = app.agent("yuri").await;
    app.agent("ada").await;
    let first = id(&app.task(json!({"title": "Schema", "assigneeId": "ada"})).await);
    let second = id(&app.task(json!({"title": "Fixtures", "assigneeId": "ada"})).await);
    let reports = id(&app
        .task(json!({"title": "Reports", "assigneeId": "yuri", "estimatedMinutes": 45}))
        .await);
    depend(&app, &reports, &first).await;
    assert_eq!(depend(&app, &reports, &second).await["status"], "blocked");
    app.acknowledge_assignment_notices("yuri", &yuri_token).await;
    claim(&app, "yuri", &yuri_token, "")
        .await
        .expect_error(404, "no_task_available");

    // The first blocker done: still blocked by the second.
    finish(&app, &first).await;
    let detail = get_task(&app, &reports).await;
    assert_eq!(detail["status"], "blocked");
    let mut expected = vec![
        json!({"id": first, "title": "Schema", "status": "done"}),
        json!({"id": second, "title": "Fixtures", "status": "ready"}),
    ];
    expected.sort_by_key(|r| text(&r["id"]));
    assert_eq!(detail["blockedBy"], json!(expected));

    // The second done: ready, and yuri told about it, once.
    finish(&app, &second).await;
    assert_eq!(get_task(&app, &reports).await["status"], "ready");
    let told = notices(&app, "yuri").await;
    assert_eq!(told.len(), 1, "{told:?}");
    let notice = &told[0];
    assert_fields(
        notice,
        json!({"type": "blocker_resolved", "senderKind": "system", "fromAgentId": null, "toAgentId": yuri["id"],
               "taskId": reports, "priority": "high", "subject": "Unblocked: Reports", "readAt": null}),
    );
    assert_eq!(
        ids(&inbox(&app, "yuri").await),
        [id(notice)],
        "a notice for the first blocker"
    );
    assert!(inbox(&app, "ada").await.is_empty());
    let unblocked = all_items(
        &app,
        &format!("/api/activity?kind=task_unblocked&taskId={reports}"),
        100,
    )
    .await;
    assert_eq!(unblocked.len(), 1, "{unblocked:?}");

    // Yuri's wake has the notice and the task; his claim takes it.
    let woken = wake(&app, "yuri", &yuri_token).await;
    assert_eq!(ids(&array(&woken["messages"])), [id(notice)]);
    assert_eq!(ids(&array(&woken["ready"])), [reports.as_str()]);
    let claimed = claim(&app, "yuri", &yuri_token, "").await.expect(200);
    assert_fields(&claimed, json!({"id": reports, "status": "in_progress"}));
    app.stop().await;
}

async fn a_failed_or_cancelled_blocker_keeps_the_task_blocked_and_sends_no_notice(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    let (_, yuri_token) = app.agent("yuri").await;
    let (_, ada_token) = app.agent("ada").await;
    let schema = id(&app.task(json!({"title": "Schema", "assigneeId": "ada"})).await);
    let reports = id(&app.task(json!({"title": "Reports", "assigneeId": "yuri"})).await);
    assert_eq!(depend(&app, &reports, &schema).await["status"], "blocked");

    // A failed attempt sends the blocker back to ready, not done: the dependent stays blocked.
    transition(&app, &schema, "in_progress", &ada_token, "")
        .await
        .expect(200);
    fail(&app, &schema, &ada_token).await;
    assert_eq!(get_task(&app, &reports).await["status"], "blocked");

    // Cancelled, the blocker is finished but not done: still blocked, and it cannot move on.
    move_to(&app, &schema, "cancelled").await.expect(200);
    let detail = get_task(&app, &reports).await;
    assert_eq!(detail["status"], "blocked");
    assert_eq!(
        detail["blockedBy"],
        json!([{"id": schema, "title": "Schema", "status": "cancelled"}])
    );
    move_to(&app, &reports, "ready")
        .await
        .expect_error(409, "blocked_by_dependencies");
    claim(&app, "yuri", &yuri_token, "")
        .await
        .expect_error(404, "no_task_available");

    // A marker: another of yuri's tasks released by a blocker done. Its notice, sent after anything the
    // failure or the cancellation could have caused, is the only message yuri has.
    let lint = id(&app.task(json!({"title": "Lint", "assigneeId": "ada"})).await);
    let docs = id(&app.task(json!({"title": "Docs", "assigneeId": "yuri"})).await);
    depend(&app, &docs, &lint).await;
    finish(&app, &lint).await;
    let told = notices(&app, "yuri").await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0]["taskId"], docs.as_str());
    assert_eq!(inbox(&app, "yuri").await.len(), 1);

    // As documented, removing the cancelled blocker's dependency releases the task.
    let released = app
        .admin(
            Method::DELETE,
            &format!("/api/tasks/{reports}/dependencies/{schema}"),
            None,
        )
        .await
        .expect(200);
    assert_eq!(released["status"], "ready");
    app.stop().await;
}
