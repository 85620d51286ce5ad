//! Criterion benchmarks of the foundation: durable task creation through the TaskBoard and the journal
//! (one at a time, and many in flight so the journal groups commits), and dependency cycle detection.
//! Sizes come from the environment: `MC_BENCH_IN_FLIGHT` (default 64), `MC_BENCH_CHAIN` (default 10000).

mod support;

use criterion::{criterion_group, criterion_main, Criterion};
use futures_util::future::join_all;
use mission_control::actors::task_board::messages::CreateTask;
use mission_control::config::Config;
use mission_control::domain::dependency::{check_new_edge, BlockedBy};
use mission_control::domain::task::TaskDraft;
use mission_control::domain::Principal;
use mission_control::Runtime;
use std::hint::black_box;
use std::time::{Duration, Instant};
use support::env_usize;

fn draft(n: u64) -> TaskDraft {
    serde_json::from_value(serde_json::json!({ "title": format!("bench task {n}"), "tags": ["bench"] }))
        .expect("valid draft")
}

fn durable_create(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = dir.path().join("bench.db").display().to_string();
    let system = actix_rt::System::new();
    let runtime = system
        .block_on(Runtime::start(Config::embedded(&url, dir.path()).expect("config")))
        .expect("runtime");
    let handles = runtime.handles();
    let in_flight = env_usize("MC_BENCH_IN_FLIGHT", 64) as u64;

    let mut group = c.benchmark_group("task_board");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("create_task/sequential (sqlite, durable)", |b| {
        b.iter_custom(|iters| {
            system.block_on(async {
                let start = Instant::now();
                for n in 0..iters {
                    let msg = CreateTask {
                        draft: draft(n),
                        by: Principal::Admin,
                    };
                    handles.board.send(msg).await.expect("mailbox").expect("created");
                }
                start.elapsed()
            })
        })
    });
    group.bench_function(format!("create_task/{in_flight}_in_flight (sqlite, durable)"), |b| {
        b.iter_custom(|iters| {
            system.block_on(async {
                let start = Instant::now();
                let mut sent = 0;
                while sent < iters {
                    let wave = in_flight.min(iters - sent);
                    let sends = (0..wave).map(|n| {
                        handles.board.send(CreateTask {
                            draft: draft(sent + n),
                            by: Principal::Admin,
                        })
                    });
                    for reply in join_all(sends).await {
                        reply.expect("mailbox").expect("created");
                    }
                    sent += wave;
                }
                start.elapsed()
            })
        })
    });
    group.finish();
    system.block_on(runtime.stop());
}

fn cycle_detection(c: &mut Criterion) {
    let length = env_usize("MC_BENCH_CHAIN", 10_000);
    let mut graph = BlockedBy::new();
    for n in 1..length {
        graph.entry(format!("t{n}")).or_default().insert(format!("t{}", n - 1));
    }
    let last = format!("t{}", length - 1);
    c.bench_function(&format!("dependency/cycle_check (chain of {length})"), |b| {
        b.iter(|| black_box(check_new_edge(black_box(&graph), "t0", &last).is_err()))
    });
}

criterion_group!(benches, durable_create, cycle_detection);
criterion_main!(benches);
