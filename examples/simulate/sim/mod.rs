//! A team of simulated agents working through a generated workload on the real runtime, embedded as a
//! library with a manual clock, and a report of how it went judged against the simulator's ground truth.
//! `examples/simulate/main.rs` is the command line; `tests/api/simulation.rs` runs a small one.

mod agent;
pub mod judge;
pub mod report;
pub mod sweep;
mod truth;
pub mod workload;
mod world;

use report::{Ablation, Report, SeedRun, SweepReport};
use std::fmt;
use std::time::Instant;
use workload::{Shape, Workload};

/// How the runtime is run: as is, or with one of its mechanisms switched off for the ablation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    AsIs,
    /// Every escalation rule disabled through the rules API before the work starts.
    RulesOff,
    /// The coordinator assigns with `force` (as the admin) to the top-scored agent whether or not it can accept
    /// work, and agents claim everything assigned to them with `force` and share their minutes between tasks.
    CapacityOff,
}

impl Variant {
    pub fn rules_on(self) -> bool {
        self != Variant::RulesOff
    }

    pub fn capacity_checks(self) -> bool {
        self != Variant::CapacityOff
    }

    pub fn label(self) -> &'static str {
        match self {
            Variant::AsIs => "as is",
            Variant::RulesOff => "escalation rules off",
            Variant::CapacityOff => "capacity checks off",
        }
    }
}

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
    run_variant(config, Variant::AsIs, config.serial).await
}

/// Runs one variant of the config's workload (and the serial baseline when asked) and reports.
pub async fn run_variant(config: &SimConfig, variant: Variant, serial: bool) -> Result<Report, SimError> {
    let workload = Workload::generate(config.shape);
    let total = workload.tasks.len();
    let serial_workload = serial.then(|| workload.serial());
    let dir = tempfile::tempdir()?;
    let options = world::RunOptions {
        database_url: config.database_url.clone(),
        data_dir: dir.path().join("team"),
        restart_after_finished: config
            .restart_at
            .map(|share| ((total as f64 * share).ceil() as usize).clamp(1, total.max(1))),
        variant,
    };
    let team = world::run(workload, &options).await?;
    let serial = match serial_workload {
        Some(workload) => {
            let options = world::RunOptions {
                database_url: None,
                data_dir: dir.path().join("serial"),
                restart_after_finished: None,
                variant: Variant::AsIs,
            };
            Some(world::run(workload, &options).await?)
        }
        None => None,
    };
    Ok(Report::new(config, &team, serial.as_ref()))
}

/// The same seed three ways: as is (with the serial baseline when the config asks), escalation rules off,
/// capacity checks off. Each on its own temporary SQLite database unless the config names one (then only
/// the first may use it: a database must be empty).
pub async fn run_ablation(config: &SimConfig) -> Result<Ablation, SimError> {
    let as_is = run_variant(config, Variant::AsIs, config.serial).await?;
    let own_database = SimConfig {
        database_url: None,
        ..config.clone()
    };
    let rules_off = run_variant(&own_database, Variant::RulesOff, false).await?;
    let capacity_off = run_variant(&own_database, Variant::CapacityOff, false).await?;
    Ok(Ablation::new(as_is, rules_off, capacity_off))
}

/// Every seed from `first` to `last` (inclusive), each with its serial baseline and, when asked, its
/// ablation; `progress` hears of each seed as it finishes.
pub async fn run_sweep(
    config: &SimConfig,
    first: u64,
    last: u64,
    ablation: bool,
    mut progress: impl FnMut(&SeedRun),
) -> Result<SweepReport, SimError> {
    let started = Instant::now();
    let mut runs = Vec::new();
    for seed in first..=last {
        let mut seeded = config.clone();
        seeded.shape.seed = seed;
        seeded.serial = true;
        seeded.database_url = None;
        let run = if ablation {
            SeedRun::Ablation(Box::new(run_ablation(&seeded).await?))
        } else {
            SeedRun::AsIs(Box::new(run(&seeded).await?))
        };
        progress(&run);
        runs.push(run);
    }
    Ok(SweepReport::new(
        first,
        last,
        ablation,
        runs,
        started.elapsed().as_secs_f64(),
    ))
}
