//! A team of simulated agents working through a generated workload on the real runtime, embedded as a
//! library with a manual clock, and a report of how it went judged against the simulator's ground truth.
//! `examples/simulate/main.rs` is the command line; `tests/api/simulation.rs` runs a small one.

mod agent;
pub mod report;
mod truth;
pub mod workload;
mod world;

use report::Report;
use std::fmt;
use workload::{Shape, Workload};

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub shape: Shape,
    /// Restart the runtime once this share of the tasks (0–1) is done.
    pub restart_at: Option<f64>,
    /// Also run the same workload on one agent, for the speed-up.
    pub serial: bool,
    /// `None`: a temporary SQLite database.
    pub database_url: Option<String>,
}

/// Anything that stops a simulation before its report: the runtime refusing something the simulated agents
/// expected to be allowed is a finding, not noise, so it ends the run with the reason.
#[derive(Debug)]
pub struct SimError(pub String);

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SimError {}

macro_rules! sim_error_from {
    ($($source:ty),*) => {$(
        impl From<$source> for SimError {
            fn from(e: $source) -> Self {
                SimError(e.to_string())
            }
        }
    )*};
}

sim_error_from!(
    mission_control::error::AppError,
    actix::MailboxError,
    mission_control::runtime::StartError,
    mission_control::config::ConfigError,
    serde_json::Error,
    std::io::Error
);

/// Runs the workload the config describes (and the serial baseline when asked) and reports.
pub async fn run(config: &SimConfig) -> Result<Report, SimError> {
    let workload = Workload::generate(config.shape);
    let total = workload.tasks.len();
    let serial_workload = config.serial.then(|| workload.serial());
    let dir = tempfile::tempdir()?;
    let options = world::RunOptions {
        database_url: config.database_url.clone(),
        data_dir: dir.path().join("team"),
        restart_after_finished: config
            .restart_at
            .map(|share| ((total as f64 * share).ceil() as usize).clamp(1, total.max(1))),
    };
    let team = world::run(workload, &options).await?;
    let serial = match serial_workload {
        Some(workload) => {
            let options = world::RunOptions {
                database_url: None,
                data_dir: dir.path().join("serial"),
                restart_after_finished: None,
            };
            Some(world::run(workload, &options).await?)
        }
        None => None,
    };
    Ok(Report::new(config, &team, serial.as_ref()))
}
