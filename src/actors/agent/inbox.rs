//! The open part of one agent's inbox (unread or unacknowledged, unexpired) and whoever waits for new
//! messages: long polls and WebSocket streams. Plain state owned by the `AgentActor`; no I/O.

use crate::domain::message::{InboxFilter, Message};
use std::collections::BTreeMap;
use tokio::sync::{mpsc, oneshot};

/// How many pushed messages a stream may have queued before it is dropped as too slow. A dropped client
/// reconnects and catches up from the inbox listing.
pub const STREAM_BUFFER: usize = 256;

struct Waiter {
    filter: InboxFilter,
    reply: oneshot::Sender<Vec<Message>>,
}

#[derive(Default)]
pub struct Inbox {
    /// Open messages by id (ids are time-ordered), each with its arrival number.
    open: BTreeMap<String, (u64, Message)>,
    arrivals: u64,
    waiters: Vec<Waiter>,
    streams: Vec<mpsc::Sender<Message>>,
}

impl Inbox {
    pub fn new(messages: Vec<Message>) -> Inbox {
        let mut inbox = Inbox::default();
        for message in messages {
            inbox.arrivals += 1;
            inbox.open.insert(message.id.clone(), (inbox.arrivals, message));
        }
        inbox
    }

    /// A message has been committed to this inbox: hold it and push it to everyone waiting for it.
    pub fn deliver(&mut self, message: Message) {
        self.arrivals += 1;
        let waiters = std::mem::take(&mut self.waiters);
        for waiter in waiters {
            if waiter.reply.is_closed() {
                continue;
            }
            if waiter.filter.matches(&message) {
                // A long poll that has gone away is simply dropped.
                let _ = waiter.reply.send(vec![message.clone()]);
            } else {
                self.waiters.push(waiter);
            }
        }
        self.streams.retain(|stream| match stream.try_send(message.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                log::warn!(
                    "dropping a WebSocket stream of {} that stopped reading",
                    message.to_agent_name
                );
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        if message.is_open() {
            self.open.insert(message.id.clone(), (self.arrivals, message));
        }
    }

    /// The arrival count: a long poll remembers it before reading the store, and afterwards asks only for
    /// what arrived since.
    pub fn arrivals(&self) -> u64 {
        self.arrivals
    }

    /// Open messages that arrived after `since` and match, newest first.
    pub fn arrived_since(&self, since: u64, filter: &InboxFilter) -> Vec<Message> {
        self.open
            .values()
            .rev()
            .filter(|(n, m)| *n > since && filter.matches(m))
            .map(|(_, m)| m.clone())
            .collect()
    }

    pub fn wait(&mut self, filter: InboxFilter) -> oneshot::Receiver<Vec<Message>> {
        let (reply, receiver) = oneshot::channel();
        self.waiters.retain(|w| !w.reply.is_closed());
        self.waiters.push(Waiter { filter, reply });
        receiver
    }

    pub fn stream(&mut self) -> mpsc::Receiver<Message> {
        let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
        self.streams.retain(|s| !s.is_closed());
        self.streams.push(sender);
        receiver
    }

    /// An open, unexpired message.
    pub fn get(&self, id: &str, now: i64) -> Option<&Message> {
        self.open.get(id).map(|(_, m)| m).filter(|m| !m.is_expired(now))
    }

    /// Replaces a message with its committed new state; it leaves memory once read and acknowledged.
    pub fn update(&mut self, message: Message) {
        if message.is_open() {
            if let Some(entry) = self.open.get_mut(&message.id) {
                entry.1 = message;
            }
        } else {
            self.open.remove(&message.id);
        }
    }

    pub fn forget(&mut self, ids: &[String]) {
        for id in ids {
            self.open.remove(id);
        }
    }

    pub fn open_messages(&self) -> impl Iterator<Item = &Message> {
        self.open.values().map(|(_, m)| m)
    }

    pub fn unread_count(&self) -> usize {
        self.open_messages().filter(|m| m.read_at.is_none()).count()
    }

    pub fn unacknowledged_count(&self) -> usize {
        self.open_messages().filter(|m| m.acknowledged_at.is_none()).count()
    }
}
