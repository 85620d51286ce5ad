//! `Runtime::start(config)` wires the store, the journal and the actors, rehydrating every owner from the
//! store, and returns the handles that the HTTP server, tests, examples and benchmarks all use.

use crate::actors::agent::AgentState;
use crate::actors::capacity::CapacityRegistry;
use crate::actors::directory::messages::{SetTaskBoard, Tick};
use crate::actors::directory::AgentDirectory;
use crate::actors::dispatcher::{self, Dispatcher, OutboxSignal};
use crate::actors::escalation::{self, EscalationScheduler, Neighbours, SchedulerBoot};
use crate::actors::history::History;
use crate::actors::task_board::messages::SetDirectory;
use crate::actors::task_board::TaskBoard;
use crate::actors::templates::TemplateLibrary;
use crate::actors::{Deps, EventBus};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::domain::message::IDEMPOTENCY_WINDOW_MS;
use crate::domain::{token, Activity, ActivityKind, Principal};
use crate::error::{AppError, AppResult};
use crate::ids::new_id;
use crate::store::{escalation_queries, message_queries, queries, slo_queries, Journal, Store, StoreError, WriteOp};
use actix::Addr;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Addresses of the runtime's actors and what else a caller needs; cheap to clone.
#[derive(Clone)]
pub struct Handles {
    pub directory: Addr<AgentDirectory>,
    pub board: Addr<TaskBoard>,
    pub capacity: Addr<CapacityRegistry>,
    pub templates: Addr<TemplateLibrary>,
    pub escalation: Addr<EscalationScheduler>,
    pub dispatcher: Addr<Dispatcher>,
    pub events: EventBus,
    pub history: History,
    pub clock: SharedClock,
    pub config: Arc<Config>,
}

impl Handles {
    /// Runs one round of periodic work now: the heartbeat monitor, message expiry, acknowledgement deadlines,
    /// the SLO monitor, an evaluation of every open task against the escalation rules, and the outbox rows
    /// due for a retry. The timer calls this in production; tests and simulations call it after moving the
    /// clock.
    pub async fn tick(&self) -> AppResult<TickReport> {
        let went_offline = self.directory.send(Tick).await.map_err(AppError::mailbox)??;
        let sweep = self
            .escalation
            .send(escalation::Tick)
            .await
            .map_err(AppError::mailbox)??;
        // Retries that fell due; in-process deliveries are done when this returns, HTTP ones go on.
        self.dispatcher
            .send(dispatcher::DispatchDue { wait_for_http: false })
            .await
            .map_err(AppError::mailbox)??;
        Ok(TickReport {
            went_offline,
            escalated_message_ids: sweep.escalated_message_ids,
            expired_messages: sweep.expired_messages,
            slo_breaches: sweep.slo_breaches,
            escalations: sweep.escalations,
            resolved_escalations: sweep.resolved_escalations,
        })
    }
}

impl Handles {
    /// Waits until every outbox row written so far has had its delivery attempt, webhooks included (a
    /// manual-clock test or simulation calls it after `tick` to see what the deliveries did).
    pub async fn settle_outbox(&self) -> AppResult<()> {
        self.dispatcher
            .send(dispatcher::Settle)
            .await
            .map_err(AppError::mailbox)?
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Names of the agents the heartbeat monitor marked offline.
    pub went_offline: Vec<String>,
    /// Messages escalated for a missed acknowledgement deadline.
    pub escalated_message_ids: Vec<String>,
    /// Expired messages deleted.
    pub expired_messages: usize,
    /// SLO breaches recorded (each task escalated once per tick for its new breaches).
    pub slo_breaches: Vec<crate::domain::slo::SloBreach>,
    /// Escalations recorded, with their action results: rule firings, acknowledgement deadlines and SLO
    /// breaches.
    pub escalations: Vec<crate::domain::escalation::Escalation>,
    /// Escalations resolved because their task or message left the triggering condition.
    pub resolved_escalations: usize,
}

/// How the admin token was settled at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminToken {
    /// Generated now (first start): shown once, and written to this file.
    Generated { token: String, file: PathBuf },
    /// Taken from `MC_ADMIN_TOKEN`.
    FromEnvironment,
    /// Already stored by an earlier start.
    Existing { file: PathBuf },
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open database {url}: {source}")]
    Store { url: String, source: StoreError },
    #[error("cannot write the admin token file {file}: {source}")]
    TokenFile { file: PathBuf, source: std::io::Error },
}

pub struct Runtime {
    pub handles: Handles,
    pub admin_token: AdminToken,
    journal: Journal,
    store: Store,
    timer: Option<actix_rt::task::JoinHandle<()>>,
}

impl Runtime {
    /// Opens and migrates the store, starts the journal, rehydrates every actor and, when the config has a
    /// tick period, starts the timer. Must be called inside an actix system.
    pub async fn start(config: Config) -> Result<Runtime, StartError> {
        let url = config.database_url.clone();
        let store_error = |source| StartError::Store {
            url: url.redacted(),
            source,
        };
        let options = config.store.clone();
        let open_url = url.clone();
        let now = config.clock.now_ms();
        let (store, writer, boot) = actix_rt::task::spawn_blocking(move || {
            let store = Store::open(&open_url, &options)?;
            let writer = store.writer_connection()?;
            let boot = Boot::load(&store, now)?;
            Ok::<_, StoreError>((store, writer, boot))
        })
        .await
        .map_err(|e| store_error(StoreError::Pool(e.to_string())))?
        .map_err(store_error)?;
        let journal = Journal::start(writer).map_err(store_error)?;

        let admin_token = settle_admin_token(&config, &store, &journal).await?;

        let events = EventBus::default();
        let (outbox, outbox_signals) = OutboxSignal::channel();
        let deps = Deps {
            outbox,
            journal: journal.clone(),
            store: store.clone(),
            clock: config.clock.clone(),
            events: events.clone(),
            heartbeat_timeout: config.heartbeat_timeout,
            messaging: config.messaging,
            capacity: config.capacity,
            slo: config.slo,
            escalation: config.escalation.clone(),
        };
        let profiles: Vec<crate::domain::Agent> = boot.agents.iter().map(|state| state.agent.clone()).collect();
        let capacity_tasks = boot.open_tasks.clone();
        let scheduler_boot = SchedulerBoot {
            breaches: boot.breaches,
            rules: boot.rules,
            open_escalations: boot.open_escalations,
            open_tasks: boot.open_tasks.clone(),
            agents: profiles.clone(),
            dependencies: boot
                .dependencies
                .iter()
                .map(|edge| (edge.task_id.clone(), edge.blocker_id.clone()))
                .collect(),
            silent_firings: boot.silent_firings,
        };
        let board = TaskBoard::start(boot.open_tasks, boot.finished, boot.dependencies, deps.clone());
        let capacity = CapacityRegistry::start(profiles, capacity_tasks, deps.clone(), board.clone(), &events);
        let templates = TemplateLibrary::start(boot.templates, deps.clone());
        let directory = AgentDirectory::start(boot.agents, boot.tokens, deps.clone());
        directory.do_send(SetTaskBoard(board.clone()));
        board.do_send(SetDirectory(directory.clone()));
        let neighbours = Neighbours {
            directory: directory.clone(),
            board: board.clone(),
            capacity: capacity.clone(),
            templates: templates.clone(),
        };
        let dispatcher = Dispatcher::start(deps.clone(), directory.clone(), outbox_signals);
        let escalation = EscalationScheduler::start(deps, neighbours, dispatcher.clone(), scheduler_boot, &events);

        let handles = Handles {
            directory,
            board,
            capacity,
            templates,
            escalation,
            dispatcher,
            events,
            history: History::new(store.clone()),
            clock: config.clock.clone(),
            config: Arc::new(config),
        };
        let timer = handles.config.tick.map(|period| {
            let handles = handles.clone();
            actix_rt::spawn(async move {
                let mut interval = actix_rt::time::interval(period);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                interval.tick().await;
                loop {
                    interval.tick().await;
                    if let Err(e) = handles.tick().await {
                        log::warn!("tick failed: {e}");
                    }
                }
            })
        });
        Ok(Runtime {
            handles,
            admin_token,
            journal,
            store,
            timer,
        })
    }

    pub fn handles(&self) -> Handles {
        self.handles.clone()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stops the timer and the dispatcher, and lets the journal commit everything queued; later writes fail
    /// with 503. Rows still pending are delivered by the next start.
    pub async fn stop(self) {
        if let Some(timer) = self.timer {
            timer.abort();
        }
        let _ = self.handles.dispatcher.send(dispatcher::StopDispatcher).await;
        self.journal.stop().await;
    }
}

/// Everything the owners rehydrate from at boot.
struct Boot {
    agents: Vec<AgentState>,
    templates: Vec<crate::domain::template::MessageTemplate>,
    tokens: Vec<(String, String)>,
    open_tasks: Vec<crate::domain::Task>,
    finished: Vec<(String, crate::domain::TaskStatus, String)>,
    dependencies: Vec<crate::store::rows::DependencyRow>,
    breaches: Vec<(String, crate::domain::slo::BreachKind)>,
    rules: Vec<crate::domain::escalation::EscalationRule>,
    open_escalations: Vec<crate::domain::escalation::Escalation>,
    silent_firings: Vec<crate::domain::escalation::Escalation>,
}

impl Boot {
    fn load(store: &Store, now: i64) -> Result<Boot, StoreError> {
        let mut conn = store.connection()?;
        let mut open: HashMap<String, Vec<crate::domain::Message>> = HashMap::new();
        for message in message_queries::open_messages(&mut conn, now)? {
            open.entry(message.to_agent_id.clone()).or_default().push(message);
        }
        let mut keys: HashMap<String, Vec<(String, String, i64)>> = HashMap::new();
        for (sender, key, message_id, at) in
            message_queries::idempotency_keys_since(&mut conn, now - IDEMPOTENCY_WINDOW_MS)?
        {
            keys.entry(sender).or_default().push((key, message_id, at));
        }
        let agents = queries::all_agents(&mut conn)?
            .into_iter()
            .map(|agent| AgentState {
                open_messages: open.remove(&agent.id).unwrap_or_default(),
                idempotency_keys: keys.remove(&agent.id).unwrap_or_default(),
                agent,
            })
            .collect();
        let rules = escalation_queries::all_rules(&mut conn)?;
        // A takeover older than every cooldown can no longer hold a firing back.
        let longest_cooldown = rules.iter().map(|r| r.cooldown_ms).max().unwrap_or(0);
        let silent_firings = escalation_queries::firings_since(&mut conn, "no_heartbeat", now - longest_cooldown)?;
        Ok(Boot {
            agents,
            templates: message_queries::all_templates(&mut conn)?,
            tokens: queries::agent_token_hashes(&mut conn)?,
            open_tasks: queries::open_tasks(&mut conn)?,
            finished: queries::finished_task_index(&mut conn)?,
            dependencies: queries::all_dependencies(&mut conn)?,
            breaches: slo_queries::open_task_breaches(&mut conn)?,
            rules,
            silent_firings,
            open_escalations: escalation_queries::open_escalations(&mut conn)?,
        })
    }
}

/// The file the generated admin token is written to.
pub fn admin_token_file(data_dir: &Path) -> PathBuf {
    data_dir.join("admin-token")
}

async fn settle_admin_token(config: &Config, store: &Store, journal: &Journal) -> Result<AdminToken, StartError> {
    let store_error = |source| StartError::Store {
        url: config.database_url.redacted(),
        source,
    };
    let stored = store.read(queries::admin_token_hashes).await.map_err(store_error)?;
    let file = admin_token_file(&config.data_dir);
    let now = config.clock.now_ms();
    if let Some(token) = &config.admin_token {
        if !stored.iter().any(|hash| token::verify_token(token.expose(), hash)) {
            let ops = admin_token_ops(
                token::hash_token(token.expose()),
                "admin token set from MC_ADMIN_TOKEN",
                now,
            );
            journal.commit(ops).await.map_err(store_error)?;
        }
        return Ok(AdminToken::FromEnvironment);
    }
    if !stored.is_empty() {
        return Ok(AdminToken::Existing { file });
    }
    let token = rotate_admin_token(journal, &config.data_dir, now).await?;
    Ok(AdminToken::Generated { token, file })
}

fn admin_token_ops(hash: String, message: &str, now: i64) -> Vec<WriteOp> {
    let activity = Activity::new(
        new_id(),
        ActivityKind::AdminTokenRotated,
        &Principal::System,
        message,
        now,
    );
    vec![WriteOp::admin_token(new_id(), hash, now), WriteOp::activity(&activity)]
}

/// Generates a new admin token, replaces the stored one, and writes it to the data folder (mode 0600).
pub async fn rotate_admin_token(journal: &Journal, data_dir: &Path, now: i64) -> Result<String, StartError> {
    let token = token::generate_token();
    let file = admin_token_file(data_dir);
    write_secret_file(&file, &token).map_err(|source| StartError::TokenFile {
        file: file.clone(),
        source,
    })?;
    journal
        .commit(admin_token_ops(token::hash_token(&token), "admin token generated", now))
        .await
        .map_err(|source| StartError::Store {
            url: "journal".into(),
            source,
        })?;
    Ok(token)
}

fn write_secret_file(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    writeln!(file, "{contents}")?;
    file.sync_all()
}
