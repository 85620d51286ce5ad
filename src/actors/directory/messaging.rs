//! The directory's part in messaging: resolve the agents a request names, check who may read what, and
//! forward to the agent actors. Inbox history, sent lists, search and statistics are store reads.

use super::messages::*;
use super::AgentDirectory;
use crate::actors::agent::messages::{self as agent_msg, Overdue, ReplyTarget};
use crate::actors::agent::AgentActor;
use crate::actors::task_board::messages::AgentTasks;
use crate::actors::{ask, reply_now, request};
use crate::domain::capacity;
use crate::domain::message::{self as rules, Recipient, Sender};
use crate::domain::{AgentLevel, AgentStatus, Principal, TaskStatus};
use crate::error::{AppError, AppResult};
use crate::ids::new_id;
use crate::observability;
use crate::store::{message_queries, Store};
use actix::fut::{self, ActorFutureExt};
use actix::prelude::*;
use futures_util::future::join_all;

impl AgentDirectory {
    fn target(&self, key: &str) -> AppResult<(String, Addr<AgentActor>)> {
        self.addr_of(key).ok_or_else(|| AppError::agent_not_found(key))
    }

    fn recipient(&self, key: &str) -> AppResult<(Recipient, Addr<AgentActor>)> {
        let (id, addr) = self.target(key)?;
        let name = self.agents.get(&id).map(|e| e.name.clone()).unwrap_or_default();
        Ok((Recipient { id, name }, addr))
    }

    /// The agent's id, when the caller may read its mail: the agent itself or the admin.
    fn mailbox_owner(&self, key: &str, by: &Principal) -> AppResult<String> {
        let (id, _) = self.target(key)?;
        if by.is_admin() || by.is_agent(&id) {
            Ok(id)
        } else {
            Err(AppError::forbidden("an agent token may only read its own messages"))
        }
    }
}

/// Forwards a request to one agent's actor. An actor that stops before answering was deleted meanwhile
/// (a long poll parked on it, say): that is the agent not being found, not a failure of the runtime.
fn forward<M, T>(target: AppResult<(String, Addr<AgentActor>)>, msg: M) -> ResponseFuture<AppResult<T>>
where
    M: actix::Message<Result = AppResult<T>> + Send + 'static,
    AgentActor: Handler<M>,
    T: Send + 'static,
{
    Box::pin(async move {
        let (id, addr) = target?;
        request(&addr, msg).await.map_err(|_| AppError::agent_not_found(&id))?
    })
}

/// A store read, after the permission check has passed.
fn read<T, F>(store: Store, allowed: AppResult<String>, query: F) -> ResponseFuture<AppResult<T>>
where
    T: Send + 'static,
    F: FnOnce(&mut crate::store::AnyConnection, &str) -> Result<T, crate::store::StoreError> + Send + 'static,
{
    Box::pin(async move {
        let id = allowed?;
        store.read(move |conn| query(conn, &id)).await.map_err(AppError::store)
    })
}

impl Handler<SendMessage> for AgentDirectory {
    type Result = ResponseFuture<AppResult<agent_msg::Sent>>;

    fn handle(&mut self, msg: SendMessage, _: &mut Context<Self>) -> Self::Result {
        let routed = (|| -> AppResult<_> {
            let (_, sender) = self.target(&msg.from)?;
            let (recipient, recipient_addr) = self.recipient(&msg.draft.to_agent_id)?;
            let board = self
                .board
                .clone()
                .ok_or_else(|| AppError::internal("the task board is not wired to the directory"))?;
            Ok((sender, recipient, recipient_addr, board))
        })();
        Box::pin(async move {
            let (sender, recipient, recipient_addr, board) = routed?;
            let send = agent_msg::SendMessage {
                draft: msg.draft,
                recipient,
                recipient_addr,
                board,
                by: msg.by,
                idempotency_key: msg.idempotency_key,
            };
            ask(&sender, send).await
        })
    }
}

impl Handler<ReplaySend> for AgentDirectory {
    type Result = ResponseFuture<AppResult<Option<agent_msg::Sent>>>;

    fn handle(&mut self, msg: ReplaySend, _: &mut Context<Self>) -> Self::Result {
        let replay = agent_msg::Replay {
            key: msg.key,
            by: msg.by,
        };
        forward(self.target(&msg.from), replay)
    }
}

impl Handler<SendSystemMessage> for AgentDirectory {
    type Result = ResponseFuture<AppResult<rules::Message>>;

    fn handle(&mut self, msg: SendSystemMessage, _: &mut Context<Self>) -> Self::Result {
        let now = self.deps.now();
        let ttl = self.deps.messaging.ttl_ms();
        let routed = self.recipient(&msg.draft.to_agent_id).and_then(|(recipient, addr)| {
            let mut message = rules::compose(msg.draft, new_id(), Sender::System, recipient, now, ttl)?;
            message.idempotency_key = msg.idempotency_key;
            Ok((message, addr))
        });
        Box::pin(async move {
            let (message, addr) = routed?;
            observability::message_sent(message.sender_kind.as_str());
            let deliver = agent_msg::Deliver {
                message,
                by: Principal::System,
            };
            ask(&addr, deliver).await
        })
    }
}

impl Handler<ListInbox> for AgentDirectory {
    type Result = ResponseFuture<AppResult<agent_msg::InboxPage>>;

    fn handle(&mut self, msg: ListInbox, _: &mut Context<Self>) -> Self::Result {
        let list = agent_msg::ListInbox {
            filter: msg.filter,
            page: msg.page,
            wait: msg.wait,
            by: msg.by,
        };
        forward(self.target(&msg.key), list)
    }
}

impl Handler<MarkRead> for AgentDirectory {
    type Result = ResponseFuture<AppResult<agent_msg::ReadReceipt>>;

    fn handle(&mut self, msg: MarkRead, _: &mut Context<Self>) -> Self::Result {
        let mark = agent_msg::MarkRead {
            ids: msg.ids,
            by: msg.by,
        };
        forward(self.target(&msg.key), mark)
    }
}

impl Handler<ReadMessage> for AgentDirectory {
    type Result = ResponseFuture<AppResult<rules::Message>>;

    fn handle(&mut self, msg: ReadMessage, _: &mut Context<Self>) -> Self::Result {
        let read = agent_msg::ReadOne {
            message_id: msg.message_id,
            by: msg.by,
        };
        forward(self.target(&msg.key), read)
    }
}

impl Handler<AcknowledgeMessage> for AgentDirectory {
    type Result = ResponseActFuture<Self, AppResult<agent_msg::Acknowledged>>;

    fn handle(&mut self, msg: AcknowledgeMessage, _: &mut Context<Self>) -> Self::Result {
        let (_, addr) = match self.target(&msg.key) {
            Ok(target) => target,
            Err(e) => return reply_now(Err(e)),
        };
        // A reply needs the original sender's address: ask the recipient who sent it, then look it up here.
        let wants_reply = msg.response.is_some();
        let ask = agent_msg::SenderOf {
            message_id: msg.message_id.clone(),
            by: msg.by.clone(),
        };
        let recipient = addr.clone();
        let sender = fut::wrap_future::<_, Self>(async move {
            if !wants_reply {
                return Ok(None);
            }
            recipient.send(ask).await.map_err(AppError::mailbox)?
        });
        Box::pin(sender.then(move |sender_id, dir: &mut AgentDirectory, _| {
            let reply_to = sender_id.and_then(|sender_id| match sender_id {
                None => Ok(None),
                Some(id) => {
                    let (recipient, addr) = dir.recipient(&id).map_err(|_| {
                        AppError::agent_not_found(&id).with_details(serde_json::json!({ "field": "response" }))
                    })?;
                    Ok(Some(ReplyTarget {
                        addr,
                        id: recipient.id,
                        name: recipient.name,
                    }))
                }
            });
            fut::wrap_future(async move {
                let reply_to = reply_to?;
                if let Some(target) = &reply_to {
                    // A reply is a message like any other: a suspended sender cannot receive it.
                    let sender = target.addr.send(agent_msg::GetAgent).await.map_err(AppError::mailbox)?;
                    if sender.status == AgentStatus::Suspended {
                        return Err(AppError::new(
                            crate::error::ErrorCode::AgentUnavailable,
                            format!("{} is suspended and cannot receive the reply", sender.name),
                        ));
                    }
                }
                let acknowledge = agent_msg::Acknowledge {
                    message_id: msg.message_id,
                    response: msg.response,
                    action_taken: msg.action_taken,
                    reply_to,
                    by: msg.by,
                };
                addr.send(acknowledge).await.map_err(AppError::mailbox)?
            })
        }))
    }
}

impl Handler<ListSent> for AgentDirectory {
    type Result = ResponseFuture<AppResult<crate::domain::query::Page<rules::Message>>>;

    fn handle(&mut self, msg: ListSent, _: &mut Context<Self>) -> Self::Result {
        let page = msg.page;
        read(
            self.deps.store.clone(),
            self.mailbox_owner(&msg.key, &msg.by),
            move |conn, id| message_queries::list_sent(conn, id, &page),
        )
    }
}

impl Handler<SearchInbox> for AgentDirectory {
    type Result = ResponseFuture<AppResult<crate::domain::query::Page<rules::Message>>>;

    fn handle(&mut self, msg: SearchInbox, _: &mut Context<Self>) -> Self::Result {
        let (text, page) = (msg.text, msg.page);
        read(
            self.deps.store.clone(),
            self.mailbox_owner(&msg.key, &msg.by),
            move |conn, id| message_queries::search_inbox(conn, id, &text, &page),
        )
    }
}

impl Handler<InboxStatistics> for AgentDirectory {
    type Result = ResponseFuture<AppResult<rules::InboxStats>>;

    fn handle(&mut self, msg: InboxStatistics, _: &mut Context<Self>) -> Self::Result {
        read(
            self.deps.store.clone(),
            self.mailbox_owner(&msg.key, &msg.by),
            message_queries::inbox_stats,
        )
    }
}

impl Handler<GetMessage> for AgentDirectory {
    type Result = ResponseFuture<AppResult<rules::Message>>;

    fn handle(&mut self, msg: GetMessage, _: &mut Context<Self>) -> Self::Result {
        let store = self.deps.store.clone();
        Box::pin(async move {
            let id = msg.id.clone();
            let found = store
                .read(move |conn| message_queries::message_by_id(conn, &id))
                .await
                .map_err(AppError::store)?;
            let message = found.ok_or_else(|| AppError::message_not_found(&msg.id))?;
            let party = msg.by.is_agent(&message.to_agent_id)
                || message
                    .from_agent_id
                    .as_deref()
                    .is_some_and(|from| msg.by.is_agent(from));
            if msg.by.is_admin() || party {
                Ok(message)
            } else {
                Err(AppError::forbidden(
                    "only the sender, the recipient or the admin may read a message",
                ))
            }
        })
    }
}

impl Handler<OpenStream> for AgentDirectory {
    type Result = ResponseFuture<AppResult<agent_msg::Stream>>;

    fn handle(&mut self, msg: OpenStream, _: &mut Context<Self>) -> Self::Result {
        forward(self.target(&msg.key), agent_msg::OpenStream { by: msg.by })
    }
}

/// How many unread messages a wake-up returns.
const WAKE_MESSAGES: usize = 10;

impl Handler<Wake> for AgentDirectory {
    type Result = ResponseFuture<AppResult<Wakeup>>;

    fn handle(&mut self, msg: Wake, _: &mut Context<Self>) -> Self::Result {
        let target = self.target(&msg.key);
        let board = self.board.clone();
        let (clock, limits) = (self.deps.clock.clone(), self.deps.capacity);
        Box::pin(async move {
            let (id, addr) = target?;
            let board = board.ok_or_else(|| AppError::internal("the task board is not wired to the directory"))?;
            let profile = addr.send(agent_msg::GetAgent).await.map_err(AppError::mailbox)?;
            let beat = agent_msg::Heartbeat {
                status: None,
                current_task_id: profile.current_task_id,
                by: msg.by.clone(),
            };
            let agent = addr.send(beat).await.map_err(AppError::mailbox)??;
            let peek = agent_msg::PeekUnread {
                limit: WAKE_MESSAGES,
                by: msg.by,
            };
            let inbox = addr.send(peek).await.map_err(AppError::mailbox)??;
            let tasks = board
                .send(AgentTasks { agent_id: id })
                .await
                .map_err(AppError::mailbox)?;
            let capacity = capacity::load(&agent, &tasks.iter().collect::<Vec<_>>(), clock.now_ms(), limits);
            let (in_progress, ready) = tasks
                .into_iter()
                .filter(|t| matches!(t.status, TaskStatus::InProgress | TaskStatus::Ready))
                .partition(|t| t.status == TaskStatus::InProgress);
            Ok(Wakeup {
                capacity,
                agent,
                messages: inbox.messages,
                unread_count: inbox.unread_count,
                unacknowledged_count: inbox.unacknowledged_count,
                in_progress,
                ready,
            })
        })
    }
}

impl Handler<EscalateOverdue> for AgentDirectory {
    type Result = ResponseFuture<AppResult<Vec<Overdue>>>;

    fn handle(&mut self, _: EscalateOverdue, _: &mut Context<Self>) -> Self::Result {
        let agents: Vec<(String, Addr<AgentActor>)> =
            self.agents.values().map(|e| (e.name.clone(), e.addr.clone())).collect();
        Box::pin(async move {
            let checks = join_all(agents.iter().map(|(_, addr)| addr.send(agent_msg::EscalateOverdue))).await;
            let mut overdue = Vec::new();
            for ((name, _), outcome) in agents.into_iter().zip(checks) {
                match outcome {
                    Ok(Ok(found)) if !found.messages.is_empty() => overdue.push(found),
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => log::warn!("deadline check for {name} failed: {e}"),
                    Err(e) => log::warn!("deadline check for {name} not delivered: {e}"),
                }
            }
            Ok(overdue)
        })
    }
}

impl Handler<ForgetMessages> for AgentDirectory {
    type Result = ();

    fn handle(&mut self, msg: ForgetMessages, _: &mut Context<Self>) {
        let mut by_agent: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
        for (agent_id, message_id) in msg.messages {
            by_agent.entry(agent_id).or_default().push(message_id);
        }
        for (agent_id, ids) in by_agent {
            if let Some(entry) = self.agents.get(&agent_id) {
                entry.addr.do_send(agent_msg::ForgetMessages(ids));
            }
        }
    }
}

impl Handler<Leads> for AgentDirectory {
    type Result = ResponseFuture<AppResult<Vec<crate::domain::Agent>>>;

    fn handle(&mut self, _: Leads, _: &mut Context<Self>) -> Self::Result {
        let addrs: Vec<Addr<AgentActor>> = self
            .agents
            .iter()
            .filter(|(id, _)| !self.deleting.contains(*id))
            .map(|(_, e)| e.addr.clone())
            .collect();
        Box::pin(async move {
            let profiles = join_all(addrs.iter().map(|a| a.send(agent_msg::GetAgent))).await;
            let mut leads: Vec<_> = profiles
                .into_iter()
                .filter_map(Result::ok)
                .filter(|a| a.level == AgentLevel::Lead && a.status != AgentStatus::Suspended)
                .collect();
            leads.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(leads)
        })
    }
}

impl Handler<AgentAddress> for AgentDirectory {
    type Result = Option<Addr<AgentActor>>;

    fn handle(&mut self, msg: AgentAddress, _: &mut Context<Self>) -> Self::Result {
        self.addr_of(&msg.key).map(|(_, addr)| addr)
    }
}
