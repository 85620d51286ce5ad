//! A simulated working day of a team of agents on the real runtime, with the seed's success metrics as the
//! report. Deterministic for a seed.
//!
//! `cargo run --release --example simulate -- [--agents 8] [--tasks 60] [--seed 42] [--failure-rate 0.1]
//! [--offline-agents 1] [--restart-at 50%] [--serial] [--json report.json]`
//!
//! Exits 1 when a task or a message was lost or a task is stuck, 2 when the simulation could not run.

mod sim;

use clap::Parser;
use sim::workload::Shape;
use sim::SimConfig;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(about = "Simulate a team of agents working through a workload on the Mission Control runtime")]
struct Args {
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=200))]
    agents: u16,
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u16).range(1..=5000))]
    tasks: u16,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Chance that an attempt at a task fails at the end (0–1); the agent then asks its lead for help and
    /// tries again.
    #[arg(long, default_value_t = 0.1, value_parser = parse_rate)]
    failure_rate: f64,
    /// Agents that crash partway through their first task and never come back.
    #[arg(long, default_value_t = 1)]
    offline_agents: u16,
    /// Restart the runtime on the same database once this share of the tasks is done (`50%` or `0.5`).
    #[arg(long, value_parser = parse_share)]
    restart_at: Option<f64>,
    /// Also run the same workload on a single agent, to show the speed-up of the team.
    #[arg(long)]
    serial: bool,
    /// Write the report as JSON to this file as well.
    #[arg(long)]
    json: Option<PathBuf>,
    /// An empty database to run on (`postgres://…` or a SQLite path); default: a temporary SQLite file.
    #[arg(long)]
    database_url: Option<String>,
}

fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text.parse().map_err(|_| format!("'{text}' is not a number"))?;
    if (0.0..=0.9).contains(&rate) {
        Ok(rate)
    } else {
        Err("must be between 0 and 0.9".into())
    }
}

fn parse_share(text: &str) -> Result<f64, String> {
    let share = match text.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.parse::<f64>(),
    }
    .map_err(|_| format!("'{text}' is not a share: use 50% or 0.5"))?;
    if share > 0.0 && share < 1.0 {
        Ok(share)
    } else {
        Err("must be strictly between 0% and 100%".into())
    }
}

#[actix_rt::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let config = SimConfig {
        shape: Shape {
            agents: usize::from(args.agents),
            tasks: usize::from(args.tasks),
            seed: args.seed,
            failure_rate: args.failure_rate,
            offline_agents: usize::from(args.offline_agents),
        },
        restart_at: args.restart_at,
        serial: args.serial,
        database_url: args.database_url,
    };
    let report = match sim::run(&config).await {
        Ok(report) => report,
        Err(e) => {
            eprintln!("simulation failed: {e}");
            return ExitCode::from(2);
        }
    };
    // A reader that stops early (`| head`) is no failure of the run; the exit code still says how it went.
    let _ = writeln!(std::io::stdout().lock(), "{report}");
    if let Some(path) = &args.json {
        let written = serde_json::to_vec_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|json| std::fs::write(path, json).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        eprintln!("FAILED: tasks or messages were lost, or tasks are stuck");
        ExitCode::FAILURE
    }
}
