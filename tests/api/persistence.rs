//! Persistence: everything the API shows survives a clean restart unchanged, and every acknowledged write
//! survives a crash (SIGKILL) of the real `mission-control serve` process.

use crate::common::sink::Sink;
use crate::common::*;
use crate::on_both_backends;
use reqwest::Method;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Everything a client can read, in several ways (small pages, filters, one by one).
async fn read_everything(app: &TestApp, task_ids: &[String]) -> BTreeMap<String, Value> {
    let mut seen = BTreeMap::new();
    let agents = all_items(app, "/api/agents", 2).await;
    let mut agent_reads = Vec::new();
    for agent in &agents {
        agent_reads.push(
            app.admin(Method::GET, &format!("/api/agents/{}", id(agent)), None)
                .await
                .expect(200),
        );
    }
    seen.insert("agents".to_string(), Value::from(agents));
    seen.insert("agents one by one".to_string(), Value::from(agent_reads));
    let tasks = all_items(app, "/api/tasks", 3).await;
    seen.insert("tasks".to_string(), Value::from(tasks.clone()));
    seen.insert(
        "tasks, one page".to_string(),
        Value::from(all_items(app, "/api/tasks", 100).await),
    );
    let mut details = Vec::new();
    let mut ids: Vec<String> = tasks.iter().map(id).collect();
    ids.extend(task_ids.iter().cloned());
    for task in ids {
        let reply = app.admin(Method::GET, &format!("/api/tasks/{task}"), None).await;
        details.push(json!({"id": task, "status": reply.status.as_u16(), "body": reply.body}));
    }
    seen.insert("task details".to_string(), Value::from(details));
    seen.insert(
        "activity".to_string(),
        Value::from(all_items(app, "/api/activity", 7).await),
    );
    for filtered in [
        "/api/tasks?status=blocked",
        "/api/tasks?status=in_progress",
        "/api/tasks?tag=flaky",
        "/api/tasks?priority=P0",
        "/api/tasks?missionId=m-1",
        "/api/agents?level=lead",
        "/api/agents?specialization=rust",
        "/api/agents?status=suspended",
        "/api/activity?kind=task_failed",
    ] {
        seen.insert(filtered.to_string(), Value::from(all_items(app, filtered, 100).await));
    }
    seen
}

async fn transition(app: &TestApp, task: &str, to: &str) -> Value {
    let body = json!({"to": to, "note": format!("to {to}")});
    app.admin(Method::POST, &format!("/api/tasks/{task}/transition"), Some(body))
        .await
        .expect(200)
}

/// Moves the manual clock on, so that timestamps differ from step to step.
fn step(app: &TestApp) {
    app.clock.advance_ms(1_500);
}

async fn restart_keeps_everything(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };

    // Agents: a lead, specialists with a lead, constraints, limits, a rotated token, a suspended and a deleted one.
    let (lena, lena_token) = app
        .register(json!({
            "name": "lena", "role": "lead engineer", "level": "lead", "specializations": ["planning", "review"],
            "constraints": {"hasInternet": true, "canRunGpu": true, "maxMemoryMb": 65536, "preferAsync": false},
            "maxConcurrentTasks": 10, "maxMinutesPerDay": 1440
        }))
        .await;
    step(&app);
    let (alice, alice_token) = app
        .register(json!({
            "name": "Alice", "role": "backend", "kind": "llm", "leadId": "lena", "specializations": ["rust", "sql"],
            "constraints": {"hasInternet": false, "canRunGpu": false, "maxMemoryMb": 2048, "preferAsync": true},
            "maxConcurrentTasks": 5, "maxMinutesPerDay": 600
        }))
        .await;
    assert_eq!(alice["name"], "alice");
    assert_eq!(alice["leadId"], lena["id"]);
    step(&app);
    let (bob, bob_old_token) = app
        .register(json!({"name": "bob", "level": "intern", "leadId": lena["id"], "specializations": ["docs"]}))
        .await;
    let (dave, dave_token) = app.agent("dave").await;
    let (carl, _) = app.agent("carl").await;
    step(&app);
    app.admin(Method::DELETE, &format!("/api/agents/{}", id(&carl)), None)
        .await
        .expect(200);
    app.admin(Method::PATCH, "/api/agents/dave", Some(json!({"status": "suspended"})))
        .await
        .expect(200);
    app.admin(
        Method::PATCH,
        "/api/agents/bob",
        Some(json!({"role": "writer", "specializations": ["docs", "rust"]})),
    )
    .await
    .expect(200);
    let rotated = app
        .admin(Method::POST, "/api/agents/bob/token/rotate", None)
        .await
        .expect(200);
    let bob_token = rotated["token"].as_str().expect("new token").to_string();
    assert_ne!(bob_token, bob_old_token);
    step(&app);

    // Tasks in every status, with a parent, tags, requirements, SLOs, failures, dependencies.
    let epic = app
        .task(json!({"title": "Epic", "missionId": "m-1", "pillarId": "p-eng", "slaTier": "normal", "tags": ["epic"]}))
        .await;
    let done = app
        .task(
            json!({"title": "Done work", "assigneeId": "alice", "parentId": epic["id"], "priority": "P0",
            "estimatedMinutes": 30, "missionId": "m-1"}),
        )
        .await;
    step(&app);
    let claim = app
        .call(Method::POST, "/api/agents/alice/claim", Some(&alice_token), None)
        .await
        .expect(200);
    assert_eq!(claim["id"], done["id"]);
    step(&app);
    let body = json!({"outcome": "done", "notes": "shipped", "actualMinutes": 25});
    let completed = app
        .call(
            Method::POST,
            &format!("/api/tasks/{}/complete", id(&done)),
            Some(&alice_token),
            Some(body),
        )
        .await
        .expect(200);
    assert_eq!(completed["status"], "done");

    let flaky = app
        .task(json!({"title": "Flaky", "description": "retries until it passes", "assigneeId": "bob",
            "tags": ["ci", "flaky"], "sloMs": 600000, "priority": "P1",
            "requirements": {"requiresGpu": true, "requiresInternet": true, "minMemoryMb": 8192, "capabilities": ["cuda"]}}))
        .await;
    step(&app);
    app.call(Method::POST, "/api/agents/bob/claim", Some(&bob_token), None)
        .await
        .expect(200);
    step(&app);
    let body = json!({"errorKind": "timeout", "message": "took too long"});
    let failed = app
        .call(
            Method::POST,
            &format!("/api/tasks/{}/fail", id(&flaky)),
            Some(&bob_token),
            Some(body),
        )
        .await
        .expect(200);
    assert_eq!(failed["status"], "ready");
    step(&app);
    let again = app
        .call(Method::POST, "/api/agents/bob/claim", Some(&bob_token), None)
        .await
        .expect(200);
    assert_eq!(again["id"], flaky["id"]);
    assert_eq!(again["attempts"], 2);

    let review = app
        .task(json!({"title": "Review me", "assigneeId": "alice", "slaTier": "urgent"}))
        .await;
    transition(&app, &id(&review), "in_progress").await;
    let body = json!({"outcome": "review", "notes": "please look"});
    let reviewed = app
        .admin(
            Method::POST,
            &format!("/api/tasks/{}/complete", id(&review)),
            Some(body),
        )
        .await
        .expect(200);
    assert_eq!(reviewed["status"], "review");
    step(&app);

    let blocker = app
        .task(json!({"title": "Blocker", "assigneeId": "alice", "status": "ready"}))
        .await;
    let blocked = app
        .task(json!({"title": "Blocked", "assigneeId": "bob", "tags": ["waiting"]}))
        .await;
    let path = format!("/api/tasks/{}/dependencies", id(&blocked));
    let detail = app
        .admin(Method::POST, &path, Some(json!({"blockedBy": blocker["id"]})))
        .await
        .expect(201);
    assert_eq!(detail["status"], "blocked");
    step(&app);

    let dropped = app.task(json!({"title": "Dropped"})).await;
    transition(&app, &id(&dropped), "cancelled").await;
    let someday = app
        .task(json!({"title": "Someday", "slaTier": "backlog", "estimatedMinutes": 120}))
        .await;
    let path = format!("/api/tasks/{}/dependencies", id(&someday));
    app.admin(Method::POST, &path, Some(json!({"blockedBy": dropped["id"]})))
        .await
        .expect(201);
    let path = format!("/api/tasks/{}/dependencies/{}", id(&someday), id(&dropped));
    let detail = app.admin(Method::DELETE, &path, None).await.expect(200);
    assert_eq!(
        detail["status"], "ready",
        "removing the last unfinished blocker releases the task"
    );
    transition(&app, &id(&someday), "backlog").await;
    let path = format!("/api/tasks/{}", id(&someday));
    app.admin(
        Method::PATCH,
        &path,
        Some(json!({"description": "one day", "tags": ["later"], "pillarId": "p-ops"})),
    )
    .await
    .expect(200);
    step(&app);

    let handover = app
        .task(json!({"title": "Handover", "assigneeId": "alice", "priority": "P3"}))
        .await;
    let path = format!("/api/tasks/{}/assign", id(&handover));
    app.admin(Method::POST, &path, Some(json!({"agentId": "bob"})))
        .await
        .expect(200);
    let gone = app.task(json!({"title": "Gone"})).await;
    app.admin(Method::DELETE, &format!("/api/tasks/{}", id(&gone)), None)
        .await
        .expect(200);
    let body = json!({"status": "active", "currentTaskId": review["id"]});
    app.call(
        Method::POST,
        "/api/agents/alice/heartbeat",
        Some(&alice_token),
        Some(body),
    )
    .await
    .expect(200);
    app.call(
        Method::POST,
        "/api/agents/lena/heartbeat",
        Some(&lena_token),
        Some(json!({"status": "idle"})),
    )
    .await
    .expect(200);
    step(&app);

    let task_ids: Vec<String> = [
        &epic, &done, &flaky, &review, &blocker, &blocked, &dropped, &someday, &handover, &gone,
    ]
    .iter()
    .map(|t| id(t))
    .collect();
    let before = read_everything(&app, &task_ids).await;

    // The state written is the varied one intended.
    let statuses: BTreeSet<String> = before["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["status"].as_str().expect("status").to_string())
        .collect();
    for status in [
        "backlog",
        "ready",
        "in_progress",
        "review",
        "done",
        "blocked",
        "cancelled",
    ] {
        assert!(statuses.contains(status), "no {status} task: {statuses:?}");
    }
    assert_eq!(before["tasks"].as_array().expect("tasks").len(), 9);
    assert_eq!(before["agents"].as_array().expect("agents").len(), 4);
    let kinds: BTreeSet<String> = before["activity"]
        .as_array()
        .expect("activity")
        .iter()
        .map(|a| a["kind"].as_str().expect("kind").to_string())
        .collect();
    for kind in [
        "agent_registered",
        "agent_updated",
        "agent_token_rotated",
        "agent_deleted",
        "task_created",
        "task_updated",
        "task_status_changed",
        "task_assigned",
        "task_claimed",
        "task_completed",
        "task_failed",
        "task_deleted",
        "dependency_added",
        "dependency_removed",
    ] {
        assert!(kinds.contains(kind), "no {kind} activity: {kinds:?}");
    }
    let flaky_before = app
        .admin(Method::GET, &format!("/api/tasks/{}", id(&flaky)), None)
        .await
        .expect(200);
    assert_eq!(flaky_before["failures"].as_array().expect("failures").len(), 1);
    assert_eq!(flaky_before["failures"][0]["errorKind"], "timeout");

    let app = app.restart().await;
    let after = read_everything(&app, &task_ids).await;
    for (what, value) in &before {
        assert_eq!(&after[what], value, "`{what}` differs after the restart");
    }
    assert_eq!(after.len(), before.len());

    // Tokens: the current ones work, the rotated one does not, the suspended agent's is still refused.
    let me = app
        .call(Method::GET, "/api/agents/alice", Some(&alice_token), None)
        .await
        .expect(200);
    assert_eq!(me["id"], alice["id"]);
    app.call(Method::GET, "/api/tasks", Some(&lena_token), None)
        .await
        .expect(200);
    app.call(Method::GET, "/api/agents/bob", Some(&bob_token), None)
        .await
        .expect(200);
    app.call(Method::GET, "/api/agents/bob", Some(&bob_old_token), None)
        .await
        .expect_error(401, "unauthorized");
    app.call(Method::GET, "/api/agents/dave", Some(&dave_token), None)
        .await
        .expect_error(403, "agent_suspended");
    assert_eq!(dave["name"], "dave");
    app.call(Method::GET, "/api/agents", Some("not-a-token"), None)
        .await
        .expect_error(401, "unauthorized");
    let bob_now = app
        .admin(Method::GET, &format!("/api/agents/{}", id(&bob)), None)
        .await
        .expect(200);
    assert_eq!(bob_now["role"], "writer");
    app.admin(Method::GET, &format!("/api/agents/{}", id(&carl)), None)
        .await
        .expect_error(404, "agent_not_found");

    // The blocked task still unblocks when its blocker completes (as its assignee, with her token).
    step(&app);
    let path = format!("/api/tasks/{}/transition", id(&blocker));
    app.call(
        Method::POST,
        &path,
        Some(&alice_token),
        Some(json!({"to": "in_progress"})),
    )
    .await
    .expect(200);
    let path = format!("/api/tasks/{}/complete", id(&blocker));
    let finished = app
        .call(
            Method::POST,
            &path,
            Some(&alice_token),
            Some(json!({"outcome": "done"})),
        )
        .await
        .expect(200);
    assert_eq!(finished["status"], "done");
    let detail = app
        .admin(Method::GET, &format!("/api/tasks/{}", id(&blocked)), None)
        .await
        .expect(200);
    assert_eq!(detail["status"], "ready", "{detail}");
    assert_eq!(detail["blockedBy"][0]["status"], "done", "{detail}");
    let path = format!("/api/activity?taskId={}&kind=task_unblocked", id(&blocked));
    let unblocked = all_items(&app, &path, 100).await;
    assert_eq!(unblocked.len(), 1, "{unblocked:?}");

    // New activity goes on top of the old: the feed before the restart is the tail of the feed now.
    let activity = all_items(&app, "/api/activity", 7).await;
    let old = before["activity"].as_array().expect("activity");
    assert!(activity.len() > old.len());
    assert_eq!(&activity[activity.len() - old.len()..], old.as_slice());
    // And the blocked task can be claimed by its assignee now.
    let claimed = app
        .call(Method::POST, "/api/agents/bob/claim", Some(&bob_token), None)
        .await;
    let claimed = claimed.expect(200);
    assert_eq!(claimed["id"], blocked["id"], "P2 before the P3 handover");
    assert_eq!(claimed["status"], "in_progress");
    app.stop().await;
}

/// A `mission-control serve` child process; killed (SIGKILL) and reaped when dropped.
struct ServerProcess {
    child: Child,
    base: String,
    stderr_path: std::path::PathBuf,
}

impl ServerProcess {
    /// Starts the binary on `db` and waits (at most 60 s) for its banner, which must be the first stdout line.
    fn start(db: &TestDb, run: u32) -> ServerProcess {
        Self::start_with(db, run, &[])
    }

    /// Like [`ServerProcess::start`], with these environment variables set.
    fn start_with(db: &TestDb, run: u32, env: &[(&str, &str)]) -> ServerProcess {
        let stderr_path = db.dir.path().join(format!("serve-{run}.stderr"));
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_mission-control"));
        command
            .arg("serve")
            .env("MC_BIND", "127.0.0.1:0")
            .env("MC_DATABASE_URL", &db.url)
            .env("MC_DATA_DIR", db.dir.path())
            .env("MC_ADMIN_TOKEN", ADMIN_TOKEN)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        for var in [
            "MC_BODY_LIMIT",
            "MC_WORKERS",
            "MC_TICK_MS",
            "MC_HEARTBEAT_TIMEOUT",
            "MC_SQLITE_SYNCHRONOUS",
            "MC_DB_POOL_SIZE",
            "MC_ESCALATION_MAX_DEPTH",
            "MC_ESCALATION_WEBHOOK_URL",
            "MC_OUTBOX_DISPATCH",
            "MC_OUTBOX_MAX_ATTEMPTS",
        ] {
            command.env_remove(var);
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("spawn mission-control serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut process = ServerProcess {
            child,
            base: String::new(),
            stderr_path,
        };
        let (tx, rx) = mpsc::channel::<String>();
        // Drains stdout to its end, handing each line over while anyone listens: the pipe must neither fill up
        // nor close early (the server's later `println!`s would then fail).
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let first = match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("no banner within 60 s; stderr:\n{}", process.stderr())
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = process.child.wait().expect("wait");
                panic!(
                    "the server exited ({status}) before its banner; stderr:\n{}",
                    process.stderr()
                )
            }
        };
        const MARK: &str = " listening on http://";
        assert!(first.starts_with("Mission Control "), "unexpected first line: {first}");
        let address = first
            .split_once(MARK)
            .map(|(_, address)| address.trim().to_string())
            .unwrap_or_else(|| panic!("the first stdout line is not the banner: {first}"));
        assert!(address.starts_with("127.0.0.1:"), "{first}");
        process.base = format!("http://{address}");
        process
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .expect("http client")
}

/// Every item of a list endpoint of a server process.
async fn all_items_of(client: &reqwest::Client, server: &ServerProcess, path: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = format!("{}{}", server.base, page_url(path, 100, cursor.as_deref()));
        let res = client.get(&url).bearer_auth(ADMIN_TOKEN).send().await;
        let res = res.unwrap_or_else(|e| panic!("GET {url}: {e}\nstderr:\n{}", server.stderr()));
        assert_eq!(res.status().as_u16(), 200, "GET {url}");
        let page: Value = res.json().await.expect("list body");
        items.extend(page["items"].as_array().expect("items array").iter().cloned());
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(items.len() < 10_000, "pagination of {path} does not end");
    }
    items
}

const CRASH_TASKS: usize = 200;
const KILL_AFTER: usize = 100;
const WRITERS: usize = 8;

#[derive(Default)]
struct Outcome {
    /// Titles of the tasks answered 201.
    acknowledged_titles: Vec<String>,
    /// Ids of the tasks answered 201 whose body was read.
    acknowledged_ids: Vec<String>,
    /// Titles of every task a request was sent for.
    sent_titles: BTreeSet<String>,
    /// Anything other than 201 seen before the kill.
    unexpected: Vec<String>,
}

async fn crash_keeps_acknowledged_writes(backend: Backend) {
    let Some(db) = TestDb::new(backend) else {
        return;
    };
    let server = Rc::new(RefCell::new(ServerProcess::start(&db, 1)));
    let base = server.borrow().base.clone();
    let client = http_client();
    let outcome = Rc::new(RefCell::new(Outcome::default()));
    let next = Rc::new(Cell::new(0usize));
    let killed = Rc::new(Cell::new(false));

    let mut writers = Vec::new();
    for _ in 0..WRITERS {
        let (server, client, outcome, next, killed) = (
            server.clone(),
            client.clone(),
            outcome.clone(),
            next.clone(),
            killed.clone(),
        );
        let url = format!("{base}/api/tasks");
        writers.push(actix_rt::spawn(async move {
            loop {
                let n = next.get();
                if n >= CRASH_TASKS || killed.get() {
                    break;
                }
                next.set(n + 1);
                let title = format!("crash task {n:03}");
                outcome.borrow_mut().sent_titles.insert(title.clone());
                let body = json!({"title": title, "tags": ["crash"], "description": "x".repeat(200)});
                let sent = client.post(&url).bearer_auth(ADMIN_TOKEN).json(&body).send().await;
                let res = match sent {
                    Ok(res) => res,
                    Err(err) => {
                        if !killed.get() {
                            outcome.borrow_mut().unexpected.push(format!("{title}: {err}"));
                        }
                        break;
                    }
                };
                if res.status().as_u16() != 201 {
                    if !killed.get() {
                        outcome
                            .borrow_mut()
                            .unexpected
                            .push(format!("{title}: status {}", res.status()));
                    }
                    break;
                }
                outcome.borrow_mut().acknowledged_titles.push(title.clone());
                match res.json::<Value>().await {
                    Ok(task) => {
                        assert_eq!(task["title"], title.as_str());
                        outcome.borrow_mut().acknowledged_ids.push(id(&task));
                    }
                    Err(err) => {
                        if !killed.get() {
                            outcome.borrow_mut().unexpected.push(format!("{title}: body: {err}"));
                        }
                        break;
                    }
                }
                let acknowledged = outcome.borrow().acknowledged_ids.len();
                if acknowledged >= KILL_AFTER && !killed.get() {
                    // SIGKILL while the other writers' requests are in flight.
                    killed.set(true);
                    server.borrow_mut().kill();
                }
            }
        }));
    }
    let all_done = async {
        for writer in writers {
            writer.await.expect("writer task");
        }
    };
    actix_rt::time::timeout(Duration::from_secs(120), all_done)
        .await
        .expect("the writers finish within 120 s");
    let stderr = server.borrow().stderr();
    drop(server);

    let outcome = Rc::try_unwrap(outcome).ok().expect("writers are done").into_inner();
    assert!(
        outcome.unexpected.is_empty(),
        "failures before the kill: {:?}\nstderr:\n{stderr}",
        outcome.unexpected
    );
    assert!(killed.get(), "the server was never killed");
    assert!(outcome.acknowledged_ids.len() >= KILL_AFTER);
    assert!(
        outcome.acknowledged_titles.len() < CRASH_TASKS,
        "every write finished before the kill; nothing was in flight"
    );

    // Restart on the same database: every acknowledged task is there, each with its `task_created` row.
    let server = ServerProcess::start(&db, 2);
    let client = http_client();
    let tasks = all_items_of(&client, &server, "/api/tasks").await;
    let listed: BTreeMap<String, String> = tasks
        .iter()
        .map(|t| (id(t), t["title"].as_str().expect("title").to_string()))
        .collect();
    assert_eq!(listed.len(), tasks.len(), "a task is listed twice");
    for task_id in &outcome.acknowledged_ids {
        assert!(
            listed.contains_key(task_id),
            "acknowledged task {task_id} is missing after the crash"
        );
    }
    let titles: BTreeSet<&String> = listed.values().collect();
    for title in &outcome.acknowledged_titles {
        assert!(
            titles.contains(title),
            "acknowledged task '{title}' is missing after the crash"
        );
    }
    for task in &tasks {
        let title = task["title"].as_str().expect("title");
        assert!(outcome.sent_titles.contains(title), "a task nobody sent: {task}");
        assert_eq!(task["tags"], json!(["crash"]), "{task}");
        assert_eq!(task["description"], "x".repeat(200), "{task}");
    }
    let created = all_items_of(&client, &server, "/api/activity?kind=task_created").await;
    let created_for: BTreeSet<String> = created
        .iter()
        .map(|a| a["taskId"].as_str().expect("taskId").to_string())
        .collect();
    let listed_ids: BTreeSet<String> = listed.keys().cloned().collect();
    assert_eq!(
        created_for, listed_ids,
        "tasks and their task_created activity differ after the crash"
    );

    // The restarted server takes writes again.
    let res = client
        .post(format!("{}/api/tasks", server.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"title": "after the crash"}))
        .send()
        .await
        .expect("create after restart");
    assert_eq!(res.status().as_u16(), 201);
    drop(server);
}

/// One request to a server process, as the admin: the status and the JSON body.
async fn admin_call(
    client: &reqwest::Client,
    server: &ServerProcess,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client
        .request(method, format!("{}{path}", server.base))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}\nstderr:\n{}", server.stderr()));
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Starts `task` and records one failure of it, as the admin: an `attempts_exceeded: 1` rule fires on that event.
async fn start_and_fail(client: &reqwest::Client, server: &ServerProcess, task: &str) {
    let transition = format!("/api/tasks/{task}/transition");
    let start = json!({"to": "in_progress"});
    assert_eq!(
        admin_call(client, server, Method::POST, &transition, Some(start))
            .await
            .0,
        200
    );
    let failure = json!({"errorKind": "deploy", "message": "timed out"});
    let fail = format!("/api/tasks/{task}/fail");
    assert_eq!(
        admin_call(client, server, Method::POST, &fail, Some(failure)).await.0,
        200
    );
}

/// An escalation rule, its firing and its ladder survive SIGKILL: the rule created (201) and changed (200),
/// the firing caused by a task event (seen in the history before the kill), and the rule's cooldown (a dry
/// run after the restart is still held back at level 1).
async fn crash_keeps_escalation_rules_and_ladders(backend: Backend) {
    let Some(db) = TestDb::new(backend) else { return };
    let client = http_client();
    let server = ServerProcess::start(&db, 1);
    let rule = json!({"name": "failed once", "priority": 99, "triggers": [{"kind": "attempts_exceeded", "attempts": 1}],
        "actions": [{"kind": "webhook"}]});
    let (status, rule) = admin_call(&client, &server, Method::POST, "/api/escalation-rules", Some(rule)).await;
    assert_eq!(status, 201, "{rule}");
    let path = format!("/api/escalation-rules/{}", id(&rule));
    let patch = json!({"description": "one failure is enough"});
    assert_eq!(
        admin_call(&client, &server, Method::PATCH, &path, Some(patch)).await.0,
        200
    );
    let agent = json!({"name": "bob"});
    assert_eq!(
        admin_call(&client, &server, Method::POST, "/api/agents", Some(agent))
            .await
            .0,
        201
    );
    let task = json!({"title": "Flaky deploy", "assigneeId": "bob"});
    let (status, task) = admin_call(&client, &server, Method::POST, "/api/tasks", Some(task)).await;
    assert_eq!(status, 201, "{task}");
    let task = id(&task);
    start_and_fail(&client, &server, &task).await;
    let before = all_items_of(&client, &server, &format!("/api/escalations?taskId={task}")).await;
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0]["ruleName"], "failed once");
    assert_eq!(before[0]["actions"][0]["status"], "skipped", "{before:?}");

    let mut server = server;
    server.kill();
    let server = ServerProcess::start(&db, 2);
    let after = all_items_of(&client, &server, &format!("/api/escalations?taskId={task}")).await;
    assert_eq!(after, before, "the history after the crash");
    let (status, kept) = admin_call(&client, &server, Method::GET, &path, None).await;
    assert_eq!(status, 200, "{kept}");
    assert_eq!(kept["description"], "one failure is enough");
    let evaluate = format!("/api/escalation-rules/evaluate/{task}?dryRun=true");
    let (status, dry) = admin_call(&client, &server, Method::POST, &evaluate, None).await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["matching"][0]["openLevel"], 1, "{dry}");
    assert_eq!(dry["fires"], Value::Null, "the cooldown survived the crash: {dry}");
    assert!(
        dry["heldBack"].as_str().is_some_and(|h| h.contains("cooling down")),
        "{dry}"
    );
    drop(server);
}

/// Polls `path` (every item) until `done` holds, for at most 30 s of real time: the deliveries of a server
/// process happen on its own timer.
async fn items_once(
    client: &reqwest::Client,
    server: &ServerProcess,
    path: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let items = all_items_of(client, server, path).await;
        if done(&items) || Instant::now() > deadline {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The alert and the webhook a firing writes are outbox rows in the firing's commit: a server killed
/// (SIGKILL) after that commit and before any delivery (this one does not dispatch) delivers both after its
/// restart, the alert once and the webhook with the row's id as its `Idempotency-Key`.
async fn crash_between_a_firing_and_its_deliveries_loses_nothing(backend: Backend) {
    let Some(db) = TestDb::new(backend) else { return };
    let sink = Sink::start(200).await;
    let client = http_client();
    let server = ServerProcess::start_with(&db, 1, &[("MC_OUTBOX_DISPATCH", "false")]);
    for agent in [
        json!({"name": "boss", "level": "lead"}),
        json!({"name": "bob", "leadId": "boss"}),
    ] {
        let (status, body) = admin_call(&client, &server, Method::POST, "/api/agents", Some(agent)).await;
        assert_eq!(status, 201, "{body}");
    }
    let rule = json!({"name": "failed once", "priority": 99, "triggers": [{"kind": "attempts_exceeded", "attempts": 1}],
        "actions": [{"kind": "escalate", "to": "lead"}, {"kind": "webhook", "url": sink.url}]});
    let (status, _) = admin_call(&client, &server, Method::POST, "/api/escalation-rules", Some(rule)).await;
    assert_eq!(status, 201);
    let (_, task) = admin_call(
        &client,
        &server,
        Method::POST,
        "/api/tasks",
        Some(json!({"title": "Flaky", "assigneeId": "bob"})),
    )
    .await;
    let task = id(&task);
    start_and_fail(&client, &server, &task).await;
    let history = format!("/api/escalations?taskId={task}");
    let fired = items_once(&client, &server, &history, |e| !e.is_empty()).await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    let actions = array(&fired[0]["actions"]);
    assert_eq!(actions.len(), 2, "{fired:?}");
    assert!(
        actions.iter().all(|a| a["status"] == "pending"),
        "nothing delivered yet: {actions:?}"
    );
    let pending = all_items_of(&client, &server, "/api/outbox?status=pending").await;
    let (alert_row, hook_row) = (text(&actions[0]["outboxId"]), text(&actions[1]["outboxId"]));
    for row in [&alert_row, &hook_row] {
        assert!(pending.iter().any(|p| &id(p) == row), "{row} pending: {pending:?}");
    }
    assert!(sink.hits().is_empty());
    let mut server = server;
    server.kill();

    let server = ServerProcess::start(&db, 2);
    let delivered = items_once(&client, &server, "/api/outbox?status=delivered", |rows| {
        [&alert_row, &hook_row]
            .iter()
            .all(|row| rows.iter().any(|r| &&id(r) == row))
    })
    .await;
    assert!(
        [&alert_row, &hook_row]
            .iter()
            .all(|row| delivered.iter().any(|r| &&id(r) == row)),
        "both resumed and delivered: {delivered:?}\nstderr:\n{}",
        server.stderr()
    );
    let boss_inbox = all_items_of(&client, &server, "/api/agents/boss/messages").await;
    let alerts: Vec<&Value> = boss_inbox.iter().filter(|m| m["type"] == "alert").collect();
    assert_eq!(alerts.len(), 1, "one alert: {boss_inbox:?}");
    assert_eq!(alerts[0]["taskId"], task.as_str());
    let hits = sink.hits();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].headers.get("idempotency-key"), Some(&hook_row));
    let after = all_items_of(&client, &server, &history).await;
    let statuses: Vec<Value> = array(&after[0]["actions"])
        .iter()
        .map(|a| a["status"].clone())
        .collect();
    assert_eq!(statuses, [json!("executed"), json!("executed")], "{after:?}");
    drop(server);
    sink.stop().await;
}

/// A crash after an alert reached the inbox but before its row was marked delivered (simulated by putting
/// the row back to pending, as the crash would have left it): the restart finds the message by the row's
/// idempotency key and makes no second one.
async fn a_redelivery_after_a_crash_makes_no_second_message(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    disable_escalation_rules(&app).await;
    app.register(json!({"name": "boss", "level": "lead"})).await;
    app.register(json!({"name": "bob", "leadId": "boss"})).await;
    let rule = json!({"name": "failed once", "triggers": [{"kind": "attempts_exceeded", "attempts": 1}],
        "actions": [{"kind": "escalate", "to": "lead"}]});
    app.admin(Method::POST, "/api/escalation-rules", Some(rule))
        .await
        .expect(201);
    let task = id(&app.task(json!({"title": "Flaky", "assigneeId": "bob"})).await);
    move_to(&app, &task, "in_progress").await.expect(200);
    let failure = json!({"errorKind": "deploy", "message": "timed out"});
    app.admin(Method::POST, &format!("/api/tasks/{task}/fail"), Some(failure))
        .await
        .expect(200);
    app.settle().await;
    let fired = all_items(&app, &format!("/api/escalations?taskId={task}"), 100).await;
    let row = text(&fired[0]["actions"][0]["outboxId"]);
    let alerts = |items: Vec<Value>| items.into_iter().filter(|m| m["type"] == "alert").count();
    assert_eq!(alerts(all_items(&app, "/api/agents/boss/messages", 100).await), 1);
    {
        use diesel::prelude::*;
        use mission_control::store::schema::outbox;
        let store = app.runtime_store();
        let mut conn = store.connection().expect("a connection");
        let reset = diesel::update(outbox::table.find(&row))
            .set((
                outbox::delivered_at.eq(None::<i64>),
                outbox::attempts.eq(0),
                outbox::result.eq(None::<String>),
            ))
            .execute(&mut *conn)
            .expect("row put back to pending");
        assert_eq!(reset, 1);
    }
    let app = app.restart().await;
    app.settle().await;
    let again = app
        .admin(Method::GET, &format!("/api/outbox/{row}"), None)
        .await
        .expect(200);
    assert_eq!(again["attempts"], 1, "{again}");
    assert!(again["deliveredAt"].is_i64(), "{again}");
    assert_eq!(
        alerts(all_items(&app, "/api/agents/boss/messages", 100).await),
        1,
        "no second alert"
    );
    app.stop().await;
}

on_both_backends!(
    restart_keeps_everything,
    crash_keeps_acknowledged_writes,
    crash_keeps_escalation_rules_and_ladders,
    crash_between_a_firing_and_its_deliveries_loses_nothing,
    a_redelivery_after_a_crash_makes_no_second_message
);
