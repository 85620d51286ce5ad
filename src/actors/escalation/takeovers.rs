//! The scheduler's memory of "this task was already taken from a silent assignee at time T", for the
//! ping-pong guard ([`crate::domain::escalation::ping_pong`]). It is derived from the escalation history (a
//! `no_heartbeat` firing whose `reassign` ran), so a restart rebuilds it from the recent firings.

use crate::domain::escalation::{took_from_silent_assignee, Escalation};
use std::collections::HashMap;

#[derive(Debug, Default)]
pub(super) struct SilentTakeovers {
    /// Task → when it was last taken from a silent assignee.
    last: HashMap<String, i64>,
}

impl SilentTakeovers {
    /// Rebuilt from the history's recent firings (any order).
    pub(super) fn from_history(history: &[Escalation]) -> SilentTakeovers {
        let mut takeovers = SilentTakeovers::default();
        takeovers.note(history, i64::MIN);
        takeovers
    }

    /// Remembers the takeovers among these firings, and forgets those before `horizon` (older than any
    /// rule's cooldown: they can no longer hold a firing back).
    pub(super) fn note(&mut self, fired: &[Escalation], horizon: i64) {
        for e in fired.iter().filter(|e| took_from_silent_assignee(e)) {
            if let Some(task) = &e.task_id {
                let at = self.last.entry(task.clone()).or_insert(e.triggered_at);
                *at = (*at).max(e.triggered_at);
            }
        }
        self.last.retain(|_, at| *at >= horizon);
    }

    pub(super) fn last(&self, task: &str) -> Option<i64> {
        self.last.get(task).copied()
    }

    pub(super) fn forget(&mut self, task: &str) {
        self.last.remove(task);
    }
}
