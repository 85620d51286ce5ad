//! What a firing does: the rule's actions, in order. Changes to tasks (priority, reassignment, subtasks) go
//! through the board's ordinary messages as `Principal::System` and are done when `run` returns; what
//! leaves the runtime's owners — a message to an agent, a webhook, a page to a human — becomes an outbox
//! row, committed with the firing and delivered by the `Dispatcher`. Each result is recorded (`executed`,
//! `failed` with the error, `skipped` with why, `pending` until its row is delivered). One failing action
//! never stops the next. Later actions see the task as earlier ones left it (a reassignment changes whom a
//! later notice goes to).

use crate::actors::ask;
use crate::actors::capacity::{CapacityRegistry, SuitableAgents};
use crate::actors::directory::messages::Resolve;
use crate::actors::directory::AgentDirectory;
use crate::actors::dispatcher::Dispatcher;
use crate::actors::task_board::messages::{Assign, CreateTask, EscalateTask, UpdateTask};
use crate::actors::task_board::TaskBoard;
use crate::actors::templates::{RenderTemplate, TemplateLibrary};
use crate::domain::escalation::{Action, ActionResult, ActionStatus, EscalateTo, Escalation, EscalationRule};
use crate::domain::matching::{self, Strategy};
use crate::domain::message::{MessageDraft, MessagePriority, MessageType, MAX_SUBJECT};
use crate::domain::outbox::{Effect, OutboxItem, Recipients};
use crate::domain::task::{TaskDraft, TaskPatch};
use crate::domain::{Agent, Principal, Priority, Task, TaskStatus};
use crate::error::AppError;
use crate::ids::new_id;
use actix::Addr;
use std::collections::BTreeMap;

/// The addresses and settings the actions use.
#[derive(Clone)]
pub struct Peers {
    pub directory: Addr<AgentDirectory>,
    pub board: Addr<TaskBoard>,
    pub capacity: Addr<CapacityRegistry>,
    pub templates: Addr<TemplateLibrary>,
    pub dispatcher: Addr<Dispatcher>,
    /// `MC_ESCALATION_WEBHOOK_URL`.
    pub webhook_url: Option<String>,
}

/// What a firing's actions did, and the outbox rows they leave to commit with the firing.
#[derive(Debug, Default)]
pub struct Acted {
    pub results: Vec<ActionResult>,
    pub outbox: Vec<OutboxItem>,
}

/// Runs the rule's actions for one firing.
pub async fn run(peers: &Peers, rule: &EscalationRule, task: &Task, escalation: &Escalation) -> Acted {
    let mut task = task.clone();
    let mut acted = Acted::default();
    for (index, action) in rule.actions.iter().enumerate() {
        let (status, detail, outbox_id) = match run_one(peers, action, rule, &mut task, escalation).await {
            Ok(Outcome::Done(detail)) => (ActionStatus::Executed, detail, None),
            Ok(Outcome::Skipped(why)) => (ActionStatus::Skipped, why, None),
            Ok(Outcome::Queued { detail, effect }) => {
                let row = queue(escalation, index, &task, *effect);
                let id = row.id.clone();
                acted.outbox.push(row);
                (ActionStatus::Pending, detail, Some(id))
            }
            Err(failure) => (ActionStatus::Failed, failure, None),
        };
        acted.results.push(ActionResult {
            kind: action.kind().to_string(),
            status,
            detail,
            outbox_id,
        });
    }
    acted
}

/// The outbox row of one action of a firing; its dedupe key is the firing and the action's place in it.
pub(super) fn queue(escalation: &Escalation, index: usize, task: &Task, effect: Effect) -> OutboxItem {
    let key = format!("escalation:{}:{index}", escalation.id);
    OutboxItem::new(new_id(), key, effect, escalation.triggered_at).for_escalation(
        &escalation.id,
        index,
        Some(&task.id),
    )
}

enum Outcome {
    Done(String),
    Skipped(String),
    /// Left to the outbox: `detail` is what was done at once (may be empty).
    Queued {
        detail: String,
        effect: Box<Effect>,
    },
}

async fn run_one(
    peers: &Peers,
    action: &Action,
    rule: &EscalationRule,
    task: &mut Task,
    escalation: &Escalation,
) -> Result<Outcome, String> {
    match action {
        Action::NotifyAssignee {
            template,
            subject,
            body,
        } => {
            notify_assignee(
                peers,
                task,
                escalation,
                template.as_deref(),
                subject.as_deref(),
                body.as_deref(),
            )
            .await
        }
        Action::Escalate { to } => escalate(peers, task, escalation, to).await,
        Action::Reassign { strategy } => reassign(peers, task, escalation, *strategy).await,
        Action::CreateSubtask {
            title,
            description,
            tags,
            assign_to,
        } => create_subtask(peers, task, title, description, tags, assign_to.as_deref()).await,
        Action::SetPriority { priority } => set_priority(peers, task, *priority).await,
        Action::Webhook { url, headers } => {
            let Some(url) = url.as_ref().or(peers.webhook_url.as_ref()) else {
                return Ok(Outcome::Skipped(
                    "no url in the action, and MC_ESCALATION_WEBHOOK_URL is not set".into(),
                ));
            };
            Ok(Outcome::Queued {
                detail: String::new(),
                effect: Box::new(Effect::Webhook {
                    url: Some(url.clone()),
                    headers: headers.clone(),
                    body: webhook_payload(rule, task, escalation),
                }),
            })
        }
    }
}

fn why(e: AppError) -> String {
    format!("{} ({})", e.message, e.code)
}

/// The facts a notice or a template can use.
fn facts(task: &Task, escalation: &Escalation) -> BTreeMap<String, serde_json::Value> {
    let mut vars = BTreeMap::new();
    let mut put = |name: &str, value: serde_json::Value| {
        vars.insert(name.to_string(), value);
    };
    put("taskId", task.id.clone().into());
    put("taskTitle", task.title.clone().into());
    put("priority", task.priority.as_str().into());
    put("status", task.status.as_str().into());
    put("assigneeId", task.assignee_id.clone().into());
    put("ruleName", escalation.rule_name.clone().into());
    put("reason", escalation.reason.clone().into());
    put("level", escalation.level.into());
    vars
}

fn escalation_data(task: &Task, escalation: &Escalation) -> serde_json::Value {
    serde_json::json!({
        "escalationId": escalation.id,
        "ruleId": escalation.rule_id,
        "ruleName": escalation.rule_name,
        "level": escalation.level,
        "trigger": escalation.trigger,
        "reason": escalation.reason,
        "taskId": task.id,
    })
}

fn subject_line(text: String) -> String {
    text.chars().take(MAX_SUBJECT).collect()
}

async fn notify_assignee(
    peers: &Peers,
    task: &Task,
    escalation: &Escalation,
    template: Option<&str>,
    subject: Option<&str>,
    body: Option<&str>,
) -> Result<Outcome, String> {
    let Some(assignee) = task.assignee_id.clone() else {
        return Ok(Outcome::Skipped("the task has no assignee".into()));
    };
    let (subject, body) = match template {
        Some(key) => {
            let render = RenderTemplate {
                key: key.to_string(),
                vars: facts(task, escalation),
                only_declared: true,
            };
            let rendered = ask(&peers.templates, render).await.map_err(why)?;
            (rendered.subject, rendered.body)
        }
        None => (
            subject.unwrap_or_default().to_string(),
            body.unwrap_or_default().to_string(),
        ),
    };
    let why_line = format!(
        "'{}': {} (rule '{}', level {}).",
        task.title, escalation.reason, escalation.rule_name, escalation.level
    );
    let draft = MessageDraft {
        to_agent_id: assignee.clone(),
        kind: Some(MessageType::Alert),
        subject: subject_line(subject),
        body: if body.trim().is_empty() {
            why_line
        } else {
            format!("{body}\n\n{why_line}")
        },
        priority: Some(MessagePriority::High),
        task_id: Some(task.id.clone()),
        data: Some(escalation_data(task, escalation)),
        ..MessageDraft::default()
    };
    Ok(Outcome::Queued {
        detail: String::new(),
        effect: Box::new(Effect::AgentMessage {
            to: Recipients::Agent { agent: assignee },
            draft,
        }),
    })
}

/// One level up: the task's priority raised, and the alert sent where the level says.
async fn escalate(peers: &Peers, task: &mut Task, escalation: &Escalation, to: &EscalateTo) -> Result<Outcome, String> {
    let raise = EscalateTask {
        id: task.id.clone(),
        reason: format!("{}: {}", escalation.rule_name, escalation.reason),
        by: Principal::System,
    };
    let raised = match ask(&peers.board, raise).await {
        Ok(next) => {
            let line = format!("priority {} → {}", task.priority, next.priority);
            *task = next;
            line
        }
        Err(e) => format!("priority unchanged ({})", why(e)),
    };
    let alert = alert_draft(task, escalation);
    let lead_of = |depth| Effect::AgentMessage {
        to: Recipients::LeadOf {
            agent: task.assignee_id.clone(),
            depth,
        },
        draft: alert.clone(),
    };
    let effect = match (to, escalation.level) {
        (EscalateTo::Agent(key), _) => Effect::AgentMessage {
            to: Recipients::Agent { agent: key.clone() },
            draft: alert.clone(),
        },
        (EscalateTo::Lead, 1) => lead_of(1),
        (EscalateTo::Lead, 2) => lead_of(2),
        // The top of the ladder: a person must look.
        (EscalateTo::Lead, _) | (EscalateTo::Human, _) => human_page(task, escalation),
    };
    Ok(Outcome::Queued {
        detail: raised,
        effect: Box::new(effect),
    })
}

async fn resolve(peers: &Peers, key: Option<&str>) -> Option<Agent> {
    let key = key?.to_string();
    ask(&peers.directory, Resolve { key }).await.ok()
}

/// The alert of an `escalate` action; its recipient is filled in at delivery.
fn alert_draft(task: &Task, escalation: &Escalation) -> MessageDraft {
    MessageDraft {
        kind: Some(MessageType::Alert),
        subject: subject_line(format!("Escalation (level {}): {}", escalation.level, task.title)),
        body: format!(
            "'{}' ({}) {}. Rule '{}' fired at level {}; assignee {}, priority now {}.",
            task.title,
            task.id,
            escalation.reason,
            escalation.rule_name,
            escalation.level,
            task.assignee_id.as_deref().unwrap_or("nobody"),
            task.priority
        ),
        priority: Some(if escalation.level >= 2 {
            MessagePriority::Critical
        } else {
            MessagePriority::High
        }),
        task_id: Some(task.id.clone()),
        data: Some(escalation_data(task, escalation)),
        ..MessageDraft::default()
    }
}

/// A person must look: an `escalated_to_human` entry in the admin activity feed, and the default webhook
/// when one is configured.
fn human_page(task: &Task, escalation: &Escalation) -> Effect {
    Effect::HumanPage {
        summary: format!(
            "'{}' needs a person: {} (rule '{}', level {})",
            task.title, escalation.reason, escalation.rule_name, escalation.level
        ),
        agent_id: task.assignee_id.clone(),
        body: serde_json::json!({
            "event": "escalated_to_human",
            "escalationId": escalation.id,
            "rule": { "id": escalation.rule_id, "name": escalation.rule_name },
            "level": escalation.level,
            "reason": escalation.reason,
            "task": task,
        }),
    }
}

async fn reassign(
    peers: &Peers,
    task: &mut Task,
    escalation: &Escalation,
    strategy: Strategy,
) -> Result<Outcome, String> {
    let ranking = ask(
        &peers.capacity,
        SuitableAgents {
            task_id: task.id.clone(),
            strategy,
            limit: matching::MAX_LIMIT,
        },
    )
    .await
    .map_err(why)?;
    let previous = task.assignee_id.clone();
    // Someone new, and rather someone who has not already failed this task.
    let failed_it = |agent: &str| task.failures.iter().any(|f| f.agent_id.as_deref() == Some(agent));
    let others = || {
        ranking
            .candidates
            .iter()
            .filter(|c| c.can_accept_work && Some(&c.agent_id) != previous.as_ref())
    };
    let chosen = others().find(|c| !failed_it(&c.agent_id)).or_else(|| others().next());
    if chosen.is_none() && previous.is_none() {
        return Err(format!(
            "no agent can take it ({} meet its requirements, none of them free)",
            ranking.eligible
        ));
    }
    // With nobody free, the task still leaves its assignee: back to `ready`, unassigned, for whoever frees
    // up first. Keeping it where it is would leave it stuck with an agent the rule has given up on.
    let assign = Assign {
        id: task.id.clone(),
        agent: chosen.map(|c| c.agent_id.clone()),
        force: false,
        by: Principal::System,
    };
    *task = ask(&peers.board, assign).await.map_err(why)?;
    let previous_name = match resolve(peers, previous.as_deref()).await {
        Some(agent) => agent.name,
        None => previous.clone().unwrap_or_else(|| "nobody".into()),
    };
    let (detail, successor) = match chosen {
        Some(chosen) => (
            format!(
                "reassigned from {previous_name} to {} (ranked {} by {strategy})",
                chosen.agent_name, chosen.rank
            ),
            chosen.agent_name.clone(),
        ),
        None => (
            format!(
                "taken from {previous_name} and left unassigned in ready: no other agent is free now ({} meet its \
                 requirements)",
                ranking.eligible
            ),
            "the next free agent".to_string(),
        ),
    };
    if let Some(previous) = previous {
        let notice = MessageDraft {
            to_agent_id: previous.clone(),
            kind: Some(MessageType::Handoff),
            subject: subject_line(format!("Reassigned: {}", task.title)),
            body: format!(
                "'{}' was given to {successor} because {} (rule '{}'). Stop work on it and hand over what you have.",
                task.title, escalation.reason, escalation.rule_name
            ),
            priority: Some(MessagePriority::High),
            task_id: Some(task.id.clone()),
            data: Some(escalation_data(task, escalation)),
            ..MessageDraft::default()
        };
        return Ok(Outcome::Queued {
            detail,
            effect: Box::new(Effect::AgentMessage {
                to: Recipients::Agent { agent: previous },
                draft: notice,
            }),
        });
    }
    Ok(Outcome::Done(detail))
}

async fn create_subtask(
    peers: &Peers,
    task: &Task,
    title: &str,
    description: &str,
    tags: &[String],
    assign_to: Option<&str>,
) -> Result<Outcome, String> {
    let draft = TaskDraft {
        title: title.to_string(),
        description: if description.is_empty() {
            format!("Split off from '{}' by an escalation.", task.title)
        } else {
            description.to_string()
        },
        priority: task.priority,
        status: Some(TaskStatus::Ready),
        assignee_id: None,
        parent_id: Some(task.id.clone()),
        mission_id: task.mission_id.clone(),
        pillar_id: task.pillar_id.clone(),
        tags: tags.to_vec(),
        sla_tier: None,
        slo_ms: None,
        estimated_minutes: None,
        requirements: Default::default(),
    };
    let child = ask(
        &peers.board,
        CreateTask {
            draft,
            by: Principal::System,
        },
    )
    .await
    .map_err(why)?;
    let Some(agent) = assign_to else {
        return Ok(Outcome::Done(format!("created subtask {}", child.id)));
    };
    let assign = Assign {
        id: child.id.clone(),
        agent: Some(agent.to_string()),
        force: false,
        by: Principal::System,
    };
    Ok(Outcome::Done(match ask(&peers.board, assign).await {
        Ok(_) => format!("created subtask {} for {agent}", child.id),
        Err(e) => format!("created subtask {}, left unassigned: {}", child.id, why(e)),
    }))
}

async fn set_priority(peers: &Peers, task: &mut Task, priority: Priority) -> Result<Outcome, String> {
    if task.priority == priority {
        return Ok(Outcome::Skipped(format!("already {priority}")));
    }
    let update = UpdateTask {
        id: task.id.clone(),
        patch: TaskPatch {
            priority: Some(priority),
            ..TaskPatch::default()
        },
        by: Principal::System,
    };
    let before = task.priority;
    *task = ask(&peers.board, update).await.map_err(why)?;
    Ok(Outcome::Done(format!("priority {before} → {priority}")))
}

/// The JSON a webhook action POSTs.
fn webhook_payload(rule: &EscalationRule, task: &Task, escalation: &Escalation) -> serde_json::Value {
    serde_json::json!({
        "event": "escalation",
        "escalationId": escalation.id,
        "rule": { "id": rule.id, "name": rule.name, "priority": rule.priority },
        "level": escalation.level,
        "trigger": escalation.trigger,
        "reason": escalation.reason,
        "triggeredAt": escalation.triggered_at,
        "task": task,
    })
}
