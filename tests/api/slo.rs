//! SLO clocks and breaches: a task's reading moves OK → AT_RISK → CRITICAL → BREACHED with the manual clock,
//! finished tasks stop the clock (MET or MISSED), the overview counts and orders the urgent tasks, and the
//! monitor records each (task, kind) breach once — on a tick or on a change to the task, across restarts —
//! escalating the task and alerting the responsible lead (or every lead). The escalation rules are turned
//! off here: these clocks run for hours with silent assignees, which the default rules would act on.

use crate::common::*;
use crate::on_both_backends;
use mission_control::Clock;
use reqwest::Method;
use serde_json::{json, Value};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

fn now(app: &TestApp) -> i64 {
    app.clock.now_ms()
}

/// `GET /api/tasks/{id}/slo` as the admin.
async fn slo(app: &TestApp, task: &str) -> Value {
    app.admin(Method::GET, &format!("/api/tasks/{task}/slo"), None)
        .await
        .expect(200)
}

/// `GET /api/slo{query}` as the admin.
async fn overview(app: &TestApp, query: &str) -> Value {
    app.admin(Method::GET, &format!("/api/slo{query}"), None)
        .await
        .expect(200)
}

/// One page of `GET /api/slo/breaches{query}` as the admin.
async fn breach_page(app: &TestApp, query: &str) -> Value {
    app.admin(Method::GET, &format!("/api/slo/breaches{query}"), None)
        .await
        .expect(200)
}

/// Every breach record (following the cursor), newest first.
async fn all_breaches(app: &TestApp) -> Vec<Value> {
    all_items(app, "/api/slo/breaches", 100).await
}

/// The breaches of one filtered listing (a single page of up to 100).
async fn breaches_where(app: &TestApp, filter: &str) -> Vec<Value> {
    let page = breach_page(app, &format!("?{filter}&limit=100")).await;
    assert_eq!(page["nextCursor"], Value::Null, "{page}");
    array(&page["items"])
}

/// Every activity row of one kind.
async fn activity(app: &TestApp, kind: &str) -> Vec<Value> {
    all_items(app, &format!("/api/activity?kind={kind}"), 100).await
}

/// The inbox items of an agent (up to 100), read as the admin, without assignment notices.
async fn inbox_items(app: &TestApp, agent: &str) -> Vec<Value> {
    let page = app
        .admin(Method::GET, &format!("/api/agents/{agent}/messages?limit=100"), None)
        .await
        .expect(200);
    other_than_assignment_notices(array(&page["items"]))
}

/// The SLO breach alerts among an agent's messages.
async fn slo_alerts(app: &TestApp, agent: &str) -> Vec<Value> {
    inbox_items(app, agent)
        .await
        .into_iter()
        .filter(|m| m["type"] == "alert" && m["data"]["reason"] == "slo_breach")
        .collect()
}

/// Claims the agent's next ready task with its own token.
async fn claim(app: &TestApp, agent: &str, token: &str) -> Value {
    let task = app
        .call(Method::POST, &format!("/api/agents/{agent}/claim"), Some(token), None)
        .await
        .expect(200);
    assert_eq!(task["status"], "in_progress", "{task}");
    task
}

/// Completes an in-progress task as done, as the admin.
async fn complete(app: &TestApp, task: &str) -> Value {
    let done = app
        .admin(
            Method::POST,
            &format!("/api/tasks/{task}/complete"),
            Some(json!({"outcome": "done"})),
        )
        .await
        .expect(200);
    assert_eq!(done["status"], "done", "{done}");
    done
}

/// The breaches a tick recorded, as the API shows them.
fn recorded(report: &mission_control::runtime::TickReport) -> Vec<Value> {
    report
        .slo_breaches
        .iter()
        .map(|b| serde_json::to_value(b).expect("breach serializes"))
        .collect()
}

/// `(taskId, kind)` of each breach.
fn keys(breaches: &[Value]) -> Vec<(String, String)> {
    breaches
        .iter()
        .map(|b| (text(&b["taskId"]), text(&b["kind"])))
        .collect()
}

fn key(task: &str, kind: &str) -> (String, String) {
    (task.to_string(), kind.to_string())
}

/// Asserts one reading's clock figures.
#[track_caller]
fn assert_clock(reading: &Value, status: &str, percent: f64, remaining: i64, age: i64) {
    assert_eq!(reading["status"], status, "{reading}");
    assert_eq!(reading["percentUsed"].as_f64(), Some(percent), "{reading}");
    assert_eq!(int(&reading["msRemaining"]), remaining, "{reading}");
    assert_eq!(int(&reading["ageMs"]), age, "{reading}");
}

/// Checks one breach record against its task.
#[track_caller]
fn assert_breach(breach: &Value, task: &Value, kind: &str, detected: i64, escalated: Option<i64>) {
    assert_eq!(breach["taskId"], task["id"], "{breach}");
    assert_eq!(breach["taskTitle"], task["title"], "{breach}");
    assert_eq!(breach["agentId"], task["assigneeId"], "{breach}");
    assert_eq!(breach["kind"], kind, "{breach}");
    assert_eq!(breach["slaTier"], task["slaTier"], "{breach}");
    assert_eq!(breach["deadlineAt"], task["sloDeadlineAt"], "{breach}");
    assert_eq!(
        int(&breach["sloMs"]),
        int(&task["sloDeadlineAt"]) - int(&task["createdAt"]),
        "{breach}"
    );
    assert_eq!(int(&breach["detectedAt"]), detected, "{breach}");
    assert_eq!(breach["escalatedAt"], json!(escalated), "{breach}");
    assert!(breach["id"].as_str().is_some_and(|s| !s.is_empty()), "{breach}");
}

/// Checks an SLO alert's shape.
#[track_caller]
fn assert_slo_alert(alert: &Value, to: &Value, task: &Value, kinds: &[&str], priority: &str) {
    assert_eq!(alert["type"], "alert", "{alert}");
    assert_eq!(alert["senderKind"], "system", "{alert}");
    assert_eq!(alert["fromAgentId"], Value::Null, "{alert}");
    assert_eq!(alert["toAgentId"], to["id"], "{alert}");
    assert_eq!(alert["taskId"], task["id"], "{alert}");
    assert_eq!(
        alert["subject"],
        format!("SLO breached: {}", text(&task["title"])),
        "{alert}"
    );
    assert_eq!(alert["priority"], priority, "{alert}");
    assert_eq!(alert["data"]["reason"], "slo_breach", "{alert}");
    assert_eq!(alert["data"]["breaches"], json!(kinds), "{alert}");
    assert_eq!(alert["data"]["deadlineAt"], task["sloDeadlineAt"], "{alert}");
    assert_eq!(alert["data"]["assigneeId"], task["assigneeId"], "{alert}");
}

/// Priority and escalation level of a task.
async fn escalation(app: &TestApp, task: &str) -> (String, i64) {
    let t = get_task(app, task).await;
    (text(&t["priority"]), int(&t["escalationLevel"]))
}

// ---------------------------------------------------------------------------------------------------------

async fn an_urgent_task_moves_from_ok_to_breached(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    let (bob, _) = app.agent("bob").await;
    let task = app
        .task(
            json!({"title": "Urgent fix", "priority": "P2", "slaTier": "urgent", "assigneeId": "bob",
            "estimatedMinutes": 30}),
        )
        .await;
    let task_id = id(&task);
    let created = int(&task["createdAt"]);
    assert_eq!(created, now(&app));
    assert_eq!(int(&task["sloDeadlineAt"]), created + 4 * HOUR, "{task}");
    assert_eq!(
        task["sloMs"],
        Value::Null,
        "the tier sets the deadline, not sloMs: {task}"
    );

    let fresh = slo(&app, &task_id).await;
    assert_eq!(
        fresh,
        json!({
            "taskId": task_id, "title": "Urgent fix", "taskStatus": "ready", "priority": "P2",
            "assigneeId": bob["id"], "slaTier": "urgent", "sloMs": 4 * HOUR, "deadlineAt": created + 4 * HOUR,
            "createdAt": created, "ageMs": 0, "percentUsed": 0.0, "msRemaining": 4 * HOUR, "status": "OK",
            "stoppedAt": null
        })
    );

    // (time since creation, status, percentUsed, msRemaining); a tick at each step records nothing before 4 h.
    let steps: [(i64, &str, f64, i64); 8] = [
        (HOUR, "OK", 25.0, 3 * HOUR),
        (3 * HOUR - 1, "OK", 75.0, HOUR + 1),
        (3 * HOUR, "AT_RISK", 75.0, HOUR),
        (3 * HOUR + 50 * MINUTE, "AT_RISK", 95.8, 10 * MINUTE),
        (3 * HOUR + 50 * MINUTE + 1, "CRITICAL", 95.8, 10 * MINUTE - 1),
        (4 * HOUR - 1, "CRITICAL", 100.0, 1),
        (4 * HOUR, "BREACHED", 100.0, 0),
        (5 * HOUR, "BREACHED", 125.0, -HOUR),
    ];
    for (age, status, percent, remaining) in steps {
        app.clock.advance_ms(created + age - now(&app));
        let reading = slo(&app, &task_id).await;
        assert_clock(&reading, status, percent, remaining, age);
        assert_eq!(reading["stoppedAt"], Value::Null, "{reading}");
        assert_eq!(reading["taskStatus"], "ready");
        let report = app.tick().await;
        if age < 4 * HOUR {
            assert!(report.slo_breaches.is_empty(), "breach before the deadline: {report:?}");
        } else if age == 4 * HOUR {
            assert_eq!(keys(&recorded(&report)), vec![key(&task_id, "deadline_missed")]);
        } else {
            assert!(report.slo_breaches.is_empty(), "recorded twice: {report:?}");
        }
    }
    // The escalation raised the priority; the reading follows the task.
    assert_eq!(slo(&app, &task_id).await["priority"], "P1");
    app.stop().await;
}

async fn deadlines_follow_tier_and_slo_ms(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    let t0 = now(&app);
    // (body extras, expected sloMs in effect)
    let cases: [(Value, Option<i64>); 8] = [
        (json!({"slaTier": "critical"}), Some(HOUR)),
        (json!({"slaTier": "urgent"}), Some(4 * HOUR)),
        (json!({"slaTier": "normal"}), Some(24 * HOUR)),
        (json!({"slaTier": "backlog"}), None),
        (json!({}), None),
        (json!({"slaTier": "normal", "sloMs": 90_000}), Some(90_000)),
        (json!({"sloMs": 2 * HOUR}), Some(2 * HOUR)),
        (json!({"slaTier": "backlog", "sloMs": 3 * HOUR}), Some(3 * HOUR)),
    ];
    let mut ids = Vec::new();
    for (i, (extra, expected)) in cases.iter().enumerate() {
        let mut body = json!({"title": format!("case {i}")});
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        let task = app.task(body).await;
        assert_eq!(
            task["sloDeadlineAt"],
            json!(expected.map(|ms| t0 + ms)),
            "case {i}: {task}"
        );
        let reading = slo(&app, &id(&task)).await;
        assert_eq!(reading["sloMs"], json!(expected), "case {i}: {reading}");
        assert_eq!(reading["deadlineAt"], task["sloDeadlineAt"], "case {i}");
        assert_eq!(reading["slaTier"], task["slaTier"], "case {i}");
        assert_eq!(reading["createdAt"], json!(t0));
        assert_eq!(reading["taskStatus"], "backlog");
        match expected {
            Some(ms) => {
                assert_eq!(reading["msRemaining"], json!(ms), "case {i}");
                assert_eq!(reading["percentUsed"].as_f64(), Some(0.0), "case {i}");
            }
            None => {
                assert_eq!(reading["status"], "NONE", "case {i}: {reading}");
                assert_eq!(reading["percentUsed"], Value::Null, "case {i}");
                assert_eq!(reading["msRemaining"], Value::Null, "case {i}");
            }
        }
        ids.push(id(&task));
    }
    // A 90 s SLO is critical from the start (less than 10 minutes left).
    assert_eq!(slo(&app, &ids[5]).await["status"], "CRITICAL");
    assert_eq!(slo(&app, &ids[0]).await["status"], "OK");

    // A task without a deadline stays NONE however old it gets, and is never breached.
    app.clock.advance_ms(48 * HOUR);
    let none = slo(&app, &ids[4]).await;
    assert_eq!(none["status"], "NONE", "{none}");
    assert_eq!(int(&none["ageMs"]), 48 * HOUR);
    let report = app.tick().await;
    let breached: Vec<(String, String)> = keys(&recorded(&report));
    for (i, task) in ids.iter().enumerate() {
        let expected = usize::from(cases[i].1.is_some());
        let count = breached.iter().filter(|(t, _)| t == task).count();
        assert_eq!(count, expected, "case {i}: {breached:?}");
    }

    // Changing the tier moves the deadline, still counted from creation.
    let patched = app
        .admin(
            Method::PATCH,
            &format!("/api/tasks/{}", ids[4]),
            Some(json!({"slaTier": "normal"})),
        )
        .await
        .expect(200);
    assert_eq!(int(&patched["sloDeadlineAt"]), t0 + 24 * HOUR, "{patched}");
    // That deadline is already past: the change itself records the breach.
    let patched_breaches: Vec<Value> = all_breaches(&app)
        .await
        .into_iter()
        .filter(|b| b["taskId"] == ids[4].as_str())
        .collect();
    assert_eq!(keys(&patched_breaches), vec![key(&ids[4], "deadline_missed")]);
    assert_eq!(int(&patched_breaches[0]["detectedAt"]), t0 + 48 * HOUR);
    let patched = app
        .admin(
            Method::PATCH,
            &format!("/api/tasks/{}", ids[4]),
            Some(json!({"sloMs": 72 * HOUR})),
        )
        .await
        .expect(200);
    assert_eq!(int(&patched["sloDeadlineAt"]), t0 + 72 * HOUR, "{patched}");
    let reading = slo(&app, &ids[4]).await;
    assert_eq!(reading["status"], "OK", "{reading}");
    assert_eq!(reading["percentUsed"].as_f64(), Some(66.7), "{reading}");
    assert_eq!(int(&reading["msRemaining"]), 24 * HOUR);

    // Unknown (or deleted) tasks have no SLO.
    app.admin(Method::GET, "/api/tasks/no-such-task/slo", None)
        .await
        .expect_error(404, "task_not_found");
    app.admin(Method::DELETE, &format!("/api/tasks/{}", ids[3]), None)
        .await
        .expect(200);
    app.admin(Method::GET, &format!("/api/tasks/{}/slo", ids[3]), None)
        .await
        .expect_error(404, "task_not_found");
    app.stop().await;
}

async fn finished_tasks_stop_the_clock(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    app.register(json!({"name": "boss", "level": "lead"})).await;
    let (_bob, bob_token) = app.register(json!({"name": "bob", "leadId": "boss"})).await;
    let t0 = now(&app);
    let on_time = app
        .task(
            json!({"title": "On time", "sloMs": HOUR, "status": "ready", "assigneeId": "bob",
            "estimatedMinutes": 30}),
        )
        .await;
    let on_time_id = id(&on_time);
    claim(&app, "bob", &bob_token).await;
    app.clock.advance_ms(HOUR - 1);
    complete(&app, &on_time_id).await;

    let late = app
        .task(
            json!({"title": "Late", "priority": "P2", "sloMs": HOUR, "status": "ready", "assigneeId": "bob",
            "estimatedMinutes": 30}),
        )
        .await;
    let late_id = id(&late);
    let late_created = int(&late["createdAt"]);
    claim(&app, "bob", &bob_token).await;
    // Exactly at the deadline, with no tick in between: finished late.
    app.clock.advance_ms(HOUR);
    let finished_at = now(&app);
    complete(&app, &late_id).await;

    let cancelled = app.task(json!({"title": "Dropped", "slaTier": "critical"})).await;
    app.clock.advance_ms(10 * MINUTE);
    move_to(&app, &id(&cancelled), "cancelled").await.expect(200);

    // Much later, the clocks have not moved.
    app.clock.advance_ms(10 * HOUR);
    let met = slo(&app, &on_time_id).await;
    assert_eq!(met["taskStatus"], "done");
    assert_clock(&met, "MET", 100.0, 1, HOUR - 1);
    assert_eq!(int(&met["stoppedAt"]), t0 + HOUR - 1, "{met}");
    let missed = slo(&app, &late_id).await;
    assert_clock(&missed, "MISSED", 100.0, 0, HOUR);
    assert_eq!(int(&missed["stoppedAt"]), finished_at, "{missed}");
    let dropped = slo(&app, &id(&cancelled)).await;
    assert_eq!(dropped["taskStatus"], "cancelled");
    assert_clock(&dropped, "MET", 16.7, 50 * MINUTE, 10 * MINUTE);

    // Only the late one has a record: deadline_missed, detected at the completion, not escalated.
    let listed = all_breaches(&app).await;
    assert_eq!(keys(&listed), vec![key(&late_id, "deadline_missed")], "{listed:?}");
    let late_task = get_task(&app, &late_id).await;
    assert_breach(&listed[0], &late_task, "deadline_missed", finished_at, None);
    assert_eq!(int(&listed[0]["deadlineAt"]), late_created + HOUR);
    assert_eq!(
        late_task["priority"], "P2",
        "a finished task is not raised: {late_task}"
    );
    assert_eq!(late_task["escalationLevel"], 0);
    assert!(activity(&app, "task_escalated").await.is_empty());
    assert!(slo_alerts(&app, "boss").await.is_empty(), "a late finish alerts nobody");
    let rows = activity(&app, "slo_breached").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["taskId"], late_id.as_str());
    assert_eq!(rows[0]["after"], listed[0]);

    let counts = overview(&app, "").await["counts"].clone();
    assert_eq!(
        counts,
        json!({"ok": 0, "atRisk": 0, "critical": 0, "breached": 0, "none": 0, "met": 2, "missed": 1})
    );
    assert!(app.tick().await.slo_breaches.is_empty());

    // All of it is read back from the store after a restart.
    let app = app.restart().await;
    assert_eq!(slo(&app, &on_time_id).await, met);
    assert_eq!(slo(&app, &late_id).await, missed);
    assert_eq!(all_breaches(&app).await, listed);
    assert_eq!(overview(&app, "").await["counts"], counts);
    app.clock.advance_ms(HOUR);
    assert!(app.tick().await.slo_breaches.is_empty());
    app.stop().await;
}

async fn the_overview_counts_and_orders_urgent_tasks(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    let (_bob, bob_token) = app.agent("bob").await;
    let t0 = now(&app);
    let make = |title: &'static str, slo_ms: Option<i64>| {
        let app = &app;
        async move {
            let mut body = json!({"title": title});
            if let Some(ms) = slo_ms {
                body["sloMs"] = json!(ms);
            }
            id(&app.task(body).await)
        }
    };
    // Read at t0 + 60 min: remaining is sloMs − 60 min.
    let ok = make("ok", Some(2 * HOUR)).await; // 50 %
    let at_risk_b = make("at risk b", Some(80 * MINUTE)).await; // exactly 75 %, 20 min left
    let critical_b = make("critical b", Some(68 * MINUTE)).await; // 8 min left
    let breached_b = make("breached b", Some(30 * MINUTE)).await; // 30 min over
    let at_risk_a = make("at risk a", Some(75 * MINUTE)).await; // 80 %, 15 min left
    let critical_a = make("critical a", Some(65 * MINUTE)).await; // 5 min left
    let breached_a = make("breached a", Some(10 * MINUTE)).await; // 50 min over
    make("no deadline", None).await;
    let backlog = app.task(json!({"title": "backlog tier", "slaTier": "backlog"})).await;
    assert_eq!(backlog["sloDeadlineAt"], Value::Null);
    let mut running = Vec::new();
    for (title, slo_ms) in [("met", 2 * HOUR), ("missed", 20 * MINUTE)] {
        let task = app
            .task(
                json!({"title": title, "sloMs": slo_ms, "status": "ready", "assigneeId": "bob",
                "estimatedMinutes": 30}),
            )
            .await;
        move_to(&app, &id(&task), "in_progress").await.expect(200);
        running.push(id(&task));
    }
    app.clock.advance_ms(HOUR);
    for task in &running {
        complete(&app, task).await;
    }

    let report = overview(&app, "").await;
    assert_eq!(int(&report["generatedAt"]), t0 + HOUR);
    assert_eq!(
        report["counts"],
        json!({"ok": 1, "atRisk": 2, "critical": 2, "breached": 2, "none": 2, "met": 1, "missed": 1}),
        "{report}"
    );
    assert_eq!(report["urgentTotal"], 6);
    let urgent = array(&report["urgent"]);
    let order: Vec<String> = urgent.iter().map(|r| text(&r["taskId"])).collect();
    assert_eq!(
        order,
        vec![
            breached_a.clone(),
            breached_b.clone(),
            critical_a.clone(),
            critical_b.clone(),
            at_risk_a.clone(),
            at_risk_b.clone()
        ],
        "most urgent first, least time left first: {report}"
    );
    let remaining: Vec<i64> = urgent.iter().map(|r| int(&r["msRemaining"])).collect();
    assert_eq!(
        remaining,
        vec![
            -50 * MINUTE,
            -30 * MINUTE,
            5 * MINUTE,
            8 * MINUTE,
            15 * MINUTE,
            20 * MINUTE
        ]
    );
    let statuses: Vec<String> = urgent.iter().map(|r| text(&r["status"])).collect();
    assert_eq!(
        statuses,
        ["BREACHED", "BREACHED", "CRITICAL", "CRITICAL", "AT_RISK", "AT_RISK"]
    );
    // Each entry is the task's own reading.
    for reading in &urgent {
        assert_eq!(reading, &slo(&app, &text(&reading["taskId"])).await);
    }
    assert_eq!(urgent[5]["percentUsed"].as_f64(), Some(75.0));
    assert_eq!(urgent[0]["percentUsed"].as_f64(), Some(600.0));
    assert!(!order.contains(&ok));

    // The limit cuts the list, not the total.
    let top = overview(&app, "?limit=3").await;
    assert_eq!(top["urgentTotal"], 6);
    assert_eq!(array(&top["urgent"]), urgent[..3].to_vec());
    assert_eq!(top["counts"], report["counts"]);
    let all = overview(&app, "?limit=100").await;
    assert_eq!(array(&all["urgent"]).len(), 6);
    for bad in ["?limit=0", "?limit=101", "?limit=-1", "?limit=many", "?top=3"] {
        app.admin(Method::GET, &format!("/api/slo{bad}"), None)
            .await
            .expect_error(400, "validation_failed");
    }
    app.call(Method::GET, "/api/slo", None, None)
        .await
        .expect_error(401, "unauthorized");
    // Any agent may read it.
    let as_bob = app
        .call(Method::GET, "/api/slo", Some(&bob_token), None)
        .await
        .expect(200);
    assert_eq!(as_bob["urgent"], report["urgent"]);

    // The default limit is 20.
    for i in 0..15 {
        app.task(json!({"title": format!("tight {i}"), "sloMs": MINUTE})).await;
    }
    let crowded = overview(&app, "").await;
    assert_eq!(crowded["urgentTotal"], 21, "{crowded}");
    assert_eq!(crowded["counts"]["critical"], 17);
    let listed = array(&crowded["urgent"]);
    assert_eq!(listed.len(), 20);
    assert_eq!(listed[..2].to_vec(), urgent[..2].to_vec());
    assert_eq!(listed[19]["taskId"], at_risk_a.as_str(), "the least urgent is cut");
    app.stop().await;
}

async fn a_tick_records_breaches_escalates_and_alerts_the_lead_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    let (boss, _) = app.register(json!({"name": "boss", "level": "lead"})).await;
    app.register(json!({"name": "other", "level": "lead"})).await;
    let (bob, bob_token) = app.register(json!({"name": "bob", "leadId": "boss"})).await;
    let task = app
        .task(
            json!({"title": "Ship the parser", "priority": "P2", "slaTier": "urgent", "status": "ready",
            "assigneeId": "bob", "estimatedMinutes": 30}),
        )
        .await;
    let task_id = id(&task);
    claim(&app, "bob", &bob_token).await;

    app.clock.advance_ms(4 * HOUR - 1);
    assert!(app.tick().await.slo_breaches.is_empty());
    assert!(all_breaches(&app).await.is_empty());
    assert_eq!(escalation(&app, &task_id).await, ("P2".to_string(), 0));

    app.clock.advance_ms(1);
    let at = now(&app);
    let report = app.tick().await;
    let new = recorded(&report);
    assert_eq!(
        keys(&new),
        vec![key(&task_id, "deadline_missed"), key(&task_id, "in_progress_timeout")],
        "{new:?}"
    );
    for (breach, kind) in new.iter().zip(["deadline_missed", "in_progress_timeout"]) {
        assert_breach(breach, &task, kind, at, Some(at));
        assert_eq!(breach["agentId"], bob["id"]);
    }
    // Listed newest first: the reverse of the order recorded.
    let listed = all_breaches(&app).await;
    assert_eq!(listed, new.iter().rev().cloned().collect::<Vec<_>>());

    // Escalated once for both breaches.
    let after = get_task(&app, &task_id).await;
    assert_eq!(after["priority"], "P1", "{after}");
    assert_eq!(after["escalationLevel"], 1, "{after}");
    assert_eq!(int(&after["escalatedAt"]), at);
    assert_eq!(after["assigneeId"], bob["id"]);
    let rows = activity(&app, "task_escalated").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["taskId"], task_id.as_str());
    assert_eq!(rows[0]["actorKind"], "system");
    assert_eq!(rows[0]["before"], json!({"priority": "P2", "escalationLevel": 0}));
    assert_eq!(rows[0]["after"], json!({"priority": "P1", "escalationLevel": 1}));
    let rows = activity(&app, "slo_breached").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (row, breach) in rows.iter().zip(&listed) {
        assert_eq!(row["actorKind"], "system");
        assert_eq!(row["taskId"], task_id.as_str());
        assert_eq!(row["agentId"], bob["id"]);
        assert_eq!(int(&row["createdAt"]), at);
        assert_eq!(&row["after"], breach);
    }

    // One alert, to bob's lead only.
    let alerts = slo_alerts(&app, "boss").await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_slo_alert(
        &alerts[0],
        &boss,
        &task,
        &["deadline_missed", "in_progress_timeout"],
        "high",
    );
    assert!(inbox_items(&app, "other").await.is_empty(), "another lead was alerted");
    assert!(inbox_items(&app, "bob").await.is_empty(), "the assignee was alerted");
    let reading = slo(&app, &task_id).await;
    assert_eq!(reading["status"], "BREACHED");
    assert_eq!(reading["priority"], "P1");

    // Later ticks record nothing and escalate nothing.
    for _ in 0..3 {
        app.clock.advance_ms(30 * MINUTE);
        let report = app.tick().await;
        assert!(report.slo_breaches.is_empty(), "{report:?}");
    }
    assert_eq!(all_breaches(&app).await, listed);
    assert_eq!(escalation(&app, &task_id).await, ("P1".to_string(), 1));
    assert_eq!(slo_alerts(&app, "boss").await.len(), 1);
    assert_eq!(activity(&app, "slo_breached").await.len(), 2);
    assert_eq!(activity(&app, "task_escalated").await.len(), 1);
    app.stop().await;
}

async fn each_kind_is_recorded_once_as_the_task_moves(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    // bob has no lead: every lead is alerted.
    let (l1, _) = app.register(json!({"name": "l1", "level": "lead"})).await;
    let (l2, _) = app.register(json!({"name": "l2", "level": "lead"})).await;
    let (bob, bob_token) = app.agent("bob").await;
    let task = app
        .task(
            json!({"title": "Wobbly", "priority": "P2", "sloMs": HOUR, "status": "ready", "assigneeId": "bob",
            "estimatedMinutes": 30}),
        )
        .await;
    let task_id = id(&task);

    // Ready past the deadline: deadline_missed only.
    app.clock.advance_ms(HOUR);
    let t1 = now(&app);
    let report = app.tick().await;
    assert_eq!(keys(&recorded(&report)), vec![key(&task_id, "deadline_missed")]);
    assert_eq!(escalation(&app, &task_id).await, ("P1".to_string(), 1));
    for lead in [&l1, &l2] {
        let alerts = slo_alerts(&app, &text(&lead["name"])).await;
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_slo_alert(&alerts[0], lead, &task, &["deadline_missed"], "high");
    }
    assert!(inbox_items(&app, "bob").await.is_empty());

    // Blocked: blocked_too_long at once, on the change itself (no tick).
    app.clock.advance_ms(MINUTE);
    let t2 = now(&app);
    move_to(&app, &task_id, "blocked").await.expect(200);
    let listed = all_breaches(&app).await;
    assert_eq!(
        keys(&listed),
        vec![key(&task_id, "blocked_too_long"), key(&task_id, "deadline_missed")]
    );
    assert_eq!(int(&listed[0]["detectedAt"]), t2);
    assert_eq!(int(&listed[0]["escalatedAt"]), t2);
    assert_eq!(int(&listed[1]["detectedAt"]), t1);
    assert_eq!(escalation(&app, &task_id).await, ("P0".to_string(), 2));
    for lead in ["l1", "l2"] {
        let alerts = slo_alerts(&app, lead).await;
        assert_eq!(alerts.len(), 2, "{alerts:?}");
        assert_eq!(alerts[0]["data"]["breaches"], json!(["blocked_too_long"]));
    }
    assert!(app.tick().await.slo_breaches.is_empty());

    // Back to work: in_progress_timeout; P0 stays P0 but the level still counts.
    app.clock.advance_ms(MINUTE);
    move_to(&app, &task_id, "ready").await.expect(200);
    claim(&app, "bob", &bob_token).await;
    let listed = all_breaches(&app).await;
    assert_eq!(
        keys(&listed),
        vec![
            key(&task_id, "in_progress_timeout"),
            key(&task_id, "blocked_too_long"),
            key(&task_id, "deadline_missed")
        ]
    );
    assert_eq!(listed[0]["agentId"], bob["id"]);
    assert_eq!(escalation(&app, &task_id).await, ("P0".to_string(), 3));
    let alerts = slo_alerts(&app, "l1").await;
    assert_eq!(alerts.len(), 3, "{alerts:?}");
    assert_eq!(
        alerts[0]["priority"], "critical",
        "a P0 task's alert is critical: {alerts:?}"
    );

    // Blocked again, more ticks: nothing new.
    move_to(&app, &task_id, "blocked").await.expect(200);
    for _ in 0..3 {
        app.clock.advance_ms(HOUR);
        assert!(app.tick().await.slo_breaches.is_empty());
    }
    assert_eq!(all_breaches(&app).await, listed);
    assert_eq!(escalation(&app, &task_id).await, ("P0".to_string(), 3));
    assert_eq!(slo_alerts(&app, "l2").await.len(), 3);
    assert_eq!(activity(&app, "slo_breached").await.len(), 3);
    assert_eq!(activity(&app, "task_escalated").await.len(), 3);
    app.stop().await;
}

async fn a_change_past_the_deadline_is_checked_without_a_tick(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    let (boss, _) = app.register(json!({"name": "boss", "level": "lead"})).await;
    let (bob, bob_token) = app.register(json!({"name": "bob", "leadId": "boss"})).await;
    let task = app
        .task(
            json!({"title": "Forgotten", "priority": "P3", "slaTier": "critical", "status": "ready",
            "assigneeId": "bob", "estimatedMinutes": 30}),
        )
        .await;
    let task_id = id(&task);
    app.clock.advance_ms(2 * HOUR);
    let at = now(&app);
    // Claimed late: both kinds at once, one escalation.
    claim(&app, "bob", &bob_token).await;
    let listed = all_breaches(&app).await;
    assert_eq!(
        keys(&listed),
        vec![key(&task_id, "in_progress_timeout"), key(&task_id, "deadline_missed")]
    );
    let current = get_task(&app, &task_id).await;
    assert_breach(&listed[1], &current, "deadline_missed", at, Some(at));
    assert_breach(&listed[0], &current, "in_progress_timeout", at, Some(at));
    assert_eq!(listed[0]["slaTier"], "critical");
    assert_eq!(int(&listed[0]["sloMs"]), HOUR);
    assert_eq!(current["priority"], "P2", "{current}");
    assert_eq!(current["escalationLevel"], 1);
    let alerts = slo_alerts(&app, "boss").await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_slo_alert(
        &alerts[0],
        &boss,
        &task,
        &["deadline_missed", "in_progress_timeout"],
        "critical",
    );
    assert_eq!(alerts[0]["data"]["assigneeId"], bob["id"]);
    // The tick finds nothing left to record.
    assert!(app.tick().await.slo_breaches.is_empty());

    // Shortening the SLO of a running task past now breaches it on the PATCH.
    let other = app
        .task(
            json!({"title": "Rescoped", "priority": "P2", "sloMs": 10 * HOUR, "status": "ready",
            "assigneeId": "bob", "estimatedMinutes": 30}),
        )
        .await;
    let other_id = id(&other);
    app.clock.advance_ms(2 * HOUR);
    let at = now(&app);
    let patched = app
        .admin(
            Method::PATCH,
            &format!("/api/tasks/{other_id}"),
            Some(json!({"sloMs": HOUR})),
        )
        .await
        .expect(200);
    assert_eq!(int(&patched["sloDeadlineAt"]), int(&other["createdAt"]) + HOUR);
    let mine = breaches_where(&app, &format!("agentId={}&since={at}", text(&bob["id"]))).await;
    assert_eq!(keys(&mine), vec![key(&other_id, "deadline_missed")], "{mine:?}");
    assert_eq!(int(&mine[0]["sloMs"]), HOUR);
    assert_eq!(int(&mine[0]["deadlineAt"]), int(&other["createdAt"]) + HOUR);
    assert_eq!(escalation(&app, &other_id).await, ("P1".to_string(), 1));
    assert_eq!(slo_alerts(&app, "boss").await.len(), 2);

    // Giving it more time again clears the status but not the record, and it is never recorded twice.
    app.admin(
        Method::PATCH,
        &format!("/api/tasks/{other_id}"),
        Some(json!({"sloMs": 5 * HOUR})),
    )
    .await
    .expect(200);
    assert_eq!(slo(&app, &other_id).await["status"], "OK");
    app.clock.advance_ms(4 * HOUR);
    assert_eq!(slo(&app, &other_id).await["status"], "BREACHED");
    assert!(app.tick().await.slo_breaches.is_empty());
    assert_eq!(all_breaches(&app).await.len(), 3);
    assert_eq!(escalation(&app, &other_id).await, ("P1".to_string(), 1));
    app.stop().await;
}

async fn an_unassigned_task_alerts_every_lead(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    let (l1, _) = app.register(json!({"name": "l1", "level": "lead"})).await;
    let (l2, _) = app.register(json!({"name": "l2", "level": "lead"})).await;
    app.register(json!({"name": "bob", "leadId": "l1"})).await;
    let task = app
        .task(json!({"title": "Nobody's", "priority": "P3", "slaTier": "critical"}))
        .await;
    let task_id = id(&task);
    assert_eq!(task["assigneeId"], Value::Null);
    app.clock.advance_ms(HOUR);
    let at = now(&app);
    let report = app.tick().await;
    let new = recorded(&report);
    assert_eq!(keys(&new), vec![key(&task_id, "deadline_missed")]);
    assert_breach(&new[0], &task, "deadline_missed", at, Some(at));
    assert_eq!(new[0]["agentId"], Value::Null);
    assert_eq!(escalation(&app, &task_id).await, ("P2".to_string(), 1));
    for lead in [&l1, &l2] {
        let alerts = slo_alerts(&app, &text(&lead["name"])).await;
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_slo_alert(&alerts[0], lead, &task, &["deadline_missed"], "critical");
    }
    assert!(inbox_items(&app, "bob").await.is_empty());
    app.stop().await;
}

async fn a_late_finish_after_a_breach_is_not_recorded_again(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    app.register(json!({"name": "boss", "level": "lead"})).await;
    let (_bob, bob_token) = app.register(json!({"name": "bob", "leadId": "boss"})).await;
    let task = app
        .task(
            json!({"title": "Overran", "sloMs": HOUR, "status": "ready", "assigneeId": "bob",
            "estimatedMinutes": 30}),
        )
        .await;
    let task_id = id(&task);
    claim(&app, "bob", &bob_token).await;
    app.clock.advance_ms(HOUR + MINUTE);
    assert_eq!(app.tick().await.slo_breaches.len(), 2);
    let before = all_breaches(&app).await;
    // Finished after a restart: the records made while it was open are still known.
    let app = app.restart().await;
    app.clock.advance_ms(MINUTE);
    let finished_at = now(&app);
    complete(&app, &task_id).await;
    let reading = slo(&app, &task_id).await;
    assert_clock(&reading, "MISSED", 103.3, -2 * MINUTE, HOUR + 2 * MINUTE);
    assert_eq!(int(&reading["stoppedAt"]), finished_at);
    assert_eq!(
        all_breaches(&app).await,
        before,
        "the finish recorded the deadline again"
    );
    assert_eq!(escalation(&app, &task_id).await, ("P1".to_string(), 1));
    assert_eq!(slo_alerts(&app, "boss").await.len(), 1);
    let counts = overview(&app, "").await["counts"].clone();
    assert_eq!(counts["missed"], 1, "{counts}");
    assert_eq!(counts["breached"], 0, "{counts}");
    app.clock.advance_ms(HOUR);
    assert!(app.tick().await.slo_breaches.is_empty());
    let app = app.restart().await;
    assert!(app.tick().await.slo_breaches.is_empty());
    assert_eq!(all_breaches(&app).await, before);
    app.stop().await;
}

/// Three tasks breached on three ticks an hour apart: bob's in progress (2 kinds), carol's blocked (2 kinds),
/// an unassigned one (1 kind). Returns the breaches newest first and the three detection times.
async fn three_breached_tasks(app: &TestApp) -> (Vec<Value>, [i64; 3], Value, Value) {
    let (bob, _) = app.agent("bob").await;
    let (carol, _) = app.agent("carol").await;
    let tb = app
        .task(
            json!({"title": "Bob's", "sloMs": HOUR, "status": "ready", "assigneeId": "bob",
            "estimatedMinutes": 30}),
        )
        .await;
    let tc = app
        .task(
            json!({"title": "Carol's", "slaTier": "critical", "sloMs": 2 * HOUR, "status": "ready",
            "assigneeId": "carol", "estimatedMinutes": 30}),
        )
        .await;
    let tu = app.task(json!({"title": "Nobody's", "sloMs": 3 * HOUR})).await;
    move_to(app, &id(&tb), "in_progress").await.expect(200);
    move_to(app, &id(&tc), "blocked").await.expect(200);
    let mut times = [0; 3];
    let mut all = Vec::new();
    let expected = [
        vec![key(&id(&tb), "deadline_missed"), key(&id(&tb), "in_progress_timeout")],
        vec![key(&id(&tc), "deadline_missed"), key(&id(&tc), "blocked_too_long")],
        vec![key(&id(&tu), "deadline_missed")],
    ];
    for (i, keys_due) in expected.iter().enumerate() {
        app.clock.advance_ms(HOUR);
        times[i] = now(app);
        let new = recorded(&app.tick().await);
        assert_eq!(&keys(&new), keys_due, "tick {i} lists only what it recorded");
        for b in &new {
            assert_eq!(int(&b["detectedAt"]), times[i]);
        }
        all.extend(new);
    }
    all.reverse();
    (all, times, bob, carol)
}

async fn breaches_filter_and_page(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    let (all, [t1, t2, t3], bob, carol) = three_breached_tasks(&app).await;
    assert_eq!(all.len(), 5);
    let listed = all_breaches(&app).await;
    assert_eq!(listed, all, "newest first");
    assert_eq!(listed[1]["slaTier"], "critical");
    assert_eq!(int(&listed[1]["sloMs"]), 2 * HOUR, "sloMs overrides the tier");

    let pick = |idx: &[usize]| idx.iter().map(|&i| all[i].clone()).collect::<Vec<_>>();
    let (bob_id, carol_id) = (text(&bob["id"]), text(&carol["id"]));
    let cases: Vec<(String, Vec<Value>)> = vec![
        (format!("agentId={bob_id}"), pick(&[3, 4])),
        (format!("agentId={carol_id}"), pick(&[1, 2])),
        ("agentId=nobody".to_string(), vec![]),
        ("kind=deadline_missed".to_string(), pick(&[0, 2, 4])),
        ("kind=in_progress_timeout".to_string(), pick(&[3])),
        ("kind=blocked_too_long".to_string(), pick(&[1])),
        (format!("since={t1}"), pick(&[0, 1, 2, 3, 4])),
        (format!("since={t2}"), pick(&[0, 1, 2])),
        (format!("since={}", t2 + 1), pick(&[0])),
        (format!("since={t3}"), pick(&[0])),
        (format!("since={}", t3 + 1), vec![]),
        (format!("agentId={carol_id}&kind=deadline_missed"), pick(&[2])),
        (format!("agentId={bob_id}&since={t2}"), vec![]),
        (format!("kind=deadline_missed&since={t2}"), pick(&[0, 2])),
    ];
    for (filter, expected) in &cases {
        assert_eq!(&breaches_where(&app, filter).await, expected, "filter {filter}");
    }

    // Pages of two: 2 + 2 + 1, each with a cursor to the next but the last.
    let first = breach_page(&app, "?limit=2").await;
    assert_eq!(array(&first["items"]), pick(&[0, 1]));
    let cursor = text(&first["nextCursor"]);
    let second = breach_page(&app, &format!("?limit=2&cursor={}", encode(&cursor))).await;
    assert_eq!(array(&second["items"]), pick(&[2, 3]));
    let cursor = text(&second["nextCursor"]);
    let third = breach_page(&app, &format!("?limit=2&cursor={}", encode(&cursor))).await;
    assert_eq!(array(&third["items"]), pick(&[4]));
    assert_eq!(third["nextCursor"], Value::Null);
    // Exactly a full page: no cursor.
    let five = breach_page(&app, "?limit=5").await;
    assert_eq!(array(&five["items"]), all);
    assert_eq!(five["nextCursor"], Value::Null);
    // Paging a filtered listing one at a time.
    assert_eq!(
        all_items(&app, "/api/slo/breaches?kind=deadline_missed", 1).await,
        pick(&[0, 2, 4])
    );
    assert_eq!(all_items(&app, "/api/slo/breaches", 1).await, all);
    // Default page size holds them all.
    let default = breach_page(&app, "").await;
    assert_eq!(array(&default["items"]), all);

    for bad in [
        "?kind=late",
        "?kind=",
        "?limit=0",
        "?limit=101",
        "?limit=-2",
        "?since=yesterday",
        "?agent=bob",
    ] {
        app.admin(Method::GET, &format!("/api/slo/breaches{bad}"), None)
            .await
            .expect_error(400, "validation_failed");
    }
    app.call(Method::GET, "/api/slo/breaches", None, None)
        .await
        .expect_error(401, "unauthorized");
    app.stop().await;
}

async fn breaches_survive_a_restart_and_are_not_recorded_again(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    app.register(json!({"name": "boss", "level": "lead"})).await;
    three_breached_tasks(&app).await;
    // One more task: breached while ready before the restart; its other kind comes after it.
    let (_dave, dave_token) = app.register(json!({"name": "dave", "leadId": "boss"})).await;
    let td = app
        .task(
            json!({"title": "Dave's", "priority": "P2", "sloMs": HOUR, "status": "ready", "assigneeId": "dave",
            "estimatedMinutes": 30}),
        )
        .await;
    let td_id = id(&td);
    app.clock.advance_ms(HOUR);
    assert_eq!(keys(&recorded(&app.tick().await)), vec![key(&td_id, "deadline_missed")]);
    let before = all_breaches(&app).await;
    assert_eq!(before.len(), 6);
    let alerts_before = slo_alerts(&app, "boss").await.len();
    let escalated_before = activity(&app, "task_escalated").await.len();
    let breach_rows_before = activity(&app, "slo_breached").await;
    assert_eq!(breach_rows_before.len(), 6);

    let app = app.restart().await;
    assert_eq!(all_breaches(&app).await, before, "lost or changed by the restart");
    for _ in 0..2 {
        app.clock.advance_ms(HOUR);
        let report = app.tick().await;
        assert!(
            report.slo_breaches.is_empty(),
            "recorded again after a restart: {report:?}"
        );
    }
    assert_eq!(all_breaches(&app).await, before);
    assert_eq!(slo_alerts(&app, "boss").await.len(), alerts_before);
    assert_eq!(activity(&app, "task_escalated").await.len(), escalated_before);
    assert_eq!(escalation(&app, &td_id).await, ("P1".to_string(), 1));

    // After the restart a new kind is still recorded, the old one not again.
    let at = now(&app);
    claim(&app, "dave", &dave_token).await;
    let after = all_breaches(&app).await;
    assert_eq!(after.len(), 7, "{after:?}");
    assert_eq!(
        (
            text(&after[0]["taskId"]),
            text(&after[0]["kind"]),
            int(&after[0]["detectedAt"])
        ),
        (td_id.clone(), "in_progress_timeout".to_string(), at)
    );
    assert_eq!(&after[1..], &before[..]);
    assert_eq!(escalation(&app, &td_id).await, ("P0".to_string(), 2));
    assert_eq!(slo_alerts(&app, "boss").await.len(), alerts_before + 1);

    let app = app.restart().await;
    app.clock.advance_ms(HOUR);
    assert!(app.tick().await.slo_breaches.is_empty());
    assert_eq!(all_breaches(&app).await, after);
    assert_eq!(activity(&app, "slo_breached").await.len(), 7);
    app.stop().await;
}

on_both_backends!(
    an_urgent_task_moves_from_ok_to_breached,
    deadlines_follow_tier_and_slo_ms,
    finished_tasks_stop_the_clock,
    the_overview_counts_and_orders_urgent_tasks,
    a_tick_records_breaches_escalates_and_alerts_the_lead_once,
    each_kind_is_recorded_once_as_the_task_moves,
    a_change_past_the_deadline_is_checked_without_a_tick,
    an_unassigned_task_alerts_every_lead,
    a_late_finish_after_a_breach_is_not_recorded_again,
    breaches_filter_and_page,
    breaches_survive_a_restart_and_are_not_recorded_again,
);
