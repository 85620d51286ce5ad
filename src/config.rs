//! Configuration: one typed [`Config`], read from flags and `MC_*` environment variables by clap, validated as
//! a whole (every problem named at once), and passed into `Runtime::start` — never a global, so tests and
//! simulations can run several runtimes side by side.

use crate::clock::{SharedClock, SystemClock};
use crate::domain::capacity::CapacityLimits;
use crate::domain::slo::SloThresholds;
use crate::store::{DatabaseUrl, SqliteSync, StoreOptions};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A value that must never be printed: its `Debug` shows `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// The settings of `mission-control serve`, each a flag and an environment variable.
#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// Address and port the HTTP server listens on.
    #[arg(long, env = "MC_BIND", default_value = "127.0.0.1:7070")]
    pub bind: String,
    #[command(flatten)]
    pub database: DatabaseSettings,
    /// Operator token. When set, it is the admin token (its hash is stored at each start); when unset, one is
    /// generated on first start and written to the data folder.
    #[arg(long, env = "MC_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// An `active` agent silent for longer than this becomes `offline` (e.g. `90s`, `5m`, `1h`).
    #[arg(long, env = "MC_HEARTBEAT_TIMEOUT", default_value = "5m")]
    pub heartbeat_timeout: String,
    /// Period of the runtime's tick (heartbeat monitor, SLO monitor, message deadlines and expiry, escalation
    /// rules), in ms.
    #[arg(long, env = "MC_TICK_MS", default_value_t = 30_000)]
    pub tick_ms: u64,
    /// Messages one agent may send per minute (sliding window); over it → 429. 0 turns the limit off.
    #[arg(long, env = "MC_MESSAGE_RATE_PER_MIN", default_value_t = 10)]
    pub message_rate_per_min: u32,
    /// How long a message lives before the tick deletes it (e.g. `30d`, `12h`; at least 1h).
    #[arg(long, env = "MC_MESSAGE_TTL", default_value = "30d")]
    pub message_ttl: String,
    /// An agent at or above this utilization (percent of its daily minutes in progress) cannot accept work.
    #[arg(long, env = "MC_CAPACITY_MAX_UTILIZATION", default_value_t = 80)]
    pub capacity_max_utilization: u32,
    /// A task has used this share of its SLO (percent) → `AT_RISK`.
    #[arg(long, env = "MC_SLO_AT_RISK_PERCENT", default_value_t = 75)]
    pub slo_at_risk_percent: u32,
    /// Less than this left before the deadline → `CRITICAL` (e.g. `10m`).
    #[arg(long, env = "MC_SLO_CRITICAL_REMAINING", default_value = "10m")]
    pub slo_critical_remaining: String,
    /// How many rungs an escalation ladder has; a rule that reached it fires no more until its task moves.
    #[arg(long, env = "MC_ESCALATION_MAX_DEPTH", default_value_t = 3)]
    pub escalation_max_depth: u32,
    /// Where escalation `webhook` actions without a `url`, and escalations that reach a human, POST their JSON.
    #[arg(long, env = "MC_ESCALATION_WEBHOOK_URL")]
    pub escalation_webhook_url: Option<String>,
    /// Delivery attempts of an outbox row (alert, webhook, page) before it is `dead`.
    #[arg(long, env = "MC_OUTBOX_MAX_ATTEMPTS", default_value_t = 8)]
    pub outbox_max_attempts: u32,
    /// Whether this process delivers the outbox. Off, rows are written and wait (for a node that is not the
    /// dispatcher, or to hold deliveries while a receiver is down). Accepts true/false, 1/0, yes/no, on/off.
    #[arg(long, env = "MC_OUTBOX_DISPATCH", default_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub outbox_dispatch: bool,
    /// Largest accepted request body, in bytes; larger bodies get 413.
    #[arg(long, env = "MC_BODY_LIMIT", default_value_t = 1_048_576)]
    pub body_limit: usize,
    /// HTTP worker threads (0 = one per core).
    #[arg(long, env = "MC_WORKERS", default_value_t = 0)]
    pub workers: usize,
    /// Serve `GET /metrics` without a token (for a Prometheus server on a trusted network); otherwise it
    /// needs the admin token. `MC_METRICS_PUBLIC` accepts true/false, 1/0, yes/no, on/off.
    #[arg(long, env = "MC_METRICS_PUBLIC", value_parser = clap::builder::BoolishValueParser::new())]
    pub metrics_public: bool,
}

/// Where the data lives; shared by `serve`, `migrate` and `token rotate-admin`.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseSettings {
    /// `postgres://user@host/db`, or a SQLite file path (created on first start).
    #[arg(long, env = "MC_DATABASE_URL", default_value = "./data/mission-control.db")]
    pub database_url: String,
    /// Folder for the generated admin token file.
    #[arg(long, env = "MC_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// SQLite `synchronous` pragma: `normal` (survives a crash of the process) or `full` (also power loss).
    #[arg(long, env = "MC_SQLITE_SYNCHRONOUS", default_value = "normal")]
    pub sqlite_synchronous: String,
    /// Connections in the read pool.
    #[arg(long, env = "MC_DB_POOL_SIZE", default_value_t = 8)]
    pub db_pool_size: u32,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub database_url: DatabaseUrl,
    pub data_dir: PathBuf,
    pub admin_token: Option<Secret>,
    pub heartbeat_timeout: Duration,
    /// `None` disables the timer: tests and simulations send ticks themselves after moving a `ManualClock`.
    pub tick: Option<Duration>,
    pub messaging: MessagingConfig,
    pub capacity: CapacityLimits,
    pub slo: SloThresholds,
    pub escalation: EscalationConfig,
    pub body_limit: usize,
    pub workers: usize,
    /// `GET /metrics` without a token (`MC_METRICS_PUBLIC`).
    pub metrics_public: bool,
    pub store: StoreOptions,
    pub clock: SharedClock,
}

/// Rules of agent-to-agent messaging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessagingConfig {
    /// Sends per sending agent per minute; 0 = unlimited.
    pub rate_per_min: u32,
    pub ttl: Duration,
}

/// Limits of the escalation engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationConfig {
    /// The top rung of a ladder (`MC_ESCALATION_MAX_DEPTH`).
    pub max_depth: u32,
    /// The default webhook (`MC_ESCALATION_WEBHOOK_URL`).
    pub webhook_url: Option<String>,
    /// Delivery attempts of an outbox row before it is dead (`MC_OUTBOX_MAX_ATTEMPTS`).
    pub outbox_max_attempts: u32,
    /// Whether this process delivers the outbox (`MC_OUTBOX_DISPATCH`).
    pub dispatch: bool,
}

impl Default for EscalationConfig {
    fn default() -> Self {
        EscalationConfig {
            max_depth: 3,
            webhook_url: None,
            outbox_max_attempts: crate::domain::outbox::DEFAULT_MAX_ATTEMPTS,
            dispatch: true,
        }
    }
}

impl MessagingConfig {
    pub fn ttl_ms(&self) -> i64 {
        i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX)
    }
}

impl Default for MessagingConfig {
    fn default() -> Self {
        MessagingConfig {
            rate_per_min: 10,
            ttl: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

impl Config {
    /// A configuration for embedding: SQLite at `database_url`, system clock, no timer, defaults elsewhere.
    pub fn embedded(database_url: &str, data_dir: impl Into<PathBuf>) -> Result<Config, ConfigError> {
        let database = DatabaseSettings {
            database_url: database_url.to_string(),
            data_dir: data_dir.into(),
            sqlite_synchronous: "normal".into(),
            db_pool_size: 4,
        };
        let mut config = Config::from_settings(Settings {
            bind: "127.0.0.1:0".into(),
            database,
            admin_token: None,
            heartbeat_timeout: "5m".into(),
            tick_ms: 30_000,
            message_rate_per_min: 10,
            message_ttl: "30d".into(),
            capacity_max_utilization: 80,
            slo_at_risk_percent: 75,
            slo_critical_remaining: "10m".into(),
            escalation_max_depth: 3,
            escalation_webhook_url: None,
            outbox_max_attempts: crate::domain::outbox::DEFAULT_MAX_ATTEMPTS,
            outbox_dispatch: true,
            body_limit: 1_048_576,
            workers: 1,
            metrics_public: false,
        })?;
        config.tick = None;
        Ok(config)
    }

    pub fn from_settings(settings: Settings) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        let bind = settings
            .bind
            .parse::<SocketAddr>()
            .map_err(|e| problems.push(format!("MC_BIND '{}': {e}", settings.bind)))
            .ok();
        let store = settings.database.store_options().map_err(|e| problems.push(e)).ok();
        let database_url = DatabaseUrl::parse(&settings.database.database_url)
            .map_err(|e| problems.push(format!("MC_DATABASE_URL: {e}")))
            .ok();
        let heartbeat_timeout = humantime::parse_duration(&settings.heartbeat_timeout)
            .map_err(|e| problems.push(format!("MC_HEARTBEAT_TIMEOUT '{}': {e}", settings.heartbeat_timeout)))
            .ok()
            .filter(|d| {
                let ok = !d.is_zero();
                if !ok {
                    problems.push("MC_HEARTBEAT_TIMEOUT must be positive".into());
                }
                ok
            });
        let message_ttl = humantime::parse_duration(&settings.message_ttl)
            .map_err(|e| problems.push(format!("MC_MESSAGE_TTL '{}': {e}", settings.message_ttl)))
            .ok()
            .filter(|d| {
                let ok = *d >= Duration::from_secs(3600);
                if !ok {
                    problems.push("MC_MESSAGE_TTL must be at least 1h".into());
                }
                ok
            });
        let critical_remaining = humantime::parse_duration(&settings.slo_critical_remaining)
            .map_err(|e| {
                problems.push(format!(
                    "MC_SLO_CRITICAL_REMAINING '{}': {e}",
                    settings.slo_critical_remaining
                ))
            })
            .ok();
        if !(1..=1000).contains(&settings.capacity_max_utilization) {
            problems.push("MC_CAPACITY_MAX_UTILIZATION must be between 1 and 1000".into());
        }
        if !(1..=100).contains(&settings.slo_at_risk_percent) {
            problems.push("MC_SLO_AT_RISK_PERCENT must be between 1 and 100".into());
        }
        if !(1..=10).contains(&settings.escalation_max_depth) {
            problems.push("MC_ESCALATION_MAX_DEPTH must be between 1 and 10".into());
        }
        if !(1..=100).contains(&settings.outbox_max_attempts) {
            problems.push("MC_OUTBOX_MAX_ATTEMPTS must be between 1 and 100".into());
        }
        let webhook_url = settings.escalation_webhook_url.filter(|u| !u.trim().is_empty());
        if let Some(url) = &webhook_url {
            if reqwest::Url::parse(url).map_or(true, |u| !matches!(u.scheme(), "http" | "https")) {
                problems.push(format!(
                    "MC_ESCALATION_WEBHOOK_URL '{url}' is not an http:// or https:// URL"
                ));
            }
        }
        if settings.tick_ms < 10 {
            problems.push("MC_TICK_MS must be at least 10".into());
        }
        if settings.body_limit < 1024 {
            problems.push("MC_BODY_LIMIT must be at least 1024 bytes".into());
        }
        let admin_token = settings.admin_token.filter(|t| !t.trim().is_empty());
        if admin_token.as_ref().is_some_and(|t| t.len() < 16) {
            problems.push("MC_ADMIN_TOKEN must be at least 16 characters".into());
        }
        match (
            bind,
            store,
            database_url,
            heartbeat_timeout,
            message_ttl,
            critical_remaining,
        ) {
            (Some(bind), Some(store), Some(database_url), Some(heartbeat_timeout), Some(ttl), Some(critical))
                if problems.is_empty() =>
            {
                Ok(Config {
                    bind,
                    database_url,
                    data_dir: settings.database.data_dir,
                    admin_token: admin_token.map(Secret::new),
                    heartbeat_timeout,
                    tick: Some(Duration::from_millis(settings.tick_ms)),
                    messaging: MessagingConfig {
                        rate_per_min: settings.message_rate_per_min,
                        ttl,
                    },
                    capacity: CapacityLimits {
                        max_utilization_percent: settings.capacity_max_utilization,
                    },
                    slo: SloThresholds {
                        at_risk_percent: settings.slo_at_risk_percent,
                        critical_remaining_ms: i64::try_from(critical.as_millis()).unwrap_or(i64::MAX),
                    },
                    escalation: EscalationConfig {
                        max_depth: settings.escalation_max_depth,
                        webhook_url,
                        outbox_max_attempts: settings.outbox_max_attempts,
                        dispatch: settings.outbox_dispatch,
                    },
                    body_limit: settings.body_limit,
                    workers: settings.workers,
                    metrics_public: settings.metrics_public,
                    store,
                    clock: Arc::new(SystemClock),
                })
            }
            _ => Err(ConfigError(problems)),
        }
    }
}

impl DatabaseSettings {
    pub fn url(&self) -> Result<DatabaseUrl, ConfigError> {
        DatabaseUrl::parse(&self.database_url).map_err(|e| ConfigError(vec![format!("MC_DATABASE_URL: {e}")]))
    }

    pub fn store_options(&self) -> Result<StoreOptions, String> {
        let sqlite_sync = match self.sqlite_synchronous.to_ascii_lowercase().as_str() {
            "normal" => SqliteSync::Normal,
            "full" => SqliteSync::Full,
            other => return Err(format!("MC_SQLITE_SYNCHRONOUS '{other}': expected normal or full")),
        };
        if !(1..=256).contains(&self.db_pool_size) {
            return Err("MC_DB_POOL_SIZE must be between 1 and 256".into());
        }
        Ok(StoreOptions {
            pool_size: self.db_pool_size,
            sqlite_sync,
            ..StoreOptions::default()
        })
    }
}

/// Every configuration problem found, so one run shows them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub Vec<String>);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid configuration: {}", self.0.join("; "))
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        settings: Settings,
    }

    #[test]
    fn documented_defaults_hold() {
        let cli = Cli::try_parse_from(["mc"]).unwrap();
        let config = Config::from_settings(cli.settings).unwrap();
        assert_eq!(config.bind.to_string(), "127.0.0.1:7070");
        assert_eq!(
            config.database_url,
            DatabaseUrl::Sqlite("./data/mission-control.db".into())
        );
        assert_eq!(config.heartbeat_timeout, Duration::from_secs(300));
        assert_eq!(config.tick, Some(Duration::from_secs(30)));
        assert_eq!(config.body_limit, 1_048_576);
        assert_eq!(config.store.sqlite_sync, SqliteSync::Normal);
        assert_eq!(config.capacity, CapacityLimits::default());
        assert_eq!(config.slo, SloThresholds::default());
        assert_eq!(config.escalation, EscalationConfig::default());
        assert!(!config.metrics_public);
    }

    #[test]
    fn metrics_can_be_made_public() {
        let cli = Cli::try_parse_from(["mc", "--metrics-public"]).unwrap();
        assert!(Config::from_settings(cli.settings).unwrap().metrics_public);
    }

    #[test]
    fn every_problem_is_reported() {
        let cli = Cli::try_parse_from([
            "mc",
            "--bind",
            "nowhere",
            "--heartbeat-timeout",
            "soon",
            "--sqlite-synchronous",
            "sometimes",
        ])
        .unwrap();
        let err = Config::from_settings(cli.settings).unwrap_err();
        assert_eq!(err.0.len(), 3, "{err}");
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "***");
    }
}
