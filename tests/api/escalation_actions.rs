//! What an escalation rule does when it fires, seen from outside: a webhook reaches a local HTTP server with
//! the firing and the rule's headers (delivered once, retried three times on failure, skipped without a
//! URL, sent to `MC_ESCALATION_WEBHOOK_URL` when the action names none), `escalate` to a human writes the
//! admin activity feed and calls the default webhook, `escalate` to an agent alerts it and raises the task,
//! `create_subtask` links a child task (assigned when asked), `set_priority` sets once and then reports it
//! had nothing to do, `notify_assignee` renders a template with the facts it declares, and one failing action
//! never stops the next. Each result is recorded as `executed`, `failed` or `skipped` with its detail, in the
//! tick report and in the history alike. The default rules are turned off for those tests; the last one
//! turns them on and runs 200 healthy tasks through their lifecycle to show that they never fire.

use crate::common::sink::Sink;
use crate::common::*;
use crate::on_both_backends;
use reqwest::Method;
use serde_json::{json, Value};
use std::net::TcpListener;

const MINUTE: i64 = 60_000;

/// A URL nothing listens on: a port bound, read and released.
fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}/hook")
}

/// Ready with no assignee for more than a minute.
fn unassigned() -> Value {
    json!({"kind": "unassigned", "durationMs": MINUTE})
}

/// Ready for more than a minute (assigned or not).
fn ready_a_minute() -> Value {
    json!({"kind": "time_in_status", "status": "ready", "durationMs": MINUTE})
}

/// Creates a rule for the tasks tagged `tag`, cooling down for 30 minutes (or `cooldown_ms`).
async fn rule(app: &TestApp, name: &str, tag: &str, trigger: Value, actions: Value) -> Value {
    rule_cooling(app, name, tag, trigger, actions, 30 * MINUTE).await
}

async fn rule_cooling(app: &TestApp, name: &str, tag: &str, trigger: Value, actions: Value, cooldown_ms: i64) -> Value {
    let body = json!({
        "name": name,
        "cooldownMs": cooldown_ms,
        "appliesTo": {"tags": [tag]},
        "triggers": [trigger],
        "actions": actions,
    });
    app.admin(Method::POST, "/api/escalation-rules", Some(body))
        .await
        .expect(201)
}

/// A ready task tagged `tag`, assigned to `assignee` when given.
async fn ready_task(app: &TestApp, title: &str, tag: &str, assignee: Option<&str>) -> Value {
    app.task(json!({"title": title, "status": "ready", "tags": [tag], "assigneeId": assignee}))
        .await
}

/// Moves the clock past the one-minute triggers, ticks and lets the outbox make its first attempts; the
/// escalations the tick recorded, as JSON.
async fn fire(app: &TestApp) -> Vec<Value> {
    app.clock.advance_ms(MINUTE + 1_000);
    let report = app.tick().await;
    app.settle().await;
    array(&serde_json::to_value(&report.escalations).expect("escalations serialize"))
}

/// The one escalation of `task` among `fired`, as the history shows it now (its deliveries attempted).
async fn fired_for(app: &TestApp, fired: &[Value], task: &Value) -> Value {
    let mine: Vec<&Value> = fired.iter().filter(|e| e["taskId"] == task["id"]).collect();
    assert_eq!(mine.len(), 1, "one firing for {}: {fired:?}", task["title"]);
    let stored = all_items(app, &format!("/api/escalations?taskId={}", id(task)), 100).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["id"], mine[0]["id"]);
    let kinds = |e: &Value| {
        array(&e["actions"])
            .iter()
            .map(|a| a["kind"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(kinds(&stored[0]), kinds(mine[0]), "the actions recorded are those run");
    stored[0].clone()
}

/// Asserts one action result: its kind, status, and words its detail contains.
#[track_caller]
fn assert_action(action: &Value, kind: &str, status: &str, words: &[&str]) {
    assert_eq!(action["kind"], kind, "{action}");
    assert_eq!(action["status"], status, "{action}");
    let detail = text(&action["detail"]);
    for word in words {
        assert!(detail.contains(word), "detail {detail:?} lacks {word:?}");
    }
}

/// Asserts that an escalation ran one action, and what became of it.
#[track_caller]
fn assert_sole(escalation: &Value, kind: &str, status: &str, words: &[&str]) {
    let actions = array(&escalation["actions"]);
    assert_eq!(actions.len(), 1, "{escalation}");
    assert_action(&actions[0], kind, status, words);
}

/// The inbox items of an agent (up to 100), read as the admin, without assignment notices.
async fn inbox(app: &TestApp, agent: &str) -> Vec<Value> {
    let page = app
        .admin(Method::GET, &format!("/api/agents/{agent}/messages?limit=100"), None)
        .await
        .expect(200);
    other_than_assignment_notices(array(&page["items"]))
}

async fn webhook_delivers_the_firing_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    let sink = Sink::start(200).await;
    let actions = json!([{"kind": "webhook", "url": sink.url, "headers": {"X-Token": "abc"}}]);
    let hook = rule(&app, "page the on-call", "x", unassigned(), actions).await;
    let task = ready_task(&app, "orphan", "x", None).await;
    app.clock.advance_ms(MINUTE);
    assert!(
        app.tick().await.escalations.is_empty(),
        "exactly a minute is not more than one"
    );
    assert!(sink.hits().is_empty());

    let fired = fire(&app).await;
    let escalation = fired_for(&app, &fired, &task).await;
    assert_eq!(escalation["ruleId"], hook["id"]);
    assert_eq!(escalation["level"], 1);
    assert_eq!(escalation["trigger"], "unassigned");
    let url = sink.url.clone();
    assert_sole(&escalation, "webhook", "executed", &[&url, "HTTP 200"]);

    let hits = sink.hits();
    assert_eq!(hits.len(), 1, "{hits:?}");
    let hit = &hits[0];
    assert_eq!(hit.method, "POST");
    assert_eq!(hit.headers.get("x-token").map(String::as_str), Some("abc"));
    assert_eq!(
        hit.headers.get("idempotency-key"),
        escalation["actions"][0]["outboxId"]
            .as_str()
            .map(str::to_string)
            .as_ref(),
        "the outbox row's id is the idempotency key"
    );
    assert!(hit.headers["content-type"].starts_with("application/json"), "{hit:?}");
    let body = &hit.body;
    assert_eq!(body["event"], "escalation", "{body}");
    assert_eq!(body["escalationId"], escalation["id"]);
    assert_eq!(body["rule"]["id"], hook["id"]);
    assert_eq!(body["rule"]["name"], "page the on-call");
    assert_eq!(body["level"], 1);
    assert_eq!(body["trigger"], "unassigned");
    assert_eq!(body["reason"], escalation["reason"]);
    assert_eq!(body["triggeredAt"], escalation["triggeredAt"]);
    assert_eq!(body["task"]["id"], task["id"]);
    assert_eq!(body["task"]["title"], "orphan");
    assert_eq!(body["task"]["status"], "ready");

    // Cooling down: later ticks send nothing more.
    app.clock.advance_ms(MINUTE);
    assert!(app.tick().await.escalations.is_empty());
    assert_eq!(sink.hits().len(), 1);
    sink.stop().await;
    app.stop().await;
}

async fn failing_webhooks_are_retried_then_recorded(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    let broken = Sink::start(500).await;
    let dead = dead_url();
    rule(
        &app,
        "to a broken server",
        "a",
        unassigned(),
        json!([{"kind": "webhook", "url": broken.url}]),
    )
    .await;
    rule(
        &app,
        "to nobody",
        "b",
        unassigned(),
        json!([{"kind": "webhook", "url": dead}]),
    )
    .await;
    rule(&app, "to the default", "c", unassigned(), json!([{"kind": "webhook"}])).await;
    let (a, b, c) = (
        ready_task(&app, "answered 500", "a", None).await,
        ready_task(&app, "refused", "b", None).await,
        ready_task(&app, "no url", "c", None).await,
    );

    let fired = fire(&app).await;
    assert_eq!(fired.len(), 3, "{fired:?}");
    let e = fired_for(&app, &fired, &a).await;
    assert_sole(
        &e,
        "webhook",
        "failed",
        &[&broken.url, "HTTP 500", "attempt 1 failed", "retrying at"],
    );
    assert_eq!(broken.hits().len(), 1, "one attempt now; the outbox retries later");
    assert!(broken.hits().iter().all(|h| h.body["escalationId"] == e["id"]));
    let e = fired_for(&app, &fired, &b).await;
    assert_sole(&e, "webhook", "failed", &[&dead, "attempt 1 failed"]);
    let e = fired_for(&app, &fired, &c).await;
    assert_sole(&e, "webhook", "skipped", &["MC_ESCALATION_WEBHOOK_URL"]);
    broken.stop().await;
    app.stop().await;
}

async fn a_webhook_without_url_goes_to_the_configured_one(backend: Backend) {
    let sink = Sink::start(200).await;
    let url = sink.url.clone();
    let Some(app) = spawn_app_with(backend, |config| config.escalation.webhook_url = Some(url)).await else {
        return;
    };
    disable_escalation_rules(&app).await;
    let actions = json!([{"kind": "webhook", "headers": {"X-Token": "def"}}]);
    let hook = rule(&app, "to the default", "c", unassigned(), actions).await;
    let task = ready_task(&app, "no url", "c", None).await;
    let fired = fire(&app).await;
    let e = fired_for(&app, &fired, &task).await;
    assert_sole(&e, "webhook", "executed", &[&sink.url, "HTTP 200"]);
    let hits = sink.hits();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].headers.get("x-token").map(String::as_str), Some("def"));
    assert_eq!(hits[0].body["event"], "escalation");
    assert_eq!(hits[0].body["rule"]["id"], hook["id"]);
    assert_eq!(hits[0].body["task"]["id"], task["id"]);
    sink.stop().await;
    app.stop().await;
}

async fn escalating_to_a_human_writes_the_feed_and_calls_the_webhook(backend: Backend) {
    let sink = Sink::start(200).await;
    let url = sink.url.clone();
    let Some(app) = spawn_app_with(backend, |config| config.escalation.webhook_url = Some(url)).await else {
        return;
    };
    disable_escalation_rules(&app).await;
    let (alice, _) = app.agent("alice").await;
    let human = rule(
        &app,
        "needs a person",
        "h",
        ready_a_minute(),
        json!([{"kind": "escalate", "to": "human"}]),
    )
    .await;
    let task = ready_task(&app, "nobody knows", "h", Some("alice")).await;
    assert_eq!(task["priority"], "P2");

    let fired = fire(&app).await;
    let e = fired_for(&app, &fired, &task).await;
    assert_sole(
        &e,
        "escalate",
        "executed",
        &["priority P2 → P1", "sent to a human", "HTTP 200"],
    );
    let now = get_task(&app, &id(&task)).await;
    assert_eq!(now["priority"], "P1");
    assert_eq!(now["escalationLevel"], 1);

    let feed = all_items(&app, "/api/activity?kind=escalated_to_human", 100).await;
    assert_eq!(feed.len(), 1, "{feed:?}");
    assert_eq!(feed[0]["taskId"], task["id"]);
    assert_eq!(feed[0]["agentId"], alice["id"]);
    assert_eq!(feed[0]["actorKind"], "system");
    assert_eq!(feed[0]["after"]["escalationId"], e["id"]);
    assert!(text(&feed[0]["message"]).contains("nobody knows"), "{}", feed[0]);

    let hits = sink.hits();
    assert_eq!(hits.len(), 1, "{hits:?}");
    let body = &hits[0].body;
    assert_eq!(body["event"], "escalated_to_human", "{body}");
    assert_eq!(body["escalationId"], e["id"]);
    assert_eq!(body["rule"]["id"], human["id"]);
    assert_eq!(body["rule"]["name"], "needs a person");
    assert_eq!(body["level"], 1);
    assert_eq!(body["reason"], e["reason"]);
    assert_eq!(body["task"]["id"], task["id"]);
    assert_eq!(body["task"]["priority"], "P1", "the task as raised");
    assert!(inbox(&app, "alice").await.is_empty(), "nobody is alerted");
    sink.stop().await;
    app.stop().await;
}

async fn escalating_to_an_agent_alerts_it_and_raises_the_task(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    let (boss, _) = app.agent("boss").await;
    let (chief, _) = app.agent("chief").await;
    let by_name = rule(
        &app,
        "to the boss",
        "n",
        unassigned(),
        json!([{"kind": "escalate", "to": "agent:boss"}]),
    )
    .await;
    let to_chief = json!([{"kind": "escalate", "to": format!("agent:{}", id(&chief))}]);
    rule(&app, "to the chief", "i", unassigned(), to_chief).await;
    rule(
        &app,
        "to a ghost",
        "g",
        unassigned(),
        json!([{"kind": "escalate", "to": "agent:ghost"}]),
    )
    .await;
    let n = ready_task(&app, "named", "n", None).await;
    let i = ready_task(&app, "by id", "i", None).await;
    let g = ready_task(&app, "haunted", "g", None).await;

    let fired = fire(&app).await;
    assert_eq!(fired.len(), 3, "{fired:?}");
    let e = fired_for(&app, &fired, &n).await;
    assert_sole(&e, "escalate", "executed", &["priority P2 → P1", "notice sent to boss"]);
    let alerts = inbox(&app, &id(&boss)).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = &alerts[0];
    assert_eq!(alert["type"], "alert");
    assert_eq!(alert["senderKind"], "system");
    assert_eq!(alert["priority"], "high");
    assert_eq!(alert["taskId"], n["id"]);
    assert_eq!(alert["subject"], "Escalation (level 1): named");
    assert!(text(&alert["body"]).contains(&text(&e["reason"])), "{alert}");
    assert!(text(&alert["body"]).contains("priority now P1"), "{alert}");
    assert_eq!(alert["data"]["escalationId"], e["id"]);
    assert_eq!(alert["data"]["ruleId"], by_name["id"]);
    assert_eq!(alert["data"]["level"], 1);
    assert_eq!(get_task(&app, &id(&n)).await["priority"], "P1");

    let e = fired_for(&app, &fired, &i).await;
    assert_sole(
        &e,
        "escalate",
        "executed",
        &["priority P2 → P1", "notice sent to chief"],
    );
    let alerts = inbox(&app, &id(&chief)).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["taskId"], i["id"]);
    assert_eq!(get_task(&app, &id(&i)).await["priority"], "P1");

    // An unknown agent: the alert is given up at once (no retry can help), the task is raised all the same.
    let e = fired_for(&app, &fired, &g).await;
    assert_sole(
        &e,
        "escalate",
        "dead",
        &["priority P2 → P1", "agent ghost does not exist"],
    );
    assert_eq!(get_task(&app, &id(&g)).await["priority"], "P1");
    app.stop().await;
}

async fn create_subtask_links_a_child_and_assigns_it_when_asked(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    let (helper, _) = app.agent("helper").await;
    let split = json!([{"kind": "create_subtask", "title": "Investigate", "tags": ["followup"]}]);
    rule(&app, "split it", "s", unassigned(), split).await;
    let handed = json!([{"kind": "create_subtask", "title": "Unblock", "tags": ["followup"], "assignTo": "helper"}]);
    rule(&app, "hand a part over", "t", unassigned(), handed).await;
    let s = app
        .task(json!({"title": "big one", "status": "ready", "tags": ["s"], "priority": "P1"}))
        .await;
    let t = ready_task(&app, "stuck one", "t", None).await;

    let fired = fire(&app).await;
    for (parent, assignee) in [(&s, None), (&t, Some(&helper))] {
        let e = fired_for(&app, &fired, parent).await;
        let children = all_items(&app, &format!("/api/tasks?parentId={}", id(parent)), 100).await;
        assert_eq!(children.len(), 1, "{children:?}");
        let child = &children[0];
        let mut words = vec!["created subtask".to_string(), id(child)];
        words.extend(assignee.map(|_| "for helper".to_string()));
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        assert_sole(&e, "create_subtask", "executed", &words);
        assert_eq!(child["parentId"], parent["id"]);
        assert_eq!(child["status"], "ready");
        assert_eq!(child["tags"], json!(["followup"]));
        assert_eq!(child["priority"], parent["priority"]);
        assert_eq!(child["assigneeId"], assignee.map_or(Value::Null, |a| a["id"].clone()));
        assert_eq!(
            child["description"],
            format!("Split off from '{}' by an escalation.", text(&parent["title"]))
        );
        assert_eq!(get_task(&app, &id(child)).await["parentId"], parent["id"]);
    }
    app.stop().await;
}

async fn set_priority_sets_once_then_reports_nothing_to_do(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    let to_p0 = rule_cooling(
        &app,
        "make it P0",
        "p",
        unassigned(),
        json!([{"kind": "set_priority", "priority": "P0"}]),
        MINUTE,
    )
    .await;
    let task = ready_task(&app, "urgent really", "p", None).await;

    let fired = fire(&app).await;
    let e = fired_for(&app, &fired, &task).await;
    assert_sole(&e, "set_priority", "executed", &["priority P2 → P0"]);
    assert_eq!(get_task(&app, &id(&task)).await["priority"], "P0");

    // After the cooldown the rule fires again, one level up, and finds nothing to do.
    let again = fire(&app).await;
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0]["ruleId"], to_p0["id"]);
    assert_eq!(again[0]["level"], 2);
    assert_sole(&again[0], "set_priority", "skipped", &["already P0"]);
    let history = all_items(&app, &format!("/api/escalations?taskId={}", id(&task)), 100).await;
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[0]["actions"], again[0]["actions"], "newest first, recorded");
    app.stop().await;
}

async fn a_failing_action_does_not_stop_the_next(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    let actions = json!([
        {"kind": "webhook", "url": dead_url()},
        {"kind": "set_priority", "priority": "P1"},
    ]);
    rule(&app, "try both", "f", unassigned(), actions).await;
    let task = ready_task(&app, "two steps", "f", None).await;
    let fired = fire(&app).await;
    let e = fired_for(&app, &fired, &task).await;
    let results = array(&e["actions"]);
    assert_eq!(results.len(), 2, "{e}");
    assert_action(&results[0], "webhook", "failed", &["attempt 1 failed"]);
    assert_action(&results[1], "set_priority", "executed", &["priority P2 → P1"]);
    assert_eq!(get_task(&app, &id(&task)).await["priority"], "P1");
    app.stop().await;
}

async fn notify_assignee_renders_a_template_with_the_facts_it_declares(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    let (alice, _) = app.agent("alice").await;
    let template = json!({
        "name": "stuck_notice",
        "type": "status_query",
        "priority": "low",
        "subjectTemplate": "Stuck: {taskTitle}",
        "bodyTemplate": "Why: {reason}. Note: [{note}]",
        "requiredVars": ["taskTitle"],
        "optionalVars": ["reason", "note"],
    });
    app.admin(Method::POST, "/api/message-templates", Some(template))
        .await
        .expect(201);
    let needs_more = json!({
        "name": "needs_customer",
        "type": "alert",
        "subjectTemplate": "For {customer}",
        "requiredVars": ["customer"],
    });
    app.admin(Method::POST, "/api/message-templates", Some(needs_more))
        .await
        .expect(201);
    let notify = |name: &str| json!([{"kind": "notify_assignee", "template": name}]);
    rule(&app, "nudge", "t", ready_a_minute(), notify("stuck_notice")).await;
    rule(&app, "nudge badly", "m", ready_a_minute(), notify("needs_customer")).await;
    rule(&app, "nudge nobody", "u", ready_a_minute(), notify("no_such_template")).await;
    let assigned = ready_task(&app, "waiting", "t", Some("alice")).await;
    let orphan = ready_task(&app, "orphan", "t", None).await;
    let missing = ready_task(&app, "for whom", "m", Some("alice")).await;
    let unknown = ready_task(&app, "unknown template", "u", Some("alice")).await;

    let fired = fire(&app).await;
    assert_eq!(fired.len(), 4, "{fired:?}");
    let e = fired_for(&app, &fired, &assigned).await;
    assert_sole(&e, "notify_assignee", "executed", &["notice sent to alice"]);
    let e_orphan = fired_for(&app, &fired, &orphan).await;
    assert_sole(&e_orphan, "notify_assignee", "skipped", &["the task has no assignee"]);
    let e_missing = fired_for(&app, &fired, &missing).await;
    assert_sole(&e_missing, "notify_assignee", "failed", &["customer"]);
    let e_unknown = fired_for(&app, &fired, &unknown).await;
    assert_sole(&e_unknown, "notify_assignee", "failed", &[]);

    let messages = inbox(&app, &id(&alice)).await;
    assert_eq!(messages.len(), 1, "only the rendered notice arrives: {messages:?}");
    let notice = &messages[0];
    let reason = text(&e["reason"]);
    assert_eq!(notice["type"], "alert");
    assert_eq!(notice["priority"], "high");
    assert_eq!(notice["senderKind"], "system");
    assert_eq!(notice["taskId"], assigned["id"]);
    assert_eq!(notice["subject"], "Stuck: waiting");
    let body = format!("Why: {reason}. Note: []\n\n'waiting': {reason} (rule 'nudge', level 1).");
    assert_eq!(notice["body"], body);
    assert_eq!(notice["data"]["escalationId"], e["id"]);
    app.stop().await;
}

on_both_backends!(
    webhook_delivers_the_firing_once,
    failing_webhooks_are_retried_then_recorded,
    a_webhook_without_url_goes_to_the_configured_one,
    escalating_to_a_human_writes_the_feed_and_calls_the_webhook,
    escalating_to_an_agent_alerts_it_and_raises_the_task,
    create_subtask_links_a_child_and_assigns_it_when_asked,
    set_priority_sets_once_then_reports_nothing_to_do,
    a_failing_action_does_not_stop_the_next,
    notify_assignee_renders_a_template_with_the_facts_it_declares,
    healthy_work_never_escalates,
);

// ---------------------------------------------------------------------------------------------------------
// No false positives: the default rules on, 200 healthy tasks.

/// One move of a task's lifecycle, made by its assignee.
#[derive(Debug, Clone, Copy)]
enum Move {
    Start,
    Block,
    Unblock,
    Fail,
    /// `transition` to review.
    Review,
    /// `complete` with outcome review.
    Submit,
    /// `complete` with outcome done, from in progress.
    Finish,
    /// `transition` review → done.
    Approve,
}

/// Task `i`'s moves, in minutes after its wave started: in progress at most 65 minutes at a stretch, in
/// review 30, blocked 10, at most two failures, done 100 minutes after creation.
fn script(i: usize) -> Vec<(i64, Move)> {
    let mut moves = vec![(5, Move::Start)];
    if i % 5 == 0 {
        moves.extend([(20, Move::Block), (30, Move::Unblock), (35, Move::Start)]);
    } else if i % 7 == 1 {
        moves.extend([(25, Move::Fail), (30, Move::Start)]);
        if i % 14 == 1 {
            moves.extend([(45, Move::Fail), (50, Move::Start)]);
        }
    }
    match i % 4 {
        0 => moves.push((70, Move::Finish)),
        1 => moves.extend([(70, Move::Submit), (100, Move::Approve)]),
        _ => moves.extend([(70, Move::Review), (100, Move::Approve)]),
    }
    moves
}

/// Makes one move as the assignee.
async fn make(app: &TestApp, task: &str, token: &str, step: Move) {
    let (action, body) = match step {
        Move::Start => ("transition", json!({"to": "in_progress"})),
        Move::Block => (
            "transition",
            json!({"to": "blocked", "note": "waiting for the schema review"}),
        ),
        Move::Unblock => ("transition", json!({"to": "ready"})),
        Move::Fail => (
            "fail",
            json!({"errorKind": "timeout", "message": "the build timed out"}),
        ),
        Move::Review => ("transition", json!({"to": "review"})),
        Move::Submit => ("complete", json!({"outcome": "review"})),
        Move::Finish => ("complete", json!({"outcome": "done", "actualMinutes": 60})),
        Move::Approve => ("transition", json!({"to": "done"})),
    };
    let path = format!("/api/tasks/{task}/{action}");
    let reply = app.call(Method::POST, &path, Some(token), Some(body)).await;
    assert_eq!(reply.status.as_u16(), 200, "{step:?} of {task}: {}", reply.body);
}

struct Tracked {
    id: String,
    worker: usize,
    start: i64,
    moves: Vec<(i64, Move)>,
    next: usize,
}

async fn healthy_work_never_escalates(backend: Backend) {
    const WORKERS: usize = 10;
    const WAVES: i64 = 4;
    const PER_WAVE: usize = 50;
    const WAVE_GAP: i64 = 60;
    const STEP: i64 = 5;
    const PRIORITIES: [&str; 5] = ["P0", "P1", "P2", "P2", "P3"];
    let Some(app) = spawn_app(backend).await else { return };
    let (lead, lead_token) = app.register(json!({"name": "lead", "level": "lead"})).await;
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let name = format!("worker-{w}");
        let draft = json!({"name": name, "leadId": id(&lead), "maxConcurrentTasks": 12, "maxMinutesPerDay": 1440});
        let (agent, token) = app.register(draft).await;
        workers.push((id(&agent), token));
    }
    let mut everyone: Vec<(String, String)> = workers.clone();
    everyone.push((id(&lead), lead_token));

    let mut tasks: Vec<Tracked> = Vec::new();
    // (recipient index, message id, minute to acknowledge it)
    let mut to_acknowledge: Vec<(usize, String, i64)> = Vec::new();
    let end = (WAVES - 1) * WAVE_GAP + 110;
    let mut minute = 0;
    while minute <= end {
        if minute > 0 {
            app.clock.advance_ms(STEP * MINUTE);
        }
        for (agent, token) in &everyone {
            app.call(
                Method::POST,
                &format!("/api/agents/{agent}/heartbeat"),
                Some(token),
                None,
            )
            .await
            .expect(200);
        }
        if minute % WAVE_GAP == 0 && minute / WAVE_GAP < WAVES {
            for i in 0..PER_WAVE {
                let worker = i % WORKERS;
                let mut draft = json!({
                    "title": format!("wave {} task {i}", minute / WAVE_GAP),
                    "status": "ready",
                    "assigneeId": workers[worker].0,
                    "priority": PRIORITIES[i % PRIORITIES.len()],
                    "estimatedMinutes": 20,
                    "tags": ["healthy"],
                });
                match i % 3 {
                    0 => draft["slaTier"] = json!("normal"),
                    1 => draft["sloMs"] = json!(180 * MINUTE),
                    _ => draft["slaTier"] = json!("urgent"),
                }
                let task = app.task(draft).await;
                tasks.push(Tracked {
                    id: id(&task),
                    worker,
                    start: minute,
                    moves: script(i),
                    next: 0,
                });
            }
        }
        // Ten minutes into a wave, each worker asks the next one something, answered fifteen minutes later.
        if minute % WAVE_GAP == 10 && minute / WAVE_GAP < WAVES {
            for (w, (from, token)) in workers.iter().enumerate() {
                let to = (w + 1) % WORKERS;
                let draft = json!({
                    "toAgentId": workers[to].0,
                    "type": "status_query",
                    "subject": "Is the API contract final?",
                    "ackWithinMs": 30 * MINUTE,
                });
                let path = format!("/api/agents/{from}/messages");
                let sent = app
                    .call(Method::POST, &path, Some(token), Some(draft))
                    .await
                    .expect(201);
                to_acknowledge.push((to, id(&sent), minute + 15));
            }
        }
        for (to, message, at) in to_acknowledge.iter().filter(|(_, _, at)| *at == minute) {
            let (agent, token) = &workers[*to];
            let path = format!("/api/agents/{agent}/messages/{message}/acknowledge");
            let body = json!({"actionTaken": "answered in the channel"});
            app.call(Method::POST, &path, Some(token), Some(body)).await.expect(200);
            assert!(*at <= minute);
        }
        for task in tasks.iter_mut() {
            while let Some(&(offset, step)) = task.moves.get(task.next) {
                if task.start + offset > minute {
                    break;
                }
                make(&app, &task.id, &workers[task.worker].1, step).await;
                task.next += 1;
            }
        }
        let report = app.tick().await;
        assert!(
            report.escalations.is_empty(),
            "minute {minute}: {:?}",
            report.escalations
        );
        assert!(
            report.slo_breaches.is_empty(),
            "minute {minute}: {:?}",
            report.slo_breaches
        );
        assert!(report.escalated_message_ids.is_empty(), "minute {minute}");
        minute += STEP;
    }

    assert_eq!(tasks.len(), 200);
    assert!(
        tasks.iter().all(|t| t.next == t.moves.len()),
        "every script ran to its end"
    );
    let done = all_items(&app, "/api/tasks?status=done&tag=healthy", 100).await;
    assert_eq!(done.len(), 200);
    assert!(done
        .iter()
        .all(|t| t["escalationLevel"] == 0 && t["escalatedAt"].is_null()));
    let escalations = all_items(&app, "/api/escalations", 100).await;
    assert!(escalations.is_empty(), "{escalations:?}");
    let breaches = all_items(&app, "/api/slo/breaches", 100).await;
    assert!(breaches.is_empty(), "{breaches:?}");
    for (agent, _) in &everyone {
        let alerts: Vec<Value> = inbox(&app, agent)
            .await
            .into_iter()
            .filter(|m| m["senderKind"] == "system")
            .collect();
        assert!(alerts.is_empty(), "{agent}: {alerts:?}");
    }
    let rules = app.admin(Method::GET, "/api/escalation-rules", None).await.expect(200);
    assert_eq!(array(&rules).len(), 6);
    assert!(
        array(&rules).iter().all(|r| r["enabled"] == true),
        "the default rules were on"
    );
    app.stop().await;
}
