//! The pure parts of the load generator: the request mix, the task life-cycle policy, latency percentiles and the
//! loopback check. No I/O and no `mission_control` imports, so `tests/api` can include this file by path and test
//! it (an example's own `#[cfg(test)]` tests would not run without `test = true` in Cargo.toml).

use rand::seq::SliceRandom;
use rand::Rng;
use std::net::IpAddr;

/// The five kinds of request the workload mixes, with their share of all requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    SendMessage,
    ReadInbox,
    ReadCapacity,
    Task,
    SuitableAgents,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::SendMessage,
        Kind::ReadInbox,
        Kind::ReadCapacity,
        Kind::Task,
        Kind::SuitableAgents,
    ];

    /// The share of all requests, in percent (they add up to 100).
    pub fn weight(self) -> u32 {
        match self {
            Kind::SendMessage => 40,
            Kind::ReadInbox => 25,
            Kind::ReadCapacity => 10,
            Kind::Task => 20,
            Kind::SuitableAgents => 5,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::SendMessage => "send message",
            Kind::ReadInbox => "read inbox",
            Kind::ReadCapacity => "read capacity",
            Kind::Task => "task create/transition",
            Kind::SuitableAgents => "suitable agents",
        }
    }

    /// The mix as (kind, weight) pairs, for [`Deck::new`].
    pub fn mix() -> Vec<(Kind, u32)> {
        Kind::ALL.iter().map(|&k| (k, k.weight())).collect()
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// A shuffled deck of request kinds, dealt one at a time and reshuffled when empty. Unlike drawing each request
/// independently at random, this keeps the mix exact in aggregate: after any whole number of decks every kind has
/// had exactly its weight, and at any moment the counts are off by less than one deck. The weights are divided by
/// their greatest common divisor first (40/25/10/20/5 → a deck of 20), so the deck is as short as it can be.
#[derive(Debug, Clone)]
pub struct Deck<T> {
    cards: Vec<T>,
    next: usize,
}

impl<T: Copy> Deck<T> {
    /// A deck with `weight` cards of each item, reduced by the weights' common divisor. Zero weights are left out.
    pub fn new(weights: &[(T, u32)]) -> Self {
        let divisor = weights.iter().map(|&(_, w)| w).fold(0, gcd).max(1);
        let cards = weights
            .iter()
            .flat_map(|&(item, w)| std::iter::repeat_n(item, (w / divisor) as usize))
            .collect::<Vec<_>>();
        let next = cards.len();
        Deck { cards, next }
    }

    /// Starts a fresh, shuffled pass (used when measuring begins, so the measured requests start on a whole deck).
    pub fn restart(&mut self, rng: &mut impl Rng) {
        self.cards.shuffle(rng);
        self.next = 0;
    }

    /// The next card; `None` only for a deck without cards.
    pub fn deal(&mut self, rng: &mut impl Rng) -> Option<T> {
        if self.cards.is_empty() {
            return None;
        }
        if self.next >= self.cards.len() {
            self.restart(rng);
        }
        let card = self.cards[self.next];
        self.next += 1;
        Some(card)
    }
}

/// Where one agent's workload tasks stand, as the generator knows them: settled in a state, or with a request in
/// flight that will move them (which may or may not succeed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskLoad {
    pub ready: usize,
    pub in_progress: usize,
    pub creating: usize,
    pub starting: usize,
    pub finishing: usize,
}

impl TaskLoad {
    /// Tasks that are, or may be by the time the server answers, in progress.
    pub fn maybe_in_progress(&self) -> usize {
        self.in_progress + self.starting + self.finishing
    }

    /// Tasks the agent holds or may hold open.
    pub fn open(&self) -> usize {
        self.ready + self.creating + self.maybe_in_progress()
    }
}

/// The next step of an agent's task life cycle: create a task assigned to it, start one (ready → in_progress), or
/// finish one (in_progress → done).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TaskStep {
    Create,
    Start,
    Finish,
}

/// Chooses the next task step for an agent so that the work keeps flowing without ever meeting the server's
/// capacity check: at most `max_in_progress` tasks may be in progress (counting the starts and finishes in
/// flight, since either may land first), and at most `max_open` open tasks are held. `None` when everything the
/// agent holds has a request in flight; the caller then tries another agent.
pub fn next_task_step(load: TaskLoad, max_in_progress: usize, max_open: usize) -> Option<TaskStep> {
    let can_finish = load.in_progress > 0;
    let can_start = load.ready > 0 && load.maybe_in_progress() < max_in_progress;
    if can_finish && (load.maybe_in_progress() >= max_in_progress || (!can_start && load.open() >= max_open)) {
        Some(TaskStep::Finish)
    } else if can_start {
        Some(TaskStep::Start)
    } else if load.open() < max_open {
        Some(TaskStep::Create)
    } else if can_finish {
        Some(TaskStep::Finish)
    } else {
        None
    }
}

/// Latency figures of one operation, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub count: usize,
    pub mean: u32,
    pub p50: u32,
    pub p95: u32,
    pub p99: u32,
    pub max: u32,
}

/// The `p`-th percentile (0–100] of sorted samples by the nearest-rank method: the smallest sample with at least
/// `p` % of the samples at or below it. Always one of the samples, never an interpolation; `None` when empty.
pub fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Sorts the samples and summarizes them; `None` when there are none. Exact: every sample is kept (4 bytes each,
/// so a million requests cost 4 MB), which needs no histogram and no extra dependency.
pub fn summarize(samples: &mut [u32]) -> Option<Summary> {
    samples.sort_unstable();
    let total: u64 = samples.iter().map(|&s| u64::from(s)).sum();
    Some(Summary {
        count: samples.len(),
        mean: u32::try_from(total / samples.len().max(1) as u64).unwrap_or(u32::MAX),
        p50: percentile(samples, 50.0)?,
        p95: percentile(samples, 95.0)?,
        p99: percentile(samples, 99.0)?,
        max: *samples.last()?,
    })
}

/// Whether a URL host (as `Url::host_str` gives it: IPv6 in brackets) is this machine's loopback: `localhost`,
/// 127.0.0.0/8, `::1`, or an IPv4-mapped loopback address. The load generator refuses every other host, so it can
/// never be pointed at someone else's server.
pub fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        Err(_) => false,
    }
}
