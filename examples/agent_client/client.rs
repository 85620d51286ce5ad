//! An external agent that knows Mission Control only through its HTTP API (docs/API.md), as a coding agent in
//! another process or on another machine would. Nothing here imports the server's crate: if this file needs a
//! change when the server changes, so does every external agent.
//!
//! `main.rs` wraps [`run`] in a command line; the API tests include this file to drive two clients at once.

#[path = "api.rs"]
mod api;

pub use api::ClientError;
use api::{register, Acknowledged, Agent, Api, InboxPage, Message, Task, TaskDetail, Wakeup, REQUEST_TIMEOUT};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{json, Value};
use std::fmt;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The server holds a long poll at most 60 s; anything longer is a lost connection.
const MAX_POLL_WAIT: Duration = Duration::from_secs(60);
/// A task in progress whose assignee stays silent is reassigned by the default escalation rules (10 min),
/// so long work sends heartbeats in between.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(60);
/// Consecutive failures to reach the server (or 503s) before the client gives up.
const UNREACHABLE_LIMIT: u32 = 8;
/// How long the sender of a help request gives the helper to acknowledge before the server escalates it.
const HELP_ACK_WITHIN_MS: i64 = 10 * 60_000;

/// How the client gets the agent's token.
#[derive(Clone)]
pub enum Credentials {
    /// The agent's own token, from an earlier registration.
    Token(String),
    /// The operator's token: register the agent at start (or, if the name is taken, rotate its token).
    Admin(String),
}

/// Tokens stay out of logs and panic messages that print a configuration.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Token(_) => f.write_str("Token(..)"),
            Credentials::Admin(_) => f.write_str("Admin(..)"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL of the server, e.g. `http://127.0.0.1:7070`.
    pub url: String,
    pub name: String,
    pub credentials: Credentials,
    /// Used when registering.
    pub specializations: Vec<String>,
    /// `lead`, `specialist` or `intern`; used when registering.
    pub level: String,
    /// The agent to report to: set as `leadId` when registering, asked for help and told of finished work.
    /// Without it the lead registered on the server, if any, is used.
    pub lead: Option<String>,
    /// Another agent to keep informed (finished work) and to ask for help when there is no lead.
    pub peer: Option<String>,
    /// Simulated time spent on each task (real time: this is a real process against a real server).
    pub work_time: Duration,
    /// Chance, 0 to 1, that an attempt fails; drawn from an RNG seeded with `seed` so runs repeat.
    pub failure_rate: f64,
    pub seed: u64,
    /// Stop after completing this many tasks.
    pub max_tasks: Option<u32>,
    /// Stop after this many long polls in a row that brought nothing (0: as soon as there is nothing to do).
    pub idle_exit: Option<u32>,
    /// How long one long poll of the inbox waits, whole seconds from 1 to 60.
    pub poll_wait: Duration,
    /// Becomes `true` to ask the client to stop: it finishes the step in hand, answers the messages already
    /// waiting, and returns.
    pub stop: Option<watch::Receiver<bool>>,
}

impl ClientConfig {
    /// A client that works quickly, never fails on purpose and runs until stopped.
    pub fn new(url: impl Into<String>, name: impl Into<String>, credentials: Credentials) -> ClientConfig {
        ClientConfig {
            url: url.into(),
            name: name.into(),
            credentials,
            specializations: Vec::new(),
            level: "specialist".into(),
            lead: None,
            peer: None,
            work_time: Duration::from_secs(2),
            failure_rate: 0.0,
            seed: 1,
            max_tasks: None,
            idle_exit: None,
            poll_wait: Duration::from_secs(20),
            stop: None,
        }
    }
}

/// Why the client returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    MaxTasks,
    Idle,
    Stopped,
}

/// What one run did.
#[derive(Debug, Clone)]
pub struct ClientReport {
    pub completed: u32,
    /// Attempts that failed (each task failed is back in `ready` and retried).
    pub failed: u32,
    /// Messages read, acknowledged or answered.
    pub messages_handled: u32,
    /// Replies sent in a thread (answers to help requests and questions).
    pub replies: u32,
    /// Messages started by this client: handoffs, task updates, help requests.
    pub sent: u32,
    pub exit: ExitReason,
}

impl fmt::Display for ClientReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stopped ({:?}): {} completed, {} failed attempts, {} messages handled, {} replies, {} sent",
            self.exit, self.completed, self.failed, self.messages_handled, self.replies, self.sent
        )
    }
}

/// Runs the agent until it is stopped, reaches `max_tasks`, or stays idle for `idle_exit` polls.
pub async fn run(mut config: ClientConfig) -> Result<ClientReport, ClientError> {
    if !(0.0..=1.0).contains(&config.failure_rate) {
        return Err(ClientError::Config("the failure rate must be between 0 and 1".into()));
    }
    let wait = config.poll_wait;
    if wait.subsec_nanos() != 0 || wait < Duration::from_secs(1) || wait > MAX_POLL_WAIT {
        return Err(ClientError::Config(
            "the poll wait must be whole seconds from 1 to 60".into(),
        ));
    }
    let stop = config.stop.take();
    let mut client = Client::connect(config).await?;
    let exit = client.run_loop(stop).await?;
    client.report.exit = exit;
    Ok(client.report)
}

struct Client {
    config: ClientConfig,
    api: Api,
    id: String,
    lead: Option<String>,
    rng: StdRng,
    report: ClientReport,
    last_done: Option<String>,
}

impl Client {
    async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        let http = reqwest::Client::new();
        let (agent, token) = match &config.credentials {
            Credentials::Token(token) => {
                let api = Api::new(&http, &config.url, token, &config.name);
                let agent: Agent = api
                    .call(Method::GET, &format!("/api/agents/{}", config.name), None)
                    .await?;
                println!("[{}] connected as {} ({})", config.name, agent.name, agent.id);
                (agent, token.clone())
            }
            Credentials::Admin(admin) => register(&Api::new(&http, &config.url, admin, &config.name), &config).await?,
        };
        let lead = config.lead.clone().or(agent.lead_id);
        Ok(Client {
            api: Api::new(&http, &config.url, &token, &config.name),
            rng: StdRng::seed_from_u64(config.seed),
            report: ClientReport {
                completed: 0,
                failed: 0,
                messages_handled: 0,
                replies: 0,
                sent: 0,
                exit: ExitReason::Stopped,
            },
            id: agent.id,
            lead,
            config,
            last_done: None,
        })
    }

    fn say(&self, line: impl fmt::Display) {
        println!("[{}] {line}", self.config.name);
    }

    /// Wake, read, work; long-poll the inbox when there is nothing to do. Losing the server for a while is
    /// survivable (the work in hand is found again in the next wake-up); anything else ends the run.
    async fn run_loop(&mut self, mut stop: Option<watch::Receiver<bool>>) -> Result<ExitReason, ClientError> {
        let mut idle_polls = 0;
        let mut unreachable = 0;
        loop {
            let stopping = if stop.as_ref().is_some_and(|rx| *rx.borrow()) {
                Some(ExitReason::Stopped)
            } else if self.config.max_tasks.is_some_and(|max| self.report.completed >= max) {
                Some(ExitReason::MaxTasks)
            } else {
                None
            };
            let busy = match self.step(stopping.is_none()).await {
                Ok(busy) => {
                    unreachable = 0;
                    busy
                }
                Err(e) if e.is_transient() && unreachable < UNREACHABLE_LIMIT => {
                    unreachable += 1;
                    let wait = Duration::from_secs(1 << unreachable.min(5));
                    self.say(format_args!(
                        "server unavailable ({e}); retrying in {} s",
                        wait.as_secs()
                    ));
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if let Some(reason) = stopping {
                return Ok(reason);
            }
            if busy {
                idle_polls = 0;
                continue;
            }
            if self.config.idle_exit.is_some_and(|max| idle_polls >= max) {
                self.say(format_args!("idle for {idle_polls} polls; leaving"));
                return Ok(ExitReason::Idle);
            }
            match self.wait_for_mail(&mut stop).await {
                Ok(true) => idle_polls = 0,
                Ok(false) => idle_polls += 1,
                Err(e) if e.is_transient() => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// One wake-up: heartbeat and unread messages first (a question may be about the work about to start),
    /// then the task in progress or the next ready one. Returns whether anything was done.
    async fn step(&mut self, may_work: bool) -> Result<bool, ClientError> {
        let wake: Wakeup = self.api.call(Method::POST, &self.path("/wake"), None).await?;
        let handled = self.handle_messages(wake.messages).await?;
        if !may_work {
            return Ok(handled);
        }
        let task = if let Some(task) = wake.in_progress.into_iter().next() {
            self.say(format_args!("resuming \"{}\" (attempt {})", task.title, task.attempts));
            Some(task)
        } else if wake.ready.is_empty() || !wake.capacity.can_accept_work {
            None
        } else {
            self.claim().await?
        };
        match task {
            Some(task) => {
                self.work_on(task).await?;
                Ok(true)
            }
            None => Ok(handled),
        }
    }

    fn path(&self, rest: &str) -> String {
        format!("/api/agents/{}{rest}", self.id)
    }

    /// Waits for the next unread message; `true` if one came, `false` after the wait or when asked to stop.
    async fn wait_for_mail(&self, stop: &mut Option<watch::Receiver<bool>>) -> Result<bool, ClientError> {
        let secs = self.config.poll_wait.as_secs();
        let path = self.path(&format!("/messages?unread=true&limit=1&wait={secs}"));
        let poll =
            self.api
                .request::<InboxPage>(Method::GET, &path, None, None, self.config.poll_wait + REQUEST_TIMEOUT);
        let stopped = async {
            if let Some(rx) = stop.as_mut() {
                // A dropped sender can no longer ask for a stop: wait out the poll.
                if rx.wait_for(|stop| *stop).await.is_ok() {
                    return;
                }
            }
            std::future::pending::<()>().await
        };
        tokio::select! {
            page = poll => Ok(!page?.items.is_empty()),
            () = stopped => Ok(false),
        }
    }

    async fn claim(&mut self) -> Result<Option<Task>, ClientError> {
        match self.api.call::<Task>(Method::POST, &self.path("/claim"), None).await {
            Ok(task) => {
                self.say(format_args!(
                    "claimed \"{}\" ({}, attempt {})",
                    task.title, task.priority, task.attempts
                ));
                Ok(Some(task))
            }
            // Another client with the same token, or a capacity change, got there first: look again later.
            Err(e) if matches!(e.code(), "no_task_available" | "agent_at_capacity") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Works for the configured time, then completes the task or fails it (by the seeded failure rate).
    async fn work_on(&mut self, task: Task) -> Result<(), ClientError> {
        let started = Instant::now();
        let finish = started + self.config.work_time;
        while let Some(left) = finish.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
            tokio::time::sleep(left.min(HEARTBEAT_EVERY)).await;
            if left > HEARTBEAT_EVERY {
                let beat = json!({ "status": "active", "currentTaskId": task.id });
                self.api
                    .call::<Value>(Method::POST, &self.path("/heartbeat"), Some(&beat))
                    .await?;
            }
        }
        let task_path = format!("/api/tasks/{}", task.id);
        let finished = if self.rng.random_bool(self.config.failure_rate) {
            let body = json!({
                "errorKind": "simulated_failure",
                "message": format!("attempt {} failed on purpose (failure rate {})", task.attempts, self.config.failure_rate),
            });
            self.api
                .call::<Task>(Method::POST, &format!("{task_path}/fail"), Some(&body))
                .await
        } else {
            let minutes = started.elapsed().as_secs().div_ceil(60).max(1);
            let body = json!({
                "outcome": "done",
                "notes": format!("done by {} in {:.1} s", self.config.name, started.elapsed().as_secs_f64()),
                "actualMinutes": minutes,
            });
            self.api
                .call::<Task>(Method::POST, &format!("{task_path}/complete"), Some(&body))
                .await
        };
        let after = match finished {
            Ok(after) => after,
            // Reassigned, cancelled or deleted while we worked: it is someone else's now.
            Err(e)
                if matches!(
                    e.code(),
                    "forbidden" | "invalid_transition" | "task_finished" | "task_not_found"
                ) =>
            {
                self.say(format_args!("lost \"{}\": {e}", task.title));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if after.status == "done" {
            self.report.completed += 1;
            self.say(format_args!(
                "completed \"{}\" after {:.1} s",
                task.title,
                started.elapsed().as_secs_f64()
            ));
            self.last_done = Some(task.title.clone());
            self.after_completion(&task).await
        } else {
            self.report.failed += 1;
            self.say(format_args!(
                "failed \"{}\" (attempt {}); it is ready again",
                task.title, task.attempts
            ));
            self.ask_for_help(&task).await
        }
    }

    /// Tells whoever waits on the task that it is done: the assignees of the tasks it blocked get a handoff,
    /// then the lead and the peer (unless just told) a task update.
    async fn after_completion(&mut self, task: &Task) -> Result<(), ClientError> {
        let detail: TaskDetail = self
            .api
            .call(Method::GET, &format!("/api/tasks/{}", task.id), None)
            .await?;
        let mut told: Vec<String> = Vec::new();
        for dependent in detail.blocks.iter().filter(|d| d.status != "cancelled") {
            let next: Task = self
                .api
                .call(Method::GET, &format!("/api/tasks/{}", dependent.id), None)
                .await?;
            let Some(assignee) = next.assignee_id.filter(|a| *a != self.id) else {
                continue;
            };
            let draft = json!({
                "toAgentId": assignee,
                "type": "handoff",
                "subject": format!("Handoff: {} is done", task.title),
                "body": format!("\"{}\" is done, so \"{}\" can go ahead.", task.title, dependent.title),
                "taskId": dependent.id,
                "relatedTaskIds": [task.id],
            });
            if let Some(sent) = self
                .send(&draft, &format!("handoff-{}-{}", task.id, dependent.id))
                .await?
            {
                told.extend([sent.to_agent_id, sent.to_agent_name]);
            }
        }
        // The lead and the peer may be the agent just handed the work (or each other), by name or by id.
        let recipients: Vec<String> = self.lead.iter().chain(&self.config.peer).cloned().collect();
        for to in recipients {
            if told.iter().any(|t| t.eq_ignore_ascii_case(&to)) {
                continue;
            }
            let draft = json!({
                "toAgentId": to,
                "type": "task_update",
                "subject": format!("Done: {}", task.title),
                "body": format!("\"{}\" is done; {} finished so far.", task.title, self.report.completed),
                "taskId": task.id,
            });
            if let Some(sent) = self.send(&draft, &format!("update-{}-{to}", task.id)).await? {
                told.extend([sent.to_agent_id, sent.to_agent_name]);
            }
        }
        Ok(())
    }

    /// After a failed attempt, asks the lead (or else the peer) for advice, wanting an acknowledgement.
    async fn ask_for_help(&mut self, task: &Task) -> Result<(), ClientError> {
        let Some(to) = self.lead.clone().or_else(|| self.config.peer.clone()) else {
            return Ok(());
        };
        let draft = json!({
            "toAgentId": to,
            "type": "help_request",
            "priority": "high",
            "subject": format!("Help needed: {}", task.title),
            "body": format!("Attempt {} of \"{}\" failed; retrying. Any advice?", task.attempts, task.title),
            "taskId": task.id,
            "ackWithinMs": HELP_ACK_WITHIN_MS,
        });
        self.send(&draft, &format!("help-{}-{}", task.id, task.attempts))
            .await?;
        Ok(())
    }

    /// Sends a message; `None` if the recipient cannot get it (not registered yet, suspended) or the rate
    /// limit outlasted the retries: a lost notice must not stop the work.
    async fn send(&mut self, draft: &Value, key: &str) -> Result<Option<Message>, ClientError> {
        let path = self.path("/messages");
        let result = self
            .api
            .request::<Message>(Method::POST, &path, Some(draft), Some(key), REQUEST_TIMEOUT)
            .await;
        match result {
            Ok(sent) => {
                self.report.sent += 1;
                self.say(format_args!(
                    "sent {} to {}: {}",
                    sent.kind, sent.to_agent_name, sent.subject
                ));
                Ok(Some(sent))
            }
            Err(e) if matches!(e.code(), "agent_not_found" | "agent_unavailable" | "rate_limited") => {
                self.say(format_args!("could not send to {}: {e}", draft["toAgentId"]));
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Questions get an answer in their thread (an acknowledgement with a response); anything else that wants
    /// an acknowledgement gets one; the rest is marked read in one call. Returns whether there were any.
    async fn handle_messages(&mut self, messages: Vec<Message>) -> Result<bool, ClientError> {
        let any = !messages.is_empty();
        let mut read = Vec::new();
        for message in messages {
            self.report.messages_handled += 1;
            let from = &message.from_agent_name;
            let is_question = matches!(message.kind.as_str(), "help_request" | "status_query" | "need_input");
            if is_question && message.from_agent_id.is_some() {
                self.say(format_args!("got {} from {from}: {}", message.kind, message.subject));
                let answer = self.answer(&message);
                if self.acknowledge(&message, json!({ "response": answer })).await? {
                    continue;
                }
            } else {
                match (message.kind.as_str(), &message.reply_to_id) {
                    (_, Some(_)) => self.say(format_args!("{from} replied: {}", message.body)),
                    ("blocker_resolved", _) => self.say(format_args!("noted: {}", message.subject)),
                    _ => self.say(format_args!("got {} from {from}: {}", message.kind, message.subject)),
                }
                if message.ack_deadline_at.is_some() && message.acknowledged_at.is_none() {
                    let done = json!({ "actionTaken": format!("read by {}", self.config.name) });
                    if self.acknowledge(&message, done).await? {
                        continue;
                    }
                }
            }
            read.push(message.id);
        }
        if !read.is_empty() {
            let body = json!({ "messageIds": read });
            self.api
                .call::<Value>(Method::POST, &self.path("/messages/read"), Some(&body))
                .await?;
        }
        Ok(any)
    }

    /// `true` once acknowledged; `false` when the server will not take it (sender gone, reply refused by the
    /// rate limit, message expired), so the caller marks it read instead.
    async fn acknowledge(&mut self, message: &Message, body: Value) -> Result<bool, ClientError> {
        let path = self.path(&format!("/messages/{}/acknowledge", message.id));
        match self.api.call::<Acknowledged>(Method::POST, &path, Some(&body)).await {
            Ok(ack) => {
                if let Some(reply) = ack.reply {
                    self.report.replies += 1;
                    self.say(format_args!("replied to {}: {}", reply.to_agent_name, reply.body));
                }
                Ok(true)
            }
            Err(e) if e.code() == "already_acknowledged" => Ok(true),
            Err(e)
                if matches!(
                    e.code(),
                    "agent_not_found"
                        | "agent_unavailable"
                        | "message_not_found"
                        | "rate_limited"
                        | "validation_failed"
                ) =>
            {
                self.say(format_args!("could not acknowledge \"{}\": {e}", message.subject));
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// What a simulated agent has to say; a real one would ask its model.
    fn answer(&mut self, message: &Message) -> String {
        match message.kind.as_str() {
            "status_query" => match &self.last_done {
                Some(title) => format!(
                    "{} done, {} failed attempts so far; last finished \"{title}\".",
                    self.report.completed, self.report.failed
                ),
                None => format!("Nothing finished yet; {} failed attempts so far.", self.report.failed),
            },
            "help_request" => "Seen it: retry from a clean state, and tell me if it fails again.".into(),
            _ => "Go ahead.".into(),
        }
    }
}
