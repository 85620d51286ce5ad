//! The pure parts of the load generator (`examples/loadgen/stats.rs`, included by path in main.rs): exact
//! nearest-rank percentiles, a mix that is exact over every whole deck, a task life cycle that never runs into
//! the capacity check, and the loopback-only guard.

use crate::loadgen_stats_lib::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

#[test]
fn percentiles_are_nearest_rank_samples() {
    let hundred: Vec<u32> = (1..=100).collect();
    assert_eq!(percentile(&hundred, 50.0), Some(50));
    assert_eq!(percentile(&hundred, 95.0), Some(95));
    assert_eq!(percentile(&hundred, 99.0), Some(99));
    assert_eq!(percentile(&hundred, 100.0), Some(100));
    assert_eq!(percentile(&hundred, 0.0), Some(1));

    let four = [10, 20, 30, 40];
    assert_eq!(percentile(&four, 50.0), Some(20));
    assert_eq!(percentile(&four, 51.0), Some(30));
    assert_eq!(percentile(&four, 99.0), Some(40));
    assert_eq!(percentile(&[7], 99.0), Some(7));
    assert_eq!(percentile(&[], 50.0), None);
}

#[test]
fn summarize_sorts_and_keeps_the_extremes() {
    let mut samples: Vec<u32> = (1..=1000).rev().collect();
    let s = summarize(&mut samples).unwrap();
    assert_eq!((s.count, s.p50, s.p95, s.p99, s.max), (1000, 500, 950, 990, 1000));
    assert_eq!(s.mean, 500); // 500.5, truncated
    assert!(samples.windows(2).all(|w| w[0] <= w[1]));

    let mut one_outlier = vec![100; 999];
    one_outlier.push(1_000_000);
    let s = summarize(&mut one_outlier).unwrap();
    assert_eq!((s.p99, s.max), (100, 1_000_000));
    assert_eq!(summarize(&mut []), None);
}

fn counts(cards: &[Kind]) -> BTreeMap<Kind, u32> {
    let mut counts = BTreeMap::new();
    for &card in cards {
        *counts.entry(card).or_insert(0) += 1;
    }
    counts
}

#[test]
fn the_mix_is_exact_over_every_whole_deck() {
    let mut deck = Deck::new(&Kind::mix());
    let mut rng = StdRng::seed_from_u64(1);
    let dealt: Vec<Kind> = (0..20 * 50).map(|_| deck.deal(&mut rng).unwrap()).collect();
    // The weights 40/25/10/20/5 reduce to a deck of 20: 8, 5, 2, 4 and 1 cards.
    for pass in dealt.chunks(20) {
        let c = counts(pass);
        for kind in Kind::ALL {
            assert_eq!(c[&kind] * 5, kind.weight(), "{kind:?} in {pass:?}");
        }
    }
    // Shuffled, not dealt in a fixed order.
    assert_ne!(dealt[..20], dealt[20..40]);

    // Restarting mid-pass (measuring begins) starts a fresh whole deck.
    let mut deck = Deck::new(&Kind::mix());
    for _ in 0..7 {
        deck.deal(&mut rng);
    }
    deck.restart(&mut rng);
    let after: Vec<Kind> = (0..20).map(|_| deck.deal(&mut rng).unwrap()).collect();
    assert_eq!(counts(&after)[&Kind::SendMessage], 8);
    assert_eq!(counts(&after)[&Kind::SuitableAgents], 1);
}

#[test]
fn the_deal_is_reproducible_and_skips_zero_weights() {
    let deal = |seed| {
        let mut deck = Deck::new(&Kind::mix());
        let mut rng = StdRng::seed_from_u64(seed);
        (0..60).map(|_| deck.deal(&mut rng).unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(deal(42), deal(42));
    assert_ne!(deal(42), deal(43));

    let mut deck = Deck::new(&[("a", 3), ("b", 0), ("c", 6)]);
    let mut rng = StdRng::seed_from_u64(0);
    let dealt: Vec<&str> = (0..30).map(|_| deck.deal(&mut rng).unwrap()).collect();
    assert_eq!(dealt.iter().filter(|&&c| c == "a").count(), 10);
    assert_eq!(dealt.iter().filter(|&&c| c == "c").count(), 20);
    assert_eq!(Deck::<u8>::new(&[]).deal(&mut rng), None);
}

#[test]
fn task_steps_follow_the_life_cycle() {
    let load = |ready, in_progress, creating, starting, finishing| TaskLoad {
        ready,
        in_progress,
        creating,
        starting,
        finishing,
    };
    assert_eq!(next_task_step(load(0, 0, 0, 0, 0), 2, 4), Some(TaskStep::Create));
    assert_eq!(next_task_step(load(1, 0, 0, 0, 0), 2, 4), Some(TaskStep::Start));
    assert_eq!(next_task_step(load(1, 1, 0, 0, 0), 2, 4), Some(TaskStep::Start));
    assert_eq!(next_task_step(load(1, 2, 0, 0, 0), 2, 4), Some(TaskStep::Finish));
    // A start in flight counts as in progress: no third start, finish instead.
    assert_eq!(next_task_step(load(1, 1, 0, 1, 0), 2, 4), Some(TaskStep::Finish));
    // Nothing to start and the agent is full: finish.
    assert_eq!(next_task_step(load(0, 1, 3, 0, 0), 2, 4), Some(TaskStep::Finish));
    // Everything has a request in flight: another agent's turn.
    assert_eq!(next_task_step(load(0, 0, 2, 1, 1), 2, 4), None);
    assert_eq!(next_task_step(load(2, 0, 0, 1, 1), 2, 4), None);
}

/// Random bookings and answers (a fifth of them failures) never hold more than the limits, and the work keeps
/// moving: tasks get finished.
#[test]
fn task_steps_stay_within_the_limits() {
    let mut rng = StdRng::seed_from_u64(9);
    let mut load = TaskLoad::default();
    let mut in_flight: Vec<TaskStep> = Vec::new();
    let mut finished = 0;
    for _ in 0..10_000 {
        if in_flight.is_empty() || rng.random_bool(0.5) {
            if let Some(step) = next_task_step(load, 2, 4) {
                match step {
                    TaskStep::Create => load.creating += 1,
                    TaskStep::Start => {
                        load.ready -= 1;
                        load.starting += 1;
                    }
                    TaskStep::Finish => {
                        load.in_progress -= 1;
                        load.finishing += 1;
                    }
                }
                in_flight.push(step);
            }
        } else {
            let step = in_flight.swap_remove(rng.random_range(0..in_flight.len()));
            let ok = rng.random_bool(0.8);
            match step {
                TaskStep::Create => {
                    load.creating -= 1;
                    load.ready += usize::from(ok);
                }
                TaskStep::Start => {
                    load.starting -= 1;
                    load.in_progress += usize::from(ok);
                }
                TaskStep::Finish => {
                    load.finishing -= 1;
                    finished += usize::from(ok);
                }
            }
        }
        assert!(load.maybe_in_progress() <= 2, "{load:?}");
        assert!(load.open() <= 4, "{load:?}");
    }
    assert!(finished > 500, "only {finished} finished");
}

#[test]
fn only_loopback_hosts_are_accepted() {
    for host in [
        "127.0.0.1",
        "127.1.2.3",
        "localhost",
        "LocalHost",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
    ] {
        assert!(is_loopback_host(host), "{host}");
    }
    for host in [
        "10.0.0.1",
        "0.0.0.0",
        "192.168.1.10",
        "[::]",
        "[2001:db8::1]",
        "[::ffff:10.0.0.1]",
        "example.com",
        "localhost.example.com",
        "127.0.0.1.nip.io",
        "",
    ] {
        assert!(!is_loopback_host(host), "{host}");
    }
}
