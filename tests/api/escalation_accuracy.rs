//! Escalations that fire only when something is really wrong, end to end over HTTP with the manual clock:
//! an ordinary wait behind a blocker that is being worked on is no escalation while a chain nobody moves is;
//! an agent that goes offline gives its queued tasks back (with a notice) and an auto-assign rule hands them
//! out again, spread by the balanced ranking; and a task whose second assignee falls silent soon after the
//! first goes to the lead instead of a third assignee, also across a restart.
//!
//! The heartbeat timeout of the tests is 5 minutes.

use crate::common::*;
use crate::on_both_backends;
use mission_control::Clock;
use reqwest::Method;
use serde_json::{json, Value};

const MINUTE: i64 = 60_000;

async fn heartbeat(app: &TestApp, agent: &str) {
    let path = format!("/api/agents/{agent}/heartbeat");
    app.admin(Method::POST, &path, None).await.expect(200);
}

async fn go(app: &TestApp, task: &str, to: &str) {
    let moved = move_to(app, task, to).await.expect(200);
    assert_eq!(moved["status"], to, "{moved}");
}

/// The escalations of a task, newest first.
async fn escalations_of(app: &TestApp, task: &str) -> Vec<Value> {
    all_items(app, &format!("/api/escalations?taskId={task}"), 100).await
}

/// The messages to `agent` of `kind`.
async fn inbox(app: &TestApp, agent: &str, kind: &str) -> Vec<Value> {
    let page = app
        .admin(Method::GET, &format!("/api/agents/{agent}/messages?limit=100"), None)
        .await
        .expect(200);
    array(&page["items"])
        .into_iter()
        .filter(|m| m["type"] == kind)
        .collect()
}

/// The task ids the tick's escalations are about.
fn escalated(report: &mission_control::runtime::TickReport) -> Vec<String> {
    report.escalations.iter().filter_map(|e| e.task_id.clone()).collect()
}

async fn blocked_by(app: &TestApp, task: &str, blocker: &str) {
    let path = format!("/api/tasks/{task}/dependencies");
    app.admin(Method::POST, &path, Some(json!({ "blockedBy": blocker })))
        .await
        .expect(201);
    assert_eq!(get_task(app, task).await["status"], "blocked");
}

// ---------------------------------------------------------------------------------------------------------

/// Two chains side by side. `waits` is blocked behind `build`, which `ann` works on and keeps beating for:
/// however long, an ordinary wait. `stalls` is blocked behind `design`, queued for `ghost`, who never shows a
/// sign of life: once it has been blocked for more than 30 minutes, "task blocked too long" fires. (A blocker
/// waiting unassigned in the pool is queueing, not a stuck chain: see the unit tests.) When `ann` falls silent, her chain
/// stops moving and `waits` fires too.
async fn a_moving_chain_is_no_escalation_and_an_idle_chain_is(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (ann, _) = app.register(json!({"name": "ann"})).await;
    let ann = id(&ann);
    app.register(json!({"name": "dev"})).await;
    app.register(json!({"name": "ghost"})).await;
    let build = id(&app
        .task(json!({"title": "Build the engine", "assigneeId": "ann", "status": "ready"}))
        .await);
    let waits = id(&app
        .task(json!({"title": "Test the engine", "assigneeId": "dev", "status": "ready"}))
        .await);
    let design = id(&app
        .task(json!({"title": "Design the wing", "assigneeId": "ghost", "status": "ready"}))
        .await);
    let stalls = id(&app
        .task(json!({"title": "Build the wing", "assigneeId": "dev", "status": "ready"}))
        .await);
    heartbeat(&app, &ann).await;
    go(&app, &build, "in_progress").await;
    blocked_by(&app, &waits, &build).await;
    blocked_by(&app, &stalls, &design).await;
    let start = app.clock.now_ms();

    // 30 minutes, ann beating every 5: nothing is more than 30 minutes blocked yet.
    for _ in 0..6 {
        app.clock.advance_ms(5 * MINUTE);
        heartbeat(&app, &ann).await;
        let report = app.tick().await;
        assert!(report.escalations.is_empty(), "{:?}", report.escalations);
    }
    // Just past the threshold: the idle chain fires, the moving one does not.
    app.clock.advance_ms(1);
    let report = app.tick().await;
    assert_eq!(
        escalated(&report),
        std::slice::from_ref(&stalls),
        "{:?}",
        report.escalations
    );
    let rung = &report.escalations[0];
    assert_eq!(rung.rule_name, "task blocked too long");
    assert_eq!(rung.trigger, "blocker_duration");
    assert_eq!(
        rung.reason,
        "blocked for 30 min and nothing upstream has moved for 30 min (1 open tasks upstream, none held by a live assignee)"
    );

    // Another hour of ann at work (the engine takes long): still an ordinary wait.
    for _ in 0..12 {
        app.clock.advance_ms(5 * MINUTE);
        heartbeat(&app, &ann).await;
        let report = app.tick().await;
        assert!(!escalated(&report).contains(&waits), "{:?}", report.escalations);
    }
    assert!(escalations_of(&app, &waits).await.is_empty());
    assert_eq!(app.clock.now_ms() - start, 90 * MINUTE + 1);

    // ann falls silent. At exactly the heartbeat timeout she still counts as live...
    app.clock.advance_ms(5 * MINUTE);
    let report = app.tick().await;
    assert!(!escalated(&report).contains(&waits), "{:?}", report.escalations);
    // ...one millisecond later she does not, her chain stands still, and the wait becomes an escalation.
    app.clock.advance_ms(1);
    let report = app.tick().await;
    assert_eq!(report.went_offline, ["ann".to_string()]);
    assert!(escalated(&report).contains(&waits), "{:?}", report.escalations);
    let rows = escalations_of(&app, &waits).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["ruleName"], "task blocked too long");
    assert_eq!(
        rows[0]["reason"],
        "blocked for 1 h 35 min and nothing upstream has moved for 1 h 35 min (1 open tasks upstream, none held by a \
         live assignee)"
    );

    // The edges survive a restart (the scheduler seeds them from the store): ann back at work, a fresh
    // blocked task behind her stays quiet past 30 minutes.
    let app = app.restart().await;
    heartbeat(&app, &ann).await;
    let polish = id(&app
        .task(json!({"title": "Polish the engine", "assigneeId": "dev", "status": "ready"}))
        .await);
    blocked_by(&app, &polish, &build).await;
    for _ in 0..7 {
        app.clock.advance_ms(5 * MINUTE);
        heartbeat(&app, &ann).await;
        let report = app.tick().await;
        assert!(!escalated(&report).contains(&polish), "{:?}", report.escalations);
    }
    assert!(escalations_of(&app, &polish).await.is_empty());
    app.stop().await;
}

/// `sam` goes offline with two tasks queued and one in progress. The queued ones go back to the pool,
/// unassigned, and sam finds a `task_update` notice naming them; the one in progress stays his. An operator's
/// auto-assign rule (unassigned → reassign) hands them out again, one to each free agent: the
/// balanced ranking counts the first as queued work on its new agent when it ranks for the second.
async fn an_offline_agents_queued_tasks_are_released_and_handed_out_again(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (sam, _) = app.register(json!({"name": "sam"})).await;
    let sam = id(&sam);
    let (kim, _) = app.register(json!({"name": "kim"})).await;
    let (lee, _) = app.register(json!({"name": "lee"})).await;
    // Ready and unassigned for more than 8 minutes (counted from when the task became ready).
    let rule = json!({"name": "auto-assign", "priority": 60,
        "triggers": [{"kind": "unassigned", "durationMs": 8 * MINUTE}],
        "actions": [{"kind": "reassign", "strategy": "balanced"}]});
    app.admin(Method::POST, "/api/escalation-rules", Some(rule))
        .await
        .expect(201);
    let working = id(&app
        .task(json!({"title": "Index the archive", "assigneeId": "sam", "estimatedMinutes": 60}))
        .await);
    let first = id(&app
        .task(json!({"title": "Tag the photos", "assigneeId": "sam", "priority": "P1", "estimatedMinutes": 60}))
        .await);
    let second = id(&app
        .task(json!({"title": "Sort the letters", "assigneeId": "sam", "estimatedMinutes": 60}))
        .await);
    heartbeat(&app, &sam).await;
    go(&app, &working, "in_progress").await;

    // Exactly at the heartbeat timeout sam is still there; just past it he is offline.
    app.clock.advance_ms(5 * MINUTE);
    assert!(app.tick().await.went_offline.is_empty());
    assert_eq!(get_task(&app, &first).await["assigneeId"], sam.as_str());
    app.clock.advance_ms(1);
    let report = app.tick().await;
    assert_eq!(report.went_offline, ["sam".to_string()]);
    for task in [&first, &second] {
        let released = get_task(&app, task).await;
        assert_eq!(released["status"], "ready", "{released}");
        assert_eq!(released["assigneeId"], Value::Null, "{released}");
    }
    let kept = get_task(&app, &working).await;
    assert_eq!(kept["status"], "in_progress", "{kept}");
    assert_eq!(kept["assigneeId"], sam.as_str(), "{kept}");

    let notices = other_than_assignment_notices(inbox(&app, &sam, "task_update").await);
    assert_eq!(notices.len(), 1, "{notices:?}");
    let notice = &notices[0];
    assert_eq!(notice["senderKind"], "system", "{notice}");
    assert_eq!(notice["subject"], "Released: 2 queued tasks", "{notice}");
    // In claim order: the P1 task first.
    assert_eq!(notice["relatedTaskIds"], json!([first, second]), "{notice}");
    assert!(
        text(&notice["body"]).contains("'Tag the photos', 'Sort the letters'"),
        "{notice}"
    );
    let audit = all_items(&app, &format!("/api/activity?taskId={first}"), 100).await;
    assert!(
        audit
            .iter()
            .any(|a| a["message"] == "'Tag the photos' released: its assignee went offline"),
        "{audit:?}"
    );

    // Past 8 minutes ready, the auto-assign rule hands them out: one to kim, one to lee (sam is offline).
    app.clock.advance_ms(3 * MINUTE);
    let report = app.tick().await;
    assert_eq!(report.escalations.len(), 2, "{:?}", report.escalations);
    let mut owners: Vec<String> = Vec::new();
    for task in [&first, &second] {
        let assigned = get_task(&app, task).await;
        assert_eq!(assigned["status"], "ready", "{assigned}");
        owners.push(text(&assigned["assigneeId"]));
    }
    owners.sort();
    let mut expected = vec![id(&kim), id(&lee)];
    expected.sort();
    assert_eq!(owners, expected, "spread over the free agents, not piled on one");
    app.stop().await;
}

/// `amy` takes a task and falls silent: "assignee silent" gives it to `ben`. The runtime restarts. `ben`
/// starts and falls silent too, 11 minutes after the first takeover (within the 30-minute cooldown): the
/// rule escalates to their lead instead of reassigning a third time, and the task stays with ben.
async fn a_second_silent_assignee_reaches_the_lead(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (boss, _) = app.register(json!({"name": "boss", "level": "lead"})).await;
    let (amy, _) = app.register(json!({"name": "amy", "leadId": "boss"})).await;
    let (ben, _) = app.register(json!({"name": "ben", "leadId": "boss"})).await;
    app.register(json!({"name": "cal", "leadId": "boss"})).await;
    let (amy, ben, boss) = (id(&amy), id(&ben), id(&boss));
    // The lead is busy, so the ranking's first free agents are the workers.
    app.admin(
        Method::PATCH,
        &format!("/api/agents/{boss}"),
        Some(json!({"maxConcurrentTasks": 1})),
    )
    .await
    .expect(200);
    let busy = id(&app
        .task(json!({"title": "Plan the quarter", "assigneeId": "boss"}))
        .await);
    go(&app, &busy, "in_progress").await;
    let task = id(&app
        .task(json!({"title": "Rebuild the index", "assigneeId": "amy"}))
        .await);
    heartbeat(&app, &amy).await;
    go(&app, &task, "in_progress").await;

    // Silent for more than 10 minutes (the lead keeps beating): taken from amy, given to ben (first by name).
    for _ in 0..2 {
        app.clock.advance_ms(5 * MINUTE);
        heartbeat(&app, &boss).await;
        app.tick().await;
    }
    app.clock.advance_ms(MINUTE);
    heartbeat(&app, &boss).await;
    let report = app.tick().await;
    assert_eq!(
        escalated(&report),
        std::slice::from_ref(&task),
        "{:?}",
        report.escalations
    );
    let first = serde_json::to_value(&report.escalations[0]).expect("serializes");
    assert_eq!(first["ruleName"], "assignee silent", "{first}");
    assert_eq!(first["actions"][0]["kind"], "reassign", "{first}");
    assert_eq!(first["actions"][0]["status"], "executed", "{first}");
    assert_eq!(get_task(&app, &task).await["assigneeId"], ben.as_str());

    // The memory of that takeover survives a restart: it is rebuilt from the escalation history.
    let app = app.restart().await;
    go(&app, &task, "in_progress").await;
    for _ in 0..2 {
        app.clock.advance_ms(5 * MINUTE);
        heartbeat(&app, &boss).await;
        let report = app.tick().await;
        assert!(report.escalations.is_empty(), "{:?}", report.escalations);
    }
    app.clock.advance_ms(MINUTE);
    heartbeat(&app, &boss).await;
    let report = app.tick().await;
    assert_eq!(
        escalated(&report),
        std::slice::from_ref(&task),
        "{:?}",
        report.escalations
    );
    let second = without_outbox_ids(&serde_json::to_value(&report.escalations[0]).expect("serializes"));
    assert_eq!(second["ruleName"], "assignee silent", "{second}");
    assert_eq!(
        second["reason"],
        "assignee silent for 11 min; it was already taken from a silent assignee 11 min ago, so the lead decides \
         instead of a third assignee"
    );
    assert_eq!(
        second["actions"],
        json!([{"kind": "escalate", "status": "executed", "detail": "priority P2 → P1; alerted boss"}]),
        "{second}"
    );
    let after = get_task(&app, &task).await;
    assert_eq!(after["assigneeId"], ben.as_str(), "{after}");
    assert_eq!(after["status"], "in_progress", "{after}");
    let alerts: Vec<Value> = inbox(&app, &boss, "alert")
        .await
        .into_iter()
        .filter(|m| m["taskId"] == task.as_str())
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(inbox(&app, &ben, "handoff").await.is_empty(), "ben keeps the task");
    app.stop().await;
}

on_both_backends!(
    a_moving_chain_is_no_escalation_and_an_idle_chain_is,
    an_offline_agents_queued_tasks_are_released_and_handed_out_again,
    a_second_silent_assignee_reaches_the_lead,
);
