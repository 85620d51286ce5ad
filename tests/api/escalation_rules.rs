//! The escalation rules engine over HTTP: the six default rules, rule CRUD with its validation, permissions and
//! activity rows; evaluation on demand (a dry run changes nothing and says which rule would fire and why, a real
//! run fires it, a second one is held back by the cooldown); the ladder (one level per cooldown, 1 → 2 → 3, nothing
//! past the maximum depth, everything resolved when the task leaves the condition, level 1 again when it returns);
//! only the highest-priority match fires and its cooldown holds the lower rules back; the history's filters and
//! paging, feedback and statistics (one line per rule, also across a rename); and rules, history and open ladders
//! across a restart.
//!
//! The custom rules here watch ready, unassigned tasks with a tag of their own (`unassigned` trigger, 5 minutes),
//! which no default rule looks at, and their actions have no side effect on such a task: there is nobody to
//! notify and no webhook URL, so both are recorded as `skipped`.

use crate::common::*;
use crate::on_both_backends;
use mission_control::Clock;
use reqwest::Method;
use serde_json::{json, Value};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
/// The cooldown of the custom rules.
const COOLDOWN: i64 = 10 * MINUTE;
const RULES: &str = "/api/escalation-rules";
/// No escalation recorded.
const NONE: Vec<Value> = Vec::new();

fn now(app: &TestApp) -> i64 {
    app.clock.now_ms()
}

/// A custom rule for ready, unassigned tasks tagged `tag`: fires after 5 minutes, cools down for 10.
fn unassigned_rule(name: &str, tag: &str, priority: i64) -> Value {
    json!({
        "name": name, "priority": priority, "cooldownMs": COOLDOWN, "appliesTo": {"tags": [tag]},
        "triggers": [{"kind": "unassigned", "durationMs": 5 * MINUTE}],
        "actions": [{"kind": "notify_assignee", "subject": "Anyone?"}, {"kind": "webhook"}],
    })
}

async fn create_rule(app: &TestApp, body: Value) -> Value {
    app.admin(Method::POST, RULES, Some(body)).await.expect(201)
}

async fn rule_list(app: &TestApp) -> Vec<Value> {
    array(&app.admin(Method::GET, RULES, None).await.expect(200))
}

async fn get_rule(app: &TestApp, key: &str) -> Value {
    let path = format!("{RULES}/{key}");
    app.admin(Method::GET, &path, None).await.expect(200)
}

/// `PATCH /api/escalation-rules/{key}` as the admin.
async fn patch_rule(app: &TestApp, key: &str, patch: Value) -> Value {
    let path = format!("{RULES}/{key}");
    app.admin(Method::PATCH, &path, Some(patch)).await.expect(200)
}

async fn stats(app: &TestApp) -> Value {
    app.admin(Method::GET, "/api/escalations/stats", None).await.expect(200)
}

/// Moves the clock, runs a tick and replies with the escalations it recorded, as the API shows them.
async fn tick_after(app: &TestApp, ms: i64) -> Vec<Value> {
    app.clock.advance_ms(ms);
    app.tick()
        .await
        .escalations
        .iter()
        .map(|e| serde_json::to_value(e).expect("escalation serializes"))
        .collect()
}

/// A ready, unassigned task tagged `tag`; replies with its id.
async fn ready_task(app: &TestApp, title: &str, tag: &str) -> String {
    let task = app
        .task(json!({"title": title, "status": "ready", "tags": [tag]}))
        .await;
    id(&task)
}

/// Assigns (or, with `null`, unassigns) a task as the admin, past any capacity limit.
async fn assign(app: &TestApp, task: &str, agent: Value) {
    let path = format!("/api/tasks/{task}/assign?force=true");
    app.admin(Method::POST, &path, Some(json!({ "agentId": agent })))
        .await
        .expect(200);
}

/// One page of the history (up to 100 escalations) with a filter, newest first.
async fn history(app: &TestApp, filter: &str) -> Vec<Value> {
    let page = app
        .admin(Method::GET, &format!("/api/escalations?limit=100&{filter}"), None)
        .await
        .expect(200);
    assert_eq!(page["nextCursor"], Value::Null, "{page}");
    array(&without_outbox_ids(&page["items"]))
}

/// `POST /api/escalation-rules/evaluate/{task}?dryRun=…` as the admin.
async fn evaluate(app: &TestApp, task: &str, dry_run: bool) -> Value {
    let path = format!("{RULES}/evaluate/{task}?dryRun={dry_run}");
    app.admin(Method::POST, &path, None).await.expect(200)
}

fn levels(items: &[Value]) -> Vec<i64> {
    items.iter().map(|e| int(&e["level"])).collect()
}

/// Rates an escalation (`useful: None` sends an empty body) with the given token.
async fn rate(app: &TestApp, escalation: &str, useful: Option<bool>, token: &str) -> Reply {
    let path = format!("/api/escalations/{escalation}/feedback");
    let body = useful.map_or_else(|| json!({}), |u| json!({ "useful": u }));
    app.call(Method::POST, &path, Some(token), Some(body)).await
}

/// An admin write that must fail validation; replies with the field the error names.
async fn invalid(app: &TestApp, method: Method, path: &str, body: Value) -> Value {
    let err = app
        .admin(method, path, Some(body))
        .await
        .expect_error(400, "validation_failed");
    err["error"]["details"]["field"].clone()
}

async fn activity(app: &TestApp, kind: &str) -> Vec<Value> {
    all_items(app, &format!("/api/activity?kind={kind}"), 100).await
}

/// Checks which rule an evaluation says fires, at which level.
#[track_caller]
fn assert_fires(evaluation: &Value, rule: &str, level: i64) {
    assert_eq!(evaluation["fires"]["ruleName"], rule, "{evaluation}");
    assert_eq!(int(&evaluation["fires"]["level"]), level, "{evaluation}");
}

/// Checks that an evaluation found no rule matching.
#[track_caller]
fn nothing_matches(evaluation: &Value) {
    assert_eq!(evaluation["matching"], json!([]), "{evaluation}");
    assert_eq!(evaluation["fires"], Value::Null, "{evaluation}");
}

/// Checks one firing of an `unassigned_rule` on a task.
#[track_caller]
fn assert_firing(e: &Value, rule: &Value, task: &str, level: i64, at: i64) {
    assert_eq!(e["ruleId"], rule["id"], "{e}");
    assert_eq!(e["ruleName"], rule["name"], "{e}");
    assert_eq!(e["taskId"], task, "{e}");
    assert_eq!(e["messageId"], Value::Null, "{e}");
    assert_eq!(int(&e["level"]), level, "{e}");
    assert_eq!(e["trigger"], "unassigned", "{e}");
    assert!(text(&e["reason"]).starts_with("ready and unassigned for "), "{e}");
    assert_eq!(int(&e["triggeredAt"]), at, "{e}");
    assert_eq!(e["resolvedAt"], Value::Null, "{e}");
    let done: Vec<Value> = array(&e["actions"])
        .iter()
        .map(|a| json!([a["kind"], a["status"]]))
        .collect();
    assert_eq!(
        json!(done),
        json!([["notify_assignee", "skipped"], ["webhook", "skipped"]]),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------------------

async fn default_rules_and_a_crud_round_trip(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let defaults = rule_list(&app).await;
    // [name, priority, triggers, action kinds], highest priority first.
    let expected = json!([
        ["P0 task in review too long", 95, [{"kind": "time_in_status", "status": "review", "durationMs": HOUR}],
            ["escalate"]],
        ["assignee silent", 92, [{"kind": "no_heartbeat", "durationMs": 10 * MINUTE}], ["reassign"]],
        ["SLO approaching", 90, [{"kind": "slo_at_risk"}], ["notify_assignee"]],
        ["too many failed attempts", 88, [{"kind": "attempts_exceeded", "attempts": 3}], ["escalate", "reassign"]],
        ["task blocked too long", 85, [{"kind": "blocker_duration", "durationMs": 30 * MINUTE}],
            ["notify_assignee", "escalate"]],
        ["task stuck in progress", 80,
            [{"kind": "time_in_status", "status": "in_progress", "durationMs": 2 * HOUR, "pastEstimate": true}],
            ["notify_assignee", "escalate"]],
    ]);
    let seen: Vec<Value> = defaults
        .iter()
        .map(|r| {
            let kinds: Vec<Value> = array(&r["actions"]).iter().map(|a| a["kind"].clone()).collect();
            json!([r["name"], r["priority"], r["triggers"], kinds])
        })
        .collect();
    assert_eq!(Value::Array(seen), expected);
    let on = |r: &Value| r["enabled"] == true && int(&r["cooldownMs"]) == 30 * MINUTE;
    assert!(
        defaults.iter().all(on),
        "all enabled, 30 minutes' cooldown: {defaults:?}"
    );
    assert_eq!(defaults[0]["appliesTo"]["priorities"], json!(["P0"]));

    // Create with only the required fields: the defaults fill in the rest.
    let created_at = now(&app);
    let body = json!({"name": "Slow review", "triggers": [{"kind": "time_in_status", "status": "review",
        "durationMs": 45 * MINUTE}], "actions": [{"kind": "escalate"}]});
    let rule = create_rule(&app, body).await;
    let rule_id = id(&rule);
    assert_eq!(
        rule,
        json!({"id": rule_id, "name": "Slow review", "description": "", "enabled": true, "priority": 50,
            "cooldownMs": 30 * MINUTE,
            "appliesTo": {"tags": [], "statuses": [], "priorities": [], "missionId": null},
            "triggers": [{"kind": "time_in_status", "status": "review", "durationMs": 45 * MINUTE}],
            "actions": [{"kind": "escalate", "to": "lead"}], "createdAt": created_at, "updatedAt": created_at})
    );
    assert_eq!(get_rule(&app, &rule_id).await, rule);
    assert_eq!(get_rule(&app, "Slow%20review").await, rule);
    assert_eq!(get_rule(&app, "SLOW%20REVIEW").await, rule, "any case");
    let list = rule_list(&app).await;
    assert_eq!(list.len(), 7);
    assert_eq!(list.last(), Some(&rule), "priority 50 comes last");

    app.clock.advance_ms(MINUTE);
    let patch = json!({"priority": 99, "description": "reviews must move", "enabled": false});
    let patched = patch_rule(&app, "slow%20review", patch).await;
    let mut expected_patch = rule.clone();
    expected_patch["priority"] = json!(99);
    expected_patch["description"] = json!("reviews must move");
    expected_patch["enabled"] = json!(false);
    expected_patch["updatedAt"] = json!(now(&app));
    assert_eq!(patched, expected_patch);
    assert_eq!(get_rule(&app, &rule_id).await, patched);
    let list = rule_list(&app).await;
    assert_eq!(list.first(), Some(&patched), "priority 99 comes first");
    let priorities: Vec<i64> = list.iter().map(|r| int(&r["priority"])).collect();
    assert!(priorities.windows(2).all(|w| w[0] >= w[1]), "{priorities:?}");

    let path = format!("{RULES}/{rule_id}");
    assert_eq!(app.admin(Method::DELETE, &path, None).await.expect(200), patched);
    app.admin(Method::GET, &path, None)
        .await
        .expect_error(404, "escalation_rule_not_found");
    assert_eq!(rule_list(&app).await, defaults);

    // One activity row per write, with the rule before and after.
    let writes = [
        ("created", Value::Null, &rule),
        ("updated", rule.clone(), &patched),
        ("deleted", patched.clone(), &Value::Null),
    ];
    for (what, before, after) in writes {
        let rows = activity(&app, &format!("escalation_rule_{what}")).await;
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0]["actorKind"], "admin", "{rows:?}");
        assert_eq!((&rows[0]["before"], &rows[0]["after"]), (&before, after), "{what}");
    }
    app.stop().await;
}

async fn invalid_and_forbidden_writes_change_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let valid = unassigned_rule("valid", "v", 60);
    let before = rule_list(&app).await;
    // [field of the body, its bad value, the field the error names]
    let cases = json!([
        ["triggers", [{"kind": "sometimes", "durationMs": MINUTE}], "triggers[0].kind"],
        ["triggers", [{"kind": "unassigned", "durationMs": 0}], "triggers.durationMs"],
        ["triggers", [{"kind": "no_heartbeat", "durationMs": -5}], "triggers.durationMs"],
        ["triggers", [{"kind": "blocker_duration", "durationMs": 400 * 24 * HOUR}], "triggers.durationMs"],
        ["triggers", [{"kind": "time_in_status", "status": "done", "durationMs": MINUTE}], "triggers.status"],
        ["triggers", [{"kind": "slo_consumed", "percent": 0}], "triggers.percent"],
        ["triggers", [], "triggers"],
        ["actions", [], "actions"],
        ["actions", [{"kind": "page_someone"}], "actions[0].kind"],
        ["actions", [{"kind": "notify_assignee"}], "actions.subject"],
        ["actions", [{"kind": "webhook", "url": "ftp://example.com"}], "actions.url"],
        ["priority", 101, "priority"],
        ["priority", -1, "priority"],
        ["cooldownMs", -1, "cooldownMs"],
        ["name", "   ", "name"],
    ]);
    for case in array(&cases) {
        let mut body = valid.clone();
        body[text(&case[0])] = case[1].clone();
        assert_eq!(
            invalid(&app, Method::POST, RULES, body.clone()).await,
            case[2],
            "{body}"
        );
    }
    for key in ["name", "triggers", "actions"] {
        let mut body = valid.clone();
        body.as_object_mut().expect("object").remove(key);
        assert_eq!(invalid(&app, Method::POST, RULES, body).await, key);
    }
    let slo_rule = format!("{RULES}/SLO%20approaching");
    assert_eq!(
        invalid(&app, Method::PATCH, &slo_rule, json!({"priority": 200})).await,
        "priority"
    );
    assert_eq!(rule_list(&app).await, before, "a refused write changes nothing");

    // Names are unique, case-insensitively.
    let rule = create_rule(&app, valid.clone()).await;
    let listed = rule_list(&app).await;
    let (mut again, mut taken) = (valid.clone(), valid.clone());
    again["name"] = json!("VALID");
    taken["name"] = json!("task stuck in progress");
    let renamed = json!({"name": "Assignee Silent"});
    for (method, path, body) in [
        (Method::POST, RULES, again),
        (Method::POST, RULES, taken),
        (Method::PATCH, &format!("{RULES}/valid"), renamed),
    ] {
        app.admin(method, path, Some(body))
            .await
            .expect_error(409, "duplicate_name");
    }

    // Agents may read and dry-run, nothing more.
    let (_, token) = app.agent("mallory").await;
    let as_agent = Some(token.as_str());
    let rule_path = format!("{RULES}/{}", id(&rule));
    let mut other = valid.clone();
    other["name"] = json!("by an agent");
    let task = ready_task(&app, "watched", "v").await;
    let refused = [
        (Method::POST, RULES.to_string(), Some(other)),
        (Method::PATCH, rule_path.clone(), Some(json!({"enabled": false}))),
        (Method::DELETE, rule_path, None),
        (Method::POST, format!("{RULES}/check-all"), None),
        (Method::POST, format!("{RULES}/evaluate/{task}?dryRun=false"), None),
    ];
    for (method, path, body) in refused {
        app.call(method, &path, as_agent, body)
            .await
            .expect_error(403, "forbidden");
    }
    let dry = app
        .call(Method::POST, &format!("{RULES}/evaluate/{task}"), as_agent, None)
        .await
        .expect(200);
    assert_eq!(dry["dryRun"], true, "{dry}");
    let seen = app.call(Method::GET, RULES, as_agent, None).await.expect(200);
    assert_eq!(array(&seen), listed);
    for path in ["/api/escalations", "/api/escalations/stats"] {
        app.call(Method::GET, path, as_agent, None).await.expect(200);
    }
    app.call(Method::GET, RULES, None, None)
        .await
        .expect_error(401, "unauthorized");
    assert_eq!(rule_list(&app).await, listed);

    // Unknown rules and tasks.
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let body = (method == Method::PATCH).then(|| json!({"enabled": false}));
        app.admin(method, &format!("{RULES}/no-such-rule"), body)
            .await
            .expect_error(404, "escalation_rule_not_found");
    }
    app.admin(Method::POST, &format!("{RULES}/evaluate/no-such-task"), None)
        .await
        .expect_error(404, "task_not_found");
    assert!(history(&app, "").await.is_empty());
    app.stop().await;
}

async fn a_dry_run_explains_and_a_real_run_fires(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    app.agent("bob").await;
    let rule = create_rule(
        &app,
        json!({"name": "ready too long", "priority": 60, "cooldownMs": COOLDOWN, "appliesTo": {"tags": ["dry"]},
            "triggers": [{"kind": "time_in_status", "status": "ready", "durationMs": 5 * MINUTE}],
            "actions": [{"kind": "notify_assignee", "subject": "Pick this up", "body": "It is waiting."}]}),
    )
    .await;
    let body = json!({"title": "Waiting", "status": "ready", "assigneeId": "bob", "tags": ["dry"]});
    let task = id(&app.task(body).await);
    let inbox = "/api/agents/bob/messages?limit=100";

    // Exactly 5 minutes is not "more than 5 minutes".
    app.clock.advance_ms(5 * MINUTE);
    nothing_matches(&evaluate(&app, &task, true).await);

    app.clock.advance_ms(MINUTE);
    let before = get_task(&app, &task).await;
    let dry = evaluate(&app, &task, true).await;
    let why = json!({"ruleId": rule["id"], "ruleName": "ready too long", "trigger": "time_in_status",
        "reason": "ready for 6 min"});
    let mut matched = why.clone();
    matched["priority"] = json!(60);
    matched["openLevel"] = json!(0);
    let mut fires = why.clone();
    fires["level"] = json!(1);
    assert_eq!(
        dry,
        json!({"taskId": task, "dryRun": true, "evaluatedAt": now(&app), "matching": [matched],
            "fires": fires, "heldBack": null, "resolves": [], "escalation": null})
    );
    assert!(history(&app, "").await.is_empty(), "a dry run records nothing");
    let messages = app.admin(Method::GET, inbox, None).await.expect(200);
    let messages = other_than_assignment_notices(array(&messages["items"]));
    assert!(messages.is_empty(), "a dry run sends nothing: {messages:?}");
    assert_eq!(get_task(&app, &task).await, before, "a dry run leaves the task alone");

    let real = evaluate(&app, &task, false).await;
    assert_eq!(real["dryRun"], false);
    assert_eq!(real["fires"], fires);
    let escalation = without_outbox_ids(&real["escalation"]);
    assert_eq!(
        escalation,
        json!({"id": escalation["id"], "ruleId": rule["id"], "ruleName": "ready too long", "taskId": task,
            "messageId": null, "level": 1, "trigger": "time_in_status", "reason": "ready for 6 min",
            "actions": [{"kind": "notify_assignee", "status": "executed",
                "detail": "notice sent to bob"}],
            "triggeredAt": now(&app), "resolvedAt": null, "useful": null, "ratedAt": null})
    );
    assert_eq!(history(&app, "").await, vec![escalation.clone()]);
    let messages =
        other_than_assignment_notices(array(&app.admin(Method::GET, inbox, None).await.expect(200)["items"]));
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["subject"], "Pick this up");
    assert_eq!(messages[0]["type"], "alert");
    assert_eq!(messages[0]["taskId"], task);
    assert_eq!(messages[0]["data"]["escalationId"], escalation["id"]);

    // At once again: the rule still matches, but it is cooling down.
    for dry_run in [true, false] {
        let again = evaluate(&app, &task, dry_run).await;
        assert_eq!(again["fires"], Value::Null, "{again}");
        assert_eq!(again["escalation"], Value::Null, "{again}");
        assert_eq!(int(&again["matching"][0]["openLevel"]), 1, "{again}");
        let held = text(&again["heldBack"]);
        assert!(
            held.contains("'ready too long'") && held.contains("cooling down for 10 min"),
            "{held}"
        );
    }
    assert_eq!(history(&app, "").await.len(), 1);

    // A finished task matches nothing.
    let other = app.task(json!({"title": "Dropped", "tags": ["dry"]})).await;
    move_to(&app, &id(&other), "cancelled").await.expect(200);
    nothing_matches(&evaluate(&app, &id(&other), false).await);
    app.stop().await;
}

async fn the_ladder_climbs_once_per_cooldown_stops_at_three_and_restarts(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    app.agent("bob").await;
    let rule = create_rule(&app, unassigned_rule("nobody took it", "ladder", 60)).await;
    let task = ready_task(&app, "Orphan", "ladder").await;
    let open = format!("taskId={task}&open=true");

    assert_eq!(
        tick_after(&app, 5 * MINUTE).await,
        NONE,
        "not strictly past 5 minutes yet"
    );
    // (clock step, level fired or 0 for none): one level per cooldown, none before it is over.
    let steps = [(1, 1), (COOLDOWN - 1, 0), (1, 2), (COOLDOWN / 2, 0), (COOLDOWN / 2, 3)];
    for (step, level) in steps {
        let fired = tick_after(&app, step).await;
        assert_eq!(fired.len(), usize::from(level > 0), "{fired:?}");
        if level > 0 {
            assert_firing(&fired[0], &rule, &task, level, now(&app));
        }
    }
    // The top of the ladder: nothing more, however long it waits.
    for _ in 0..3 {
        assert_eq!(tick_after(&app, COOLDOWN + HOUR).await, NONE, "past the maximum depth");
    }
    let at_top = evaluate(&app, &task, true).await;
    assert_eq!(int(&at_top["matching"][0]["openLevel"]), 3, "{at_top}");
    assert_eq!(at_top["fires"], Value::Null, "{at_top}");
    assert_eq!(at_top["heldBack"], Value::Null, "{at_top}");
    let ladder = history(&app, &open).await;
    assert_eq!(levels(&ladder), vec![3, 2, 1]);

    // Assigned: the condition is gone and the three rungs resolve.
    app.clock.advance_ms(MINUTE);
    let resolved_at = now(&app);
    assign(&app, &task, json!("bob")).await;
    assert_eq!(tick_after(&app, 0).await, NONE);
    assert!(history(&app, &open).await.is_empty());
    let closed = history(&app, &format!("taskId={task}&open=false")).await;
    assert_eq!(levels(&closed), vec![3, 2, 1]);
    for (done, was) in closed.iter().zip(&ladder) {
        assert_eq!(int(&done["resolvedAt"]), resolved_at, "{done}");
        assert_eq!((&done["id"], &done["triggeredAt"]), (&was["id"], &was["triggeredAt"]));
    }

    // Unassigned again (still ready since long ago): the change itself fires, at level 1 again.
    app.clock.advance_ms(MINUTE);
    assign(&app, &task, Value::Null).await;
    assert_eq!(
        tick_after(&app, 0).await,
        NONE,
        "cooling down after the firing on the change"
    );
    let again = history(&app, &open).await;
    assert_eq!(levels(&again), vec![1], "{again:?}");
    assert_firing(&again[0], &rule, &task, 1, now(&app));
    assert_eq!(history(&app, &format!("taskId={task}")).await.len(), 4);
    app.stop().await;
}

async fn only_the_highest_priority_rule_fires_and_its_cooldown_holds_the_others(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let low = create_rule(&app, unassigned_rule("low", "prio", 60)).await;
    let high = create_rule(&app, unassigned_rule("high", "prio", 70)).await;
    let task = ready_task(&app, "Contested", "prio").await;
    let of_rule = |rule: &Value| format!("ruleId={}", id(rule));

    app.clock.advance_ms(6 * MINUTE);
    let dry = evaluate(&app, &task, true).await;
    let names: Vec<String> = array(&dry["matching"]).iter().map(|m| text(&m["ruleName"])).collect();
    assert_eq!(names, vec!["high", "low"], "{dry}");
    assert_fires(&dry, "high", 1);

    let report = app
        .admin(Method::POST, &format!("{RULES}/check-all"), None)
        .await
        .expect(200);
    assert_eq!(int(&report["evaluated"]), 1, "{report}");
    assert_eq!(int(&report["resolved"]), 0, "{report}");
    let first = array(&report["fired"]);
    assert_eq!(first.len(), 1, "{report}");
    assert_firing(&first[0], &high, &task, 1, now(&app));

    // The high rule cools down; the low one does not step in.
    assert_eq!(tick_after(&app, COOLDOWN / 2).await, NONE);
    let held = evaluate(&app, &task, true).await;
    assert_eq!(held["fires"], Value::Null, "{held}");
    assert!(text(&held["heldBack"]).contains("'high'"), "{held}");
    assert_eq!(int(&held["matching"][1]["openLevel"]), 0, "{held}");
    let second = tick_after(&app, COOLDOWN / 2).await;
    assert_eq!(second.len(), 1, "{second:?}");
    assert_firing(&second[0], &high, &task, 2, now(&app));
    assert!(history(&app, &of_rule(&low)).await.is_empty());

    // Once the high rule no longer matches (turned off), its rungs resolve and the low rule has its turn.
    patch_rule(&app, "high", json!({"enabled": false})).await;
    let dry = evaluate(&app, &task, true).await;
    assert_eq!(dry["resolves"], json!(["high"]), "{dry}");
    assert_fires(&dry, "low", 1);
    let third = tick_after(&app, 0).await;
    assert_eq!(third.len(), 1, "{third:?}");
    assert_firing(&third[0], &low, &task, 1, now(&app));
    let closed = history(&app, &format!("{}&open=false", of_rule(&high))).await;
    assert!(
        closed.len() == 2 && closed.iter().all(|e| int(&e["resolvedAt"]) == now(&app)),
        "{closed:?}"
    );
    app.stop().await;
}

async fn history_filters_pages_feedback_and_stats(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (_, bob_token) = app.agent("bob").await;
    let alpha = create_rule(&app, unassigned_rule("alpha", "a", 60)).await;
    let beta = create_rule(&app, unassigned_rule("beta", "b", 60)).await;
    let t1 = ready_task(&app, "one", "a").await;
    let t2 = ready_task(&app, "two", "b").await;
    let t3 = ready_task(&app, "three", "a").await;

    assert_eq!(tick_after(&app, 6 * MINUTE).await.len(), 3);
    let t_first = now(&app);
    assert_eq!(tick_after(&app, COOLDOWN).await.len(), 3);
    let t_second = now(&app);
    app.clock.advance_ms(4 * MINUTE);
    assign(&app, &t1, json!("bob")).await;
    let t_resolved = now(&app);

    let all = history(&app, "").await;
    assert_eq!(all.len(), 6);
    let at: Vec<i64> = all.iter().map(|e| int(&e["triggeredAt"])).collect();
    assert_eq!(at, [[t_second; 3], [t_first; 3]].concat(), "newest first");
    let of_t1 = history(&app, &format!("taskId={t1}")).await;
    assert_eq!(levels(&of_t1), vec![2, 1]);
    assert!(of_t1.iter().all(|e| int(&e["resolvedAt"]) == t_resolved), "{of_t1:?}");
    let of_alpha = history(&app, &format!("ruleId={}", id(&alpha))).await;
    assert_eq!(of_alpha.len(), 4);
    assert!(of_alpha.iter().all(|e| e["ruleName"] == "alpha"));
    assert_eq!(history(&app, "open=true").await.len(), 4);
    assert_eq!(history(&app, "open=false").await, of_t1);
    let recent = history(&app, &format!("since={t_second}")).await;
    assert_eq!(levels(&recent), vec![2, 2, 2]);
    assert!(history(&app, &format!("since={}", t_second + 1)).await.is_empty());
    let beta_open = history(&app, &format!("ruleId={}&open=true&taskId={t2}", id(&beta))).await;
    assert_eq!(levels(&beta_open), vec![2, 1]);
    let nothing = history(&app, &format!("ruleId={}&taskId={t1}", id(&beta))).await;
    assert!(nothing.is_empty(), "{nothing:?}");

    // Paging (at most `limit` a page, following `nextCursor`): the whole history, in order.
    assert_eq!(all_items(&app, "/api/escalations", 4).await, all);
    assert_eq!(all_items(&app, "/api/escalations", 1).await, all);

    // Feedback: each rating is recorded; a new one replaces the old.
    let find = |task: &str, level: i64| {
        let e = all.iter().find(|e| e["taskId"] == task && int(&e["level"]) == level);
        id(e.expect("escalation"))
    };
    app.clock.advance_ms(MINUTE);
    let rated = rate(&app, &find(&t1, 1), Some(true), ADMIN_TOKEN).await.expect(200);
    assert_eq!(rated["useful"], true, "{rated}");
    assert_eq!(int(&rated["ratedAt"]), now(&app), "{rated}");
    assert_eq!(rated["id"], json!(find(&t1, 1)));
    rate(&app, &find(&t1, 2), Some(false), ADMIN_TOKEN).await.expect(200);
    rate(&app, &find(&t3, 1), Some(true), &bob_token).await.expect(200);
    rate(&app, &find(&t2, 1), Some(false), ADMIN_TOKEN).await.expect(200);
    app.clock.advance_ms(MINUTE);
    rate(&app, &find(&t2, 1), Some(true), ADMIN_TOKEN).await.expect(200);
    let rerated = history(&app, &format!("taskId={t2}")).await;
    assert_eq!(rerated[1]["useful"], true);
    assert_eq!(int(&rerated[1]["ratedAt"]), now(&app));
    assert_eq!(rerated[0]["ratedAt"], Value::Null, "never rated");
    rate(&app, "no-such-escalation", Some(true), ADMIN_TOKEN)
        .await
        .expect_error(404, "escalation_not_found");
    let err = rate(&app, &find(&t2, 2), None, ADMIN_TOKEN)
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(err["error"]["details"]["field"], "useful", "{err}");

    // Statistics, by hand: alpha fired 4 times, 2 resolved after 14 and 4 minutes, 2 of 3 ratings useful;
    // beta fired twice, both open, its one rating useful.
    let stats = stats(&app).await;
    assert_eq!(int(&stats["generatedAt"]), now(&app));
    let lines = array(&stats["rules"]);
    assert_eq!(lines.len(), 2, "{stats}");
    let (a, b) = (&lines[0], &lines[1]);
    assert_eq!(a["ruleId"], alpha["id"], "{stats}");
    assert_eq!(a["ruleName"], "alpha", "{stats}");
    let figures = |line: &Value| -> Vec<i64> {
        ["firings", "open", "resolved", "rated", "useful"]
            .iter()
            .map(|k| int(&line[*k]))
            .collect()
    };
    assert_eq!(figures(a), vec![4, 2, 2, 3, 2], "{a}");
    assert_eq!(int(&a["meanResolutionMs"]), 9 * MINUTE, "{a}");
    let accuracy = a["accuracy"].as_f64().expect("accuracy");
    assert!((accuracy - 2.0 / 3.0).abs() < 0.001, "{a}");
    assert_eq!(b["ruleId"], beta["id"], "{stats}");
    assert_eq!(figures(b), vec![2, 2, 0, 1, 1], "{b}");
    assert_eq!(b["meanResolutionMs"], Value::Null, "{b}");
    assert_eq!(b["accuracy"].as_f64(), Some(1.0), "{b}");

    // Deleting a rule resolves its open escalations; the history keeps its name.
    let path = format!("{RULES}/beta");
    app.admin(Method::DELETE, &path, None).await.expect(200);
    let kept = history(&app, &format!("taskId={t2}&open=false")).await;
    let resolved = |e: &Value| e["ruleName"] == "beta" && int(&e["resolvedAt"]) == now(&app);
    assert!(kept.len() == 2 && kept.iter().all(resolved), "{kept:?}");
    app.stop().await;
}

async fn rules_history_and_open_ladders_survive_a_restart(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let rule = create_rule(&app, unassigned_rule("survivor", "r", 60)).await;
    patch_rule(&app, "survivor", json!({"description": "kept"})).await;
    patch_rule(&app, "SLO%20approaching", json!({"enabled": false})).await;
    app.admin(Method::DELETE, &format!("{RULES}/assignee%20silent"), None)
        .await
        .expect(200);
    let task = ready_task(&app, "Across restarts", "r").await;
    assert_eq!(tick_after(&app, 6 * MINUTE).await.len(), 1);
    assert_eq!(tick_after(&app, COOLDOWN).await.len(), 1);
    app.clock.advance_ms(MINUTE);
    let rules = rule_list(&app).await;
    let before = history(&app, "").await;
    assert_eq!(levels(&before), vec![2, 1]);

    let app = app.restart().await;
    assert_eq!(rule_list(&app).await, rules);
    assert_eq!(rules.len(), 6);
    assert_eq!(get_rule(&app, "survivor").await["description"], "kept");
    assert_eq!(get_rule(&app, "SLO approaching").await["enabled"], false);
    app.admin(Method::GET, &format!("{RULES}/assignee%20silent"), None)
        .await
        .expect_error(404, "escalation_rule_not_found");
    assert_eq!(history(&app, "").await, before);

    // The ladder stays at level 2, cooling down since its last firing.
    assert_eq!(tick_after(&app, 0).await, NONE, "fired again right after the restart");
    let dry = evaluate(&app, &task, true).await;
    assert_eq!(int(&dry["matching"][0]["openLevel"]), 2, "{dry}");
    assert!(text(&dry["heldBack"]).contains("cooling down for 9 min"), "{dry}");
    assert_eq!(tick_after(&app, COOLDOWN - MINUTE - 1).await, NONE);
    let next = tick_after(&app, 1).await;
    assert_eq!(next.len(), 1, "{next:?}");
    assert_firing(&next[0], &rule, &task, 3, now(&app));

    // And a second restart keeps the top of the ladder.
    let app = app.restart().await;
    assert_eq!(tick_after(&app, COOLDOWN + 1).await, NONE, "past the maximum depth");
    assert_eq!(levels(&history(&app, "open=true").await), vec![3, 2, 1]);
    app.stop().await;
}

async fn stats_keep_one_line_per_rule_across_a_rename(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let rule = create_rule(&app, unassigned_rule("before", "rn", 60)).await;
    let task = ready_task(&app, "Renamed under it", "rn").await;
    assert_eq!(tick_after(&app, 6 * MINUTE).await.len(), 1);
    patch_rule(&app, "before", json!({"name": "after"})).await;
    let second = tick_after(&app, COOLDOWN).await;
    assert_eq!(second.len(), 1, "{second:?}");
    assert_eq!(second[0]["ruleName"], "after", "{second:?}");
    assert_eq!(levels(&history(&app, &format!("taskId={task}")).await), vec![2, 1]);

    let stats = stats(&app).await;
    let lines: Vec<Value> = array(&stats["rules"])
        .into_iter()
        .filter(|l| l["ruleId"] == rule["id"])
        .collect();
    assert_eq!(lines.len(), 1, "one line per rule: {stats}");
    assert_eq!((int(&lines[0]["firings"]), int(&lines[0]["open"])), (2, 2), "{stats}");
    assert_eq!(lines[0]["ruleName"], "after", "the latest name: {stats}");
    app.stop().await;
}

on_both_backends!(
    default_rules_and_a_crud_round_trip,
    invalid_and_forbidden_writes_change_nothing,
    a_dry_run_explains_and_a_real_run_fires,
    the_ladder_climbs_once_per_cooldown_stops_at_three_and_restarts,
    only_the_highest_priority_rule_fires_and_its_cooldown_holds_the_others,
    history_filters_pages_feedback_and_stats,
    rules_history_and_open_ladders_survive_a_restart,
    stats_keep_one_line_per_rule_across_a_rename,
);
