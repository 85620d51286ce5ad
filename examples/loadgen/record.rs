//! What the workers measure: the operations a request can be, how it ended, and per operation the latency of
//! every 2xx answer and the errors by status. Each worker keeps its own [`Recorder`] (no sharing while the load
//! runs); they are merged once it ends.

use crate::stats::Kind;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A row of the report: what one request did. The task kind is split by the step it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    SendMessage,
    ReadInbox,
    ReadCapacity,
    TaskCreate,
    TaskStart,
    TaskFinish,
    SuitableAgents,
}

impl Op {
    pub const ALL: [Op; 7] = [
        Op::SendMessage,
        Op::ReadInbox,
        Op::ReadCapacity,
        Op::TaskCreate,
        Op::TaskStart,
        Op::TaskFinish,
        Op::SuitableAgents,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Op::SendMessage => "send message",
            Op::ReadInbox => "read inbox",
            Op::ReadCapacity => "read capacity",
            Op::TaskCreate => "task create",
            Op::TaskStart => "task ready → in_progress",
            Op::TaskFinish => "task in_progress → done",
            Op::SuitableAgents => "suitable agents",
        }
    }

    pub fn kind(self) -> Kind {
        match self {
            Op::SendMessage => Kind::SendMessage,
            Op::ReadInbox => Kind::ReadInbox,
            Op::ReadCapacity => Kind::ReadCapacity,
            Op::TaskCreate | Op::TaskStart | Op::TaskFinish => Kind::Task,
            Op::SuitableAgents => Kind::SuitableAgents,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What one operation's measured requests came to.
#[derive(Debug, Default, Clone)]
pub struct OpRecord {
    /// Latency of every 2xx answer, in µs.
    pub latencies_us: Vec<u32>,
    /// Requests that got anything else, by HTTP status (`"429"`) or `"transport"`.
    pub errors: BTreeMap<String, u64>,
    /// The first answer seen for each error key, shortened.
    pub first_error: BTreeMap<String, String>,
}

impl OpRecord {
    pub fn requests(&self) -> u64 {
        self.latencies_us.len() as u64 + self.errors.values().sum::<u64>()
    }
}

/// One worker's measurements; merged across workers for the report.
#[derive(Debug, Clone)]
pub struct Recorder {
    pub ops: Vec<OpRecord>,
    /// When the last measured request finished.
    pub last_done: Option<Instant>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            ops: vec![OpRecord::default(); Op::ALL.len()],
            last_done: None,
        }
    }
}

impl Recorder {
    pub fn record(&mut self, op: Op, outcome: Outcome, latency: Duration, done: Instant) {
        let record = &mut self.ops[op.index()];
        match outcome {
            Outcome::Ok => record
                .latencies_us
                .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX)),
            Outcome::Status(status, body) => Self::error(record, status.to_string(), body),
            Outcome::Transport(why) => Self::error(record, "transport".to_string(), why),
            Outcome::BadAnswer(why) => Self::error(record, "bad answer".to_string(), why),
        }
        self.last_done = Some(self.last_done.map_or(done, |d| d.max(done)));
    }

    fn error(record: &mut OpRecord, key: String, sample: String) {
        *record.errors.entry(key.clone()).or_default() += 1;
        record.first_error.entry(key).or_insert(sample);
    }

    pub fn merge(&mut self, other: Recorder) {
        for (mine, theirs) in self.ops.iter_mut().zip(other.ops) {
            mine.latencies_us.extend(theirs.latencies_us);
            for (key, n) in theirs.errors {
                *mine.errors.entry(key).or_default() += n;
            }
            for (key, sample) in theirs.first_error {
                mine.first_error.entry(key).or_insert(sample);
            }
        }
        self.last_done = match (self.last_done, other.last_done) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

/// How a request ended.
pub enum Outcome {
    Ok,
    Status(u16, String),
    Transport(String),
    /// A 2xx answer without the expected `id`.
    BadAnswer(String),
}
