//! Criterion benchmarks of agent-to-agent messaging, from the floor up:
//!
//! 1. `floor`: raw actix messaging to a trivial counter actor — `do_send` (a burst, then one `send().await`
//!    to drain it, so the work is done) and `send().await` one at a time.
//! 2. `in_memory`: `Delivered` to one `AgentActor` — the in-memory half of a delivery (hold in the open inbox,
//!    push to waiters), no store — from one sender in sequence, and from many concurrent senders (fan-in).
//! 3. `durable`: `SendMessage` through the directory (routing, the sender's checks, the recipient's store and
//!    journal commit) on SQLite, with the rate limit off: one sender in sequence, and every agent of a ring
//!    sending to the next one at the same time.
//!
//! Besides criterion's own report, each part times one fixed run (the durable one on a fresh database, before
//! criterion's runs grow it), and a summary in messages per second is printed at the end. The fixed runs
//! ignore criterion's name filter. Sizes come from the environment: `MC_BENCH_AGENTS` (durable ring, default
//! 100), `MC_BENCH_FAN_IN` (concurrent senders to one actor, default 100), `MC_BENCH_SUMMARY_MESSAGES`
//! (messages per fixed run of the in-memory parts, default 200000; the floor's do_send run uses ten times as
//! many, the durable ring a tenth and the durable sequential run a hundredth).

mod support;

use actix::prelude::*;
use criterion::{criterion_group, criterion_main, Criterion};
use futures_util::future::join_all;
use mission_control::actors::agent::messages::Delivered;
use mission_control::actors::agent::AgentActor;
use mission_control::actors::directory::messages::{AgentAddress, InboxStatistics, Register, SendMessage};
use mission_control::config::Config;
use mission_control::domain::agent::AgentDraft;
use mission_control::domain::message::{compose, Message as Mail, MessageDraft, MessageType, Recipient, Sender};
use mission_control::domain::{Agent, Principal};
use mission_control::ids::new_id;
use mission_control::{Handles, Runtime};
use std::time::{Duration, Instant};
use support::{benchmarking, env_usize, logical_cores, print_summary, record};

/// `do_send` bursts are drained every this many messages, so a long criterion sample does not queue millions
/// of envelopes at once.
const DO_SEND_CHUNK: u64 = 10_000;

/// Distinct messages (ids) cycled through by the in-memory benchmarks: the open inbox is keyed by id, so it
/// levels off at this many messages instead of growing with every iteration.
const MESSAGE_POOL: usize = 1_000;

fn summary_messages() -> u64 {
    if benchmarking() {
        env_usize("MC_BENCH_SUMMARY_MESSAGES", 200_000) as u64
    } else {
        1_000
    }
}

fn rate_line(label: &str, messages: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    format!(
        "mailbox summary: {label:<58} {messages:>8} msgs in {:>8.1} ms = {:>12.0} msg/s ({:>9.2} µs/msg)",
        secs * 1e3,
        messages as f64 / secs,
        secs * 1e6 / messages as f64,
    )
}

fn configure(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>, measure: u64) {
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(measure));
}

// ---- 1. The floor: a trivial actor ---------------------------------------------------------------------

struct Counter(u64);

impl Actor for Counter {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "u64")]
struct Ping;

impl Handler<Ping> for Counter {
    type Result = u64;
    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> u64 {
        self.0 += 1;
        self.0
    }
}

/// `n` do_sends, drained by a `send().await` every [`DO_SEND_CHUNK`]; checks the counter saw them all.
async fn burst(addr: &Addr<Counter>, n: u64) {
    let before = addr.send(Ping).await.expect("mailbox");
    let mut left = n;
    while left > 0 {
        let chunk = left.min(DO_SEND_CHUNK);
        for _ in 0..chunk {
            addr.do_send(Ping);
        }
        addr.send(Ping).await.expect("mailbox");
        left -= chunk;
    }
    let after = addr.send(Ping).await.expect("mailbox");
    let drains = n.div_ceil(DO_SEND_CHUNK);
    assert_eq!(after - before, n + drains + 1, "every do_send was handled");
}

async fn sequential_sends(addr: &Addr<Counter>, n: u64) {
    for _ in 0..n {
        addr.send(Ping).await.expect("mailbox");
    }
}

fn floor(c: &mut Criterion) {
    let system = actix_rt::System::new();
    let addr = system.block_on(async { Counter(0).start() });

    let mut group = c.benchmark_group("floor");
    configure(&mut group, 2);
    group.bench_function("counter/do_send (burst, drained)", |b| {
        b.iter_custom(|iters| {
            system.block_on(async {
                let start = Instant::now();
                burst(&addr, iters).await;
                start.elapsed()
            })
        })
    });
    group.bench_function("counter/send().await (sequential)", |b| {
        b.iter_custom(|iters| {
            system.block_on(async {
                let start = Instant::now();
                sequential_sends(&addr, iters).await;
                start.elapsed()
            })
        })
    });
    group.finish();

    let n = summary_messages() * 10;
    let elapsed = system.block_on(async {
        let start = Instant::now();
        burst(&addr, n).await;
        start.elapsed()
    });
    record(rate_line("floor: do_send to a counter actor (drained)", n, elapsed));
    let n = summary_messages();
    let elapsed = system.block_on(async {
        let start = Instant::now();
        sequential_sends(&addr, n).await;
        start.elapsed()
    });
    record(rate_line(
        "floor: send().await to a counter actor (sequential)",
        n,
        elapsed,
    ));
}

// ---- Runtime set-up ------------------------------------------------------------------------------------

fn agent_draft(name: &str) -> AgentDraft {
    serde_json::from_value(serde_json::json!({ "name": name })).expect("valid agent draft")
}

/// A runtime on a fresh SQLite database, with the send-rate limit off.
fn start_runtime(system: &actix_rt::SystemRunner, dir: &tempfile::TempDir) -> Runtime {
    let url = dir.path().join("bench.db").display().to_string();
    let mut config = Config::embedded(&url, dir.path()).expect("config");
    config.messaging.rate_per_min = 0;
    system.block_on(Runtime::start(config)).expect("runtime")
}

async fn register(handles: &Handles, name: &str) -> Agent {
    handles
        .directory
        .send(Register {
            draft: agent_draft(name),
            by: Principal::Admin,
        })
        .await
        .expect("mailbox")
        .expect("registered")
        .agent
}

// ---- 2. In-memory delivery to one AgentActor -------------------------------------------------------------

/// [`MESSAGE_POOL`] valid messages from `from` to `to`, each with its own id.
fn message_pool(from: &Agent, to: &Agent) -> Vec<Mail> {
    (0..MESSAGE_POOL)
        .map(|n| {
            let draft = MessageDraft {
                to_agent_id: to.id.clone(),
                kind: Some(MessageType::Coordination),
                subject: format!("bench message {n}"),
                body: "a short body, about the size of a status update".into(),
                ..MessageDraft::default()
            };
            let sender = Sender::Agent {
                id: from.id.clone(),
                name: from.name.clone(),
            };
            let recipient = Recipient {
                id: to.id.clone(),
                name: to.name.clone(),
            };
            let now = 1_700_000_000_000;
            compose(draft, new_id(), sender, recipient, now, 30 * 24 * 3_600_000).expect("valid message")
        })
        .collect()
}

/// `n` Delivered, one at a time, each awaited.
async fn deliver_sequential(addr: &Addr<AgentActor>, pool: &[Mail], n: u64) {
    for i in 0..n as usize {
        addr.send(Delivered(pool[i % pool.len()].clone()))
            .await
            .expect("mailbox");
    }
}

/// `n` Delivered (rounded up to a multiple of `senders`) from `senders` concurrent senders, each awaiting its
/// own in turn. Returns how many were sent.
async fn deliver_fan_in(addr: &Addr<AgentActor>, pool: &[Mail], senders: usize, n: u64) -> u64 {
    let each = n.div_ceil(senders as u64).max(1) as usize;
    let all = (0..senders).map(|s| async move {
        for i in 0..each {
            let message = pool[(s * each + i) % pool.len()].clone();
            addr.send(Delivered(message)).await.expect("mailbox");
        }
    });
    join_all(all).await;
    (each * senders) as u64
}

fn in_memory(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let system = actix_rt::System::new();
    let runtime = start_runtime(&system, &dir);
    let handles = runtime.handles();
    let senders = env_usize("MC_BENCH_FAN_IN", 100).max(1);
    let (addr, pool) = system.block_on(async {
        let from = register(&handles, "sender").await;
        let to = register(&handles, "inbox").await;
        let addr = handles
            .directory
            .send(AgentAddress { key: to.id.clone() })
            .await
            .expect("mailbox")
            .expect("the agent's actor");
        (addr, message_pool(&from, &to))
    });

    let mut group = c.benchmark_group("in_memory");
    configure(&mut group, 2);
    group.bench_function("agent/Delivered send().await (sequential)", |b| {
        b.iter_custom(|iters| {
            system.block_on(async {
                let start = Instant::now();
                deliver_sequential(&addr, &pool, iters).await;
                start.elapsed()
            })
        })
    });
    group.bench_function(format!("agent/Delivered fan-in ({senders} senders)"), |b| {
        b.iter_custom(|iters| {
            system.block_on(async {
                let start = Instant::now();
                let sent = deliver_fan_in(&addr, &pool, senders, iters).await;
                // Per message, though a small `iters` is rounded up to one message per sender.
                start.elapsed().mul_f64(iters as f64 / sent as f64)
            })
        })
    });
    group.finish();

    let n = summary_messages();
    let elapsed = system.block_on(async {
        let start = Instant::now();
        deliver_sequential(&addr, &pool, n).await;
        start.elapsed()
    });
    record(rate_line("in-memory: Delivered to one agent (sequential)", n, elapsed));
    let (sent, elapsed) = system.block_on(async {
        let start = Instant::now();
        let sent = deliver_fan_in(&addr, &pool, senders, n).await;
        (sent, start.elapsed())
    });
    record(rate_line(
        &format!("in-memory: Delivered to one agent ({senders} senders, fan-in)"),
        sent,
        elapsed,
    ));
    system.block_on(runtime.stop());
}

// ---- 3. Durable sends through the runtime API -------------------------------------------------------------

fn send_request(from: &Agent, to: &Agent, n: u64) -> SendMessage {
    SendMessage {
        from: from.id.clone(),
        draft: MessageDraft {
            to_agent_id: to.id.clone(),
            kind: Some(MessageType::Coordination),
            subject: format!("bench message {n}"),
            body: "a short body, about the size of a status update".into(),
            ..MessageDraft::default()
        },
        by: Principal::Agent(from.id.clone()),
        idempotency_key: None,
    }
}

/// How many messages the store holds for this agent's inbox.
async fn inbox_total(handles: &Handles, agent: &Agent) -> i64 {
    handles
        .directory
        .send(InboxStatistics {
            key: agent.id.clone(),
            by: Principal::Admin,
        })
        .await
        .expect("mailbox")
        .expect("statistics")
        .total
}

async fn durable_sequential(handles: &Handles, from: &Agent, to: &Agent, n: u64) {
    for i in 0..n {
        let sent = handles
            .directory
            .send(send_request(from, to, i))
            .await
            .expect("mailbox")
            .expect("sent");
        debug_assert!(!sent.replayed);
    }
}

/// Every agent of the ring sends to the next one, all at once, each awaiting its own sends in turn; `n`
/// messages in all, rounded up to a multiple of the ring's size. Returns how many were sent.
async fn durable_ring(handles: &Handles, ring: &[Agent], n: u64) -> u64 {
    let each = n.div_ceil(ring.len() as u64).max(1);
    let all = (0..ring.len()).map(|s| {
        let (from, to) = (&ring[s], &ring[(s + 1) % ring.len()]);
        async move {
            for i in 0..each {
                handles
                    .directory
                    .send(send_request(from, to, i))
                    .await
                    .expect("mailbox")
                    .expect("sent");
            }
        }
    });
    join_all(all).await;
    each * ring.len() as u64
}

fn durable(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let system = actix_rt::System::new();
    let runtime = start_runtime(&system, &dir);
    let handles = runtime.handles();
    let agents = env_usize("MC_BENCH_AGENTS", 100).max(2);
    let ring: Vec<Agent> = system.block_on(async {
        let mut ring = Vec::with_capacity(agents);
        for n in 0..agents {
            ring.push(register(&handles, &format!("agent-{n:03}")).await);
        }
        ring
    });

    // Timed first, on a fresh database; criterion's runs below then add tens of thousands of messages to it.
    let n = (summary_messages() / 10).max(agents as u64);
    let sequential = (n / 10).max(1);
    let elapsed = system.block_on(async {
        let start = Instant::now();
        durable_sequential(&handles, &ring[0], &ring[1], sequential).await;
        start.elapsed()
    });
    record(rate_line(
        "durable: SendMessage, sqlite (one sender, sequential)",
        sequential,
        elapsed,
    ));
    let (sent, elapsed) = system.block_on(async {
        let before = inbox_total(&handles, &ring[2 % agents]).await;
        let start = Instant::now();
        let sent = durable_ring(&handles, &ring, n).await;
        let elapsed = start.elapsed();
        let after = inbox_total(&handles, &ring[2 % agents]).await;
        assert_eq!(after - before, (sent / agents as u64) as i64, "every send was stored");
        (sent, elapsed)
    });
    record(rate_line(
        &format!("durable: SendMessage, sqlite ({agents} senders -> next)"),
        sent,
        elapsed,
    ));

    let mut group = c.benchmark_group("durable");
    configure(&mut group, 5);
    group.bench_function("send_message/sequential (sqlite, one sender)", |b| {
        b.iter_custom(|iters| {
            system.block_on(async {
                let start = Instant::now();
                durable_sequential(&handles, &ring[0], &ring[1], iters).await;
                start.elapsed()
            })
        })
    });
    group.bench_function(format!("send_message/ring of {agents} senders (sqlite)"), |b| {
        b.iter_custom(|iters| {
            system.block_on(async {
                let start = Instant::now();
                let sent = durable_ring(&handles, &ring, iters).await;
                start.elapsed().mul_f64(iters as f64 / sent as f64)
            })
        })
    });
    group.finish();

    system.block_on(runtime.stop());
}

fn summary(_: &mut Criterion) {
    print_summary(&format!("mailbox summary ({} logical cores):", logical_cores()));
}

criterion_group!(benches, floor, in_memory, durable, summary);
criterion_main!(benches);
