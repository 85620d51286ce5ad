//! Test support: the real runtime and HTTP server on 127.0.0.1:0 over a fresh database (a temporary SQLite
//! file, or a PostgreSQL database created for the test and dropped after it when `MC_TEST_POSTGRES_URL` is
//! set), a manual clock, and a small typed client.

#![allow(dead_code)]

pub mod sink;

use actix_web::dev::ServerHandle;
use diesel::{Connection, PgConnection, RunQueryDsl};
use mission_control::config::{Config, Secret};
use mission_control::{api, ManualClock, Runtime};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::sync::Arc;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each listed `async fn name(backend: Backend)` once on SQLite and once on PostgreSQL (the latter is a
/// no-op unless `MC_TEST_POSTGRES_URL` is set).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[actix_rt::test] async fn $name() { super::$name($crate::common::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[actix_rt::test] async fn $name() { super::$name($crate::common::Backend::Postgres).await })*
        }
    };
}

/// A database for one test; a PostgreSQL one is dropped when this is dropped.
pub struct TestDb {
    pub url: String,
    pub dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

impl TestDb {
    pub fn new(backend: Backend) -> Option<TestDb> {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => Some(TestDb {
                url: dir.path().join("mc.db").display().to_string(),
                dir,
                postgres: None,
            }),
            Backend::Postgres => {
                let server = std::env::var("MC_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty())?;
                let name = format!("mc_test_{}", uuid::Uuid::now_v7().simple());
                let mut conn = PgConnection::establish(&server).expect("connect to MC_TEST_POSTGRES_URL");
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .expect("create test database");
                let after_scheme = server.find("://").map_or(0, |i| i + 3);
                let url = match server[after_scheme..].find('/') {
                    Some(slash) => format!("{}/{name}", &server[..after_scheme + slash]),
                    None => format!("{server}/{name}"),
                };
                Some(TestDb {
                    url,
                    dir,
                    postgres: Some((server, name)),
                })
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((server, name)) = &self.postgres {
            if let Ok(mut conn) = PgConnection::establish(server) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn);
            }
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub clock: ManualClock,
    pub runtime: Option<Runtime>,
    pub db: TestDb,
    server: ServerHandle,
    client: reqwest::Client,
}

pub fn config_for(db: &TestDb, clock: &ManualClock) -> Config {
    let mut config = Config::embedded(&db.url, db.dir.path()).expect("config");
    config.admin_token = Some(Secret::new(ADMIN_TOKEN));
    config.clock = Arc::new(clock.clone());
    config.heartbeat_timeout = std::time::Duration::from_secs(300);
    config
}

/// Starts the runtime and server for `backend`, or `None` when that backend is not configured.
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    let db = TestDb::new(backend)?;
    let clock = ManualClock::starting_now();
    Some(start_on(db, clock, |_| {}).await)
}

/// Like [`spawn_app`], with a chance to adjust the configuration first.
pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Option<TestApp> {
    let db = TestDb::new(backend)?;
    let clock = ManualClock::starting_now();
    Some(start_on(db, clock, adjust).await)
}

async fn start_on(db: TestDb, clock: ManualClock, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = config_for(&db, &clock);
    adjust(&mut config);
    let runtime = Runtime::start(config).await.expect("runtime starts");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let server = api::server::build(runtime.handles(), listener, false).expect("server");
    let handle = server.handle();
    actix_rt::spawn(server);
    TestApp {
        base,
        clock,
        runtime: Some(runtime),
        db,
        server: handle,
        client: test_client(),
    }
}

/// The tests' HTTP client. An idle pooled connection is dropped well before the server's 5 s keep-alive would
/// close it: reusing one the server is closing at that instant fails the request (`IncompleteMessage`), which a
/// loaded machine running the whole suite made happen.
fn test_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(std::time::Duration::from_secs(2))
        .build()
        .expect("http client")
}

/// A response read in full: status, headers and JSON body (`Value::Null` when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The stable error code, if this is an error envelope.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.body);
        self.body
    }

    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.body);
        assert_eq!(self.code(), code, "unexpected error code; body: {}", self.body);
        self.body
    }
}

impl TestApp {
    pub fn handles(&self) -> mission_control::Handles {
        self.runtime.as_ref().expect("running").handles()
    }

    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let mut req = self.client.request(method, format!("{}{}", self.base, path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req
    }

    pub async fn send(&self, req: RequestBuilder) -> Reply {
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body read");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, headers, body }
    }

    /// A request as the admin, with an optional JSON body.
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call(method, path, Some(ADMIN_TOKEN), body).await
    }

    /// A request with the given token (or none), with an optional JSON body.
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut req = self.request(method, path, token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        self.send(req).await
    }

    /// A request with a raw body (for malformed JSON and size tests).
    pub async fn raw(&self, method: Method, path: &str, token: Option<&str>, body: impl Into<reqwest::Body>) -> Reply {
        let req = self
            .request(method, path, token)
            .header("content-type", "application/json")
            .body(body);
        self.send(req).await
    }

    /// Registers an agent as the admin; returns the agent JSON and its token.
    pub async fn register(&self, body: Value) -> (Value, String) {
        let reply = self.admin(Method::POST, "/api/agents", Some(body)).await.expect(201);
        let token = reply["token"].as_str().expect("token").to_string();
        (reply["agent"].clone(), token)
    }

    /// Registers an agent by name only.
    pub async fn agent(&self, name: &str) -> (Value, String) {
        self.register(json!({ "name": name })).await
    }

    /// Creates a task as the admin; returns the task JSON.
    pub async fn task(&self, body: Value) -> Value {
        self.admin(Method::POST, "/api/tasks", Some(body)).await.expect(201)
    }

    /// Runs the runtime's periodic work once (after moving the manual clock).
    pub async fn tick(&self) -> mission_control::runtime::TickReport {
        self.handles().tick().await.expect("tick")
    }

    /// The runtime's store, for tests that must reach under the API (to stage what a crash leaves behind).
    pub fn runtime_store(&self) -> &mission_control::store::Store {
        self.runtime.as_ref().expect("running").store()
    }

    /// Waits until every outbox row written so far has had its delivery attempt (webhooks included).
    pub async fn settle(&self) {
        self.handles().settle_outbox().await.expect("outbox settles");
    }

    /// Stops the server and runtime (the journal finishes its queue), then starts new ones on the same
    /// database, as a restart of the process would.
    pub async fn restart(mut self) -> TestApp {
        self.server.stop(true).await;
        if let Some(runtime) = self.runtime.take() {
            runtime.stop().await;
        }
        let TestApp { db, clock, .. } = self;
        start_on(db, clock, |_| {}).await
    }

    pub async fn stop(mut self) {
        self.server.stop(true).await;
        if let Some(runtime) = self.runtime.take() {
            runtime.stop().await;
        }
    }
}

/// The value without the `outboxId` of its escalation actions (new ids each run), for whole-value comparisons.
pub fn without_outbox_ids(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(key, _)| key.as_str() != "outboxId")
                .map(|(key, v)| (key.clone(), without_outbox_ids(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_outbox_ids).collect()),
        other => other.clone(),
    }
}

/// Whether a message is the system's "assigned: …" notice, which every assignment by someone else sends
/// (tested in `outbox.rs`); inbox assertions about other mail leave them out.
pub fn is_assignment_notice(message: &Value) -> bool {
    message["type"] == "task_update"
        && message["senderKind"] == "system"
        && message["subject"].as_str().is_some_and(|s| s.starts_with("assigned: "))
}

/// The messages of a page that are not assignment notices.
pub fn other_than_assignment_notices(items: Vec<Value>) -> Vec<Value> {
    items.into_iter().filter(|m| !is_assignment_notice(m)).collect()
}

/// Whether an activity row records the sending of an assignment notice.
pub fn is_assignment_notice_sent(row: &Value) -> bool {
    row["kind"] == "message_sent" && row["after"]["type"] == "task_update" && row["after"]["from"] == "system"
}

impl TestApp {
    /// Reads and acknowledges, as `agent`, every assignment notice in its inbox, so tests about other mail
    /// see only that mail in unread counts and wake-ups.
    pub async fn acknowledge_assignment_notices(&self, agent: &str, token: &str) {
        // The board hands its notices to the dispatcher after its commit: let them arrive first.
        self.settle().await;
        let page = self
            .call(
                Method::GET,
                &format!("/api/agents/{agent}/messages?limit=100"),
                Some(token),
                None,
            )
            .await
            .expect(200);
        for notice in array(&page["items"]).iter().filter(|m| is_assignment_notice(m)) {
            let path = format!("/api/agents/{agent}/messages/{}/acknowledge", id(notice));
            self.call(Method::POST, &path, Some(token), None).await.expect(200);
        }
    }
}

pub fn id(value: &Value) -> String {
    value["id"].as_str().expect("id").to_string()
}

#[track_caller]
pub fn array(value: &Value) -> Vec<Value> {
    match value.as_array() {
        Some(items) => items.clone(),
        None => panic!("expected an array, got {value}"),
    }
}

#[track_caller]
pub fn int(value: &Value) -> i64 {
    match value.as_i64() {
        Some(n) => n,
        None => panic!("expected an integer, got {value}"),
    }
}

#[track_caller]
pub fn text(value: &Value) -> String {
    match value.as_str() {
        Some(s) => s.to_string(),
        None => panic!("expected a string, got {value}"),
    }
}

/// Percent-encodes a query value (cursors are opaque).
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

pub fn page_url(path: &str, limit: u32, cursor: Option<&str>) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    match cursor {
        Some(c) => format!("{path}{sep}limit={limit}&cursor={}", encode(c)),
        None => format!("{path}{sep}limit={limit}"),
    }
}

/// Every item of a list endpoint, `limit` at a time, following `nextCursor`.
pub async fn all_items(app: &TestApp, path: &str, limit: u32) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = app
            .admin(Method::GET, &page_url(path, limit, cursor.as_deref()), None)
            .await
            .expect(200);
        let batch = page["items"].as_array().expect("items array");
        assert!(batch.len() <= limit as usize, "{path}: page larger than the limit");
        items.extend(batch.iter().cloned());
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(items.len() < 10_000, "pagination of {path} does not end");
    }
    items
}

/// Moves a task through the state machine as the admin.
pub async fn move_to(app: &TestApp, id: &str, to: &str) -> Reply {
    app.admin(
        Method::POST,
        &format!("/api/tasks/{id}/transition"),
        Some(json!({ "to": to })),
    )
    .await
}

/// A task's detail, read as the admin.
pub async fn get_task(app: &TestApp, id: &str) -> Value {
    app.admin(Method::GET, &format!("/api/tasks/{id}"), None)
        .await
        .expect(200)
}

/// Turns every escalation rule off: for tests of other features whose clocks run long enough to trip the
/// default rules (an assignee silent for 10 minutes, a task in progress for 2 hours…).
pub async fn disable_escalation_rules(app: &TestApp) {
    let rules = app.admin(Method::GET, "/api/escalation-rules", None).await.expect(200);
    for rule in array(&rules) {
        let path = format!("/api/escalation-rules/{}", id(&rule));
        app.admin(Method::PATCH, &path, Some(serde_json::json!({ "enabled": false })))
            .await
            .expect(200);
    }
}
