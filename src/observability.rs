//! Prometheus metrics: the one place that names every metric, its labels and its buckets, so the layers that
//! record them (the HTTP middleware, the actors, the journal) only call a function here and `GET /metrics`
//! renders them all.
//!
//! The `metrics` macros write to one recorder per process, so everything here is process-wide: several
//! runtimes in one process (the black-box tests start dozens) add to the same counters and histograms. A
//! test can therefore only assert that a counter moved, never its total. The gauges that describe a
//! runtime's state (open tasks by status) are different: they are set from the scraped runtime's owner at
//! scrape time, under a lock held until the text is rendered, so each scrape reports its own runtime
//! exactly.
//!
//! The recorder is installed by [`install`] (`mission-control serve` calls it before the runtime starts, the
//! HTTP server when it is built); until then the macros record into the `metrics` crate's no-op recorder,
//! which is all an embedded runtime without a server (benchmarks, simulations) pays for. If the embedding program installed a recorder of its own first,
//! ours stays uninstalled and the metrics go to theirs; `/metrics` then renders nothing of ours, and says
//! so in the log.

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Gauge, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

pub const HTTP_REQUESTS: &str = "mc_http_requests_total";
pub const HTTP_DURATION: &str = "mc_http_request_duration_seconds";
pub const MESSAGES_SENT: &str = "mc_messages_sent_total";
pub const MESSAGES_DELIVERED: &str = "mc_messages_delivered_total";
pub const MAILBOX_DEPTH: &str = "mc_mailbox_depth";
pub const JOURNAL_BATCHES: &str = "mc_journal_commit_batches";
pub const JOURNAL_OPS: &str = "mc_journal_commit_ops";
pub const JOURNAL_DURATION: &str = "mc_journal_commit_duration_seconds";
pub const OPEN_TASKS: &str = "mc_open_tasks";
pub const ESCALATIONS: &str = "mc_escalations_total";
pub const SLO_BREACHES: &str = "mc_slo_breaches_total";
pub const OUTBOX_DEPTH: &str = "mc_outbox_rows";
pub const OUTBOX_DELIVERIES: &str = "mc_outbox_deliveries_total";

/// Request latency: from half a millisecond (a read from memory) to a minute (the longest long poll).
const HTTP_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Batches per transaction: the journal takes at most 256.
const JOURNAL_BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];
const JOURNAL_OPS_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];
/// A SQLite commit takes about 100 µs on the development machine; a slow disk or PostgreSQL far more.
const JOURNAL_DURATION_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];
/// Histograms keep every observation until they are drained; nobody may scrape for hours.
const UPKEEP_PERIOD: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
/// Held from setting the state gauges to rendering, so two runtimes scraped at once cannot mix their states.
static SCRAPE: Mutex<()> = Mutex::new(());

/// Installs the process-wide recorder once (later calls return the same handle) and describes every metric.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = buckets(PrometheusBuilder::new()).build_recorder();
        let handle = recorder.handle();
        match metrics::set_global_recorder(recorder) {
            Ok(()) => {
                let upkeep = handle.clone();
                let spawned = std::thread::Builder::new()
                    .name("mc-metrics-upkeep".into())
                    .spawn(move || loop {
                        std::thread::sleep(UPKEEP_PERIOD);
                        upkeep.run_upkeep();
                    });
                if let Err(e) = spawned {
                    log::warn!("metrics upkeep thread not started ({e}); histograms drain only when scraped");
                }
            }
            Err(_) => log::warn!("another metrics recorder is installed; /metrics will not show the runtime's metrics"),
        }
        describe();
        handle
    })
}

fn buckets(builder: PrometheusBuilder) -> PrometheusBuilder {
    let histograms = [
        (HTTP_DURATION, HTTP_BUCKETS),
        (JOURNAL_BATCHES, JOURNAL_BATCH_BUCKETS),
        (JOURNAL_OPS, JOURNAL_OPS_BUCKETS),
        (JOURNAL_DURATION, JOURNAL_DURATION_BUCKETS),
    ];
    histograms.into_iter().fold(builder, |builder, (name, buckets)| {
        builder
            .set_buckets_for_metric(Matcher::Full(name.to_string()), buckets)
            .expect("only an empty bucket list is refused, and none of these is empty")
    })
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, matched route pattern (`unmatched` for none) and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time from a request's arrival to its response head, by method, route pattern and status."
    );
    describe_counter!(
        MESSAGES_SENT,
        "Agent messages accepted for delivery: past the sender's permission, validation and rate checks \
         (agent), or composed by the runtime (system)."
    );
    describe_counter!(
        MESSAGES_DELIVERED,
        "Agent messages committed to the recipient's inbox; sent minus delivered is what failed on the way."
    );
    describe_gauge!(
        MAILBOX_DEPTH,
        "Requests sent to actors of this kind and not yet answered (queued or being handled), process-wide."
    );
    describe_histogram!(
        JOURNAL_BATCHES,
        "Write batches (one per owner's change) grouped into one journal transaction."
    );
    describe_histogram!(JOURNAL_OPS, "Write operations in one journal transaction.");
    describe_histogram!(
        JOURNAL_DURATION,
        Unit::Seconds,
        "Time the journal writer spends on one transaction, from its first statement to its commit."
    );
    describe_gauge!(
        OPEN_TASKS,
        "Open tasks of the scraped runtime by status, read from the task board at scrape time."
    );
    describe_counter!(
        ESCALATIONS,
        "Escalations recorded in the history, by rule name (`ack_deadline` and `slo_breach` for the built-in ones)."
    );
    describe_counter!(SLO_BREACHES, "SLO breaches recorded, by kind.");
    describe_gauge!(
        OUTBOX_DEPTH,
        "Outbox rows of the scraped runtime waiting for delivery (`pending`) or given up (`dead`), read at scrape time."
    );
    describe_counter!(
        OUTBOX_DELIVERIES,
        "Outbox delivery attempts by kind and result (`delivered`, `failed` and retried later, `dead`)."
    );
}

/// Renders every metric in the Prometheus text format, with the scraped runtime's open tasks per status.
pub fn render(open_tasks: &[(&'static str, usize)], outbox: &[(&'static str, i64)]) -> String {
    let handle = install();
    let _scrape = SCRAPE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    for (status, count) in open_tasks {
        gauge!(OPEN_TASKS, "status" => *status).set(*count as f64);
    }
    for (status, count) in outbox {
        gauge!(OUTBOX_DEPTH, "status" => *status).set(*count as f64);
    }
    handle.render()
}

/// The route label: the matched pattern (`/api/tasks/{id}`), never the raw path, whose ids would make a new
/// series per task.
pub fn http_request(method: &str, route: Option<&str>, status: u16, elapsed: Duration) {
    // Any token is a valid method; an unknown one must not create a series of its own.
    let method = match method {
        "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS" => method.to_string(),
        _ => "other".to_string(),
    };
    let route = route.unwrap_or("unmatched").to_string();
    let status = status.to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    counter!(HTTP_REQUESTS, &labels).increment(1);
    histogram!(HTTP_DURATION, &labels).record(elapsed.as_secs_f64());
}

pub fn message_sent(sender_kind: &'static str) {
    counter!(MESSAGES_SENT, "sender_kind" => sender_kind).increment(1);
}

pub fn message_delivered(sender_kind: &'static str) {
    counter!(MESSAGES_DELIVERED, "sender_kind" => sender_kind).increment(1);
}

pub fn journal_commit(batches: usize, ops: usize, elapsed: Duration) {
    histogram!(JOURNAL_BATCHES).record(batches as f64);
    histogram!(JOURNAL_OPS).record(ops as f64);
    histogram!(JOURNAL_DURATION).record(elapsed.as_secs_f64());
}

/// The rule's name, not its id: readable on a dashboard, and bounded by the rules the operator writes.
pub fn escalation_recorded(rule: &str) {
    counter!(ESCALATIONS, "rule" => rule.to_string()).increment(1);
}

pub fn outbox_attempt(kind: &'static str, result: &'static str) {
    counter!(OUTBOX_DELIVERIES, "kind" => kind, "result" => result).increment(1);
}

pub fn slo_breach(kind: &'static str) {
    counter!(SLO_BREACHES, "kind" => kind).increment(1);
}

/// A request counted in the mailbox depth of its actor's kind from the moment it is sent until this is
/// dropped: when the reply arrives, or when the asker gives up waiting (the request may then still be
/// queued, so the gauge is a lower bound on what the mailboxes hold).
///
/// actix does not expose a mailbox's length, so this counts at the sending side instead.
pub struct InMailbox(Gauge);

impl InMailbox {
    pub fn enter<A>() -> InMailbox {
        let gauge = gauge!(MAILBOX_DEPTH, "actor" => actor_kind(std::any::type_name::<A>()));
        gauge.increment(1.0);
        InMailbox(gauge)
    }
}

impl Drop for InMailbox {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// `mission_control::actors::task_board::TaskBoard` → `task_board`: short and stable across module moves.
fn actor_kind(type_name: &str) -> String {
    let path = type_name.split('<').next().unwrap_or(type_name);
    let name = path.rsplit("::").next().unwrap_or(path);
    let mut kind = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                kind.push('_');
            }
            kind.push(c.to_ascii_lowercase());
        } else {
            kind.push(c);
        }
    }
    kind
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actor_kinds_are_short_snake_case() {
        assert_eq!(
            actor_kind("mission_control::actors::task_board::TaskBoard"),
            "task_board"
        );
        assert_eq!(actor_kind("mission_control::actors::agent::AgentActor"), "agent_actor");
        assert_eq!(actor_kind("a::Wrapper<b::Inner>"), "wrapper");
        assert_eq!(actor_kind("Plain"), "plain");
    }
}
