//! What really happened, as only the simulator knows it: which agents went silent and when, which tasks were
//! stuck (could not move without someone stepping in) and when, and every message the agents sent. The
//! report judges the runtime's escalations and deliveries against it.

use super::workload::Workload;
use mission_control::domain::{Task, TaskStatus};
use std::collections::{HashMap, HashSet};

/// A message an agent sent, as the runtime acknowledged it.
#[derive(Debug, Clone)]
pub struct SentMessage {
    pub id: String,
    pub to_agent_id: String,
    pub requires_ack: bool,
}

#[derive(Debug, Clone)]
pub struct Truth {
    pub workload: Workload,
    /// Runtime id of each planned task, once the coordinator created it.
    pub task_ids: Vec<Option<String>>,
    index_of: HashMap<String, usize>,
    pub agent_ids: HashMap<String, String>,
    /// Attempts started on each task.
    pub attempts: Vec<usize>,
    pub created_at: Vec<Option<i64>>,
    pub finished_at: Vec<Option<i64>>,
    /// Agents that went silent (by id), and since when.
    pub silent_since: HashMap<String, i64>,
    /// Per task, the intervals `[from, to)` during which it was stuck (`to` open while it still is).
    stuck: Vec<Vec<(i64, Option<i64>)>>,
    pub messages: Vec<SentMessage>,
    /// Sends refused by the rate limit (not retried).
    pub rate_limited: usize,
}

impl Truth {
    pub fn new(workload: Workload) -> Truth {
        let n = workload.tasks.len();
        Truth {
            workload,
            task_ids: vec![None; n],
            index_of: HashMap::new(),
            agent_ids: HashMap::new(),
            attempts: vec![0; n],
            created_at: vec![None; n],
            finished_at: vec![None; n],
            silent_since: HashMap::new(),
            stuck: vec![Vec::new(); n],
            messages: Vec::new(),
            rate_limited: 0,
        }
    }

    pub fn record_created(&mut self, index: usize, id: &str, at: i64) {
        self.task_ids[index] = Some(id.to_string());
        self.index_of.insert(id.to_string(), index);
        self.created_at[index] = Some(at);
    }

    pub fn index_of(&self, task_id: &str) -> Option<usize> {
        self.index_of.get(task_id).copied()
    }

    pub fn finished(&self) -> usize {
        self.finished_at.iter().filter(|f| f.is_some()).count()
    }

    pub fn is_silent(&self, agent_id: &str, at: i64) -> bool {
        self.silent_since.get(agent_id).is_some_and(|&since| since <= at)
    }

    /// Recomputes which tasks are stuck now, from the board's open tasks: a task is stuck when its assignee
    /// has gone silent, or when it waits on a stuck task. Blockers always come earlier in the plan, so one
    /// pass in plan order settles the whole chain.
    pub fn observe(&mut self, open: &[Task], now: i64) {
        let by_id: HashMap<&str, &Task> = open.iter().map(|t| (t.id.as_str(), t)).collect();
        let mut stuck_now: HashSet<usize> = HashSet::new();
        for index in 0..self.workload.tasks.len() {
            let Some(task) = self.task_ids[index].as_deref().and_then(|id| by_id.get(id)) else {
                continue;
            };
            let held_by_silent = task
                .assignee_id
                .as_deref()
                .is_some_and(|agent| self.is_silent(agent, now));
            let waits_on_stuck = task.status == TaskStatus::Blocked
                && self.workload.tasks[index]
                    .blockers
                    .iter()
                    .any(|b| stuck_now.contains(b));
            if held_by_silent || waits_on_stuck {
                stuck_now.insert(index);
            }
        }
        for (index, intervals) in self.stuck.iter_mut().enumerate() {
            let open_interval = intervals.last_mut().filter(|(_, to)| to.is_none());
            match (stuck_now.contains(&index), open_interval) {
                (true, None) => intervals.push((now, None)),
                (false, Some(interval)) => interval.1 = Some(now),
                _ => {}
            }
        }
    }

    pub fn was_stuck(&self, task_id: &str, at: i64) -> bool {
        self.index_of(task_id).is_some_and(|index| {
            self.stuck[index]
                .iter()
                .any(|&(from, to)| from <= at && to.is_none_or(|to| at < to))
        })
    }

    /// Tasks that were stuck at some point.
    pub fn ever_stuck(&self) -> usize {
        self.stuck.iter().filter(|intervals| !intervals.is_empty()).count()
    }

    pub fn message(&self, id: &str) -> Option<&SentMessage> {
        self.messages.iter().find(|m| m.id == id)
    }
}
