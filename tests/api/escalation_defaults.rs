//! The six default escalation rules, end to end over HTTP with the manual clock. Each rule fires exactly once,
//! at the tick that crosses its threshold and not before (durations fire when strictly exceeded, percentages
//! and counts when reached); while the task stays stuck it climbs one level per 30-minute cooldown up to the
//! maximum depth of 3 and then stays silent; and its open firings resolve when the task leaves the triggering
//! condition. The actions are checked by their effects: notices in the assignee's inbox, alerts to the lead
//! (level 1), to the lead's lead (level 2) and to a human (level 3: the admin activity feed) with the task's
//! priority raised one level each time, and reassignment to the agent the capacity registry ranks first, with
//! a handoff telling the old assignee why. The built-in acknowledgement-deadline and SLO-breach escalations
//! are written to the same history.
//!
//! The team: `director` (lead) ← `lead1` (lead) ← `bob`, `zed`, `amy`. Every task requires the capability
//! `rust`, which only `bob` and `zed` have, so a task taken from `bob` goes to `zed` on skill, not by name.
//!
//! Interplay: "assignee silent" (priority 92) outranks "task stuck in progress" (80), so `bob` heartbeats
//! every 5 minutes while rule 1 runs. "assignee silent" can never climb past level 1: its own reassignment
//! puts the task back in `ready`, which resolves the firing at once, and the next silent assignee starts a new
//! ladder at level 1. "too many failed attempts" counts the current assignee's failures, so its reassignment
//! resolves it and the new assignee starts from zero; "SLO approaching" (at risk by forecast: the projected
//! finish is past the deadline) stays matched and climbs until the task finishes.

use crate::common::*;
use crate::on_both_backends;
use mission_control::Clock;
use reqwest::Method;
use serde_json::{json, Value};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
/// The cooldown of every default rule.
const COOLDOWN: i64 = 30 * MINUTE;
/// The longest step between two ticks (and two heartbeats): the tests' heartbeat timeout.
const STEP: i64 = 5 * MINUTE;

fn now(app: &TestApp) -> i64 {
    app.clock.now_ms()
}

struct Team {
    director: String,
    lead1: String,
    bob: String,
    bob_token: String,
    zed: String,
}

async fn team(app: &TestApp) -> Team {
    let (director, _) = app.register(json!({"name": "director", "level": "lead"})).await;
    let (lead1, _) = app
        .register(json!({"name": "lead1", "level": "lead", "leadId": "director"}))
        .await;
    let (bob, bob_token) = app
        .register(json!({"name": "bob", "leadId": "lead1", "specializations": ["rust"]}))
        .await;
    let (zed, _) = app
        .register(json!({"name": "zed", "leadId": "lead1", "specializations": ["rust"]}))
        .await;
    let (amy, _) = app.register(json!({"name": "amy", "leadId": "lead1"})).await;
    assert_eq!(lead1["leadId"], director["id"], "{lead1}");
    for agent in [&bob, &zed, &amy] {
        assert_eq!(agent["leadId"], lead1["id"], "{agent}");
    }
    Team {
        director: id(&director),
        lead1: id(&lead1),
        bob: id(&bob),
        bob_token,
        zed: id(&zed),
    }
}

/// A P2 task for `bob` that needs `rust` (plus `extra` fields), still `ready`.
async fn bobs_task(app: &TestApp, title: &str, extra: Value) -> String {
    let mut body = json!({"title": title, "priority": "P2", "assigneeId": "bob",
        "requirements": {"capabilities": ["rust"]}});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let task = app.task(body).await;
    assert_eq!(task["status"], "ready", "{task}");
    id(&task)
}

async fn go(app: &TestApp, task: &str, to: &str) {
    let moved = move_to(app, task, to).await.expect(200);
    assert_eq!(moved["status"], to, "{moved}");
}

async fn heartbeat(app: &TestApp, team: &Team) {
    let path = format!("/api/agents/{}/heartbeat", team.bob);
    app.call(Method::POST, &path, Some(&team.bob_token), None)
        .await
        .expect(200);
}

/// Moves the clock `ms` forward in steps of at most 5 minutes, ticking after each (after a heartbeat from
/// `bob` when `beat` is given); no tick may record an escalation.
async fn quiet(app: &TestApp, ms: i64, beat: Option<&Team>) {
    let mut left = ms;
    while left > 0 {
        let step = left.min(STEP);
        app.clock.advance_ms(step);
        left -= step;
        if let Some(team) = beat {
            heartbeat(app, team).await;
        }
        let report = app.tick().await;
        assert!(
            report.escalations.is_empty(),
            "escalated {left} ms before the expected tick: {:?}",
            report.escalations
        );
    }
}

/// Moves the clock `ms` forward and ticks: exactly one escalation fires, returned as JSON.
async fn fire(app: &TestApp, ms: i64, beat: Option<&Team>) -> Value {
    app.clock.advance_ms(ms);
    if let Some(team) = beat {
        heartbeat(app, team).await;
    }
    let report = app.tick().await;
    assert_eq!(report.escalations.len(), 1, "{:?}", report.escalations);
    without_outbox_ids(&serde_json::to_value(&report.escalations[0]).expect("escalation serializes"))
}

/// `GET /api/escalations?{query}`, every page, newest first (without the actions' outbox ids).
async fn history(app: &TestApp, query: &str) -> Vec<Value> {
    let rows = if query.is_empty() {
        all_items(app, "/api/escalations", 100).await
    } else {
        all_items(app, &format!("/api/escalations?{query}"), 100).await
    };
    rows.iter().map(without_outbox_ids).collect()
}

async fn of_task(app: &TestApp, task: &str) -> Vec<Value> {
    history(app, &format!("taskId={task}")).await
}

async fn open_of_task(app: &TestApp, task: &str) -> Vec<Value> {
    history(app, &format!("taskId={task}&open=true")).await
}

/// A default rule by name, as seeded: enabled, 30-minute cooldown.
async fn default_rule(app: &TestApp, name: &str) -> Value {
    let rules = app.admin(Method::GET, "/api/escalation-rules", None).await.expect(200);
    let rule = array(&rules)
        .into_iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no default rule '{name}' in {rules}"));
    assert_eq!(rule["enabled"], true, "{rule}");
    assert_eq!(int(&rule["cooldownMs"]), COOLDOWN, "{rule}");
    rule
}

#[track_caller]
fn assert_rung(rung: &Value, rule: &Value, task: &str, level: usize, trigger: &str, reason: &str, at: i64) {
    assert!(rung["id"].as_str().is_some_and(|s| !s.is_empty()), "{rung}");
    assert_eq!(rung["ruleId"], rule["id"], "{rung}");
    assert_eq!(rung["ruleName"], rule["name"], "{rung}");
    assert_eq!(rung["taskId"], task, "{rung}");
    assert_eq!(rung["messageId"], Value::Null, "{rung}");
    assert_eq!(rung["level"], level, "{rung}");
    assert_eq!(rung["trigger"], trigger, "{rung}");
    assert_eq!(rung["reason"], reason, "{rung}");
    assert_eq!(int(&rung["triggeredAt"]), at, "{rung}");
    assert_eq!(rung["resolvedAt"], Value::Null, "{rung}");
    assert_eq!(rung["useful"], Value::Null, "{rung}");
}

fn kinds(rung: &Value) -> Vec<String> {
    array(&rung["actions"]).iter().map(|a| text(&a["kind"])).collect()
}

#[track_caller]
fn action(rung: &Value, kind: &str) -> Value {
    array(&rung["actions"])
        .into_iter()
        .find(|a| a["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} action in {rung}"))
}

/// `from`: the old assignee's name.
fn reassigned(from: &str, to: &Value) -> Value {
    reassigned_at(from, to, int(&to["rank"]))
}

/// The result of a reassignment to the candidate `to`, ranked `rank` when the rule fired.
fn reassigned_at(from: &str, to: &Value, rank: i64) -> Value {
    let detail = format!(
        "reassigned from {from} to {} (ranked {rank} by balanced); {from} told why",
        text(&to["agentName"])
    );
    json!({"kind": "reassign", "status": "executed", "detail": detail})
}

/// The messages of `kind` to `agent` about `task`.
async fn messages_about(app: &TestApp, agent: &str, kind: &str, task: &str) -> Vec<Value> {
    let page = app
        .admin(Method::GET, &format!("/api/agents/{agent}/messages?limit=100"), None)
        .await
        .expect(200);
    assert_eq!(page["nextCursor"], Value::Null, "{page}");
    array(&page["items"])
        .into_iter()
        .filter(|m| m["type"] == kind && m["taskId"] == task)
        .collect()
}

async fn human_escalations(app: &TestApp) -> Vec<Value> {
    all_items(app, "/api/activity?kind=escalated_to_human", 100).await
}

/// The agent the capacity registry ranks first (balanced) among those that can accept work, `current` left
/// out: whom a `reassign` must pick.
async fn first_eligible(app: &TestApp, task: &str, current: &str) -> Value {
    first_eligible_but(app, task, current, &[]).await
}

/// Whom `reassign` picks: the registry's first candidate that can accept work and is not `current`, preferring
/// one that has not failed the task (`failed`).
async fn first_eligible_but(app: &TestApp, task: &str, current: &str, failed: &[&str]) -> Value {
    let path = format!("/api/tasks/{task}/suitable-agents?strategy=balanced&limit=100");
    let ranking = app.admin(Method::GET, &path, None).await.expect(200);
    let others: Vec<Value> = array(&ranking["candidates"])
        .into_iter()
        .filter(|c| c["canAcceptWork"] == true && c["agentId"] != current)
        .collect();
    others
        .iter()
        .find(|c| !failed.contains(&text(&c["agentId"]).as_str()))
        .or(others.first())
        .cloned()
        .unwrap_or_else(|| panic!("nobody else can take {task}: {ranking}"))
}

/// What a three-rung ladder looks like, for the rules that fire on a tick.
struct Ladder<'a> {
    rule: &'a str,
    trigger: &'a str,
    /// From now to the last moment at which the rule must not fire yet (ticking every 5 minutes).
    before: i64,
    /// From there to the first firing.
    step: i64,
    reasons: [&'a str; 3],
    beat: Option<&'a Team>,
    /// Quiet time after the third level.
    after: i64,
}

/// Runs the ladder: nothing before the threshold, level 1 just past it, nothing while cooling down, level 2
/// at the end of the cooldown, then level 3, then nothing more. Replies with the three firings.
async fn climb(app: &TestApp, task: &str, ladder: Ladder<'_>) -> Vec<Value> {
    let rule = default_rule(app, ladder.rule).await;
    quiet(app, ladder.before, ladder.beat).await;
    assert!(of_task(app, task).await.is_empty());
    let mut rungs = Vec::new();
    for (i, reason) in ladder.reasons.iter().enumerate() {
        let wait = if i == 0 {
            ladder.step
        } else {
            // One millisecond short of the cooldown: held back.
            quiet(app, COOLDOWN - 1, ladder.beat).await;
            1
        };
        let rung = fire(app, wait, ladder.beat).await;
        assert_rung(&rung, &rule, task, i + 1, ladder.trigger, reason, now(app));
        let rows = of_task(app, task).await;
        assert_eq!(rows.len(), i + 1, "{rows:?}");
        assert_eq!(rows[0], rung, "the history shows the firing with its action results");
        assert_eq!(open_of_task(app, task).await.len(), i + 1);
        rungs.push(rung);
    }
    // The maximum depth: nothing more, however long the task stays stuck.
    quiet(app, ladder.after, ladder.beat).await;
    assert_eq!(of_task(app, task).await.len(), 3);
    assert_eq!(open_of_task(app, task).await.len(), 3);
    rungs
}

/// Each firing left one notice with `subject` in bob's inbox, saying why.
async fn assert_notices(app: &TestApp, team: &Team, task: &str, rungs: &[Value], subject: &str) {
    let title = text(&get_task(app, task).await["title"]);
    let notices = messages_about(app, &team.bob, "alert", task).await;
    assert_eq!(notices.len(), rungs.len(), "{notices:?}");
    for rung in rungs {
        let expected = json!({"kind": "notify_assignee", "status": "executed",
            "detail": "notice sent to bob".to_string()});
        assert_eq!(action(rung, "notify_assignee"), expected);
        let notice = notices
            .iter()
            .find(|n| n["data"]["escalationId"] == rung["id"])
            .unwrap_or_else(|| panic!("no notice for {rung}: {notices:?}"));
        assert_eq!(notice["subject"], subject, "{notice}");
        assert_eq!(notice["priority"], "high", "{notice}");
        assert_eq!(notice["senderKind"], "system", "{notice}");
        assert_eq!(notice["data"]["level"], rung["level"], "{notice}");
        let why = format!(
            "'{title}': {} (rule '{}', level {}).",
            text(&rung["reason"]),
            text(&rung["ruleName"]),
            rung["level"]
        );
        assert!(text(&notice["body"]).ends_with(&why), "{notice}");
    }
}

/// The `escalate` results of a full ladder: level 1 alerts lead1, level 2 the director, level 3 a human; the
/// priority goes through `priorities` and the escalation level reaches 3.
async fn assert_climbed(app: &TestApp, team: &Team, task: &str, rungs: &[Value], priorities: [&str; 4]) {
    let [p0, p1, p2, p3] = priorities;
    let details = [
        format!("priority {p0} → {p1}; alerted lead1"),
        format!("priority {p1} → {p2}; alerted director"),
        format!("priority {p2} → {p3}; sent to a human (admin activity feed)"),
    ];
    for (rung, detail) in rungs.iter().zip(&details) {
        let expected = json!({"kind": "escalate", "status": "executed", "detail": detail});
        assert_eq!(action(rung, "escalate"), expected, "{rung}");
    }
    let title = text(&get_task(app, task).await["title"]);
    for (level, lead) in [(1, &team.lead1), (2, &team.director)] {
        let alerts = messages_about(app, lead, "alert", task).await;
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let alert = &alerts[0];
        assert_eq!(
            alert["subject"],
            format!("Escalation (level {level}): {title}"),
            "{alert}"
        );
        assert_eq!(
            alert["priority"],
            if level == 1 { "high" } else { "critical" },
            "{alert}"
        );
        assert_eq!(alert["data"]["escalationId"], rungs[level - 1]["id"], "{alert}");
        assert_eq!(alert["data"]["level"], level, "{alert}");
    }
    let humans = human_escalations(app).await;
    assert_eq!(humans.len(), 1, "{humans:?}");
    assert_eq!(humans[0]["taskId"], task, "{humans:?}");
    let message = format!(
        "'{title}' needs a person: {} (rule '{}', level 3)",
        text(&rungs[2]["reason"]),
        text(&rungs[2]["ruleName"])
    );
    assert_eq!(humans[0]["message"], message.as_str(), "{humans:?}");
    let after = get_task(app, task).await;
    assert_eq!(after["priority"], p3, "{after}");
    assert_eq!(after["escalationLevel"], 3, "{after}");
}

/// The old assignee was told why the task went to `to_name`.
async fn assert_handoff(app: &TestApp, from: &str, task: &str, rung: &Value, to_name: &str) {
    let title = text(&get_task(app, task).await["title"]);
    let handoffs: Vec<Value> = messages_about(app, from, "handoff", task)
        .await
        .into_iter()
        .filter(|m| m["data"]["escalationId"] == rung["id"])
        .collect();
    assert_eq!(handoffs.len(), 1, "{handoffs:?}");
    let handoff = &handoffs[0];
    assert_eq!(handoff["subject"], format!("Reassigned: {title}"), "{handoff}");
    assert_eq!(handoff["priority"], "high", "{handoff}");
    let body = format!(
        "'{title}' was given to {to_name} because {} (rule '{}'). Stop work on it and hand over what you have.",
        text(&rung["reason"]),
        text(&rung["ruleName"])
    );
    assert_eq!(handoff["body"], body, "{handoff}");
}

/// Every escalation of the task is resolved, at `at`.
async fn assert_resolved(app: &TestApp, task: &str, at: i64) {
    assert!(open_of_task(app, task).await.is_empty());
    let rows = of_task(app, task).await;
    assert!(!rows.is_empty());
    for row in &rows {
        assert_eq!(row["resolvedAt"], json!(at), "{row}");
    }
}

// ---------------------------------------------------------------------------------------------------------

async fn task_stuck_in_progress(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let team = team(&app).await;
    let task = bobs_task(&app, "Port the parser", json!({})).await;
    heartbeat(&app, &team).await;
    go(&app, &task, "in_progress").await;
    let ladder = Ladder {
        rule: "task stuck in progress",
        trigger: "time_in_status",
        before: 2 * HOUR,
        step: MINUTE,
        reasons: [
            "in progress for 2 h 1 min",
            "in progress for 2 h 31 min",
            "in progress for 3 h 1 min",
        ],
        beat: Some(&team),
        after: 2 * HOUR,
    };
    let rungs = climb(&app, &task, ladder).await;
    for rung in &rungs {
        assert_eq!(kinds(rung), ["notify_assignee", "escalate"], "{rung}");
    }
    assert_notices(&app, &team, &task, &rungs, "Still working on this?").await;
    assert_climbed(&app, &team, &task, &rungs, ["P2", "P1", "P0", "P0"]).await;

    // The task moves on: every open rung resolves.
    go(&app, &task, "review").await;
    let moved = now(&app);
    assert!(app.tick().await.escalations.is_empty());
    assert_resolved(&app, &task, moved).await;
    app.stop().await;
}

async fn task_blocked_too_long(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let team = team(&app).await;
    let task = bobs_task(&app, "Wire the billing API", json!({})).await;
    go(&app, &task, "in_progress").await;
    go(&app, &task, "blocked").await;
    let ladder = Ladder {
        rule: "task blocked too long",
        trigger: "blocker_duration",
        before: 30 * MINUTE,
        step: MINUTE,
        reasons: ["blocked for 31 min", "blocked for 1 h 1 min", "blocked for 1 h 31 min"],
        beat: None,
        after: 2 * HOUR,
    };
    let rungs = climb(&app, &task, ladder).await;
    for rung in &rungs {
        assert_eq!(kinds(rung), ["notify_assignee", "escalate"], "{rung}");
    }
    assert_notices(&app, &team, &task, &rungs, "Blocked for a while").await;
    assert_climbed(&app, &team, &task, &rungs, ["P2", "P1", "P0", "P0"]).await;
    // The ladders are rebuilt from the open history after a restart: still at the maximum depth.
    let app = app.restart().await;
    quiet(&app, HOUR, None).await;
    assert_eq!(open_of_task(&app, &task).await.len(), 3);

    go(&app, &task, "ready").await;
    let unblocked = now(&app);
    assert!(app.tick().await.escalations.is_empty());
    assert_resolved(&app, &task, unblocked).await;
    app.stop().await;
}

async fn slo_approaching(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let team = team(&app).await;
    // An 8-hour SLO and 2 hours of work, not started: at risk by forecast once now + 2 h passes the deadline,
    // i.e. after 6 h. Level 3 (7 h 1 min) still comes before the deadline's own breach.
    let task = bobs_task(
        &app,
        "Quarterly report",
        json!({"sloMs": 8 * HOUR, "estimatedMinutes": 120}),
    )
    .await;
    // The same SLO with 20 minutes of work on zed's queue: 75 % of its SLO goes by and more, but it can still
    // finish in time, so it never fires (the share trigger of old warned about it too).
    let twin = id(&app
        .task(
            json!({"title": "Quarterly summary", "priority": "P2", "assigneeId": "zed", "sloMs": 8 * HOUR,
            "estimatedMinutes": 20}),
        )
        .await);
    let ladder = Ladder {
        rule: "SLO approaching",
        trigger: "slo_at_risk",
        before: 6 * HOUR,
        step: MINUTE,
        reasons: [
            "projected to finish 1 min after the SLO deadline (1 h 59 min left)",
            "projected to finish 31 min after the SLO deadline (1 h 29 min left)",
            "projected to finish 1 h 1 min after the SLO deadline (59 min left)",
        ],
        beat: None,
        after: 30 * MINUTE,
    };
    let rungs = climb(&app, &task, ladder).await;
    for rung in &rungs {
        assert_eq!(kinds(rung), ["notify_assignee"], "{rung}");
    }
    assert_notices(&app, &team, &task, &rungs, "SLO deadline at risk").await;
    assert!(
        of_task(&app, &twin).await.is_empty(),
        "a task that finishes in time is not at risk"
    );
    // A warning only: no priority change, nobody else alerted.
    let after = get_task(&app, &task).await;
    assert_eq!(after["priority"], "P2", "{after}");
    assert_eq!(after["escalationLevel"], 0, "{after}");
    for lead in [&team.lead1, &team.director] {
        assert!(messages_about(&app, lead, "alert", &task).await.is_empty());
    }
    assert!(human_escalations(&app).await.is_empty());

    // Starting work does not give the SLO back (2 h of work, 29 min left): still open. Finishing resolves.
    go(&app, &task, "in_progress").await;
    assert!(app.tick().await.escalations.is_empty());
    assert_eq!(open_of_task(&app, &task).await.len(), 3);
    go(&app, &task, "done").await;
    let done = now(&app);
    let report = app.tick().await;
    assert!(
        report.escalations.is_empty() && report.slo_breaches.is_empty(),
        "{report:?}"
    );
    assert_resolved(&app, &task, done).await;
    app.stop().await;
}

async fn p0_in_review_too_long(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let team = team(&app).await;
    let task = bobs_task(&app, "Hotfix the login", json!({"priority": "P0"})).await;
    // A P1 task in review just as long: the rule does not apply to it.
    let twin = id(&app
        .task(json!({"title": "Fix the docs", "priority": "P1", "assigneeId": "amy"}))
        .await);
    for t in [&task, &twin] {
        go(&app, t, "in_progress").await;
        go(&app, t, "review").await;
    }
    let ladder = Ladder {
        rule: "P0 task in review too long",
        trigger: "time_in_status",
        before: HOUR,
        step: MINUTE,
        reasons: ["review for 1 h 1 min", "review for 1 h 31 min", "review for 2 h 1 min"],
        beat: None,
        after: 2 * HOUR,
    };
    let rungs = climb(&app, &task, ladder).await;
    for rung in &rungs {
        assert_eq!(kinds(rung), ["escalate"], "{rung}");
    }
    // P0 stays P0, but each escalation still counts.
    assert_climbed(&app, &team, &task, &rungs, ["P0", "P0", "P0", "P0"]).await;
    assert!(messages_about(&app, &team.bob, "alert", &task).await.is_empty());
    assert!(of_task(&app, &twin).await.is_empty());
    let twin_now = get_task(&app, &twin).await;
    assert_eq!(twin_now["priority"], "P1", "{twin_now}");
    assert_eq!(twin_now["escalationLevel"], 0, "{twin_now}");

    // Sent back to work: resolved.
    go(&app, &task, "in_progress").await;
    let moved = now(&app);
    assert!(app.tick().await.escalations.is_empty());
    assert_resolved(&app, &task, moved).await;
    app.stop().await;
}

async fn too_many_failed_attempts(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let team = team(&app).await;
    let rule = default_rule(&app, "too many failed attempts").await;
    let task = bobs_task(&app, "Migrate the ledger", json!({})).await;
    let mut expected = Value::Null;
    for attempt in 1..=3 {
        app.clock.advance_ms(MINUTE);
        go(&app, &task, "in_progress").await;
        if attempt == 3 {
            expected = first_eligible(&app, &task, &team.bob).await;
        }
        let body = json!({"errorKind": "test_failure", "message": format!("attempt {attempt} failed")});
        let failed = app
            .admin(Method::POST, &format!("/api/tasks/{task}/fail"), Some(body))
            .await
            .expect(200);
        assert_eq!(failed["status"], "ready", "{failed}");
        // The third failure fires on its own event; the tick after it finds the rule cooling down.
        let report = app.tick().await;
        assert!(
            report.escalations.is_empty(),
            "attempt {attempt}: {:?}",
            report.escalations
        );
        let rows = of_task(&app, &task).await;
        assert_eq!(rows.len(), usize::from(attempt == 3), "attempt {attempt}: {rows:?}");
    }
    let failed_at = now(&app);
    // Ranked first on skill (amy, director and lead1 lack `rust`; bob is the one giving it up).
    assert_eq!(expected["agentId"], team.zed.as_str(), "{expected}");

    let rung = of_task(&app, &task).await.remove(0);
    // The reassignment in its own actions resolved it at once: zed has no failures of his own.
    assert_eq!(rung["resolvedAt"], json!(failed_at), "{rung}");
    let mut first = rung.clone();
    first["resolvedAt"] = Value::Null;
    assert_rung(
        &first,
        &rule,
        &task,
        1,
        "attempts_exceeded",
        "3 failed attempts by its assignee",
        failed_at,
    );
    // Ranked 1 when it fired: bob, back in `ready`, has the task itself queued, which the balanced ranking
    // counts against his free capacity.
    assert_eq!(rung["actions"][1], reassigned_at("bob", &expected, 1));
    assert_handoff(&app, &team.bob, &task, &rung, "zed").await;
    let after = get_task(&app, &task).await;
    assert_eq!(after["status"], "ready", "{after}");
    assert_eq!(after["assigneeId"], team.zed.as_str(), "{after}");
    assert_eq!(array(&after["failures"]).len(), 3, "{after}");

    // Zed starts from zero: the reassignment resolved the firing, and it is not taken back from him at the
    // next cooldown (the failures stay on record, but they are bob's) — across a restart too.
    assert!(
        open_of_task(&app, &task).await.is_empty(),
        "resolved by the reassignment"
    );
    let app = app.restart().await;
    quiet(&app, 2 * HOUR, None).await;
    assert_eq!(of_task(&app, &task).await.len(), 1);
    assert_eq!(get_task(&app, &task).await["assigneeId"], team.zed.as_str());

    // Zed fails it three times as well: a new ladder at level 1, and the task goes to someone who has not
    // failed it yet, rather than back to bob.
    for attempt in 1..=3 {
        app.clock.advance_ms(MINUTE);
        go(&app, &task, "in_progress").await;
        let body = json!({"errorKind": "test_failure", "message": format!("zed's attempt {attempt}")});
        app.admin(Method::POST, &format!("/api/tasks/{task}/fail"), Some(body))
            .await
            .expect(200);
    }
    // The reassignment's own event reaches the scheduler after the firing: a tick is queued behind it.
    assert!(app.tick().await.escalations.is_empty());
    let rows = of_task(&app, &task).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let mut second = rows[0].clone();
    assert_eq!(
        second["resolvedAt"],
        json!(now(&app)),
        "resolved by its own reassignment: {second}"
    );
    second["resolvedAt"] = Value::Null;
    let second = &second;
    assert_rung(
        second,
        &rule,
        &task,
        1,
        "attempts_exceeded",
        "3 failed attempts by its assignee",
        now(&app),
    );
    assert_eq!(kinds(second), ["escalate", "reassign"], "{second}");
    let after = get_task(&app, &task).await;
    let holder = text(&after["assigneeId"]);
    assert!(holder != team.bob && holder != team.zed, "{after}");
    assert_eq!(after["priority"], "P0", "raised twice: P2 → P1 → P0");

    // It is finished; nothing was left open.
    go(&app, &task, "in_progress").await;
    go(&app, &task, "done").await;
    assert!(app.tick().await.escalations.is_empty());
    assert!(open_of_task(&app, &task).await.is_empty());
    app.stop().await;
}

async fn assignee_silent(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let team = team(&app).await;
    let rule = default_rule(&app, "assignee silent").await;
    let task = bobs_task(&app, "Rebuild the index", json!({})).await;
    heartbeat(&app, &team).await;
    go(&app, &task, "in_progress").await;
    // A heartbeat 5 minutes in restarts the silence; 10 minutes after it is not yet "more than 10".
    quiet(&app, 5 * MINUTE, None).await;
    heartbeat(&app, &team).await;
    quiet(&app, 10 * MINUTE, None).await;
    assert!(of_task(&app, &task).await.is_empty());
    let expected = first_eligible(&app, &task, &team.bob).await;
    assert_eq!(expected["agentId"], team.zed.as_str(), "{expected}");

    let rung = fire(&app, MINUTE, None).await;
    assert_rung(
        &rung,
        &rule,
        &task,
        1,
        "no_heartbeat",
        "assignee silent for 11 min",
        now(&app),
    );
    assert_eq!(rung["actions"], json!([reassigned("bob", &expected)]), "{rung}");
    assert_handoff(&app, &team.bob, &task, &rung, "zed").await;
    let after = get_task(&app, &task).await;
    assert_eq!(after["status"], "ready", "{after}");
    assert_eq!(after["assigneeId"], team.zed.as_str(), "{after}");
    assert_eq!(after["priority"], "P2", "{after}");
    assert_eq!(after["escalationLevel"], 0, "{after}");

    // Back in `ready`, the rule no longer matches: the firing resolved at once, so this rule never climbs.
    assert!(app.tick().await.escalations.is_empty());
    assert_resolved(&app, &task, int(&rung["triggeredAt"])).await;

    // The new assignee starts and falls silent too, within the cooldown of the first takeover: a ping-pong.
    // A new ladder at level 1, but the lead decides instead of a third assignee: the task stays with zed.
    go(&app, &task, "in_progress").await;
    quiet(&app, 10 * MINUTE, None).await;
    let again = fire(&app, MINUTE, None).await;
    assert_rung(
        &again,
        &rule,
        &task,
        1,
        "no_heartbeat",
        "assignee silent for 11 min; it was already taken from a silent assignee 11 min ago, so the lead decides \
         instead of a third assignee",
        now(&app),
    );
    let escalated = json!({"kind": "escalate", "status": "executed", "detail": "priority P2 → P1; alerted lead1"});
    assert_eq!(again["actions"], json!([escalated]), "{again}");
    assert!(messages_about(&app, &team.zed, "handoff", &task).await.is_empty());
    assert_eq!(messages_about(&app, &team.lead1, "alert", &task).await.len(), 1);
    let after = get_task(&app, &task).await;
    assert_eq!(after["assigneeId"], team.zed.as_str(), "{after}");
    assert_eq!(after["status"], "in_progress", "{after}");
    assert_eq!(after["priority"], "P1", "{after}");
    assert!(app.tick().await.escalations.is_empty(), "cooling down");
    let rows = of_task(&app, &task).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(open_of_task(&app, &task).await.len(), 1);
    app.stop().await;
}

/// With every other agent busy, the silent assignee still loses the task: it goes back to `ready`, unassigned,
/// for whoever frees up first, instead of staying stuck with an agent that stopped answering.
async fn assignee_silent_with_nobody_free(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let team = team(&app).await;
    let rule = default_rule(&app, "assignee silent").await;
    let task = bobs_task(&app, "Rebuild the index", json!({})).await;
    heartbeat(&app, &team).await;
    go(&app, &task, "in_progress").await;
    let others = [&team.director, &team.lead1, &team.zed];
    let amy = id(&app.admin(Method::GET, "/api/agents/amy", None).await.expect(200));
    for agent in others.into_iter().chain([&amy]) {
        let path = format!("/api/agents/{agent}");
        app.admin(Method::PATCH, &path, Some(json!({"maxConcurrentTasks": 1})))
            .await
            .expect(200);
        let busy = id(&app
            .task(json!({"title": format!("Busy {agent}"), "assigneeId": agent}))
            .await);
        go(&app, &busy, "in_progress").await;
    }

    app.clock.advance_ms(11 * MINUTE);
    for agent in others.into_iter().chain([&amy]) {
        let path = format!("/api/agents/{agent}/heartbeat");
        app.admin(Method::POST, &path, None).await.expect(200);
    }
    let report = app.tick().await;
    assert_eq!(report.escalations.len(), 1, "{:?}", report.escalations);
    let rung = without_outbox_ids(&serde_json::to_value(&report.escalations[0]).expect("escalation serializes"));
    assert_eq!(rung["ruleId"], rule["id"], "{rung}");
    let detail = text(&rung["actions"][0]["detail"]);
    assert_eq!(rung["actions"][0]["status"], "executed", "{rung}");
    assert!(
        detail.starts_with("taken from bob and left unassigned in ready: no other agent is free now")
            && detail.ends_with("; bob told why"),
        "{detail}"
    );
    assert_handoff(&app, &team.bob, &task, &rung, "the next free agent").await;
    let after = get_task(&app, &task).await;
    assert_eq!(after["status"], "ready", "{after}");
    assert_eq!(after["assigneeId"], Value::Null, "{after}");
    app.stop().await;
}

/// Sends a message as agent `from` with its own token.
async fn send_as(app: &TestApp, from: &str, token: &str, body: Value) -> Value {
    let path = format!("/api/agents/{from}/messages");
    app.call(Method::POST, &path, Some(token), Some(body)).await.expect(201)
}

async fn acknowledge(app: &TestApp, team: &Team, message: &str) {
    let path = format!("/api/agents/{}/messages/{message}/acknowledge", team.bob);
    app.call(Method::POST, &path, Some(&team.bob_token), None)
        .await
        .expect(200);
}

async fn ack_deadline_in_the_history(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let team = team(&app).await;
    let (_, alice_token) = app.agent("alice").await;
    let task = bobs_task(&app, "Release notes", json!({})).await;
    let plain = send_as(
        &app,
        "alice",
        &alice_token,
        json!({"toAgentId": "bob", "type": "help_request", "subject": "Deploy window", "body": "ok?",
            "ackWithinMs": 5 * MINUTE}),
    )
    .await;
    let about_task = send_as(
        &app,
        "alice",
        &alice_token,
        json!({"toAgentId": "bob", "type": "help_request", "subject": "Notes review", "body": "please",
            "taskId": task, "ackWithinMs": 10 * MINUTE}),
    )
    .await;
    quiet(&app, 5 * MINUTE - 1, None).await;
    assert!(history(&app, "").await.is_empty());

    // At the deadline: one built-in row, no rule, no task, the message named.
    let first = fire(&app, 1, None).await;
    let expected = json!({
        "id": first["id"], "ruleId": null, "ruleName": "ack_deadline", "taskId": null, "messageId": plain["id"],
        "level": 1, "trigger": "ack_deadline", "reason": "message from alice not acknowledged by bob: Deploy window",
        "actions": [{"kind": "escalate", "status": "executed", "detail": "alerted lead1".to_string()}],
        "triggeredAt": now(&app), "resolvedAt": null, "useful": null, "ratedAt": null
    });
    assert_eq!(first, expected);
    assert_eq!(history(&app, "").await, vec![first.clone()]);

    // The one about a task names it, and raises it.
    quiet(&app, 5 * MINUTE - 1, None).await;
    let second = fire(&app, 1, None).await;
    assert_eq!(second["ruleName"], "ack_deadline", "{second}");
    assert_eq!(second["ruleId"], Value::Null, "{second}");
    assert_eq!(second["taskId"], task.as_str(), "{second}");
    assert_eq!(second["messageId"], about_task["id"], "{second}");
    assert_eq!(second["level"], 1, "{second}");
    assert_eq!(
        second["reason"],
        "message from alice not acknowledged by bob: Notes review"
    );
    assert_eq!(of_task(&app, &task).await, vec![second.clone()]);
    let raised = get_task(&app, &task).await;
    assert_eq!(raised["priority"], "P1", "{raised}");
    assert_eq!(history(&app, "open=true").await.len(), 2);

    // Open rungs survive a restart; acknowledging resolves at the next tick.
    let app = app.restart().await;
    acknowledge(&app, &team, &text(&plain["id"])).await;
    app.clock.advance_ms(MINUTE);
    let report = app.tick().await;
    assert!(report.escalations.is_empty(), "{report:?}");
    assert_eq!(report.resolved_escalations, 1, "{report:?}");
    let resolved = history(&app, "open=false").await;
    assert_eq!(resolved.len(), 1, "{resolved:?}");
    assert_eq!(resolved[0]["id"], first["id"]);
    assert_eq!(int(&resolved[0]["resolvedAt"]), now(&app));
    let open = history(&app, "open=true").await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["id"], second["id"]);

    acknowledge(&app, &team, &text(&about_task["id"])).await;
    app.clock.advance_ms(MINUTE);
    assert_eq!(app.tick().await.resolved_escalations, 1);
    assert!(history(&app, "open=true").await.is_empty());
    app.stop().await;
}

async fn slo_breach_in_the_history(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    team(&app).await;
    let task = bobs_task(&app, "Invoice run", json!({"sloMs": HOUR})).await;
    go(&app, &task, "in_progress").await;
    quiet(&app, HOUR - 1, None).await;
    let breach = fire(&app, 1, None).await;
    let expected = json!({
        "id": breach["id"], "ruleId": null, "ruleName": "slo_breach", "taskId": task, "messageId": null,
        "level": 1, "trigger": "slo_breach",
        "reason": "SLO breach (3600000 ms deadline passed): deadline_missed, in_progress_timeout",
        "actions": [{"kind": "escalate", "status": "executed",
            "detail": "priority raised; alerted lead1".to_string()}],
        "triggeredAt": now(&app), "resolvedAt": null, "useful": null, "ratedAt": null
    });
    assert_eq!(breach, expected);
    assert_eq!(of_task(&app, &task).await, vec![breach.clone()]);
    assert_eq!(get_task(&app, &task).await["priority"], "P1");
    // Recorded once.
    quiet(&app, HOUR, None).await;
    assert_eq!(open_of_task(&app, &task).await.len(), 1);

    go(&app, &task, "done").await;
    let done = now(&app);
    assert!(app.tick().await.escalations.is_empty());
    assert_resolved(&app, &task, done).await;
    app.stop().await;
}

on_both_backends!(
    task_stuck_in_progress,
    task_blocked_too_long,
    slo_approaching,
    p0_in_review_too_long,
    too_many_failed_attempts,
    assignee_silent,
    assignee_silent_with_nobody_free,
    ack_deadline_in_the_history,
    slo_breach_in_the_history,
);
