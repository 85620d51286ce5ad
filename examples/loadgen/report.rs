//! The report: per operation the requests, their share, throughput, latency percentiles of the 2xx answers and
//! the errors by status; the totals; and the mix as dealt. Rendered as a Markdown table (to paste into the
//! README) and, on request, as JSON with the same figures.

use crate::record::{Op, OpRecord, Recorder};
use crate::stats::{summarize, Kind, Summary};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The settings of the run, as printed and written (never the token).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub url: String,
    pub agents: usize,
    pub concurrency: usize,
    pub threads: usize,
    pub duration: String,
    pub warmup: String,
    pub max_requests: u64,
    pub pool_tasks: usize,
    pub timeout: String,
    pub seed: u64,
}

impl Settings {
    /// The settings as flags, so a run can be repeated.
    pub fn as_flags(&self) -> String {
        format!(
            "--url {} --agents {} --concurrency {} --threads {} --duration {} --warmup {} --max-requests {} \
             --pool-tasks {} --timeout {} --seed {}",
            self.url,
            self.agents,
            self.concurrency,
            self.threads,
            self.duration,
            self.warmup,
            self.max_requests,
            self.pool_tasks,
            self.timeout,
            self.seed
        )
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl From<Summary> for Latency {
    fn from(s: Summary) -> Self {
        let ms = |us: u32| f64::from(us) / 1000.0;
        Latency {
            mean: ms(s.mean),
            p50: ms(s.p50),
            p95: ms(s.p95),
            p99: ms(s.p99),
            max: ms(s.max),
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpRow {
    pub operation: String,
    pub requests: u64,
    pub ok: u64,
    /// Share of all measured requests, in percent.
    pub share_percent: f64,
    pub per_second: f64,
    /// Milliseconds, over the 2xx answers; absent when there were none.
    pub latency_ms: Option<Latency>,
    /// Requests without a 2xx answer, by status or `transport`.
    pub errors: BTreeMap<String, u64>,
    /// The first answer of each error kind, shortened.
    pub first_errors: BTreeMap<String, String>,
}

/// A kind of the mix: its target share and what was dealt.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MixRow {
    pub kind: String,
    pub target_percent: u32,
    pub requests: u64,
    pub actual_percent: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub settings: Settings,
    pub server_version: String,
    pub run_id: String,
    /// `duration over`, `request cap reached` or `stopped by Ctrl-C`.
    pub ended: String,
    /// From the end of the warm-up to the last measured answer.
    pub measured_seconds: f64,
    pub operations: Vec<OpRow>,
    pub total: OpRow,
    pub mix: Vec<MixRow>,
}

fn row(operation: &str, record: &mut OpRecord, all: u64, seconds: f64) -> OpRow {
    let requests = record.requests();
    OpRow {
        operation: operation.to_string(),
        requests,
        ok: record.latencies_us.len() as u64,
        share_percent: percent(requests, all),
        per_second: if seconds > 0.0 { requests as f64 / seconds } else { 0.0 },
        latency_ms: summarize(&mut record.latencies_us).map(Latency::from),
        errors: record.errors.clone(),
        first_errors: record.first_error.clone(),
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

impl Report {
    pub fn build(
        settings: Settings,
        server_version: String,
        run_id: String,
        ended: &str,
        seconds: f64,
        rec: Recorder,
    ) -> Self {
        let mut ops = rec.ops;
        let all: u64 = ops.iter().map(OpRecord::requests).sum();
        let mut total = OpRecord::default();
        for record in &ops {
            total.latencies_us.extend_from_slice(&record.latencies_us);
            for (key, n) in &record.errors {
                *total.errors.entry(key.clone()).or_default() += n;
            }
        }
        let mix = Kind::ALL
            .iter()
            .map(|&kind| {
                let requests = Op::ALL
                    .iter()
                    .zip(&ops)
                    .filter(|(op, _)| op.kind() == kind)
                    .map(|(_, r)| r.requests())
                    .sum();
                MixRow {
                    kind: kind.label().to_string(),
                    target_percent: kind.weight(),
                    requests,
                    actual_percent: percent(requests, all),
                }
            })
            .collect();
        let operations = Op::ALL
            .iter()
            .zip(ops.iter_mut())
            .map(|(op, record)| row(op.label(), record, all, seconds))
            .collect();
        Report {
            settings,
            server_version,
            run_id,
            ended: ended.to_string(),
            measured_seconds: seconds,
            operations,
            total: row("all", &mut total, all, seconds),
            mix,
        }
    }

    /// Whether message sends met the server's rate limit.
    pub fn rate_limited(&self) -> bool {
        self.operations.iter().any(|r| r.errors.contains_key("429"))
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let s = &self.settings;
        let _ = writeln!(
            out,
            "{} agents, {} concurrent requests on {} client thread(s), {:.1} s measured after a {} warm-up, {} \
             (mission-control {}, run lg-{}):",
            s.agents,
            s.concurrency,
            s.threads,
            self.measured_seconds,
            s.warmup,
            self.ended,
            self.server_version,
            self.run_id
        );
        out.push('\n');
        out.push_str("| operation | requests | share | req/s | p50 ms | p95 ms | p99 ms | max ms | errors |\n");
        out.push_str("|---|--:|--:|--:|--:|--:|--:|--:|---|\n");
        for r in self.operations.iter().chain(std::iter::once(&self.total)) {
            let name = if std::ptr::eq(r, &self.total) {
                "**all**".to_string()
            } else {
                r.operation.clone()
            };
            let cells = match r.latency_ms {
                Some(l) => [l.p50, l.p95, l.p99, l.max].map(ms),
                None => ["–".to_string(), "–".to_string(), "–".to_string(), "–".to_string()],
            };
            let _ = writeln!(
                out,
                "| {name} | {} | {:.1} % | {} | {} | {} | {} | {} | {} |",
                grouped(r.requests),
                r.share_percent,
                rate(r.per_second),
                cells[0],
                cells[1],
                cells[2],
                cells[3],
                errors(&r.errors)
            );
        }
        out.push('\n');
        let mix: Vec<String> = self
            .mix
            .iter()
            .map(|m| format!("{} {} % → {:.1} %", m.kind, m.target_percent, m.actual_percent))
            .collect();
        let _ = writeln!(out, "Mix (target → measured): {}.", mix.join(", "));
        out.push_str("Latencies are of the 2xx answers, from sending to the last byte; errors are counted apart.\n");
        let firsts: Vec<String> = self
            .operations
            .iter()
            .flat_map(|r| {
                r.first_errors
                    .iter()
                    .map(move |(k, v)| format!("- {} {k}: {v}", r.operation))
            })
            .collect();
        if !firsts.is_empty() {
            out.push_str("\nFirst answer of each error:\n\n");
            for line in firsts {
                let _ = writeln!(out, "{line}");
            }
        }
        if self.rate_limited() {
            out.push_str(
                "\nThe 429s are the server's message rate limit (MC_MESSAGE_RATE_PER_MIN, 10 sends per agent per \
                 minute by default): start the server with MC_MESSAGE_RATE_PER_MIN=0 to measure throughput.\n",
            );
        }
        out
    }
}

/// Milliseconds with two decimals below 10 ms, one below 100 ms, none above.
fn ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2}")
    } else if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

fn rate(v: f64) -> String {
    if v >= 100.0 {
        grouped(v.round() as u64)
    } else {
        format!("{v:.1}")
    }
}

/// `12345` → `12 345`, as in the README's tables.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

fn errors(errors: &BTreeMap<String, u64>) -> String {
    if errors.is_empty() {
        return "none".to_string();
    }
    errors
        .iter()
        .map(|(k, n)| format!("{k} × {}", grouped(*n)))
        .collect::<Vec<_>>()
        .join(", ")
}
