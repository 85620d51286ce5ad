//! The sending side of an agent: its sliding rate window and the `Idempotency-Key`s it used in the last
//! 24 hours. Plain state owned by the `AgentActor`; no I/O.

use super::messages::Sent;
use crate::domain::message::{RateWindow, IDEMPOTENCY_WINDOW_MS};
use crate::error::AppResult;
use std::collections::{HashMap, VecDeque};
use tokio::sync::oneshot;

pub enum KeyState {
    /// The first send with this key is in flight; retries wait for its outcome.
    Pending(Vec<oneshot::Sender<AppResult<Sent>>>),
    Done {
        message_id: String,
    },
}

#[derive(Default)]
pub struct Outbox {
    pub rate: RateWindow,
    keys: HashMap<String, KeyState>,
    /// Completed keys in the order they were used, to forget them after 24 hours.
    used: VecDeque<(i64, String)>,
}

impl Outbox {
    pub fn new(keys: Vec<(String, String, i64)>) -> Outbox {
        let mut outbox = Outbox::default();
        let mut keys = keys;
        keys.sort_by_key(|(_, _, at)| *at);
        for (key, message_id, at) in keys {
            outbox.used.push_back((at, key.clone()));
            outbox.keys.insert(key, KeyState::Done { message_id });
        }
        outbox
    }

    /// The state of a key, after forgetting the keys older than the window.
    pub fn key(&mut self, key: &str, now: i64) -> Option<&mut KeyState> {
        while self
            .used
            .front()
            .is_some_and(|(at, _)| *at <= now - IDEMPOTENCY_WINDOW_MS)
        {
            if let Some((_, old)) = self.used.pop_front() {
                if matches!(self.keys.get(&old), Some(KeyState::Done { .. })) {
                    self.keys.remove(&old);
                }
            }
        }
        self.keys.get_mut(key)
    }

    pub fn reserve(&mut self, key: String) {
        self.keys.insert(key, KeyState::Pending(Vec::new()));
    }

    /// The first send with `key` ended: remember its message, or forget the key if it failed, and answer
    /// the retries that waited.
    pub fn settle(&mut self, key: String, outcome: &AppResult<Sent>, now: i64) {
        let waiting = match self.keys.remove(&key) {
            Some(KeyState::Pending(waiting)) => waiting,
            _ => Vec::new(),
        };
        if let Ok(sent) = outcome {
            self.used.push_back((now, key.clone()));
            self.keys.insert(
                key,
                KeyState::Done {
                    message_id: sent.message.id.clone(),
                },
            );
        }
        for waiter in waiting {
            let replay = outcome.clone().map(|sent| Sent {
                message: sent.message,
                replayed: true,
            });
            let _ = waiter.send(replay);
        }
    }
}
