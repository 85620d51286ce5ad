//! Messaging under load: ten agents exchange 2 000 messages concurrently and every one lands once, in the
//! right inbox, in each sender's order, and stays there across a restart; and every message the real
//! `mission-control serve` process acknowledged with a 201 survives a SIGKILL in the middle of the stream.

use crate::common::*;
use crate::on_both_backends;
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const AGENTS: usize = 10;
const PER_SENDER: usize = 200;

fn agent_name(n: usize) -> String {
    format!("a{n}")
}

/// The body of a load message: who sent it, its place in the sender's sequence, who it is meant for.
fn load_body(sender: usize, seq: usize, to: usize) -> String {
    format!("from={} seq={seq} to={}", agent_name(sender), agent_name(to))
}

/// `(sender name, sequence number, recipient name)` from a load message body.
#[track_caller]
fn parse_body(body: &str) -> (String, usize, String) {
    let mut sender = None;
    let mut seq = None;
    let mut to = None;
    for part in body.split(' ') {
        match part.split_once('=') {
            Some(("from", v)) => sender = Some(v.to_string()),
            Some(("seq", v)) => seq = v.parse::<usize>().ok(),
            Some(("to", v)) => to = Some(v.to_string()),
            _ => panic!("unexpected body: {body}"),
        }
    }
    match (sender, seq, to) {
        (Some(sender), Some(seq), Some(to)) => (sender, seq, to),
        _ => panic!("incomplete body: {body}"),
    }
}

/// One registered agent of the load test.
struct LoadAgent {
    name: String,
    id: String,
    token: String,
}

/// What the sender was told about one message: its 201 body.
#[derive(Debug, Clone, PartialEq)]
struct Sent {
    sender: usize,
    seq: usize,
    to: usize,
}

/// Reads every inbox in full (pages of 100) and checks it against what was sent; returns the inboxes.
async fn check_inboxes(
    app: &TestApp,
    agents: &[LoadAgent],
    sent: &BTreeMap<String, Sent>,
    when: &str,
) -> BTreeMap<String, Vec<Value>> {
    let by_name: BTreeMap<&str, usize> = agents.iter().enumerate().map(|(i, a)| (a.name.as_str(), i)).collect();
    let mut inboxes = BTreeMap::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut total = 0;
    for (r, recipient) in agents.iter().enumerate() {
        let path = format!("/api/agents/{}/messages", recipient.name);
        let items = all_items(app, &path, 100).await;
        total += items.len();
        let expected = sent.values().filter(|s| s.to == r).count();
        assert_eq!(items.len(), expected, "{when}: size of {}'s inbox", recipient.name);
        let head = app.admin(Method::GET, &path, None).await.expect(200);
        assert_eq!(
            int(&head["unreadCount"]),
            expected as i64,
            "{when}: {}'s unreadCount",
            recipient.name
        );
        // Newest first, by id.
        let ids: Vec<String> = items.iter().map(id).collect();
        for pair in ids.windows(2) {
            assert!(
                pair[0] > pair[1],
                "{when}: {}'s inbox is not newest first",
                recipient.name
            );
        }
        // Oldest first: each sender's sequence numbers must grow.
        let mut last_seq: BTreeMap<String, usize> = BTreeMap::new();
        for message in items.iter().rev() {
            let mid = id(message);
            assert!(seen.insert(mid.clone()), "{when}: message {mid} listed twice");
            let (from, seq, to) = parse_body(&text(&message["body"]));
            assert_eq!(to, recipient.name, "{when}: in the wrong inbox: {message}");
            assert_eq!(message["toAgentId"], recipient.id.as_str(), "{when}: {message}");
            assert_eq!(message["toAgentName"], recipient.name.as_str(), "{when}: {message}");
            assert_eq!(message["fromAgentName"], from.as_str(), "{when}: {message}");
            let sender = by_name[from.as_str()];
            assert_eq!(message["fromAgentId"], agents[sender].id.as_str(), "{when}: {message}");
            assert_eq!(
                sent.get(&mid),
                Some(&Sent { sender, seq, to: r }),
                "{when}: {mid} is not what its sender was told"
            );
            if let Some(previous) = last_seq.insert(from.clone(), seq) {
                assert!(
                    previous < seq,
                    "{when}: {from}'s messages to {} out of order: {previous} then {seq}",
                    recipient.name
                );
            }
        }
        inboxes.insert(recipient.name.clone(), items);
    }
    assert_eq!(total, AGENTS * PER_SENDER, "{when}: messages across the inboxes");
    let all_sent: BTreeSet<String> = sent.keys().cloned().collect();
    assert_eq!(
        seen, all_sent,
        "{when}: the inboxes hold other messages than those sent"
    );
    inboxes
}

async fn ten_agents_exchange_two_thousand_messages(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.messaging.rate_per_min = 0).await else {
        return;
    };
    let mut agents = Vec::new();
    for n in 0..AGENTS {
        let (agent, token) = app.agent(&agent_name(n)).await;
        agents.push(LoadAgent {
            name: agent_name(n),
            id: id(&agent),
            token,
        });
    }

    let started = Instant::now();
    let senders = (0..AGENTS).map(|s| {
        let (app, agents) = (&app, &agents);
        async move {
            let others: Vec<usize> = (0..AGENTS).filter(|&r| r != s).collect();
            let path = format!("/api/agents/{}/messages", agents[s].name);
            let mut sent = Vec::with_capacity(PER_SENDER);
            for seq in 0..PER_SENDER {
                let to = others[seq % others.len()];
                let body = json!({"toAgentId": agents[to].name, "type": "coordination",
                    "subject": format!("load {seq}"), "body": load_body(s, seq, to)});
                let reply = app.call(Method::POST, &path, Some(&agents[s].token), Some(body)).await;
                let message = reply.expect(201);
                assert_eq!(message["toAgentId"], agents[to].id.as_str(), "{message}");
                sent.push((id(&message), Sent { sender: s, seq, to }));
            }
            sent
        }
    });
    let results = join_all(senders).await;
    let send_time = started.elapsed();
    let mut sent: BTreeMap<String, Sent> = BTreeMap::new();
    for (id, message) in results.into_iter().flatten() {
        assert!(sent.insert(id.clone(), message).is_none(), "id {id} given to two sends");
    }
    assert_eq!(sent.len(), AGENTS * PER_SENDER);

    let check_started = Instant::now();
    let before = check_inboxes(&app, &agents, &sent, "before the restart").await;
    for (s, agent) in agents.iter().enumerate() {
        let path = format!("/api/agents/{}/messages/sent", agent.name);
        let listed: BTreeSet<String> = all_items(&app, &path, 100).await.iter().map(id).collect();
        let expected: BTreeSet<String> = sent
            .iter()
            .filter(|(_, m)| m.sender == s)
            .map(|(id, _)| id.clone())
            .collect();
        assert_eq!(listed, expected, "{}'s sent list", agent.name);
    }
    let check_time = check_started.elapsed();

    let restart_started = Instant::now();
    let app = app.restart().await;
    let after = check_inboxes(&app, &agents, &sent, "after the restart").await;
    assert_eq!(after, before, "the inboxes differ after the restart");
    eprintln!(
        "messaging load ({backend:?}): {} messages sent in {send_time:?} ({:.0}/s), checked in {check_time:?}, \
         restart and check in {:?}",
        sent.len(),
        sent.len() as f64 / send_time.as_secs_f64(),
        restart_started.elapsed()
    );
    app.stop().await;
}

/// A `mission-control serve` child process; killed (SIGKILL) and reaped when dropped.
struct ServerProcess {
    child: Child,
    base: String,
    stderr_path: std::path::PathBuf,
}

impl ServerProcess {
    /// Starts the binary on `db`, without a send-rate limit, and waits (at most 60 s) for its banner.
    fn start(db: &TestDb, run: u32) -> ServerProcess {
        let stderr_path = db.dir.path().join(format!("serve-messages-{run}.stderr"));
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_mission-control"));
        command
            .arg("serve")
            .env("MC_BIND", "127.0.0.1:0")
            .env("MC_DATABASE_URL", &db.url)
            .env("MC_DATA_DIR", db.dir.path())
            .env("MC_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("MC_MESSAGE_RATE_PER_MIN", "0")
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
            "MC_MESSAGE_TTL",
        ] {
            command.env_remove(var);
        }
        let mut child = command.spawn().expect("spawn mission-control serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut process = ServerProcess {
            child,
            base: String::new(),
            stderr_path,
        };
        let (tx, rx) = mpsc::channel::<String>();
        // Drains stdout to its end: the pipe must neither fill up nor close early.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let first = match rx.recv_timeout(Duration::from_secs(60)) {
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
        .build()
        .expect("http client")
}

/// A JSON request as the admin to a server process; answers (status, body).
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

/// Every item of a list endpoint of a server process.
async fn all_items_of(client: &reqwest::Client, server: &ServerProcess, path: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = page_url(path, 100, cursor.as_deref());
        let (status, page) = admin_call(client, server, Method::GET, &url, None).await;
        assert_eq!(status, 200, "GET {url}: {page}");
        items.extend(array(&page["items"]));
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(items.len() < 10_000, "pagination of {path} does not end");
    }
    items
}

const CRASH_AGENTS: usize = 5;
const CRASH_MESSAGES: usize = 400;
const CRASH_KILL_AFTER: usize = 150;

/// A message the server answered 201 for.
#[derive(Debug, Clone)]
struct Acknowledged {
    id: String,
    from: String,
    to: String,
    body: String,
}

#[derive(Default)]
struct CrashOutcome {
    acknowledged: Vec<Acknowledged>,
    /// Bodies of every message a request was sent for.
    attempted: BTreeSet<String>,
    /// Anything other than a 201 seen before the kill.
    unexpected: Vec<String>,
}

async fn crash_keeps_acknowledged_messages(backend: Backend) {
    let Some(db) = TestDb::new(backend) else { return };
    let first = ServerProcess::start(&db, 1);
    let client = http_client();
    let mut agents: Vec<(String, String, String)> = Vec::new();
    for n in 0..CRASH_AGENTS {
        let name = format!("c{n}");
        let (status, reply) = admin_call(
            &client,
            &first,
            Method::POST,
            "/api/agents",
            Some(json!({"name": name})),
        )
        .await;
        assert_eq!(status, 201, "{reply}");
        agents.push((name, id(&reply["agent"]), text(&reply["token"])));
    }
    let base = first.base.clone();
    let server = Rc::new(RefCell::new(first));
    let outcome = Rc::new(RefCell::new(CrashOutcome::default()));
    let next = Rc::new(Cell::new(0usize));
    let killed = Rc::new(Cell::new(false));
    let agents = Rc::new(agents);

    let mut writers = Vec::new();
    for w in 0..CRASH_AGENTS {
        let (server, client, outcome, next, killed, agents) = (
            server.clone(),
            client.clone(),
            outcome.clone(),
            next.clone(),
            killed.clone(),
            agents.clone(),
        );
        let (from, _, token) = agents[w].clone();
        let url = format!("{base}/api/agents/{from}/messages");
        writers.push(actix_rt::spawn(async move {
            loop {
                let n = next.get();
                if n >= CRASH_MESSAGES || killed.get() {
                    break;
                }
                next.set(n + 1);
                let to = agents[(w + 1 + n % (CRASH_AGENTS - 1)) % CRASH_AGENTS].0.clone();
                let body = format!("crash message {n:04} from {from} to {to}");
                outcome.borrow_mut().attempted.insert(body.clone());
                let draft = json!({"toAgentId": to, "type": "task_update", "subject": format!("crash {n}"),
                    "body": body, "ackWithinMs": 3_600_000});
                let res = match client.post(&url).bearer_auth(&token).json(&draft).send().await {
                    Ok(res) => res,
                    Err(err) => {
                        if !killed.get() {
                            outcome.borrow_mut().unexpected.push(format!("{body}: {err}"));
                        }
                        break;
                    }
                };
                if res.status().as_u16() != 201 {
                    if !killed.get() {
                        let status = res.status();
                        let text = res.text().await.unwrap_or_default();
                        outcome
                            .borrow_mut()
                            .unexpected
                            .push(format!("{body}: status {status}: {text}"));
                    }
                    break;
                }
                let message = match res.json::<Value>().await {
                    Ok(message) => message,
                    Err(err) => {
                        if !killed.get() {
                            outcome.borrow_mut().unexpected.push(format!("{body}: body: {err}"));
                        }
                        break;
                    }
                };
                assert_eq!(message["body"], body.as_str());
                outcome.borrow_mut().acknowledged.push(Acknowledged {
                    id: id(&message),
                    from: from.clone(),
                    to: to.clone(),
                    body,
                });
                let count = outcome.borrow().acknowledged.len();
                if count >= CRASH_KILL_AFTER && !killed.get() {
                    // SIGKILL while the other writers' sends are in flight.
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
    assert!(outcome.acknowledged.len() >= CRASH_KILL_AFTER);
    assert!(
        outcome.acknowledged.len() < CRASH_MESSAGES,
        "every send finished before the kill; nothing was in flight"
    );

    // Restart on the same database: every acknowledged message is in its recipient's inbox, unchanged.
    let server = ServerProcess::start(&db, 2);
    let client = http_client();
    let mut stored: BTreeMap<String, Value> = BTreeMap::new();
    for (name, agent_id, _) in agents.iter() {
        let inbox = all_items_of(&client, &server, &format!("/api/agents/{name}/messages")).await;
        for message in inbox {
            assert_eq!(message["toAgentId"], agent_id.as_str(), "{message}");
            assert_eq!(message["toAgentName"], name.as_str(), "{message}");
            let body = text(&message["body"]);
            assert!(body.ends_with(&format!(" to {name}")), "in the wrong inbox: {message}");
            assert!(outcome.attempted.contains(&body), "a message nobody sent: {message}");
            assert!(
                stored.insert(id(&message), message.clone()).is_none(),
                "listed twice: {message}"
            );
        }
    }
    for sent in &outcome.acknowledged {
        let message = stored
            .get(&sent.id)
            .unwrap_or_else(|| panic!("acknowledged message {sent:?} is missing after the crash"));
        assert_eq!(message["body"], sent.body.as_str(), "{message}");
        assert_eq!(message["fromAgentName"], sent.from.as_str(), "{message}");
        assert_eq!(message["toAgentName"], sent.to.as_str(), "{message}");
        assert_eq!(message["readAt"], Value::Null, "{message}");
        assert!(int(&message["ackDeadlineAt"]) > int(&message["createdAt"]), "{message}");
    }
    assert!(stored.len() <= outcome.attempted.len());
    // Each stored message was committed with its message_sent row, and no row lacks its message.
    let rows = all_items_of(&client, &server, "/api/activity?kind=message_sent").await;
    let logged: BTreeSet<String> = rows.iter().map(|r| text(&r["after"]["messageId"])).collect();
    assert_eq!(logged.len(), rows.len(), "a message_sent row is repeated");
    let stored_ids: BTreeSet<String> = stored.keys().cloned().collect();
    assert_eq!(
        logged, stored_ids,
        "messages and their message_sent activity differ after the crash"
    );

    // The restarted server takes messages again.
    let (from, to) = (&agents[0], &agents[1]);
    let res = client
        .post(format!("{}/api/agents/{}/messages", server.base, from.0))
        .bearer_auth(&from.2)
        .json(&json!({"toAgentId": to.0, "type": "coordination", "subject": "after the crash"}))
        .send()
        .await
        .expect("send after restart");
    assert_eq!(res.status().as_u16(), 201);
    eprintln!(
        "messaging crash ({backend:?}): {} of {} attempted sends acknowledged before the kill, {} stored",
        outcome.acknowledged.len(),
        outcome.attempted.len(),
        stored.len()
    );
    drop(server);
}

on_both_backends!(
    ten_agents_exchange_two_thousand_messages,
    crash_keeps_acknowledged_messages
);
