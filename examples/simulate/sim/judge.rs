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
        let helped = |task: usize, from: i64| {
            let escalated = per_task.get(&task).is_some_and(|list| {
                list.iter().any(|e| {
                    e.triggered_at <= until && (e.triggered_at >= from || e.resolved_at.is_none_or(|r| r > from))
                })
            });
            escalated || truth.taken_away_at[task].iter().any(|&at| from <= at && at <= until)
        };
        // A task blocked behind a stuck one is helped by help for the stuck one: the escalation that frees
        // the chain's root frees it too (that help may have come before this task was blocked behind it).
        let caught = helped(index, onset)
            || (trouble == Trouble::Stuck(StuckCause::BehindStuck)
                && upstream(truth, index).into_iter().any(|blocker| {
                    truth.stuck[blocker].iter().any(|i| i.covers(onset)) && helped(blocker, onset - window_ms)
                }));
        cases.push(Case {
            index,
            onset,
            trouble,
            caught,
        });
    }
    cases
}

/// Every task upstream of `index` in the plan (its blockers, theirs, and so on).
fn upstream(truth: &Truth, index: usize) -> Vec<usize> {
    let mut found = Vec::new();
    let mut stack = truth.workload.tasks[index].blockers.clone();
    while let Some(task) = stack.pop() {
        if !found.contains(&task) {
            found.push(task);
            stack.extend(truth.workload.tasks[task].blockers.iter().copied());
        }
    }
    found
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

#[cfg(test)]
mod tests {
    use super::super::truth::{Interval, SentMessage};
    use super::super::workload::{Shape, Workload};
    use super::*;

    const T0: i64 = 1_000 * MINUTE_MS;

    fn truth() -> Truth {
        let shape = Shape {
            agents: 3,
            tasks: 3,
            seed: 1,
            failure_rate: 0.0,
            offline_agents: 0,
        };
        let mut truth = Truth::new(Workload::generate(shape), 1, 480);
        for index in 0..3 {
            truth.record_created(index, &format!("t{index}"), T0, Some(T0 + 240 * MINUTE_MS));
        }
        truth.record_agent(0, "ada", "a0");
        truth
    }

    fn escalation(task: &str, at_minute: i64) -> Escalation {
        let at = T0 + at_minute * MINUTE_MS;
        let mut e = Escalation::opened("e".into(), "rule", Some(task.into()), 1, "why".into(), at);
        e.resolved_at = None;
        e
    }

    fn stuck(truth: &mut Truth, index: usize, from: i64, to: Option<i64>) {
        truth.stuck[index].push(Interval {
            from: T0 + from * MINUTE_MS,
            to: to.map(|to| T0 + to * MINUTE_MS),
            what: StuckCause::SilentAssignee,
        });
    }

    #[test]
    fn an_escalation_on_a_task_that_was_fine_and_met_its_deadline_is_a_false_alarm() {
        let mut truth = truth();
        truth.finished_at[0] = Some(T0 + 60 * MINUTE_MS);
        assert_eq!(verdict(&truth, &escalation("t0", 30)), None);
    }

    #[test]
    fn stuck_when_it_fired_or_in_the_minute_before_is_useful() {
        let mut truth = truth();
        truth.finished_at[0] = Some(T0 + 60 * MINUTE_MS);
        stuck(&mut truth, 0, 10, Some(20));
        let useful = Some(Usefulness::Stuck(StuckCause::SilentAssignee));
        assert_eq!(verdict(&truth, &escalation("t0", 10)), useful);
        assert_eq!(
            verdict(&truth, &escalation("t0", 20)),
            useful,
            "fired on the event that unstuck it"
        );
        assert_eq!(verdict(&truth, &escalation("t0", 21)), None);
    }

    #[test]
    fn a_task_that_went_on_to_miss_its_deadline_made_the_warning_useful() {
        let mut truth = truth();
        truth.finished_at[0] = Some(T0 + 240 * MINUTE_MS);
        assert_eq!(
            verdict(&truth, &escalation("t0", 100)),
            Some(Usefulness::MissedDeadline)
        );
    }

    #[test]
    fn a_missed_acknowledgement_is_useful_only_when_the_recipient_was_silent() {
        let mut truth = truth();
        truth.messages.push(SentMessage {
            id: "m".into(),
            to_agent_id: "a0".into(),
            requires_ack: true,
        });
        let mut e = escalation("t0", 50);
        e.message_id = Some("m".into());
        assert_eq!(verdict(&truth, &e), None);
        truth.silent_since.insert("a0".into(), T0);
        assert_eq!(verdict(&truth, &e), Some(Usefulness::SilentRecipient));
    }

    #[test]
    fn recall_counts_help_within_the_window_or_already_open_at_the_onset() {
        let mut truth = truth();
        stuck(&mut truth, 0, 10, Some(100));
        stuck(&mut truth, 1, 10, Some(100));
        stuck(&mut truth, 2, 10, Some(100));
        let window = 40 * MINUTE_MS;
        let mut early = escalation("t1", 0);
        early.resolved_at = Some(T0 + 60 * MINUTE_MS);
        let cases = recall_cases(&truth, &[escalation("t0", 50), early, escalation("t2", 51)], window);
        let caught: Vec<bool> = cases.iter().map(|c| c.caught).collect();
        assert_eq!(caught, [true, true, false], "{cases:?}");

        truth.taken_away_at[2].push(T0 + 30 * MINUTE_MS);
        let cases = recall_cases(&truth, &[], window);
        assert_eq!(
            cases.iter().filter(|c| c.caught).count(),
            1,
            "taking the task away is help too"
        );
    }

    #[test]
    fn the_first_trouble_is_the_onset() {
        let mut truth = truth();
        stuck(&mut truth, 0, 30, None);
        truth.doomed[0].push(Interval {
            from: T0 + 20 * MINUTE_MS,
            to: None,
            what: (),
        });
        let cases = recall_cases(&truth, &[], MINUTE_MS);
        assert_eq!(
            (cases[0].onset, cases[0].trouble),
            (T0 + 20 * MINUTE_MS, Trouble::Doomed)
        );
    }

    #[test]
    fn unfinished_tasks_with_a_deadline_missed_it() {
        let mut truth = truth();
        truth.finished_at[0] = Some(T0 + 239 * MINUTE_MS);
        truth.finished_at[1] = Some(T0 + 240 * MINUTE_MS);
        assert_eq!(deadlines(&truth), (3, 2), "on the deadline is late, and never is late");
    }
}
