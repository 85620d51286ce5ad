//! One delivery attempt of one outbox row, and the record of its outcome.

use super::webhook::{self, Refused};
use crate::actors::directory::messages::{Leads, Resolve, SendSystemMessage};
use crate::actors::directory::AgentDirectory;
use crate::actors::{ask, Deps};
use crate::domain::message::{MessageDraft, MessageType};
use crate::domain::outbox::{Effect, OutboxItem, OutboxStatus, Recipients};
use crate::domain::{Activity, ActivityKind, Agent, Principal};
use crate::error::{AppError, ErrorCode};
use crate::ids::new_id;
use crate::observability;
use crate::store::{outbox_queries, WriteOp};
use actix::Addr;
use rand::Rng;
use std::collections::HashSet;

/// What an attempt needs; cheap to clone into each attempt's future.
#[derive(Clone)]
pub(super) struct Courier {
    deps: Deps,
    directory: Addr<AgentDirectory>,
    http: reqwest::Client,
}

/// A failed attempt: the error, and whether another attempt could succeed.
struct Failure {
    error: String,
    permanent: bool,
}

impl From<Refused> for Failure {
    fn from(r: Refused) -> Self {
        Failure {
            error: r.error,
            permanent: r.permanent,
        }
    }
}

impl Courier {
    pub(super) fn new(deps: Deps, directory: Addr<AgentDirectory>) -> Courier {
        Courier {
            deps,
            directory,
            http: webhook::client(),
        }
    }

    /// Whether the row's delivery is an HTTP call (which the dispatcher never makes anyone wait for).
    pub(super) fn goes_over_http(&self, item: &OutboxItem) -> bool {
        match &item.effect {
            Effect::AgentMessage { .. } => false,
            Effect::Webhook { .. } => true,
            Effect::HumanPage { .. } => self.deps.escalation.webhook_url.is_some(),
        }
    }

    /// Attempts the row once and commits the outcome; replies with the row as stored afterwards (as before
    /// the attempt if that commit failed: the row is still pending and will be tried again).
    pub(super) fn attempt(&self, item: OutboxItem) -> impl std::future::Future<Output = OutboxItem> + 'static {
        let courier = self.clone();
        async move {
            // A round may have read the row just before another attempt finished with it: only the row as
            // stored now is attempted, and only if nothing changed it since it was read.
            let id = item.id.clone();
            match courier
                .deps
                .store
                .read(move |conn| outbox_queries::by_id(conn, &id))
                .await
            {
                Ok(Some(current)) if current.status() == OutboxStatus::Pending && current.attempts == item.attempts => {
                }
                Ok(Some(current)) => return current,
                Ok(None) => return item,
                Err(e) => {
                    log::warn!("outbox row {} not attempted: cannot read it ({e})", item.id);
                    return item;
                }
            }
            let mut ops = Vec::new();
            let outcome = courier.deliver(&item, &mut ops).await;
            let (now, max_attempts) = (courier.deps.now(), courier.deps.escalation.outbox_max_attempts);
            let kind = item.kind.as_str();
            let next = match outcome {
                Ok(result) => item.clone().delivered(result, now),
                Err(failure) => {
                    let jitter = rand::rng().random::<f64>();
                    item.clone()
                        .failed(failure.error, failure.permanent, max_attempts, jitter, now)
                }
            };
            ops.insert(0, WriteOp::update_outbox(&next));
            if let Err(e) = courier.deps.journal.commit(ops).await {
                log::warn!("outcome of outbox row {} not recorded ({e}); it stays pending", item.id);
                return item;
            }
            observability::outbox_attempt(
                kind,
                match next.status() {
                    OutboxStatus::Delivered => "delivered",
                    OutboxStatus::Dead => "dead",
                    OutboxStatus::Pending => "failed",
                },
            );
            if let (OutboxStatus::Dead, Some(error)) = (next.status(), &next.last_error) {
                log::warn!(
                    "outbox row {} ({kind}) is dead after {} attempts: {error}",
                    next.id,
                    next.attempts
                );
            }
            next
        }
    }

    /// Delivers the row; `ops` collects what must be committed with its outcome.
    async fn deliver(&self, item: &OutboxItem, ops: &mut Vec<WriteOp>) -> Result<String, Failure> {
        match &item.effect {
            Effect::AgentMessage { to, draft } => self.send_message(item, to, draft, ops).await,
            Effect::Webhook { url, headers, body } => {
                let Some(url) = url.as_ref().or(self.deps.escalation.webhook_url.as_ref()) else {
                    return Err(Failure {
                        error: "no url in the action, and MC_ESCALATION_WEBHOOK_URL is not set".into(),
                        permanent: true,
                    });
                };
                Ok(webhook::post(&self.http, url, headers, &item.id, body).await?)
            }
            Effect::HumanPage {
                summary,
                agent_id,
                body,
            } => {
                // The feed entry goes in with the first attempt's outcome, whatever the webhook does (an
                // operator's retry of a failed page starts its attempts over but does not page twice).
                if item.attempts == 0 && item.last_error.is_none() {
                    ops.push(self.page_activity(item, summary, agent_id.clone(), body.clone()));
                }
                let Some(url) = &self.deps.escalation.webhook_url else {
                    return Ok("sent to a human (admin activity feed)".into());
                };
                let posted = webhook::post(&self.http, url, &Default::default(), &item.id, body).await?;
                Ok(format!("sent to a human (admin activity feed; {posted})"))
            }
        }
    }

    fn page_activity(
        &self,
        item: &OutboxItem,
        summary: &str,
        agent_id: Option<String>,
        body: serde_json::Value,
    ) -> WriteOp {
        let mut activity = Activity::new(
            new_id(),
            ActivityKind::EscalatedToHuman,
            &Principal::System,
            summary,
            self.deps.now(),
        )
        .change(serde_json::Value::Null, body);
        activity.task_id = item.task_id.clone();
        activity.agent_id = agent_id;
        WriteOp::activity(&activity)
    }

    async fn resolve(&self, key: Option<&str>) -> Option<Agent> {
        let key = key?.to_string();
        ask(&self.directory, Resolve { key }).await.ok()
    }

    /// Sends the message to each recipient that does not hold it yet (a delivery before a crash left it
    /// there, under the row's id as idempotency key).
    async fn send_message(
        &self,
        item: &OutboxItem,
        to: &Recipients,
        draft: &MessageDraft,
        ops: &mut Vec<WriteOp>,
    ) -> Result<String, Failure> {
        let key = item.id.clone();
        let holders: HashSet<String> = self
            .deps
            .store
            .read(move |conn| outbox_queries::delivered_to(conn, &key))
            .await
            .map_err(|e| Failure {
                error: format!("cannot check earlier deliveries: {e}"),
                permanent: false,
            })?
            .into_iter()
            .collect();
        match to {
            Recipients::Agent { agent } => {
                let Some(recipient) = self.resolve(Some(agent)).await else {
                    return Err(Failure {
                        error: format!("agent {agent} does not exist"),
                        permanent: true,
                    });
                };
                if !holders.contains(&recipient.id) {
                    self.send_to(&recipient, draft, &item.id).await.map_err(|e| Failure {
                        permanent: e.code == ErrorCode::AgentNotFound,
                        error: format!("to {}: {} ({})", recipient.name, e.message, e.code),
                    })?;
                }
                Ok(match draft.kind {
                    Some(MessageType::Handoff) => format!("{} told why", recipient.name),
                    _ => format!("notice sent to {}", recipient.name),
                })
            }
            Recipients::LeadOf { agent, depth } => {
                let mut subject = self.resolve(agent.as_deref()).await;
                for _ in 1..*depth {
                    let above = self.resolve(subject.as_ref().and_then(|a| a.lead_id.as_deref())).await;
                    subject = above.or(subject);
                }
                let lead = subject.as_ref().and_then(|a| a.lead_id.clone());
                if let Some(lead) = self.resolve(lead.as_deref()).await {
                    if holders.contains(&lead.id) || self.send_to(&lead, draft, &item.id).await.is_ok() {
                        return Ok(format!("alerted {}", lead.name));
                    }
                }
                // No lead, or it cannot take the alert: every other lead.
                let leads = ask(&self.directory, Leads).await.map_err(|e| Failure {
                    error: format!("cannot list the leads: {}", e.message),
                    permanent: false,
                })?;
                let mut alerted = Vec::new();
                let mut failed = Vec::new();
                for target in leads {
                    let skip = subject
                        .as_ref()
                        .is_some_and(|s| s.id == target.id || s.lead_id.as_ref() == Some(&target.id));
                    if skip {
                        continue;
                    }
                    if holders.contains(&target.id) {
                        alerted.push(target.name);
                        continue;
                    }
                    match self.send_to(&target, draft, &item.id).await {
                        Ok(()) => alerted.push(target.name),
                        Err(e) => failed.push(format!("{}: {}", target.name, e.message)),
                    }
                }
                if !failed.is_empty() {
                    // Those reached keep their alert (the key finds it); the others are tried again.
                    return Err(Failure {
                        error: format!("not alerted: {}", failed.join("; ")),
                        permanent: false,
                    });
                }
                if alerted.is_empty() {
                    // Nobody to alert: a person must look.
                    let summary = format!("{} — no lead could be alerted", draft.subject);
                    let body = serde_json::json!({ "event": "escalated_to_human", "alert": draft });
                    ops.push(self.page_activity(item, &summary, agent.clone(), body));
                    return Ok("no lead could be alerted; sent to a human (admin activity feed)".into());
                }
                Ok(format!("alerted {}", alerted.join(", ")))
            }
        }
    }

    async fn send_to(&self, recipient: &Agent, draft: &MessageDraft, key: &str) -> Result<(), AppError> {
        let draft = MessageDraft {
            to_agent_id: recipient.id.clone(),
            ..draft.clone()
        };
        let send = SendSystemMessage {
            draft,
            idempotency_key: Some(key.to_string()),
        };
        ask(&self.directory, send).await.map(drop)
    }
}
