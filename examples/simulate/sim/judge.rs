//! The judgement of a run against the simulator's truth: which escalations were useful (precision), which
//! stuck or doomed tasks got help in time (recall), how many deadlines were missed, how often agents were
//! overloaded, and how soon dependent work started. Pure functions over the truth and the escalation
//! history; nothing here asks the runtime how it judged itself.

use super::truth::{StuckCause, Truth};
use mission_control::domain::escalation::Escalation;
use serde::Serialize;
use std::collections::BTreeMap;

const MINUTE_MS: i64 = 60_000;

/// Why an escalation was useful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Usefulness {
    /// The task was stuck when it fired.
    Stuck(StuckCause),
    /// The task could no longer meet its deadline when it fired, even if worked on without a break.
    Doomed,
    /// The task did go on to miss its deadline (or never finished).
    MissedDeadline,
    /// For a missed acknowledgement: the recipient had gone silent.
    SilentRecipient,
}

impl Usefulness {
    pub fn label(self) -> &'static str {
        match self {
            Usefulness::Stuck(cause) => cause.label(),
            Usefulness::Doomed => "doomed to miss its deadline",
            Usefulness::MissedDeadline => "went on to miss its deadline",
            Usefulness::SilentRecipient => "recipient silent",
        }
    }
}

/// Whether an escalation was useful when it fired, and why; `None` for a false alarm. A missed
/// acknowledgement is useful when its recipient had gone silent; any other escalation when its task was
/// stuck or doomed at that moment, or went on to miss its deadline.
pub fn verdict(truth: &Truth, escalation: &Escalation) -> Option<Usefulness> {
    let at = escalation.triggered_at;
    if let Some(message) = escalation.message_id.as_deref().and_then(|id| truth.message(id)) {
        return truth
            .is_silent(&message.to_agent_id, at)
            .then_some(Usefulness::SilentRecipient);
    }
    let index = escalation.task_id.as_deref().and_then(|id| truth.index_of(id))?;
    if let Some(cause) = truth.stuck_at(index, at) {
        Some(Usefulness::Stuck(cause))
    } else if truth.doomed_at(index, at) {
        Some(Usefulness::Doomed)
    } else if truth.missed_deadline(index) {
        Some(Usefulness::MissedDeadline)
    } else {
        None
    }
}

/// What first went wrong with a task that needed help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Trouble {
    Stuck(StuckCause),
    Doomed,
}

impl Trouble {
    pub fn label(self) -> &'static str {
        match self {
            Trouble::Stuck(cause) => cause.label(),
            Trouble::Doomed => "doomed to miss its deadline",
        }
    }
}

/// A task that was stuck or doomed at some point, from the first moment it was either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub index: usize,
    pub onset: i64,
    pub trouble: Trouble,
    /// It got an escalation, or the runtime took it from its assignee, within the window after the onset
    /// (an escalation already open at the onset counts too).
    pub caught: bool,
}

/// Every task that was ever stuck or doomed, and whether help came within `window_ms`.
pub fn recall_cases(truth: &Truth, escalations: &[Escalation], window_ms: i64) -> Vec<Case> {
    let mut per_task: BTreeMap<usize, Vec<&Escalation>> = BTreeMap::new();
    for escalation in escalations {
        if let Some(index) = escalation.task_id.as_deref().and_then(|id| truth.index_of(id)) {
            per_task.entry(index).or_default().push(escalation);
        }
    }
    let mut cases = Vec::new();
    for index in 0..truth.workload.tasks.len() {
        let stuck = truth.stuck[index].first().map(|i| (i.from, Trouble::Stuck(i.what)));
        let doomed = truth.doomed[index].first().map(|i| (i.from, Trouble::Doomed));
        let first = match (stuck, doomed) {
            (Some(s), Some(d)) => Some(if d.0 < s.0 { d } else { s }),
            (s, d) => s.or(d),
        };
        let Some((onset, trouble)) = first else { continue };
        let until = onset + window_ms;
        let escalated = per_task.get(&index).is_some_and(|list| {
            list.iter().any(|e| {
                e.triggered_at <= until && (e.triggered_at >= onset || e.resolved_at.is_none_or(|r| r > onset))
            })
        });
        let taken_away = truth.taken_away_at[index].iter().any(|&at| onset <= at && at <= until);
        cases.push(Case {
            index,
            onset,
            trouble,
            caught: escalated || taken_away,
        });
    }
    cases
}

/// Tasks with a deadline, and those that missed it (finished at or after it, or never finished).
pub fn deadlines(truth: &Truth) -> (usize, usize) {
    let with_deadline = (0..truth.workload.tasks.len())
        .filter(|&i| truth.deadline_at[i].is_some())
        .count();
    let missed = (0..truth.workload.tasks.len())
        .filter(|&i| truth.missed_deadline(i))
        .count();
    (with_deadline, missed)
}

/// Overload situations (an agent entering overload counts once) and the agent-minutes spent in them, up to
/// `end`.
pub fn overloads(truth: &Truth, end: i64) -> (usize, i64) {
    let episodes = truth.overloaded.iter().map(Vec::len).sum();
    let minutes = truth
        .overloaded
        .iter()
        .flatten()
        .map(|i| (i.to.unwrap_or(end) - i.from) / MINUTE_MS)
        .sum();
    (episodes, minutes)
}

/// For each task that waited on others and started: minutes from its last blocker's completion to its
/// first start, sorted.
pub fn dependent_start_minutes(truth: &Truth) -> Vec<i64> {
    let mut waits: Vec<i64> = truth
        .workload
        .tasks
        .iter()
        .filter(|plan| !plan.blockers.is_empty())
        .filter_map(|plan| {
            let started = truth.started_at[plan.index]?;
            let unblocked = plan
                .blockers
                .iter()
                .map(|&b| truth.finished_at[b])
                .collect::<Option<Vec<i64>>>()?
                .into_iter()
                .max()?;
            Some((started - unblocked).max(0) / MINUTE_MS)
        })
        .collect();
    waits.sort_unstable();
    waits
}

/// Counts of useful escalations per reason, for the report.
pub fn useful_by_reason(truth: &Truth, escalations: &[Escalation]) -> Vec<Count> {
    let mut counts: BTreeMap<Usefulness, usize> = BTreeMap::new();
    for escalation in escalations {
        if let Some(reason) = verdict(truth, escalation) {
            *counts.entry(reason).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .map(|(reason, count)| Count {
            what: reason.label().to_string(),
            count,
            of: None,
        })
        .collect()
}

/// Cases and caught cases per kind of trouble.
pub fn recall_by_trouble(cases: &[Case]) -> Vec<Count> {
    let mut counts: BTreeMap<Trouble, (usize, usize)> = BTreeMap::new();
    for case in cases {
        let entry = counts.entry(case.trouble).or_default();
        entry.0 += usize::from(case.caught);
        entry.1 += 1;
    }
    counts
        .into_iter()
        .map(|(trouble, (caught, of))| Count {
            what: trouble.label().to_string(),
            count: caught,
            of: Some(of),
        })
        .collect()
}

/// A labelled count, optionally out of a whole.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Count {
    pub what: String,
    pub count: usize,
    pub of: Option<usize>,
}
