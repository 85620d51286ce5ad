//! The agent actor's messaging handlers: sending (first hop), delivery (second hop), the inbox, reads,
//! acknowledgements, streams and the acknowledgement-deadline check.

use super::messages::{self as agent_msg, *};
use super::outbox::KeyState;
use super::AgentActor;
use crate::actors::escalation::{paths, ACK_DEADLINE};
use crate::actors::task_board::messages::MissingTasks;
use crate::actors::{ask, atomic, persist_then, reply_now};
use crate::domain::escalation::{ActionResult, ActionStatus, Escalation};
use crate::domain::message::{self as rules, Message, MessageType, Sender};
use crate::domain::outbox::OutboxItem;
use crate::domain::{Activity, ActivityKind, AgentStatus, Principal};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::ids::new_id;
use crate::observability;
use crate::store::{message_queries, WriteOp};
use actix::fut::{self, ActorFutureExt};
use actix::prelude::*;

fn message_json(message: &Message) -> serde_json::Value {
    serde_json::json!({
        "messageId": message.id,
        "type": message.kind,
        "priority": message.priority,
        "from": message.from_agent_name,
        "to": message.to_agent_name,
    })
}

/// The activity row of a stored message.
fn sent_activity(message: &Message, by: &Principal) -> Activity {
    let mut activity = Activity::new(
        new_id(),
        ActivityKind::MessageSent,
        by,
        format!(
            "{} sent {} to {}: \"{}\"",
            message.from_agent_name, message.kind, message.to_agent_name, message.subject
        ),
        message.created_at,
    )
    .agent(&message.to_agent_id);
    activity.task_id = message.task_id.clone();
    activity.after = Some(message_json(message));
    activity
}

impl AgentActor {
    /// The admin, or this agent itself.
    fn check_owner(&self, by: &Principal, what: &str) -> AppResult<()> {
        if by.is_admin() || by.is_agent(&self.agent.id) {
            Ok(())
        } else {
            Err(AppError::forbidden(format!(
                "an agent token may only {what} for its own agent"
            )))
        }
    }

    /// Takes a slot in the send-rate window (replies count too), or says when the next one frees up.
    fn take_send_slot(&mut self, now: i64) -> AppResult<()> {
        let limit = self.deps.messaging.rate_per_min;
        self.outbox.rate.try_acquire(limit, now).map_err(|retry_after| {
            AppError::rate_limited(
                format!(
                    "{} may send {limit} messages per minute; retry in {retry_after} s",
                    self.agent.name
                ),
                retry_after,
            )
        })
    }

    fn counts(&self) -> (usize, usize) {
        (self.inbox.unread_count(), self.inbox.unacknowledged_count())
    }

    fn page(&self, items: Vec<Message>, next_cursor: Option<String>) -> InboxPage {
        let (unread_count, unacknowledged_count) = self.counts();
        InboxPage {
            items,
            next_cursor,
            unread_count,
            unacknowledged_count,
        }
    }

    /// The outcome of the first send with an idempotency key, if the key is remembered: the stored message,
    /// or (while that send is in flight) its result when it ends.
    fn replay_key(&mut self, key: &str, now: i64) -> Option<ResponseActFuture<Self, AppResult<Option<Sent>>>> {
        match self.outbox.key(key, now)? {
            KeyState::Done { message_id } => {
                let message_id = message_id.clone();
                Some(Box::pin(self.replay(message_id).map(|sent, _, _| sent.map(Some))))
            }
            KeyState::Pending(waiting) => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                waiting.push(tx);
                Some(Box::pin(fut::wrap_future(async move {
                    rx.await
                        .unwrap_or_else(|_| Err(AppError::internal("the first send with this key was lost")))
                        .map(Some)
                })))
            }
        }
    }

    /// Replays the message first sent with an idempotency key.
    fn replay(&self, message_id: String) -> impl ActorFuture<Self, Output = AppResult<Sent>> {
        let store = self.deps.store.clone();
        fut::wrap_future(async move {
            let id = message_id.clone();
            let stored = store
                .read(move |conn| message_queries::message_by_id(conn, &id))
                .await
                .map_err(AppError::store)?;
            let message = stored.ok_or_else(|| {
                AppError::new(
                    ErrorCode::MessageNotFound,
                    format!("message {message_id}, first sent with this Idempotency-Key, has expired"),
                )
            })?;
            Ok(Sent {
                message,
                replayed: true,
            })
        })
    }
}

impl Handler<Replay> for AgentActor {
    type Result = ResponseActFuture<Self, AppResult<Option<Sent>>>;

    fn handle(&mut self, msg: Replay, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.check_owner(&msg.by, "send messages") {
            return reply_now(Err(e));
        }
        let now = self.deps.now();
        self.replay_key(&msg.key, now).unwrap_or_else(|| reply_now(Ok(None)))
    }
}

impl Handler<SendMessage> for AgentActor {
    type Result = ResponseActFuture<Self, AppResult<Sent>>;

    fn handle(&mut self, msg: SendMessage, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.check_owner(&msg.by, "send messages") {
            return reply_now(Err(e));
        }
        if self.agent.status == AgentStatus::Suspended {
            return reply_now(Err(AppError::new(
                ErrorCode::AgentSuspended,
                format!("{} is suspended and cannot send messages", self.agent.name),
            )));
        }
        let now = self.deps.now();
        if let Some(key) = &msg.idempotency_key {
            if let Some(replay) = self.replay_key(key, now) {
                return Box::pin(replay.map(|found, _, _| {
                    found.and_then(|sent| sent.ok_or_else(|| AppError::internal("an idempotency key was lost")))
                }));
            }
        }
        let sender = Sender::Agent {
            id: self.agent.id.clone(),
            name: self.agent.name.clone(),
        };
        let mut message = match rules::compose(
            msg.draft,
            String::new(),
            sender,
            msg.recipient,
            now,
            self.deps.messaging.ttl_ms(),
        ) {
            Ok(message) => message,
            Err(violation) => return reply_now(Err(violation.into())),
        };
        if let Err(e) = self.take_send_slot(now) {
            return reply_now(Err(e));
        }
        observability::message_sent(message.sender_kind.as_str());
        message.idempotency_key = msg.idempotency_key.clone();
        if let Some(key) = &msg.idempotency_key {
            self.outbox.reserve(key.clone());
        }
        let tasks: Vec<String> = message
            .task_id
            .iter()
            .chain(message.related_task_ids.iter())
            .cloned()
            .collect();
        let (board, recipient, by) = (msg.board, msg.recipient_addr, msg.by);
        let delivery = async move {
            if !tasks.is_empty() {
                let missing = board
                    .send(MissingTasks { ids: tasks })
                    .await
                    .map_err(AppError::mailbox)?;
                if let Some(first) = missing.first() {
                    return Err(AppError::task_not_found(first));
                }
            }
            ask(&recipient, Deliver { message, by }).await
        };
        let key = msg.idempotency_key;
        Box::pin(fut::wrap_future::<_, Self>(delivery).map(move |delivered, actor, _| {
            let outcome = delivered.map(|message| Sent {
                message,
                replayed: false,
            });
            if outcome.is_err() {
                // A send that did not happen does not count against the sender.
                actor.outbox.rate.release(now);
            }
            if let Some(key) = key {
                actor.outbox.settle(key, &outcome, actor.deps.now());
            }
            outcome
        }))
    }
}

impl Handler<Deliver> for AgentActor {
    type Result = AtomicResponse<Self, AppResult<Message>>;

    fn handle(&mut self, msg: Deliver, _: &mut Context<Self>) -> Self::Result {
        if self.agent.status == AgentStatus::Suspended {
            return atomic(reply_now(Err(AppError::new(
                ErrorCode::AgentUnavailable,
                format!("{} is suspended and cannot receive messages", self.agent.name),
            ))));
        }
        let mut message = msg.message;
        message.id = new_id();
        message.to_agent_id = self.agent.id.clone();
        message.to_agent_name = self.agent.name.clone();
        let ops = vec![
            WriteOp::insert_message(&message),
            WriteOp::activity(&sent_activity(&message, &msg.by)),
        ];
        atomic(persist_then(&self.deps.journal, ops, move |actor: &mut AgentActor| {
            observability::message_delivered(message.sender_kind.as_str());
            actor.inbox.deliver(message.clone());
            Ok(message)
        }))
    }
}

impl Handler<Delivered> for AgentActor {
    type Result = ();
    fn handle(&mut self, msg: Delivered, _: &mut Context<Self>) {
        self.inbox.deliver(msg.0);
    }
}

impl Handler<ListInbox> for AgentActor {
    type Result = ResponseActFuture<Self, AppResult<InboxPage>>;

    fn handle(&mut self, msg: ListInbox, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.check_owner(&msg.by, "read the inbox") {
            return reply_now(Err(e));
        }
        let seen = self.inbox.arrivals();
        let store = self.deps.store.clone();
        let agent_id = self.agent.id.clone();
        let (filter, page) = (msg.filter.clone(), msg.page.clone());
        let read = async move {
            store
                .read(move |conn| message_queries::list_inbox(conn, &agent_id, &filter, &page))
                .await
                .map_err(AppError::store)
        };
        let wait = msg.wait.filter(|_| msg.page.cursor.is_none());
        let filter = msg.filter;
        Box::pin(fut::wrap_future::<_, Self>(read).then(move |listed, actor, _| {
            let listed = match listed {
                Ok(listed) => listed,
                Err(e) => return reply_now(Err(e)),
            };
            let Some(wait) = wait.filter(|_| listed.items.is_empty()) else {
                return reply_now(Ok(actor.page(listed.items, listed.next_cursor)));
            };
            // Anything delivered while the store was being read is in memory: answer with it at once.
            let arrived = actor.inbox.arrived_since(seen, &filter);
            if !arrived.is_empty() {
                return reply_now(Ok(actor.page(arrived, None)));
            }
            let delivery = actor.inbox.wait(filter);
            Box::pin(
                fut::wrap_future::<_, Self>(async move {
                    tokio::time::timeout(wait, delivery)
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .unwrap_or_default()
                })
                .map(|items, actor, _| Ok(actor.page(items, None))),
            )
        }))
    }
}

impl AgentActor {
    /// Marks open messages read and commits them with one activity row each.
    fn mark_read(&mut self, ids: Vec<String>, by: &Principal) -> (Vec<Message>, Vec<String>, Vec<WriteOp>) {
        let now = self.deps.now();
        let mut marked: Vec<Message> = Vec::new();
        let mut skipped = Vec::new();
        let mut ops = Vec::new();
        for id in ids {
            let unread = self
                .inbox
                .get(&id, now)
                .filter(|m| m.read_at.is_none() && !marked.iter().any(|x| x.id == id));
            let Some(message) = unread else {
                skipped.push(id);
                continue;
            };
            let mut next = message.clone();
            next.read_at = Some(now);
            let activity = Activity::new(
                new_id(),
                ActivityKind::MessageRead,
                by,
                format!(
                    "{} read \"{}\" from {}",
                    next.to_agent_name, next.subject, next.from_agent_name
                ),
                now,
            )
            .agent(&self.agent.id)
            .change(
                serde_json::json!({"messageId": next.id, "readAt": null}),
                serde_json::json!({"messageId": next.id, "readAt": now}),
            );
            ops.push(WriteOp::update_message(&next));
            ops.push(WriteOp::activity(&activity));
            marked.push(next);
        }
        (marked, skipped, ops)
    }
}

impl Handler<MarkRead> for AgentActor {
    type Result = AtomicResponse<Self, AppResult<ReadReceipt>>;

    fn handle(&mut self, msg: MarkRead, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.check_owner(&msg.by, "mark messages read") {
            return atomic(reply_now(Err(e)));
        }
        let (marked, skipped, ops) = self.mark_read(msg.ids, &msg.by);
        let marked_ids: Vec<String> = marked.iter().map(|m| m.id.clone()).collect();
        let receipt = ReadReceipt {
            marked: marked.len(),
            marked_ids,
            skipped,
        };
        if ops.is_empty() {
            return atomic(reply_now(Ok(receipt)));
        }
        atomic(persist_then(&self.deps.journal, ops, move |actor: &mut AgentActor| {
            for message in marked {
                actor.inbox.update(message);
            }
            Ok(receipt)
        }))
    }
}

impl AgentActor {
    /// A message of this inbox that is no longer open (read and acknowledged), from the store.
    fn closed_message(&self, id: String) -> impl ActorFuture<Self, Output = AppResult<Message>> {
        let store = self.deps.store.clone();
        let agent_id = self.agent.id.clone();
        fut::wrap_future(async move {
            let lookup = id.clone();
            let stored = store
                .read(move |conn| message_queries::message_by_id(conn, &lookup))
                .await
                .map_err(AppError::store)?;
            stored
                .filter(|m| m.to_agent_id == agent_id && !m.is_open())
                .ok_or_else(|| AppError::message_not_found(&id))
        })
    }
}

impl Handler<ReadOne> for AgentActor {
    type Result = AtomicResponse<Self, AppResult<Message>>;

    fn handle(&mut self, msg: ReadOne, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.check_owner(&msg.by, "mark messages read") {
            return atomic(reply_now(Err(e)));
        }
        let now = self.deps.now();
        match self.inbox.get(&msg.message_id, now) {
            Some(message) if message.read_at.is_some() => atomic(reply_now(Ok(message.clone()))),
            Some(_) => {
                let (mut marked, _, ops) = self.mark_read(vec![msg.message_id.clone()], &msg.by);
                let Some(message) = marked.pop() else {
                    return atomic(reply_now(Err(AppError::message_not_found(&msg.message_id))));
                };
                atomic(persist_then(&self.deps.journal, ops, move |actor: &mut AgentActor| {
                    actor.inbox.update(message.clone());
                    Ok(message)
                }))
            }
            None => atomic(Box::pin(self.closed_message(msg.message_id))),
        }
    }
}

impl Handler<SenderOf> for AgentActor {
    type Result = ResponseActFuture<Self, AppResult<Option<String>>>;

    fn handle(&mut self, msg: SenderOf, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.check_owner(&msg.by, "acknowledge messages") {
            return reply_now(Err(e));
        }
        match self.inbox.get(&msg.message_id, self.deps.now()) {
            Some(message) => reply_now(Ok(message.from_agent_id.clone())),
            None => Box::pin(
                self.closed_message(msg.message_id)
                    .map(|found, _, _| found.map(|m| m.from_agent_id)),
            ),
        }
    }
}

fn already_acknowledged(message: &Message) -> AppError {
    AppError::new(
        ErrorCode::AlreadyAcknowledged,
        format!("message {} was already acknowledged", message.id),
    )
    .with_details(serde_json::json!({ "acknowledgedAt": message.acknowledged_at }))
}

impl Handler<Acknowledge> for AgentActor {
    type Result = AtomicResponse<Self, AppResult<Acknowledged>>;

    fn handle(&mut self, msg: Acknowledge, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.check_owner(&msg.by, "acknowledge messages") {
            return atomic(reply_now(Err(e)));
        }
        let now = self.deps.now();
        let Some(original) = self.inbox.get(&msg.message_id, now).cloned() else {
            let closed = self.closed_message(msg.message_id);
            return atomic(Box::pin(
                closed.map(|found, _, _| Err(found.map_or_else(|e| e, |m| already_acknowledged(&m)))),
            ));
        };
        if original.acknowledged_at.is_some() {
            return atomic(reply_now(Err(already_acknowledged(&original))));
        }
        let checked = rules::check_ack_text("response", msg.response)
            .and_then(|response| Ok((response, rules::check_ack_text("actionTaken", msg.action_taken)?)));
        let (response, action_taken) = match checked {
            Ok(texts) => texts,
            Err(violation) => return atomic(reply_now(Err(violation.into()))),
        };
        let mut ops = Vec::new();
        let mut reply = None;
        if let Some(response) = response {
            let Some(target) = msg.reply_to else {
                return atomic(reply_now(Err(AppError::validation(
                    "response",
                    "this message came from the system; there is no sender to reply to (use actionTaken)",
                ))));
            };
            if let Err(e) = self.take_send_slot(now) {
                return atomic(reply_now(Err(e)));
            }
            let draft = rules::MessageDraft {
                to_agent_id: target.id.clone(),
                kind: Some(MessageType::Coordination),
                subject: rules::reply_subject(&original.subject),
                body: response,
                task_id: original.task_id.clone(),
                ..rules::MessageDraft::default()
            };
            let sender = Sender::Agent {
                id: self.agent.id.clone(),
                name: self.agent.name.clone(),
            };
            let recipient = rules::Recipient {
                id: target.id.clone(),
                name: target.name.clone(),
            };
            match rules::compose(draft, new_id(), sender, recipient, now, self.deps.messaging.ttl_ms()) {
                Ok(mut message) => {
                    message.reply_to_id = Some(original.id.clone());
                    observability::message_sent(message.sender_kind.as_str());
                    ops.push(WriteOp::insert_message(&message));
                    ops.push(WriteOp::activity(&sent_activity(&message, &msg.by)));
                    reply = Some((target.addr, message));
                }
                Err(violation) => {
                    self.outbox.rate.release(now);
                    return atomic(reply_now(Err(violation.into())));
                }
            }
        }
        let mut acknowledged = original.clone();
        acknowledged.read_at.get_or_insert(now);
        acknowledged.acknowledged_at = Some(now);
        acknowledged.action_taken = action_taken;
        let mut activity = Activity::new(
            new_id(),
            ActivityKind::MessageAcknowledged,
            &msg.by,
            format!(
                "{} acknowledged \"{}\" from {}",
                acknowledged.to_agent_name, acknowledged.subject, acknowledged.from_agent_name
            ),
            now,
        )
        .agent(&self.agent.id)
        .change(
            serde_json::json!({"messageId": original.id, "acknowledgedAt": null}),
            serde_json::json!({
                "messageId": original.id,
                "acknowledgedAt": now,
                "actionTaken": acknowledged.action_taken,
                "replyId": reply.as_ref().map(|(_, r)| r.id.clone()),
            }),
        );
        activity.task_id = original.task_id.clone();
        ops.insert(0, WriteOp::update_message(&acknowledged));
        ops.push(WriteOp::activity(&activity));
        let reply_counted = reply.is_some();
        let fut = persist_then(&self.deps.journal, ops, move |actor: &mut AgentActor| {
            actor.inbox.update(acknowledged.clone());
            let reply = reply.map(|(addr, message)| {
                observability::message_delivered(message.sender_kind.as_str());
                addr.do_send(Delivered(message.clone()));
                message
            });
            Ok(Acknowledged {
                message: acknowledged,
                reply,
            })
        });
        atomic(Box::pin(fut.map(move |result, actor: &mut AgentActor, _| {
            if result.is_err() && reply_counted {
                actor.outbox.rate.release(now);
            }
            result
        })))
    }
}

impl Handler<OpenStream> for AgentActor {
    type Result = AppResult<agent_msg::Stream>;

    fn handle(&mut self, msg: OpenStream, _: &mut Context<Self>) -> Self::Result {
        self.check_owner(&msg.by, "open the message stream")?;
        let (unread_count, unacknowledged_count) = self.counts();
        Ok(agent_msg::Stream {
            agent: self.agent.clone(),
            messages: self.inbox.stream(),
            unread_count,
            unacknowledged_count,
        })
    }
}

impl Handler<EscalateOverdue> for AgentActor {
    type Result = AtomicResponse<Self, AppResult<Overdue>>;

    fn handle(&mut self, _: EscalateOverdue, _: &mut Context<Self>) -> Self::Result {
        let now = self.deps.now();
        let mut escalated = Vec::new();
        let mut escalations = Vec::new();
        let mut outbox = Vec::new();
        let mut ops = Vec::new();
        for message in self.inbox.open_messages() {
            if !message.is_overdue(now) || message.is_expired(now) {
                continue;
            }
            let mut next = message.clone();
            next.escalated_at = Some(now);
            let reason = next.escalation_action.clone().unwrap_or_else(|| {
                format!(
                    "{} did not acknowledge \"{}\" from {} in time",
                    next.to_agent_name, next.subject, next.from_agent_name
                )
            });
            let mut activity = Activity::new(
                new_id(),
                ActivityKind::MessageEscalated,
                &Principal::System,
                reason,
                now,
            )
            .agent(&self.agent.id)
            .change(
                serde_json::json!({"messageId": next.id, "escalatedAt": null}),
                serde_json::json!({"messageId": next.id, "escalatedAt": now, "ackDeadlineAt": next.ack_deadline_at}),
            );
            activity.task_id = next.task_id.clone();
            // The escalation and its alert ride on the same commit as `escalatedAt`: a crash loses all
            // three or none.
            let (escalation, alert) = overdue_escalation(&next, now);
            ops.push(WriteOp::update_message(&next));
            ops.push(WriteOp::activity(&activity));
            ops.push(WriteOp::insert_escalation(&escalation));
            ops.push(WriteOp::insert_outbox(&alert));
            escalations.push(escalation);
            outbox.push(alert);
            escalated.push(next);
        }
        if escalated.is_empty() {
            return atomic(reply_now(Ok(Overdue {
                agent: self.agent.clone(),
                messages: escalated,
                escalations,
                outbox,
            })));
        }
        atomic(persist_then(&self.deps.journal, ops, move |actor: &mut AgentActor| {
            for message in &escalated {
                actor.inbox.update(message.clone());
            }
            Ok(Overdue {
                agent: actor.agent.clone(),
                messages: escalated,
                escalations,
                outbox,
            })
        }))
    }
}

/// The `ack_deadline` escalation of an overdue message and the outbox row of its alert to the recipient's
/// lead. The row's dedupe key is the message: it escalates once.
fn overdue_escalation(message: &Message, now: i64) -> (Escalation, OutboxItem) {
    let reason = paths::overdue_reason(message);
    let alert = paths::overdue_alert(message, &reason);
    let opened = Escalation::opened(new_id(), ACK_DEADLINE, message.task_id.clone(), 1, reason, now);
    let row = OutboxItem::new(new_id(), format!("ack_deadline:{}", message.id), alert, now).for_escalation(
        &opened.id,
        0,
        message.task_id.as_deref(),
    );
    let escalation = Escalation {
        message_id: Some(message.id.clone()),
        actions: vec![ActionResult {
            kind: "escalate".into(),
            status: ActionStatus::Pending,
            detail: String::new(),
            outbox_id: Some(row.id.clone()),
        }],
        ..opened
    };
    (escalation, row)
}

impl Handler<ForgetMessages> for AgentActor {
    type Result = ();
    fn handle(&mut self, msg: ForgetMessages, _: &mut Context<Self>) {
        self.inbox.forget(&msg.0);
    }
}

impl Handler<PeekUnread> for AgentActor {
    type Result = AppResult<WakeInbox>;

    fn handle(&mut self, msg: PeekUnread, _: &mut Context<Self>) -> Self::Result {
        self.check_owner(&msg.by, "wake")?;
        let now = self.deps.now();
        let mut unread: Vec<Message> = self
            .inbox
            .open_messages()
            .filter(|m| m.read_at.is_none() && !m.is_expired(now))
            .cloned()
            .collect();
        rules::wake_order(&mut unread);
        unread.truncate(msg.limit);
        let (unread_count, unacknowledged_count) = self.counts();
        Ok(WakeInbox {
            messages: unread,
            unread_count,
            unacknowledged_count,
        })
    }
}
