//! The load itself: the set-up (agents and a pool of tasks, not measured) and the workers that issue requests
//! back to back as the [`Schedule`] deals them. Each request does as little work on this
//! side as it can (URLs and auth headers are built once, only error bodies and created task ids are parsed),
//! because on a small machine the generator shares the CPU with the server it measures.

use crate::record::{Op, Outcome, Recorder};
use crate::schedule::{lock, Schedule};
use crate::stats::{next_task_step, Kind, TaskLoad, TaskStep};
use futures_util::stream::{self, StreamExt};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{Client, RequestBuilder};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Tasks one agent may have in progress at once (its `maxConcurrentTasks` is set to 3 at registration, so the
/// server's capacity check never refuses a start).
const MAX_IN_PROGRESS: usize = 2;
/// Open tasks one agent holds at most (ready, in progress, or with a request in flight).
const MAX_OPEN: usize = 4;
/// Every workload task's estimate: small enough that two in progress stay far below 80 % of a 480-minute day.
const TASK_MINUTES: u32 = 30;
/// Skills handed out to agents and asked for by the pool tasks, so that suitable-agents has real ranking to do.
const SKILLS: [&str; 8] = ["rust", "sql", "python", "go", "typescript", "devops", "ml", "docs"];
/// Bytes of an error answer kept as an example in the report.
const ERROR_SAMPLE: usize = 200;

/// One registered agent, with what its requests need prepared once.
pub struct Agent {
    auth: HeaderValue,
    messages_url: String,
    capacity_url: String,
    id: String,
}

/// One agent's workload tasks, as far as the generator knows (requests in flight are counted, not listed).
#[derive(Default)]
struct AgentTasks {
    ready: VecDeque<String>,
    in_progress: VecDeque<String>,
    creating: usize,
    starting: usize,
    finishing: usize,
}

impl AgentTasks {
    fn load(&self) -> TaskLoad {
        TaskLoad {
            ready: self.ready.len(),
            in_progress: self.in_progress.len(),
            creating: self.creating,
            starting: self.starting,
            finishing: self.finishing,
        }
    }
}

/// Everything the workers share: the server, the agents, their tasks and the pool ranked by suitable-agents.
pub struct Fleet {
    base: String,
    pub agents: Vec<Agent>,
    tasks: Vec<Mutex<AgentTasks>>,
    suitable_urls: Vec<String>,
    /// The title of every task the workload creates.
    task_title: String,
    pub run_id: String,
}

/// The server and the operator's token.
pub struct Target {
    pub base: String,
    pub admin: HeaderValue,
}

pub fn bearer(token: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| "a token must be visible ASCII".to_string())
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize)]
struct Registered {
    agent: Created,
    token: String,
}

#[derive(Deserialize)]
struct Health {
    version: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MessageBody<'a> {
    to_agent_id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    subject: &'static str,
    body: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TaskBody<'a> {
    title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    assignee_id: Option<&'a str>,
    estimated_minutes: u32,
    tags: [&'static str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    requirements: Option<Requirements<'a>>,
}

#[derive(Serialize)]
struct Requirements<'a> {
    capabilities: &'a [&'static str],
}

#[derive(Serialize)]
struct Transition {
    to: &'static str,
}

/// Sends a set-up request and returns the parsed 2xx body, or a sentence saying what went wrong.
async fn setup_call<T: for<'de> Deserialize<'de>>(request: RequestBuilder, what: &str) -> Result<T, String> {
    let response = request.send().await.map_err(|e| format!("{what}: {}", chain(&e)))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| format!("{what}: {}", chain(&e)))?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body);
        return Err(format!("{what}: HTTP {status}: {}", truncate(&text, ERROR_SAMPLE)));
    }
    serde_json::from_slice(&body).map_err(|e| format!("{what}: unexpected answer: {e}"))
}

/// An error with its causes: reqwest's own message ("error sending request") says little without them.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// Checks the server answers and the token is the admin's; returns the server's version.
pub async fn check_server(client: &Client, target: &Target) -> Result<String, String> {
    let health: Health = setup_call(client.get(format!("{}/healthz", target.base)), "GET /healthz")
        .await
        .map_err(|e| format!("{e} (is `mission-control serve` running at {}?)", target.base))?;
    let request = client
        .get(format!("{}/api/agents?limit=1", target.base))
        .header(AUTHORIZATION, target.admin.clone());
    setup_call::<serde_json::Value>(request, "reading agents with the admin token").await?;
    Ok(health.version)
}

/// Registers the agents (`lg-<run id>-<n>`, two skills each, at most 3 tasks at once) and creates the pool of
/// unassigned tasks that suitable-agents ranks. Not measured; `parallel` requests at a time.
pub async fn setup(
    client: &Client,
    target: &Target,
    agents: usize,
    pool: usize,
    parallel: usize,
    rng: &mut StdRng,
) -> Result<Fleet, String> {
    // Not from the seed: a rerun with the same seed against the same server needs new names.
    let run_id = format!("{:06x}", rand::rng().random_range(0..0x100_0000u32));
    let skills: Vec<Vec<&str>> = (0..agents)
        .map(|_| SKILLS.choose_multiple(rng, 2).copied().collect())
        .collect();
    let registrations = (0..agents).map(|n| {
        let body = serde_json::json!({
            "name": format!("lg-{run_id}-{n}"),
            "role": "loadgen",
            "specializations": skills[n],
            "maxConcurrentTasks": MAX_IN_PROGRESS + 1,
        });
        let request = client
            .post(format!("{}/api/agents", target.base))
            .header(AUTHORIZATION, target.admin.clone())
            .json(&body);
        async move { (n, setup_call::<Registered>(request, "registering an agent").await) }
    });
    let mut registered: Vec<(usize, Result<Registered, String>)> = stream::iter(registrations)
        .buffer_unordered(parallel.max(1))
        .collect()
        .await;
    registered.sort_by_key(|(n, _)| *n);
    let mut fleet_agents = Vec::with_capacity(agents);
    for (_, result) in registered {
        let r = result?;
        fleet_agents.push(Agent {
            auth: bearer(&r.token)?,
            messages_url: format!("{}/api/agents/{}/messages", target.base, r.agent.id),
            capacity_url: format!("{}/api/agents/{}/capacity", target.base, r.agent.id),
            id: r.agent.id,
        });
    }

    let creations = (0..pool).map(|n| {
        let wanted: Vec<&'static str> = SKILLS.choose_multiple(rng, 1 + n % 3).copied().collect();
        let title = format!("lg-{run_id} pool task {n}");
        let body = TaskBody {
            title: &title,
            assignee_id: None,
            estimated_minutes: 60,
            tags: ["loadgen"],
            requirements: Some(Requirements { capabilities: &wanted }),
        };
        let request = client
            .post(format!("{}/api/tasks", target.base))
            .header(AUTHORIZATION, target.admin.clone())
            .json(&body);
        async move { setup_call::<Created>(request, "creating a pool task").await }
    });
    let created: Vec<Result<Created, String>> = stream::iter(creations.collect::<Vec<_>>())
        .buffer_unordered(parallel.max(1))
        .collect()
        .await;
    let mut suitable_urls = Vec::with_capacity(pool);
    for task in created {
        suitable_urls.push(format!("{}/api/tasks/{}/suitable-agents", target.base, task?.id));
    }

    Ok(Fleet {
        base: target.base.clone(),
        tasks: (0..agents).map(|_| Mutex::new(AgentTasks::default())).collect(),
        agents: fleet_agents,
        suitable_urls,
        task_title: format!("lg-{run_id} task"),
        run_id,
    })
}

/// Sends a request and reads the whole answer (so the connection goes back to the pool). With `want_id`, a 2xx
/// answer's `id` is parsed and returned; error answers are kept, shortened, for the report.
async fn call(request: RequestBuilder, want_id: bool) -> (Outcome, Option<String>) {
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => return (Outcome::Transport(transport_reason(&e)), None),
    };
    let status = response.status();
    let body = match response.bytes().await {
        Ok(b) => b,
        Err(e) => return (Outcome::Transport(transport_reason(&e)), None),
    };
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body);
        return (Outcome::Status(status.as_u16(), truncate(&text, ERROR_SAMPLE)), None);
    }
    if !want_id {
        return (Outcome::Ok, None);
    }
    match serde_json::from_slice::<Created>(&body) {
        Ok(created) => (Outcome::Ok, Some(created.id)),
        Err(e) => (Outcome::BadAnswer(truncate(&e.to_string(), ERROR_SAMPLE)), None),
    }
}

fn transport_reason(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "other"
    };
    truncate(&format!("{what}: {}", chain(e)), ERROR_SAMPLE)
}

/// A task step booked for an agent: counted as in flight until [`Fleet::settle`].
struct Booked {
    agent: usize,
    step: BookedStep,
}

enum BookedStep {
    Create,
    Start(String),
    Finish(String),
}

impl Fleet {
    /// Books a task step for the first agent, from a random one on, that has one to take (see
    /// [`next_task_step`]); `None` when every agent's tasks all have requests in flight.
    fn book_task_step(&self, rng: &mut StdRng) -> Option<Booked> {
        let n = self.agents.len();
        let first = rng.random_range(0..n);
        for agent in (0..n).map(|k| (first + k) % n) {
            let mut tasks = lock(&self.tasks[agent]);
            let step = match next_task_step(tasks.load(), MAX_IN_PROGRESS, MAX_OPEN) {
                None => continue,
                Some(TaskStep::Create) => {
                    tasks.creating += 1;
                    BookedStep::Create
                }
                Some(TaskStep::Start) => match tasks.ready.pop_front() {
                    Some(id) => {
                        tasks.starting += 1;
                        BookedStep::Start(id)
                    }
                    None => continue,
                },
                Some(TaskStep::Finish) => match tasks.in_progress.pop_front() {
                    Some(id) => {
                        tasks.finishing += 1;
                        BookedStep::Finish(id)
                    }
                    None => continue,
                },
            };
            return Some(Booked { agent, step });
        }
        None
    }

    /// Records where a booked step left the task. A task whose request failed is forgotten: its state on the
    /// server is unknown, and the agents' `maxConcurrentTasks` (one above what the generator keeps in progress)
    /// absorbs one such task without capacity refusals.
    fn settle(&self, booked: Booked, ok: bool, created: Option<String>) {
        let mut tasks = lock(&self.tasks[booked.agent]);
        match booked.step {
            BookedStep::Create => {
                tasks.creating -= 1;
                if let Some(id) = created {
                    tasks.ready.push_back(id);
                }
            }
            BookedStep::Start(id) => {
                tasks.starting -= 1;
                if ok {
                    tasks.in_progress.push_back(id);
                }
            }
            BookedStep::Finish(_) => tasks.finishing -= 1,
        }
    }

    /// Another agent than `from`, at random.
    fn other_agent(&self, from: usize, rng: &mut StdRng) -> usize {
        let to = rng.random_range(0..self.agents.len() - 1);
        if to >= from {
            to + 1
        } else {
            to
        }
    }

    /// Issues one request of the kind; returns what it was, how it ended and how long the server took (from
    /// sending to the last byte of the answer; building the request and booking a task step are not counted).
    async fn perform(&self, client: &Client, kind: Kind, rng: &mut StdRng) -> (Op, Outcome, Duration) {
        let me = rng.random_range(0..self.agents.len());
        let agent = &self.agents[me];
        let (op, request) = match kind {
            Kind::SendMessage => {
                let to = &self.agents[self.other_agent(me, rng)];
                let body = MessageBody {
                    to_agent_id: &to.id,
                    kind: "coordination",
                    subject: "load",
                    body: "a message from the load generator",
                };
                (Op::SendMessage, client.post(&agent.messages_url).json(&body))
            }
            Kind::ReadInbox => (Op::ReadInbox, client.get(&agent.messages_url)),
            Kind::ReadCapacity => (Op::ReadCapacity, client.get(&agent.capacity_url)),
            Kind::SuitableAgents => {
                let url = &self.suitable_urls[rng.random_range(0..self.suitable_urls.len())];
                (Op::SuitableAgents, client.get(url))
            }
            Kind::Task => return self.task_step(client, rng).await,
        };
        let (outcome, _, latency) = timed(request.header(AUTHORIZATION, agent.auth.clone()), false).await;
        (op, outcome, latency)
    }

    /// One step of an agent's task life cycle, made with the agent's own token.
    async fn task_step(&self, client: &Client, rng: &mut StdRng) -> (Op, Outcome, Duration) {
        let booked = loop {
            match self.book_task_step(rng) {
                Some(b) => break b,
                None => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        };
        let agent = &self.agents[booked.agent];
        let transition = |id: &str, to: &'static str| {
            client
                .post(format!("{}/api/tasks/{id}/transition", self.base))
                .json(&Transition { to })
        };
        let (op, request) = match &booked.step {
            BookedStep::Create => (
                Op::TaskCreate,
                client.post(format!("{}/api/tasks", self.base)).json(&TaskBody {
                    title: &self.task_title,
                    assignee_id: Some(&agent.id),
                    estimated_minutes: TASK_MINUTES,
                    tags: ["loadgen"],
                    requirements: None,
                }),
            ),
            BookedStep::Start(id) => (Op::TaskStart, transition(id, "in_progress")),
            BookedStep::Finish(id) => (Op::TaskFinish, transition(id, "done")),
        };
        let want_id = op == Op::TaskCreate;
        let (outcome, created, latency) = timed(request.header(AUTHORIZATION, agent.auth.clone()), want_id).await;
        self.settle(booked, matches!(outcome, Outcome::Ok), created);
        (op, outcome, latency)
    }
}

async fn timed(request: RequestBuilder, want_id: bool) -> (Outcome, Option<String>, Duration) {
    let started = Instant::now();
    let (outcome, id) = call(request, want_id).await;
    (outcome, id, started.elapsed())
}

/// One worker: requests back to back until the schedule ends the run; returns its measurements.
pub async fn worker(client: Client, fleet: &Fleet, schedule: &Schedule, seed: u64) -> Recorder {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut recorder = Recorder::default();
    while let Some((kind, measured)) = schedule.next() {
        let (op, outcome, latency) = fleet.perform(&client, kind, &mut rng).await;
        schedule.completed.fetch_add(1, Ordering::Relaxed);
        if measured {
            recorder.record(op, outcome, latency, Instant::now());
        }
    }
    recorder
}
