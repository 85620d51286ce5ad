//! `CapacityRegistry`: each agent's capacity configuration and live load, kept from the events of their
//! owners, answering capacity, forecast, fleet and suitable-agent questions from memory.
//!
//! The configuration (`maxConcurrentTasks`, `maxMinutesPerDay`, `specializations`, `constraints`) is part of
//! the agent's profile, written by its `AgentActor` like every other profile field, so one row keeps one
//! owner; the registry holds a copy from `AgentEvent`s. The load comes from `TaskEvent`s: the registry keeps
//! every open task that has an assignee. Both are seeded from the store at boot. Because publishers enqueue
//! events before they reply, a request sent after a write's reply sees that write here.

use super::events::{AgentEvent, AgentEventKind, TaskEvent, TaskEventKind};
use super::task_board::messages::{Assign, GetTask};
use super::task_board::TaskBoard;
use super::{Deps, EventBus};
use crate::domain::capacity::{self, AgentLoad, CapacityReport, FleetTotals, Forecast};
use crate::domain::matching::{self, Candidate, Ranking, Strategy};
use crate::domain::{Agent, Principal, Task};
use crate::error::{AppError, AppResult, ErrorCode};
use actix::fut::{self, ActorFutureExt};
use actix::prelude::*;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use utoipa::ToSchema;

pub struct CapacityRegistry {
    deps: Deps,
    board: Addr<TaskBoard>,
    agents: HashMap<String, Agent>,
    names: HashMap<String, String>,
    /// Open tasks that have an assignee.
    tasks: HashMap<String, Task>,
    /// agent id → its open tasks.
    by_agent: HashMap<String, HashSet<String>>,
}

impl CapacityRegistry {
    pub fn start(
        agents: Vec<Agent>,
        open_tasks: Vec<Task>,
        deps: Deps,
        board: Addr<TaskBoard>,
        events: &EventBus,
    ) -> Addr<Self> {
        let mut registry = CapacityRegistry {
            deps,
            board,
            agents: HashMap::new(),
            names: HashMap::new(),
            tasks: HashMap::new(),
            by_agent: HashMap::new(),
        };
        for agent in agents {
            registry.put_agent(agent);
        }
        for task in open_tasks {
            registry.put_task(task);
        }
        let addr = registry.start();
        events.subscribe_tasks(addr.clone().recipient());
        events.subscribe_agents(addr.clone().recipient());
        addr
    }

    fn put_agent(&mut self, agent: Agent) {
        if let Some(old) = self.agents.get(&agent.id) {
            self.names.remove(&old.name);
        }
        self.names.insert(agent.name.clone(), agent.id.clone());
        self.agents.insert(agent.id.clone(), agent);
    }

    fn remove_agent(&mut self, id: &str) {
        if let Some(old) = self.agents.remove(id) {
            self.names.remove(&old.name);
        }
    }

    fn remove_task(&mut self, id: &str) {
        if let Some(old) = self.tasks.remove(id) {
            if let Some(agent) = &old.assignee_id {
                if let Some(set) = self.by_agent.get_mut(agent) {
                    set.remove(id);
                    if set.is_empty() {
                        self.by_agent.remove(agent);
                    }
                }
            }
        }
    }

    fn put_task(&mut self, task: Task) {
        self.remove_task(&task.id);
        if task.status.is_terminal() {
            return;
        }
        if let Some(agent) = &task.assignee_id {
            self.by_agent.entry(agent.clone()).or_default().insert(task.id.clone());
            self.tasks.insert(task.id.clone(), task);
        }
    }

    /// An agent by id or name.
    fn agent(&self, key: &str) -> AppResult<&Agent> {
        let key = key.trim();
        self.agents
            .get(key)
            .or_else(|| self.names.get(&key.to_lowercase()).and_then(|id| self.agents.get(id)))
            .ok_or_else(|| AppError::agent_not_found(key))
    }

    fn tasks_of(&self, agent_id: &str) -> Vec<&Task> {
        self.by_agent
            .get(agent_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.tasks.get(id))
            .collect()
    }

    fn rank(&self, task: &Task, strategy: Strategy, limit: usize) -> Ranking {
        let agents = self.agents.values().map(|a| (a, self.tasks_of(&a.id)));
        matching::rank(task, agents, strategy, limit, self.deps.now(), self.deps.capacity)
    }

    /// Fetches the task from the board (without holding this mailbox) and ranks the agents for it.
    fn ranking_for(
        &self,
        task_id: String,
        strategy: Strategy,
        limit: usize,
    ) -> ResponseActFuture<Self, AppResult<Ranking>> {
        let board = self.board.clone();
        let fetch = async move { board.send(GetTask { id: task_id }).await.map_err(AppError::mailbox)? };
        Box::pin(fut::wrap_future::<_, Self>(fetch).map(move |detail, registry, _| {
            let task = detail?.task;
            if task.status.is_terminal() {
                return Err(AppError::new(
                    ErrorCode::TaskFinished,
                    format!("task {} is {} and needs no agent", task.id, task.status),
                ));
            }
            Ok(registry.rank(&task, strategy, limit))
        }))
    }
}

impl Actor for CapacityRegistry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(4096);
    }
}

impl Handler<TaskEvent> for CapacityRegistry {
    type Result = ();

    fn handle(&mut self, event: TaskEvent, _: &mut Context<Self>) {
        match event.kind {
            TaskEventKind::Deleted => self.remove_task(&event.task.id),
            _ => self.put_task(event.task),
        }
    }
}

impl Handler<AgentEvent> for CapacityRegistry {
    type Result = ();

    fn handle(&mut self, event: AgentEvent, _: &mut Context<Self>) {
        match event.kind {
            AgentEventKind::Deleted => self.remove_agent(&event.agent.id),
            _ => self.put_agent(event.agent),
        }
    }
}

/// `GET /api/agents/{id}/capacity`.
#[derive(Message)]
#[rtype(result = "AppResult<CapacityReport>")]
pub struct AgentCapacity {
    pub agent: String,
}

impl Handler<AgentCapacity> for CapacityRegistry {
    type Result = AppResult<CapacityReport>;

    fn handle(&mut self, msg: AgentCapacity, _: &mut Context<Self>) -> Self::Result {
        let agent = self.agent(&msg.agent)?;
        Ok(capacity::report(
            agent,
            &self.tasks_of(&agent.id),
            self.deps.now(),
            self.deps.capacity,
        ))
    }
}

/// `GET /api/agents/{id}/forecast`.
#[derive(Message)]
#[rtype(result = "AppResult<Forecast>")]
pub struct AgentForecast {
    pub agent: String,
}

impl Handler<AgentForecast> for CapacityRegistry {
    type Result = AppResult<Forecast>;

    fn handle(&mut self, msg: AgentForecast, _: &mut Context<Self>) -> Self::Result {
        let agent = self.agent(&msg.agent)?;
        Ok(capacity::forecast(agent, &self.tasks_of(&agent.id), self.deps.now()))
    }
}

/// `GET /api/capacity`: every agent's load, by name, and the fleet totals.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FleetCapacity {
    pub generated_at: i64,
    pub totals: FleetTotals,
    pub agents: Vec<AgentLoad>,
}

#[derive(Message)]
#[rtype(result = "FleetCapacity")]
pub struct Fleet;

impl Handler<Fleet> for CapacityRegistry {
    type Result = MessageResult<Fleet>;

    fn handle(&mut self, _: Fleet, _: &mut Context<Self>) -> Self::Result {
        let now = self.deps.now();
        let mut agents: Vec<AgentLoad> = self
            .agents
            .values()
            .map(|a| capacity::load(a, &self.tasks_of(&a.id), now, self.deps.capacity))
            .collect();
        agents.sort_by(|a, b| a.agent_name.cmp(&b.agent_name));
        MessageResult(FleetCapacity {
            generated_at: now,
            totals: capacity::fleet_totals(&agents),
            agents,
        })
    }
}

/// `GET /api/tasks/{id}/suitable-agents`.
#[derive(Message)]
#[rtype(result = "AppResult<Ranking>")]
pub struct SuitableAgents {
    pub task_id: String,
    pub strategy: Strategy,
    pub limit: usize,
}

impl Handler<SuitableAgents> for CapacityRegistry {
    type Result = ResponseActFuture<Self, AppResult<Ranking>>;

    fn handle(&mut self, msg: SuitableAgents, _: &mut Context<Self>) -> Self::Result {
        self.ranking_for(msg.task_id, msg.strategy, msg.limit)
    }
}

/// What `POST /api/tasks/{id}/auto-assign` did.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoAssignment {
    pub task: Task,
    /// The candidate chosen, as ranked.
    pub chosen: Candidate,
}

/// Assigns the task to the best candidate that can accept work, through the board's ordinary assignment
/// (same permissions, same capacity check).
#[derive(Message)]
#[rtype(result = "AppResult<AutoAssignment>")]
pub struct AutoAssign {
    pub task_id: String,
    pub strategy: Strategy,
    pub by: Principal,
}

impl Handler<AutoAssign> for CapacityRegistry {
    type Result = ResponseActFuture<Self, AppResult<AutoAssignment>>;

    fn handle(&mut self, msg: AutoAssign, _: &mut Context<Self>) -> Self::Result {
        let board = self.board.clone();
        let AutoAssign { task_id, strategy, by } = msg;
        let ranked = self.ranking_for(task_id.clone(), strategy, matching::MAX_LIMIT);
        Box::pin(ranked.then(move |ranking, _, _| {
            fut::wrap_future(async move {
                let ranking = ranking?;
                let Some(chosen) = ranking.best().cloned() else {
                    return Err(no_suitable_agent(&ranking));
                };
                let assign = Assign {
                    id: task_id,
                    agent: Some(chosen.agent_id.clone()),
                    force: false,
                    by,
                };
                let task = board.send(assign).await.map_err(AppError::mailbox)??;
                Ok(AutoAssignment { task, chosen })
            })
        }))
    }
}

fn no_suitable_agent(ranking: &Ranking) -> AppError {
    let message = if ranking.eligible == 0 {
        format!(
            "no agent meets the task's requirements ({} left out by the hard filters)",
            ranking.excluded.total()
        )
    } else {
        format!(
            "none of the {} agents that meet the task's requirements can accept work",
            ranking.eligible
        )
    };
    AppError::new(ErrorCode::NoSuitableAgent, message).with_details(serde_json::json!({
        "excluded": ranking.excluded,
        "candidates": ranking.candidates.iter().take(matching::DEFAULT_LIMIT).collect::<Vec<_>>(),
    }))
}
