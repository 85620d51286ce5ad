//! When the load runs and what it asks: one [`Schedule`] shared by every worker of every client thread.

use crate::stats::{Deck, Kind};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Deals the requests of the load phase: the kind from a shared [`Deck`], and whether the request is measured.
/// It ends the run at the deadline, at the request cap, or when stopped. Shared by every worker of every thread;
/// the lock is held for a few instructions per request.
pub struct Schedule {
    state: Mutex<ScheduleState>,
    warmup_end: Instant,
    end: Instant,
    max_requests: u64,
    stopped: AtomicBool,
    /// Requests finished so far (warm-up included), for the progress line.
    pub completed: AtomicU64,
}

struct ScheduleState {
    deck: Deck<Kind>,
    rng: StdRng,
    measuring: bool,
    issued: u64,
}

impl Schedule {
    pub fn new(start: Instant, warmup: Duration, duration: Duration, max_requests: u64, seed: u64) -> Self {
        Schedule {
            state: Mutex::new(ScheduleState {
                deck: Deck::new(&Kind::mix()),
                rng: StdRng::seed_from_u64(seed),
                measuring: false,
                issued: 0,
            }),
            warmup_end: start + warmup,
            end: start + warmup + duration,
            max_requests,
            stopped: AtomicBool::new(false),
            completed: AtomicU64::new(0),
        }
    }

    /// When measuring starts: the throughput figures are over the time from here to the last measured answer.
    pub fn measure_start(&self) -> Instant {
        self.warmup_end
    }

    /// Ends the run early (Ctrl-C): requests in flight finish and are counted.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    /// Why the load phase ended, for the report.
    pub fn end_reason(&self) -> &'static str {
        if self.stopped.load(Ordering::Relaxed) {
            "stopped by Ctrl-C"
        } else if lock(&self.state).issued >= self.max_requests {
            "request cap reached"
        } else {
            "duration over"
        }
    }

    /// The next request's kind and whether it is measured, or `None` once the run is over. The first measured
    /// request starts a fresh pass of the deck, so the measured mix is exact whatever the warm-up dealt.
    pub fn next(&self) -> Option<(Kind, bool)> {
        let now = Instant::now();
        if now >= self.end || self.stopped.load(Ordering::Relaxed) {
            return None;
        }
        let mut state = lock(&self.state);
        if state.issued >= self.max_requests {
            return None;
        }
        state.issued += 1;
        let measured = now >= self.warmup_end;
        let ScheduleState {
            deck, rng, measuring, ..
        } = &mut *state;
        if measured && !*measuring {
            *measuring = true;
            deck.restart(rng);
        }
        deck.deal(rng).map(|kind| (kind, measured))
    }
}

/// A poisoned lock only means another worker panicked mid-update of plain counters; carry on with them.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
