//! What really happened, as only the simulator knows it: which agents went silent and when, how much real work
//! every task still needs, which tasks were stuck (could not move without someone stepping in) or doomed (could
//! no longer meet their deadline even if worked without a break from now on), which agents were overloaded, and
//! every message the agents sent. Written from the workload's ground truth alone, never from the runtime's
//! rules: `judge.rs` rates the runtime against it.

use super::workload::Workload;
use mission_control::domain::{Task, TaskStatus};
use std::collections::HashMap;

const MINUTE_MS: i64 = 60_000;

/// A message an agent sent, as the runtime acknowledged it.
#[derive(Debug, Clone)]
pub struct SentMessage {
    pub id: String,
    pub to_agent_id: String,
    pub requires_ack: bool,
}

/// Why a task could not move on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StuckCause {
    /// Held by an agent that crashed (or otherwise went silent).
    SilentAssignee,
    /// Held by an agent who can never finish it.
    BeyondAssignee,
    /// Blocked, directly or transitively, behind a stuck task.
    BehindStuck,
}

impl StuckCause {
    pub fn label(self) -> &'static str {
        match self {
            StuckCause::SilentAssignee => "assignee silent",
            StuckCause::BeyondAssignee => "assignee can never finish it",
            StuckCause::BehindStuck => "blocked behind a stuck task",
        }
    }
}

/// An interval `[from, to)` of simulated time (`to` open while it lasts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval<T> {
    pub from: i64,
    pub to: Option<i64>,
    pub what: T,
}

impl<T> Interval<T> {
    pub fn covers(&self, at: i64) -> bool {
        self.from <= at && self.to.is_none_or(|to| at < to)
    }
}

/// Opens or closes the last interval of a history for what holds now.
fn track<T: Copy + PartialEq>(history: &mut Vec<Interval<T>>, now_holds: Option<T>, now: i64) {
    let open = history.last_mut().filter(|i| i.to.is_none());
    match (now_holds, open) {
        (Some(what), None) => history.push(Interval {
            from: now,
            to: None,
            what,
        }),
        (Some(what), Some(interval)) if interval.what != what => {
            interval.to = Some(now);
            history.push(Interval {
                from: now,
                to: None,
                what,
            });
        }
        (None, Some(interval)) => interval.to = Some(now),
        _ => {}
    }
}

#[derive(Debug, Clone)]
pub struct Truth {
    pub workload: Workload,
    /// Runtime id of each planned task, once the coordinator created it.
    pub task_ids: Vec<Option<String>>,
    index_of: HashMap<String, usize>,
    /// Runtime id of each agent, by name.
    pub agent_ids: HashMap<String, String>,
    /// Position in the team of each agent, by runtime id.
    agent_index: HashMap<String, usize>,
    /// Attempts started on each task.
    pub attempts: Vec<usize>,
    pub created_at: Vec<Option<i64>>,
    /// The SLO deadline the runtime gave each task when it was created (the contract, not a judgement).
    pub deadline_at: Vec<Option<i64>>,
    /// When work on each task first started.
    pub started_at: Vec<Option<i64>>,
    pub finished_at: Vec<Option<i64>>,
    /// Real minutes left in the attempt under way on each task (kept by the agent working on it).
    pub remaining_real: Vec<Option<i64>>,
    /// Agents that went silent (by id), and since when.
    pub silent_since: HashMap<String, i64>,
    /// Per task, when it was stuck and why.
    pub stuck: Vec<Vec<Interval<StuckCause>>>,
    /// Per task, when it could no longer meet its deadline by the truth.
    pub doomed: Vec<Vec<Interval<()>>>,
    /// Per task, the assignee seen at the last observation, and when the runtime took the task from one.
    last_assignee: Vec<Option<String>>,
    pub taken_away_at: Vec<Vec<i64>>,
    /// Per agent (team position), when it held more than its limits allow.
    pub overloaded: Vec<Vec<Interval<()>>>,
    pub messages: Vec<SentMessage>,
    /// Sends refused by the rate limit (not retried).
    pub rate_limited: usize,
    /// The limits every agent is registered with.
    pub max_concurrent_tasks: usize,
    pub max_minutes_per_day: i64,
}

impl Truth {
    pub fn new(workload: Workload, max_concurrent_tasks: usize, max_minutes_per_day: i64) -> Truth {
        let n = workload.tasks.len();
        let agents = workload.agents.len();
        Truth {
            workload,
            task_ids: vec![None; n],
            index_of: HashMap::new(),
            agent_ids: HashMap::new(),
            agent_index: HashMap::new(),
            attempts: vec![0; n],
            created_at: vec![None; n],
            deadline_at: vec![None; n],
            started_at: vec![None; n],
            finished_at: vec![None; n],
            remaining_real: vec![None; n],
            silent_since: HashMap::new(),
            stuck: vec![Vec::new(); n],
            doomed: vec![Vec::new(); n],
            last_assignee: vec![None; n],
            taken_away_at: vec![Vec::new(); n],
            overloaded: vec![Vec::new(); agents],
            messages: Vec::new(),
            rate_limited: 0,
            max_concurrent_tasks,
            max_minutes_per_day,
        }
    }

    pub fn record_agent(&mut self, position: usize, name: &str, id: &str) {
        self.agent_ids.insert(name.to_string(), id.to_string());
        self.agent_index.insert(id.to_string(), position);
    }

    pub fn record_created(&mut self, index: usize, id: &str, at: i64, deadline_at: Option<i64>) {
        self.task_ids[index] = Some(id.to_string());
        self.index_of.insert(id.to_string(), index);
        self.created_at[index] = Some(at);
        self.deadline_at[index] = deadline_at;
    }

    pub fn index_of(&self, task_id: &str) -> Option<usize> {
        self.index_of.get(task_id).copied()
    }

    pub fn agent_position(&self, agent_id: &str) -> Option<usize> {
        self.agent_index.get(agent_id).copied()
    }

    pub fn finished(&self) -> usize {
        self.finished_at.iter().filter(|f| f.is_some()).count()
    }

    pub fn is_silent(&self, agent_id: &str, at: i64) -> bool {
        self.silent_since.get(agent_id).is_some_and(|&since| since <= at)
    }

    /// Whether the agent (by runtime id) can never finish the task.
    pub fn is_beyond(&self, index: usize, agent_id: &str) -> bool {
        self.agent_position(agent_id)
            .is_some_and(|agent| self.workload.tasks[index].is_beyond(agent))
    }

    /// Real minutes still needed to finish task `index` from now if capable agents at the nominal pace worked
    /// on it without a break: what is left of the attempt under way (unless its agent can never finish it),
    /// then every further attempt the truth says fails, then the one that succeeds. A lower bound: waiting for
    /// an agent, and slower agents, only add to it.
    fn remaining_lower_bound(&self, index: usize, assignee: Option<&str>, in_progress: bool, now: i64) -> i64 {
        let plan = &self.workload.tasks[index];
        let started = self.attempts[index];
        let mut minutes = 0;
        let mut next_attempt = started;
        if in_progress && started > 0 {
            let capable = assignee.is_some_and(|a| !self.is_beyond(index, a) && !self.is_silent(a, now));
            let current = started - 1;
            if capable {
                minutes += self.remaining_real[index].unwrap_or(plan.true_minutes).max(0);
                if !plan.attempt_fails(current) {
                    return minutes;
                }
            }
        }
        loop {
            minutes += plan.true_minutes;
            if !plan.attempt_fails(next_attempt) {
                return minutes;
            }
            next_attempt += 1;
        }
    }

    /// Takes stock after the agents' minute, from the board's open tasks: which tasks are stuck and why, which
    /// are doomed, which tasks the runtime took from their assignee, and which agents are overloaded. Blockers
    /// always come earlier in the plan, so one pass in plan order settles every chain.
    pub fn observe(&mut self, open: &[Task], now: i64) {
        let by_id: HashMap<&str, &Task> = open.iter().map(|t| (t.id.as_str(), t)).collect();
        let n = self.workload.tasks.len();
        let mut stuck_now: Vec<Option<StuckCause>> = vec![None; n];
        // Earliest real finish by the truth, per task (finished tasks: when they finished).
        let mut earliest_finish: Vec<Option<i64>> = vec![None; n];
        let mut assignees: Vec<Option<String>> = vec![None; n];
        for index in 0..n {
            if let Some(done) = self.finished_at[index] {
                earliest_finish[index] = Some(done);
                continue;
            }
            let Some(task) = self.task_ids[index].as_deref().and_then(|id| by_id.get(id)) else {
                continue;
            };
            let assignee = task.assignee_id.as_deref();
            assignees[index] = assignee.map(str::to_string);
            let blockers = &self.workload.tasks[index].blockers;
            stuck_now[index] = if assignee.is_some_and(|a| self.is_silent(a, now)) {
                Some(StuckCause::SilentAssignee)
            } else if assignee.is_some_and(|a| self.is_beyond(index, a)) {
                Some(StuckCause::BeyondAssignee)
            } else if task.status == TaskStatus::Blocked && blockers.iter().any(|&b| stuck_now[b].is_some()) {
                Some(StuckCause::BehindStuck)
            } else {
                None
            };
            let start = blockers
                .iter()
                .map(|&b| earliest_finish[b].unwrap_or(now))
                .max()
                .unwrap_or(now)
                .max(now);
            let in_progress = matches!(task.status, TaskStatus::InProgress | TaskStatus::Review);
            let work = self.remaining_lower_bound(index, assignee, in_progress, now);
            earliest_finish[index] = Some(start + work * MINUTE_MS);
        }
        for index in 0..n {
            track(&mut self.stuck[index], stuck_now[index], now);
            let doomed = match (self.finished_at[index], self.deadline_at[index], earliest_finish[index]) {
                (None, Some(deadline), Some(finish)) => finish >= deadline,
                _ => false,
            };
            track(&mut self.doomed[index], doomed.then_some(()), now);
            // A finished task leaves the open tasks; only an open one can be taken from its assignee.
            let before = self.last_assignee[index].take();
            if before.is_some() && before != assignees[index] && self.finished_at[index].is_none() {
                self.taken_away_at[index].push(now);
            }
            self.last_assignee[index] = assignees[index].clone();
        }
        self.observe_load(open, now);
    }

    /// An agent is overloaded while it has more tasks in progress than its limit, or more real work in
    /// progress than its minutes a day.
    fn observe_load(&mut self, open: &[Task], now: i64) {
        let agents = self.workload.agents.len();
        let mut count = vec![0usize; agents];
        let mut minutes = vec![0i64; agents];
        for task in open.iter().filter(|t| t.status == TaskStatus::InProgress) {
            let (Some(agent), Some(index)) = (
                task.assignee_id.as_deref().and_then(|a| self.agent_position(a)),
                self.index_of(&task.id),
            ) else {
                continue;
            };
            count[agent] += 1;
            minutes[agent] += self.remaining_real[index].unwrap_or(0).max(0);
        }
        for agent in 0..agents {
            let over = count[agent] > self.max_concurrent_tasks || minutes[agent] > self.max_minutes_per_day;
            track(&mut self.overloaded[agent], over.then_some(()), now);
        }
    }

    /// Why the task was stuck at `at`, if it was. The truth is taken once a minute, after the agents' minute;
    /// what fires while the agents act (a rule run on a task's event) sees the state of the minute before,
    /// so an instant counts as stuck when the observation at it or the one a minute before says so.
    pub fn stuck_at(&self, index: usize, at: i64) -> Option<StuckCause> {
        [at, at - MINUTE_MS]
            .into_iter()
            .find_map(|at| self.stuck[index].iter().find(|i| i.covers(at)).map(|i| i.what))
    }

    /// Whether the task was doomed at `at` (observed then or a minute before, as for [`Truth::stuck_at`]).
    pub fn doomed_at(&self, index: usize, at: i64) -> bool {
        [at, at - MINUTE_MS]
            .into_iter()
            .any(|at| self.doomed[index].iter().any(|i| i.covers(at)))
    }

    /// Whether the task missed its deadline: not finished strictly before it (the runtime's own meaning of
    /// `MET`), or never finished at all.
    pub fn missed_deadline(&self, index: usize) -> bool {
        match (self.deadline_at[index], self.finished_at[index]) {
            (Some(deadline), Some(finished)) => finished >= deadline,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// Tasks that were stuck at some point.
    pub fn ever_stuck(&self) -> usize {
        self.stuck.iter().filter(|intervals| !intervals.is_empty()).count()
    }

    pub fn message(&self, id: &str) -> Option<&SentMessage> {
        self.messages.iter().find(|m| m.id == id)
    }
}
