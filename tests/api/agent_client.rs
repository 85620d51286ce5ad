//! The external agent example (`examples/agent_client`) against the real server: two clients finish a small
//! project over HTTP only, handing work over, asking for and giving help, and answering a question.

use crate::agent_client_lib::{run, ClientConfig, ClientError, ClientReport, Credentials, ExitReason};
use crate::common::*;
use crate::on_both_backends;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::watch;

/// Long enough for two clients to finish five tasks on a loaded machine; reached only if they hang.
const TIMEOUT: Duration = Duration::from_secs(60);

fn client(app: &TestApp, name: &str, credentials: Credentials) -> ClientConfig {
    let mut config = ClientConfig::new(app.base.clone(), name, credentials);
    config.work_time = Duration::from_millis(20);
    config.poll_wait = Duration::from_secs(1);
    config
}

/// Every message in the agent's inbox, oldest first.
async fn inbox(app: &TestApp, agent: &str) -> Vec<Value> {
    let mut items = all_items(app, &format!("/api/agents/{agent}/messages"), 100).await;
    items.reverse();
    items
}

fn of_type<'a>(messages: &'a [Value], kind: &str, from: &str) -> Vec<&'a Value> {
    messages
        .iter()
        .filter(|m| m["type"] == kind && m["fromAgentName"] == from)
        .collect()
}

/// Waits until every task is done, then asks the clients to stop. A client that returns early (an error)
/// drops its receiver: then the others are stopped at once, so the test reports that error, not a timeout.
async fn stop_when_done(app: &TestApp, tasks: &[String], stop: watch::Sender<bool>, clients: usize) {
    let started = std::time::Instant::now();
    loop {
        if stop.receiver_count() < clients {
            break;
        }
        let mut statuses = Vec::new();
        for task in tasks {
            statuses.push(text(&get_task(app, task).await["status"]));
        }
        if statuses.iter().all(|s| s == "done") {
            break;
        }
        assert!(started.elapsed() < TIMEOUT, "tasks not done in time: {statuses:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Fails only when every client has already returned.
    let _ = stop.send(true);
}

async fn two_clients_finish_a_project_together(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // "too many failed attempts" would reassign grace's flaky task; this test is about the clients.
    disable_escalation_rules(&app).await;
    let (grace, grace_token) = app.register(json!({"name": "grace", "level": "lead"})).await;
    let (ada, ada_token) = app.register(json!({"name": "ada", "leadId": "grace"})).await;
    let task = |title: &str, assignee: &str, priority: &str| json!({"title": title, "assigneeId": assignee, "priority": priority});
    let schema = id(&app.task(task("Design the schema", "ada", "P1")).await);
    let migration = id(&app.task(task("Write the migration", "ada", "P2")).await);
    let api = id(&app.task(task("Build the API on it", "grace", "P1")).await);
    let docs = id(&app.task(task("Review the API docs", "grace", "P2")).await);
    let bench = id(&app.task(task("Benchmark the endpoints", "grace", "P3")).await);
    app.admin(
        Method::POST,
        &format!("/api/tasks/{api}/dependencies"),
        Some(json!({"blockedBy": schema})),
    )
    .await
    .expect(201);
    // Ada started the schema before her client (re)started: the client must finish it, not claim anew.
    let claimed = app.admin(Method::POST, "/api/agents/ada/claim", None).await.expect(200);
    assert_eq!(id(&claimed), schema);
    let question = json!({
        "toAgentId": "grace",
        "type": "status_query",
        "subject": "How is it going?",
        "ackWithinMs": 600_000,
    });
    let question = app
        .admin(Method::POST, "/api/agents/ada/messages", Some(question))
        .await
        .expect(201);

    let (stop, stop_requested) = watch::channel(false);
    let mut ada_config = client(&app, "ada", Credentials::Token(ada_token));
    ada_config.stop = Some(stop_requested.clone());
    let mut grace_config = client(&app, "grace", Credentials::Token(grace_token));
    grace_config.peer = Some("ada".into());
    // Seed 7 fails three attempts: enough to see help asked and given, and few enough that grace's ten
    // messages a minute (the default limit, on a clock that does not move here) cover everything she sends.
    grace_config.failure_rate = 0.3;
    grace_config.seed = 7;
    grace_config.stop = Some(stop_requested);
    let all = [
        schema.clone(),
        migration.clone(),
        api.clone(),
        docs.clone(),
        bench.clone(),
    ];
    let run_all = async { tokio::join!(run(ada_config), run(grace_config), stop_when_done(&app, &all, stop, 2)) };
    let (ada_report, grace_report, ()) = tokio::time::timeout(TIMEOUT * 2, run_all).await.expect("clients stop");
    let ada_report: ClientReport = ada_report.expect("ada's client ran");
    let grace_report: ClientReport = grace_report.expect("grace's client ran");

    assert_eq!((ada_report.completed, ada_report.failed), (2, 0), "{ada_report}");
    assert_eq!(grace_report.completed, 3, "{grace_report}");
    assert!(grace_report.failed >= 1, "{grace_report}");
    assert_eq!(
        (ada_report.exit, grace_report.exit),
        (ExitReason::Stopped, ExitReason::Stopped)
    );

    // Every failure is on the board, and each was retried to done.
    let mut failures = 0;
    for task in &all {
        let task = get_task(&app, task).await;
        assert_eq!(task["status"], "done", "{task}");
        for failure in array(&task["failures"]) {
            assert_eq!(failure["errorKind"], "simulated_failure");
            assert_eq!(failure["agentId"], grace["id"]);
            failures += 1;
        }
        assert_eq!(
            int(&task["attempts"]),
            1 + array(&task["failures"]).len() as i64,
            "{task}"
        );
    }
    assert_eq!(failures, grace_report.failed);

    let to_grace = inbox(&app, "grace").await;
    let to_ada = inbox(&app, "ada").await;
    // The server told grace her blocked task was free; ada's client handed it over too, and told its lead
    // (grace) of the other task only, as grace had just heard about the schema.
    let unblocked = of_type(&to_grace, "blocker_resolved", "system");
    assert_eq!(unblocked.len(), 1, "{to_grace:?}");
    assert_eq!(unblocked[0]["taskId"], json!(api));
    assert!(unblocked[0]["readAt"].is_i64(), "grace read the notice");
    let handoffs = of_type(&to_grace, "handoff", "ada");
    assert_eq!(handoffs.len(), 1, "{to_grace:?}");
    assert_eq!(handoffs[0]["taskId"], json!(api));
    assert_eq!(handoffs[0]["relatedTaskIds"], json!([schema]));
    let updates = of_type(&to_grace, "task_update", "ada");
    assert_eq!(updates.len(), 1, "{to_grace:?}");
    assert_eq!(updates[0]["taskId"], json!(migration));
    // Grace keeps her peer informed of each task she finished.
    let updates: Vec<&Value> = of_type(&to_ada, "task_update", "grace");
    assert_eq!(updates.len(), 3, "{to_ada:?}");

    // Grace answered the question in its thread.
    let question = app
        .admin(Method::GET, &format!("/api/messages/{}", id(&question)), None)
        .await
        .expect(200);
    assert!(question["acknowledgedAt"].is_i64(), "{question}");
    let answers: Vec<&Value> = to_ada.iter().filter(|m| m["replyToId"] == question["id"]).collect();
    assert_eq!(answers.len(), 1, "{to_ada:?}");
    assert_eq!(answers[0]["fromAgentId"], grace["id"]);
    assert!(text(&answers[0]["body"]).contains("finished"), "{}", answers[0]);

    // Each failed attempt asked ada for help, wanting an acknowledgement; ada acknowledged each one with advice.
    let help = of_type(&to_ada, "help_request", "grace");
    assert_eq!(help.len() as u32, grace_report.failed, "{to_ada:?}");
    for request in help {
        assert!(request["ackDeadlineAt"].is_i64(), "{request}");
        assert!(request["acknowledgedAt"].is_i64(), "{request}");
        let replies: Vec<&Value> = to_grace.iter().filter(|m| m["replyToId"] == request["id"]).collect();
        assert_eq!(replies.len(), 1, "{request}");
        assert_eq!(replies[0]["fromAgentId"], ada["id"]);
        assert_eq!(replies[0]["taskId"], request["taskId"]);
    }
    assert_eq!(ada_report.replies, grace_report.failed);
    assert_eq!(grace_report.replies, 1);
    app.stop().await;
}

async fn a_client_registers_itself_with_the_admin_token(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.agent("grace").await;
    let mut config = client(&app, "hopper", Credentials::Admin(ADMIN_TOKEN.into()));
    config.specializations = vec!["go".into()];
    config.lead = Some("grace".into());
    config.idle_exit = Some(0);
    let report = run(config.clone()).await.expect("hopper ran");
    assert_eq!((report.exit, report.completed), (ExitReason::Idle, 0));
    let hopper = app.admin(Method::GET, "/api/agents/hopper", None).await.expect(200);
    assert_eq!(hopper["specializations"], json!(["go"]));
    assert_eq!(
        hopper["leadId"],
        app.admin(Method::GET, "/api/agents/grace", None).await.expect(200)["id"]
    );
    assert!(hopper["lastHeartbeatAt"].is_i64(), "the client woke: {hopper}");

    // Started again under the same name, it takes the agent over instead of failing, and works its task.
    app.task(json!({"title": "Port the CLI", "assigneeId": "hopper"})).await;
    config.max_tasks = Some(1);
    config.idle_exit = None;
    let report = run(config).await.expect("hopper ran again");
    assert_eq!((report.exit, report.completed), (ExitReason::MaxTasks, 1));
    let agents = app.admin(Method::GET, "/api/agents", None).await.expect(200);
    assert_eq!(array(&agents["items"]).len(), 2, "no second hopper");
    app.stop().await;
}

async fn a_wrong_token_is_a_clear_error(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.agent("ada").await;
    let result = run(client(&app, "ada", Credentials::Token("mc_not_a_token".into()))).await;
    let Err(error @ ClientError::Unauthorized(_)) = result else {
        panic!("expected a 401, got {result:?}");
    };
    assert!(error.to_string().contains("401"), "{error}");
    let mut config = client(&app, "ada", Credentials::Token("x".into()));
    config.poll_wait = Duration::from_millis(1500);
    let result = run(config).await;
    assert!(matches!(result, Err(ClientError::Config(_))), "{result:?}");
    app.stop().await;
}

on_both_backends!(
    two_clients_finish_a_project_together,
    a_client_registers_itself_with_the_admin_token,
    a_wrong_token_is_a_clear_error,
);
