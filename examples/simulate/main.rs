//! A simulated working day of a team of agents on the real runtime, with the seed's success metrics as the
//! report, judged against the simulator's own ground truth. Deterministic for a seed.
//!
//! `cargo run --release --example simulate -- [--agents 8] [--tasks 60] [--seed 42] [--failure-rate 0.1]
//! [--offline-agents 1] [--restart-at 50%] [--serial] [--ablation] [--seeds 1..20] [--json report.json]`
//!
//! Exits 1 when a task or a message was lost or a task is stuck (in the runs as is), 2 when the simulation
//! could not run.

mod sim;

use clap::Parser;
use sim::workload::Shape;
use sim::SimConfig;
use std::fmt::Display;
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
    /// Also run the same seed with every escalation rule disabled (through the rules API) and with the
    /// capacity checks off, and report the breaches the rules prevented and the overloads capacity tracking
    /// prevented. "Capacity checks off" drives the same runtime with the admin's `force`: the coordinator
    /// hands out every waiting task at once to the top-scored agent whether or not it can accept work, and
    /// agents claim everything assigned to them and share their minutes between their tasks in turn.
    #[arg(long)]
    ablation: bool,
    /// Run every seed of an inclusive range (`1..20`), each with its serial baseline (and its ablation with
    /// `--ablation`), and print the Phase 1 checklist with min / median / max over the seeds. Overrides
    /// `--seed`, `--serial`, `--restart-at` and `--database-url`.
    #[arg(long, value_parser = parse_seeds)]
    seeds: Option<(u64, u64)>,
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

fn parse_seeds(text: &str) -> Result<(u64, u64), String> {
    let (first, last) = text
        .split_once("..")
        .ok_or_else(|| format!("'{text}' is not a range: use 1..20"))?;
    let first: u64 = first.trim().parse().map_err(|_| format!("'{first}' is not a seed"))?;
    let last: u64 = last
        .trim()
        .trim_start_matches('=')
        .parse()
        .map_err(|_| format!("'{last}' is not a seed"))?;
    if first <= last && last - first < 10_000 {
        Ok((first, last))
    } else {
        Err("the first seed must not be after the last, and at most 10000 seeds".into())
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
    let outcome = if let Some((first, last)) = args.seeds {
        let config = SimConfig {
            restart_at: None,
            database_url: None,
            ..config
        };
        let progress = |run: &sim::report::SeedRun| {
            let r = run.as_is();
            eprintln!(
                "seed {} done: {} / {} tasks, makespan {} min ({} s)",
                r.settings.seed, r.tasks.done, r.tasks.total, r.tasks.makespan_minutes, r.wall_seconds
            );
        };
        sim::run_sweep(&config, first, last, args.ablation, progress)
            .await
            .map(|sweep| (sweep.passed(), serde_json::to_value(&sweep), sweep.to_string()))
    } else if args.ablation {
        sim::run_ablation(&config).await.map(|ablation| {
            (
                ablation.as_is.passed(),
                serde_json::to_value(&ablation),
                ablation.to_string(),
            )
        })
    } else {
        sim::run(&config)
            .await
            .map(|report| (report.passed(), serde_json::to_value(&report), report.to_string()))
    };
    let (passed, json, text) = match outcome {
        Ok(outcome) => outcome,
        Err(e) => {
            eprintln!("simulation failed: {e}");
            return ExitCode::from(2);
        }
    };
    finish(passed, json, text, args.json.as_deref())
}

fn finish(
    passed: bool,
    json: Result<serde_json::Value, serde_json::Error>,
    text: impl Display,
    path: Option<&std::path::Path>,
) -> ExitCode {
    // A reader that stops early (`| head`) is no failure of the run; the exit code still says how it went.
    let _ = writeln!(std::io::stdout().lock(), "{text}");
    if let Some(path) = path {
        let written = json
            .and_then(|json| serde_json::to_vec_pretty(&json))
            .map_err(|e| e.to_string())
            .and_then(|json| std::fs::write(path, json).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if passed {
        ExitCode::SUCCESS
    } else {
        eprintln!("FAILED: tasks or messages were lost, or tasks are stuck");
        ExitCode::FAILURE
    }
}
