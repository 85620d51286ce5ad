//! Load generator: a mixed workload against a running Mission Control server on this machine, reporting
//! throughput and p50/p95/p99/max latency per operation, and errors by status.
//!
//! ```sh
//! MC_MESSAGE_RATE_PER_MIN=0 MC_ADMIN_TOKEN=… cargo run --release -- serve     # in one terminal
//! cargo run --release --example loadgen -- --url http://127.0.0.1:7070 --token … --duration 30s
//! ```
//!
//! A set-up that is not measured registers `--agents` agents (`lg-<run id>-<n>`) and a pool of tasks; then
//! `--concurrency` workers issue requests back to back for `--warmup` + `--duration` (at most `--max-requests`):
//! send message 40 %, read inbox 25 %, read capacity 10 %, task create/transition 20 %, suitable agents 5 %.
//! Agents act with their own tokens. Only loopback URLs are accepted: this tool must never load someone else's
//! server. The server's message rate limit (`MC_MESSAGE_RATE_PER_MIN`, 10 per agent per minute by default) turns
//! most sends into 429s; start it with `MC_MESSAGE_RATE_PER_MIN=0` for a throughput run.

mod record;
mod report;
mod schedule;
mod stats;
mod workload;

use clap::Parser;
use futures_util::future::join_all;
use rand::Rng;
use record::Recorder;
use report::{Report, Settings};
use reqwest::{Client, Url};
use schedule::Schedule;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use workload::Target;

/// A mixed workload against a Mission Control server on this machine (loopback only).
#[derive(Debug, Parser)]
#[command(name = "loadgen")]
struct Args {
    /// The server; its host must be loopback (127.0.0.0/8, ::1 or localhost).
    #[arg(long, default_value = "http://127.0.0.1:7070")]
    url: String,
    /// The admin token (registers the agents and the pool tasks).
    #[arg(long, env = "MC_ADMIN_TOKEN", hide_env_values = true)]
    token: String,
    /// Agents registered for the run (at least 2: messages go from one to another).
    #[arg(long, default_value_t = 50)]
    agents: usize,
    /// Requests in flight at once: one worker each, issuing requests back to back.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Client threads, each with its own single-threaded runtime and HTTP client, sharing the workers.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// How long to measure, after the warm-up (`30s`, `2m`; at most 1 h).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Load before measuring starts, not counted (connections opened, caches warm).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Hard cap on the requests of the load phase, warm-up included.
    #[arg(long, default_value_t = 1_000_000)]
    max_requests: u64,
    /// Seed of the mix and the choices of agents and tasks (random when not given; printed either way).
    #[arg(long)]
    seed: Option<u64>,
    /// Unassigned tasks created for suitable-agents to rank.
    #[arg(long, default_value_t = 20)]
    pool_tasks: usize,
    /// Longest wait for one answer before it counts as a transport error.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

const MAX_DURATION: Duration = Duration::from_secs(3600);
const MAX_WARMUP: Duration = Duration::from_secs(600);
/// How often a progress line goes to stderr.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::from(2)
        }
    }
}

/// The server's origin (`http://127.0.0.1:7070`), or why the URL is refused.
fn check_url(url: &str) -> Result<String, String> {
    let parsed = Url::parse(url).map_err(|e| format!("--url {url}: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("--url {url}: only http and https are supported"));
    }
    let host = parsed.host_str().unwrap_or_default();
    if !stats::is_loopback_host(host) {
        return Err(format!(
            "--url {url}: refusing to load '{host}': only this machine's loopback (127.0.0.0/8, ::1, localhost) \
             may be targeted"
        ));
    }
    if !matches!(parsed.path(), "" | "/") || parsed.query().is_some() {
        return Err(format!("--url {url}: give the server's root, without a path or query"));
    }
    Ok(parsed.origin().ascii_serialization())
}

fn validate(args: &Args) -> Result<(), String> {
    let checks = [
        (args.agents >= 2 && args.agents <= 10_000, "--agents must be 2–10 000"),
        (
            args.concurrency >= 1 && args.concurrency <= 4096,
            "--concurrency must be 1–4 096",
        ),
        (
            args.threads >= 1 && args.threads <= args.concurrency,
            "--threads must be 1–concurrency",
        ),
        (
            !args.duration.is_zero() && args.duration <= MAX_DURATION,
            "--duration must be above 0 and at most 1h",
        ),
        (args.warmup <= MAX_WARMUP, "--warmup must be at most 10m"),
        (args.max_requests >= 1, "--max-requests must be at least 1"),
        (
            args.pool_tasks >= 1 && args.pool_tasks <= 1000,
            "--pool-tasks must be 1–1 000",
        ),
        (!args.timeout.is_zero(), "--timeout must be above 0"),
    ];
    let problems: Vec<&str> = checks.iter().filter(|(ok, _)| !ok).map(|(_, why)| *why).collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// One HTTP client: no proxy (a proxy from the environment would take loopback traffic elsewhere), no redirects
/// (they could lead off this machine), `localhost` pinned to the loopback addresses, and a pool as large as the
/// requests in flight so no worker waits for a connection.
fn client(pool: usize, timeout: Duration) -> Result<Client, String> {
    let loopback = [
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 0),
    ];
    Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .resolve_to_addrs("localhost", &loopback)
        .pool_max_idle_per_host(pool)
        .tcp_nodelay(true)
        .timeout(timeout)
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting a runtime: {e}"))
}

fn run(args: Args) -> Result<(), String> {
    let base = check_url(&args.url)?;
    validate(&args)?;
    let seed = args.seed.unwrap_or_else(|| rand::rng().random());
    let settings = Settings {
        url: base.clone(),
        agents: args.agents,
        concurrency: args.concurrency,
        threads: args.threads,
        duration: humantime::format_duration(args.duration).to_string(),
        warmup: humantime::format_duration(args.warmup).to_string(),
        max_requests: args.max_requests,
        pool_tasks: args.pool_tasks,
        timeout: humantime::format_duration(args.timeout).to_string(),
        seed,
    };
    let target = Target {
        base,
        admin: workload::bearer(&args.token)?,
    };
    let report = runtime()?.block_on(load(&args, settings, target))?;
    println!("{}", report.markdown());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).map_err(|e| format!("writing the JSON report: {e}"))?;
        std::fs::write(path, json + "\n").map_err(|e| format!("writing {}: {e}", path.display()))?;
        println!("JSON report written to {}", path.display());
    }
    Ok(())
}

/// Set-up, then the load phase on `--threads` threads while this one shows progress and listens for Ctrl-C.
async fn load(args: &Args, settings: Settings, target: Target) -> Result<Report, String> {
    println!("# loadgen");
    println!();
    println!("settings: {}", settings.as_flags());
    println!(
        "mix: {}",
        stats::Kind::ALL
            .iter()
            .map(|k| format!("{} {} %", k.label(), k.weight()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "note: the server limits message sends (MC_MESSAGE_RATE_PER_MIN, 10 per agent per minute by default; \
         over it → 429); start it with MC_MESSAGE_RATE_PER_MIN=0 for a pure throughput run."
    );
    let setup_client = client(args.concurrency, args.timeout)?;
    let version = workload::check_server(&setup_client, &target).await?;
    let started = Instant::now();
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(settings.seed);
    let parallel = args.concurrency.min(16);
    let fleet = workload::setup(&setup_client, &target, args.agents, args.pool_tasks, parallel, &mut rng).await?;
    drop(setup_client);
    println!(
        "set-up (not measured): {} agents lg-{}-0…{} and {} pool tasks in {:.1} s on mission-control {version}",
        fleet.agents.len(),
        fleet.run_id,
        fleet.agents.len() - 1,
        args.pool_tasks,
        started.elapsed().as_secs_f64()
    );
    println!();

    let fleet = Arc::new(fleet);
    let schedule = Arc::new(Schedule::new(
        Instant::now(),
        args.warmup,
        args.duration,
        args.max_requests,
        settings.seed,
    ));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut threads = Vec::with_capacity(args.threads);
    for t in 0..args.threads {
        let workers: Vec<usize> = (0..args.concurrency).filter(|w| w % args.threads == t).collect();
        let (fleet, schedule, done) = (fleet.clone(), schedule.clone(), done_tx.clone());
        let (pool, timeout, seed) = (workers.len(), args.timeout, settings.seed);
        let handle = std::thread::Builder::new()
            .name(format!("loadgen-{t}"))
            .spawn(move || -> Result<Recorder, String> {
                let _done = done;
                let client = client(pool, timeout)?;
                let recorders = runtime()?.block_on(join_all(workers.iter().map(|&w| {
                    let worker_seed = seed ^ (w as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                    workload::worker(client.clone(), &fleet, &schedule, worker_seed)
                })));
                let mut merged = Recorder::default();
                recorders.into_iter().for_each(|r| merged.merge(r));
                Ok(merged)
            })
            .map_err(|e| format!("starting a client thread: {e}"))?;
        threads.push(handle);
    }
    drop(done_tx);

    watch(&schedule, &mut done_rx).await;

    let mut merged = Recorder::default();
    for handle in threads {
        let recorder = handle.join().map_err(|_| "a client thread panicked".to_string())??;
        merged.merge(recorder);
    }
    let seconds = merged.last_done.map_or(0.0, |end| {
        end.saturating_duration_since(schedule.measure_start()).as_secs_f64()
    });
    let ended = schedule.end_reason();
    Ok(Report::build(
        settings,
        version,
        fleet.run_id.clone(),
        ended,
        seconds,
        merged,
    ))
}

/// Until every client thread is done (each holds a sender of `done_rx` and drops it when it ends): a progress
/// line every few seconds, and Ctrl-C stops the load early — requests in flight finish and are reported.
async fn watch(schedule: &Schedule, done_rx: &mut tokio::sync::mpsc::UnboundedReceiver<()>) {
    let started = Instant::now();
    let mut ticker = tokio::time::interval(PROGRESS_EVERY);
    ticker.tick().await;
    let mut last = 0u64;
    loop {
        tokio::select! {
            finished = done_rx.recv() => {
                if finished.is_none() {
                    break;
                }
            }
            _ = tokio::signal::ctrl_c() => {
                eprintln!("stopping: the requests in flight finish, then the report");
                schedule.stop();
            }
            _ = ticker.tick() => {
                let now = schedule.completed.load(Ordering::Relaxed);
                eprintln!(
                    "{:>4.0} s: {now} requests ({:.0}/s)",
                    started.elapsed().as_secs_f64(),
                    (now - last) as f64 / PROGRESS_EVERY.as_secs_f64()
                );
                last = now;
            }
        }
    }
}
