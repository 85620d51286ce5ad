//! What the benchmarks share: sizes from the environment, how many fixed runs to time, and the summary lines
//! printed once every benchmark of a file has run. Each benchmark uses part of it.
#![allow(dead_code)]

use std::sync::Mutex;
use std::time::Duration;

static SUMMARY: Mutex<Vec<String>> = Mutex::new(Vec::new());

pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `cargo bench` passes `--bench`; `cargo test --benches` does not, and then the sizes and runs stay small.
pub fn benchmarking() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// (agents, open tasks): `MC_BENCH_AGENTS` (1 000) and `MC_BENCH_TASKS` (10 000), or 100 and 1 000 when not
/// benchmarking.
pub fn sizes() -> (usize, usize) {
    let (agents, tasks) = if benchmarking() { (1_000, 10_000) } else { (100, 1_000) };
    (
        env_usize("MC_BENCH_AGENTS", agents).max(1),
        env_usize("MC_BENCH_TASKS", tasks).max(1),
    )
}

/// How many operations each fixed run times: `bench` under `cargo bench`, 2 otherwise.
pub fn fixed_runs(bench: usize) -> usize {
    if benchmarking() {
        bench
    } else {
        2
    }
}

/// Prints a summary line now and keeps it for [`print_summary`].
pub fn record(line: String) {
    println!("{line}");
    SUMMARY.lock().unwrap_or_else(|p| p.into_inner()).push(line);
}

/// Prints `title`, then every line recorded.
pub fn print_summary(title: &str) {
    println!();
    println!("{title}");
    for line in SUMMARY.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        println!("{line}");
    }
}

/// `runs` operations of `items` each took `elapsed`: the time per operation and the items per second.
pub fn rate_line(bench: &str, label: &str, runs: usize, elapsed: Duration, items: usize, unit: &str) -> String {
    let secs = elapsed.as_secs_f64();
    format!(
        "{bench} summary: {label:<66} {runs:>5} runs in {:>8.1} ms = {:>9.3} ms/op, {:>11.0} {unit}/s",
        secs * 1e3,
        secs * 1e3 / runs as f64,
        (runs * items) as f64 / secs,
    )
}

pub fn logical_cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}
