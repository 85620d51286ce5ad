//! One simulated agent: an actor that, once a simulated minute, does what a real agent does on waking. It
//! reads its inbox first (most urgent first), answers help requests and status queries, acknowledges what it
//! handled, works on its task, completes or fails it, tells the people downstream, and claims new work only
//! when its capacity allows. An offline agent does all that until it crashes, then says nothing ever again.

use super::truth::{SentMessage, Truth};
use super::SimError;
use actix::prelude::*;
use mission_control::actors::directory::messages::{AcknowledgeMessage, MarkRead, SendMessage, Wake};
use mission_control::actors::task_board::messages::{Claim, Complete, Fail, GetTask, OpenTasks};
use mission_control::domain::message::{Message as Mail, MessageDraft, MessagePriority, MessageType};
use mission_control::domain::task::CompletionOutcome;
use mission_control::domain::{Principal, TaskStatus};
use mission_control::error::ErrorCode;
use mission_control::Handles;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

const MINUTE_MS: i64 = 60_000;
/// How long a help request or status query may wait for its acknowledgement.
const ASK_ACK_WITHIN_MS: i64 = 30 * MINUTE_MS;
/// The lead asks about work in progress for longer than this, every half hour, a few tasks at a time.
const STATUS_QUERY_AFTER_MS: i64 = 60 * MINUTE_MS;
const STATUS_QUERIES_PER_ROUND: usize = 3;

/// A task the agent is working on, and how much real work its attempt still needs.
#[derive(Debug, Clone)]
struct Work {
    task_id: String,
    index: usize,
    remaining_minutes: i64,
    attempt: usize,
}

/// What one minute of an agent's life did that the runtime does not count itself, for the report.
#[derive(Debug, Default, Clone, Copy)]
pub struct Minute {
    pub failed: usize,
}

pub struct Brain {
    id: String,
    /// Position in the team (the truth's key for pace and the tasks beyond it).
    position: usize,
    lead_id: Option<String>,
    is_lead: bool,
    crashes_after_minutes: Option<i64>,
    /// With capacity checks off the agent starts everything it is given (claiming with the admin's force, the
    /// runtime's only way past the check) and shares its minutes between its tasks in turn.
    capacity_checks: bool,
    /// Tasks in progress, in the order they are worked on in turn (one with capacity checks on).
    work: Vec<Work>,
    worked_minutes: i64,
    /// When the lead last asked about each task.
    queried_at: HashMap<String, i64>,
}

impl Brain {
    pub fn new(id: String, position: usize, lead_id: Option<String>, is_lead: bool, crashes: Option<i64>) -> Brain {
        Brain {
            id,
            position,
            lead_id,
            is_lead,
            crashes_after_minutes: crashes,
            capacity_checks: true,
            work: Vec::new(),
            worked_minutes: 0,
            queried_at: HashMap::new(),
        }
    }

    /// Capacity checks off: see [`Brain::capacity_checks`].
    pub fn without_capacity_checks(mut self) -> Brain {
        self.capacity_checks = false;
        self
    }

    fn me(&self) -> Principal {
        Principal::Agent(self.id.clone())
    }

    async fn live_one_minute(&mut self, h: &Handles, truth: &Rc<RefCell<Truth>>) -> Result<Minute, SimError> {
        let now = h.clock.now_ms();
        let mut minute = Minute::default();
        if truth.borrow().is_silent(&self.id, now) {
            return Ok(minute);
        }
        let wake = h
            .directory
            .send(Wake {
                key: self.id.clone(),
                by: self.me(),
            })
            .await??;
        self.handle_inbox(h, truth, wake.messages).await?;

        // Escalation may have taken a task away (reassigned to someone else after a silence or failures).
        let (kept, taken): (Vec<Work>, Vec<Work>) = std::mem::take(&mut self.work)
            .into_iter()
            .partition(|work| wake.in_progress.iter().any(|t| t.id == work.task_id));
        self.work = kept;
        for work in taken {
            truth.borrow_mut().remaining_real[work.index] = None;
        }
        if !self.work.is_empty() {
            // One minute of real work, on the task whose turn it is.
            let mut work = self.work.remove(0);
            work.remaining_minutes -= 1;
            self.worked_minutes += 1;
            truth.borrow_mut().remaining_real[work.index] = Some(work.remaining_minutes);
            if self
                .crashes_after_minutes
                .is_some_and(|after| self.worked_minutes >= after)
            {
                truth.borrow_mut().silent_since.insert(self.id.clone(), now);
                self.work.insert(0, work);
                return Ok(minute);
            }
            if work.remaining_minutes <= 0 {
                truth.borrow_mut().remaining_real[work.index] = None;
                if self.fails(truth, &work) {
                    self.fail(h, truth, &work).await?;
                    minute.failed += 1;
                } else {
                    self.complete(h, truth, &work).await?;
                }
            } else {
                self.work.push(work);
            }
        }
        if self.is_lead && now % (30 * MINUTE_MS) == 0 {
            self.ask_about_long_work(h, truth, now).await?;
        }
        if self.capacity_checks {
            if self.work.is_empty() && wake.capacity.can_accept_work && !wake.ready.is_empty() {
                self.claim(h, truth).await?;
            }
        } else {
            for _ in 0..wake.ready.len() {
                self.claim(h, truth).await?;
            }
        }
        Ok(minute)
    }

    /// By the truth: an attempt at a task beyond this agent always fails; any other fails when rolled so.
    fn fails(&self, truth: &Rc<RefCell<Truth>>, work: &Work) -> bool {
        let plan = &truth.borrow().workload.tasks[work.index];
        plan.is_beyond(self.position) || plan.attempt_fails(work.attempt)
    }

    async fn handle_inbox(&self, h: &Handles, truth: &Rc<RefCell<Truth>>, inbox: Vec<Mail>) -> Result<(), SimError> {
        let mut read = Vec::new();
        for message in inbox {
            let needs_ack = message.ack_deadline_at.is_some() && message.acknowledged_at.is_none();
            match message.kind {
                MessageType::HelpRequest => {
                    self.acknowledge(h, &message, Some("Looked into it: retry with the fix I sent".into()))
                        .await?;
                    if let Some(asker) = &message.from_agent_id {
                        let draft = draft(
                            asker,
                            MessageType::BlockerResolved,
                            format!("Unblocked: {}", message.subject),
                            "The failing step is fixed on main; try again.",
                            message.task_id.clone(),
                        );
                        self.send(h, truth, draft).await?;
                    }
                }
                MessageType::StatusQuery => {
                    let asked = self
                        .work
                        .iter()
                        .find(|w| message.task_id.as_deref() == Some(w.task_id.as_str()));
                    let answer = match asked {
                        Some(work) => format!("on it, about {} min to go", work.remaining_minutes.max(1)),
                        None => "not working on it right now".to_string(),
                    };
                    self.acknowledge(h, &message, Some(answer)).await?;
                }
                _ if needs_ack => self.acknowledge(h, &message, None).await?,
                _ => read.push(message.id),
            }
        }
        if !read.is_empty() {
            h.directory
                .send(MarkRead {
                    key: self.id.clone(),
                    ids: read,
                    by: self.me(),
                })
                .await??;
        }
        Ok(())
    }

    async fn acknowledge(&self, h: &Handles, message: &Mail, response: Option<String>) -> Result<(), SimError> {
        let ack = AcknowledgeMessage {
            key: self.id.clone(),
            message_id: message.id.clone(),
            action_taken: Some("handled".into()),
            response,
            by: self.me(),
        };
        match h.directory.send(ack).await? {
            Ok(_) => Ok(()),
            Err(e) if e.code == ErrorCode::AlreadyAcknowledged => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn send(&self, h: &Handles, truth: &Rc<RefCell<Truth>>, draft: MessageDraft) -> Result<(), SimError> {
        let requires_ack = draft.ack_within_ms.is_some();
        let send = SendMessage {
            from: self.id.clone(),
            draft,
            by: self.me(),
            idempotency_key: None,
        };
        let sent = match h.directory.send(send).await? {
            Ok(sent) => sent,
            // A real agent would try again later; this one lets it go, and the report counts it.
            Err(e) if e.code == ErrorCode::RateLimited => {
                truth.borrow_mut().rate_limited += 1;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        truth.borrow_mut().messages.push(SentMessage {
            id: sent.message.id,
            to_agent_id: sent.message.to_agent_id,
            requires_ack,
        });
        Ok(())
    }

    async fn claim(&mut self, h: &Handles, truth: &Rc<RefCell<Truth>>) -> Result<(), SimError> {
        let claim = Claim {
            agent: self.id.clone(),
            force: !self.capacity_checks,
            by: if self.capacity_checks {
                self.me()
            } else {
                Principal::Admin
            },
        };
        let task = match h.board.send(claim).await? {
            Ok(task) => task,
            Err(e) if matches!(e.code, ErrorCode::NoTaskAvailable | ErrorCode::AgentAtCapacity) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut truth = truth.borrow_mut();
        let index = truth
            .index_of(&task.id)
            .ok_or_else(|| SimError(format!("claimed a task the simulation never created: {}", task.id)))?;
        let attempt = truth.attempts[index];
        truth.attempts[index] += 1;
        let now = h.clock.now_ms();
        truth.started_at[index].get_or_insert(now);
        let remaining_minutes = truth.workload.attempt_minutes(index, self.position);
        truth.remaining_real[index] = Some(remaining_minutes);
        self.work.push(Work {
            task_id: task.id,
            index,
            remaining_minutes,
            attempt,
        });
        Ok(())
    }

    async fn complete(&self, h: &Handles, truth: &Rc<RefCell<Truth>>, work: &Work) -> Result<(), SimError> {
        let actual =
            i32::try_from(truth.borrow().workload.attempt_minutes(work.index, self.position)).unwrap_or(i32::MAX);
        let done = Complete {
            id: work.task_id.clone(),
            outcome: CompletionOutcome::Done,
            notes: Some("done; tests pass".into()),
            actual_minutes: Some(actual),
            by: self.me(),
        };
        h.board.send(done).await??;
        truth.borrow_mut().finished_at[work.index] = Some(h.clock.now_ms());
        // Whoever waits on this work hears it from the person who did it, with what they need to go on.
        let detail = h
            .board
            .send(GetTask {
                id: work.task_id.clone(),
            })
            .await??;
        for dependent in detail.blocks {
            let next = h
                .board
                .send(GetTask {
                    id: dependent.id.clone(),
                })
                .await??;
            let Some(owner) = next.task.assignee_id.filter(|owner| *owner != self.id) else {
                continue;
            };
            let draft = draft(
                &owner,
                MessageType::Handoff,
                format!("Handoff: '{}' is done", detail.task.title),
                "My part is merged; notes are in the task. Yours can build on it.",
                Some(dependent.id),
            );
            self.send(h, truth, draft).await?;
        }
        Ok(())
    }

    async fn fail(&self, h: &Handles, truth: &Rc<RefCell<Truth>>, work: &Work) -> Result<(), SimError> {
        let fail = Fail {
            id: work.task_id.clone(),
            error_kind: "tests_failed".into(),
            message: format!("attempt {} failed its tests", work.attempt + 1),
            by: self.me(),
        };
        h.board.send(fail).await??;
        if let Some(lead) = self.lead_id.clone() {
            let mut ask = draft(
                &lead,
                MessageType::HelpRequest,
                format!("Help: attempt {} failed", work.attempt + 1),
                "The tests fail and I can't see why. Can you take a look?",
                Some(work.task_id.clone()),
            );
            ask.priority = Some(MessagePriority::High);
            ask.ack_within_ms = Some(ASK_ACK_WITHIN_MS);
            self.send(h, truth, ask).await?;
        }
        Ok(())
    }

    /// The lead's half-hourly round: a status query to whoever has been on one task for over an hour.
    async fn ask_about_long_work(&mut self, h: &Handles, truth: &Rc<RefCell<Truth>>, now: i64) -> Result<(), SimError> {
        let open = h.board.send(OpenTasks).await?;
        let mut long: Vec<_> = open
            .into_iter()
            .filter(|t| t.status == TaskStatus::InProgress && now - t.status_changed_at > STATUS_QUERY_AFTER_MS)
            .filter(|t| t.assignee_id.as_deref().is_some_and(|a| a != self.id))
            .filter(|t| {
                self.queried_at
                    .get(&t.id)
                    .is_none_or(|&at| now - at > STATUS_QUERY_AFTER_MS)
            })
            .collect();
        long.sort_by(|a, b| a.status_changed_at.cmp(&b.status_changed_at).then(a.id.cmp(&b.id)));
        for task in long.into_iter().take(STATUS_QUERIES_PER_ROUND) {
            let Some(assignee) = task.assignee_id.clone() else {
                continue;
            };
            let mut query = draft(
                &assignee,
                MessageType::StatusQuery,
                format!("Status of '{}'?", task.title),
                "It has been in progress for over an hour. How far along is it?",
                Some(task.id.clone()),
            );
            query.ack_within_ms = Some(ASK_ACK_WITHIN_MS);
            self.send(h, truth, query).await?;
            self.queried_at.insert(task.id, now);
        }
        Ok(())
    }
}

fn draft(to: &str, kind: MessageType, subject: String, body: &str, task_id: Option<String>) -> MessageDraft {
    MessageDraft {
        to_agent_id: to.to_string(),
        kind: Some(kind),
        subject,
        body: body.to_string(),
        priority: None,
        task_id,
        related_task_ids: Vec::new(),
        data: None,
        ack_deadline_at: None,
        ack_within_ms: None,
        escalation_action: None,
    }
}

/// The actor around a [`Brain`]: its mailbox serialises the minutes, and the runtime's handles can be
/// swapped when the runtime restarts underneath (the agent, an outside process, lives on).
pub struct SimAgent {
    brain: Option<Brain>,
    handles: Handles,
    truth: Rc<RefCell<Truth>>,
}

impl SimAgent {
    pub fn new(brain: Brain, handles: Handles, truth: Rc<RefCell<Truth>>) -> SimAgent {
        SimAgent {
            brain: Some(brain),
            handles,
            truth,
        }
    }
}

impl Actor for SimAgent {
    type Context = Context<Self>;
}

/// Live one simulated minute (the clock has already moved).
#[derive(Message)]
#[rtype(result = "Result<Minute, SimError>")]
pub struct LiveMinute;

impl Handler<LiveMinute> for SimAgent {
    type Result = AtomicResponse<Self, Result<Minute, SimError>>;

    fn handle(&mut self, _: LiveMinute, _: &mut Context<Self>) -> Self::Result {
        let Some(mut brain) = self.brain.take() else {
            return AtomicResponse::new(Box::pin(fut::ready(Err(SimError("agent is already busy".into())))));
        };
        let (handles, truth) = (self.handles.clone(), self.truth.clone());
        let minute = async move {
            let result = brain.live_one_minute(&handles, &truth).await;
            (brain, result)
        };
        AtomicResponse::new(Box::pin(minute.into_actor(self).map(|(brain, result), actor, _| {
            actor.brain = Some(brain);
            result
        })))
    }
}

/// The runtime restarted: talk to the new one from now on.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reconnect(pub Handles);

impl Handler<Reconnect> for SimAgent {
    type Result = ();

    fn handle(&mut self, msg: Reconnect, _: &mut Context<Self>) {
        self.handles = msg.0;
    }
}
