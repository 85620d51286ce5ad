//! An external agent for a running `mission-control serve`, over HTTP only: it wakes, reads and answers its
//! messages, claims its tasks, "works" on each for a while, completes or fails it, and tells the agents
//! waiting on it. Run two of them to watch them coordinate:
//!
//! ```sh
//! cargo run --example agent_client -- --name grace --level lead --peer ada
//! cargo run --example agent_client -- --name ada --lead grace --failure-rate 0.3
//! ```
//!
//! (with `MC_ADMIN_TOKEN` set so each registers itself; `--token` uses an agent's own token instead).

mod client;

use clap::Parser;
use client::{ClientConfig, Credentials};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(about = "An external Mission Control agent that works its tasks over the HTTP API")]
struct Cli {
    /// Base URL of the server.
    #[arg(long, env = "MC_URL", default_value = "http://127.0.0.1:7070")]
    url: String,
    /// The agent's name (registered with it, or looked up with --token).
    #[arg(long)]
    name: String,
    /// The agent's own token.
    #[arg(long, env = "MC_AGENT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The operator's token, to register the agent (or take it over if the name exists). Ignored with --token.
    #[arg(long, env = "MC_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Skills to register with, comma-separated.
    #[arg(long, value_delimiter = ',')]
    specializations: Vec<String>,
    /// Level to register with: lead, specialist or intern.
    #[arg(long, default_value = "specialist")]
    level: String,
    /// The agent to report to (name or id): set as lead when registering, asked for help, told of done work.
    #[arg(long)]
    lead: Option<String>,
    /// Another agent to keep informed of finished work, and to ask for help when there is no lead.
    #[arg(long)]
    peer: Option<String>,
    /// Time spent "working" on each task (`500ms`, `3s`, `2m`).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    work_time: Duration,
    /// Chance (0 to 1) that an attempt fails; the task goes back to ready and is retried.
    #[arg(long, default_value_t = 0.0)]
    failure_rate: f64,
    /// Seed of the failure draws, so a run repeats.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stop after completing this many tasks.
    #[arg(long)]
    max_tasks: Option<u32>,
    /// Stop after this many empty inbox polls in a row.
    #[arg(long)]
    idle_exit: Option<u32>,
    /// How long each inbox long poll waits (whole seconds, 1s to 60s).
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    poll_wait: Duration,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let credentials = match (cli.token, cli.admin_token) {
        (Some(token), _) => Credentials::Token(token),
        (None, Some(admin)) => Credentials::Admin(admin),
        (None, None) => {
            eprintln!("error: give the agent's --token, or --admin-token (MC_ADMIN_TOKEN) to register it");
            return ExitCode::from(2);
        }
    };
    let (stop, stop_requested) = tokio::sync::watch::channel(false);
    let name = cli.name.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("[{name}] stopping after the current step (Ctrl-C again to quit at once)");
            let _ = stop.send(true);
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    let mut config = ClientConfig::new(cli.url, cli.name.clone(), credentials);
    config.specializations = cli.specializations;
    config.level = cli.level;
    config.lead = cli.lead;
    config.peer = cli.peer;
    config.work_time = cli.work_time;
    config.failure_rate = cli.failure_rate;
    config.seed = cli.seed;
    config.max_tasks = cli.max_tasks;
    config.idle_exit = cli.idle_exit;
    config.poll_wait = cli.poll_wait;
    config.stop = Some(stop_requested);
    match client::run(config).await {
        Ok(report) => {
            println!("[{}] {report}", cli.name);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("[{}] error: {e}", cli.name);
            ExitCode::FAILURE
        }
    }
}
