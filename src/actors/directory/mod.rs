//! `AgentDirectory`: owns the index of agents (id, name, token hash → actor address), registers and deletes
//! agents, starts one `AgentActor` per agent at boot and authenticates bearer tokens.
//!
//! Suspended agents keep their actor: reads, un-suspension and the audit trail go through the same single
//! owner. Suspension is enforced where it matters: the agent's token is refused.

mod handlers;
pub mod messages;
mod messaging;
mod release;

use super::agent::{AgentActor, AgentState};
use super::task_board::TaskBoard;
use super::Deps;
use crate::domain::Agent;
use actix::prelude::*;
use std::collections::{HashMap, HashSet};

struct Entry {
    name: String,
    addr: Addr<AgentActor>,
}

pub struct AgentDirectory {
    deps: Deps,
    agents: HashMap<String, Entry>,
    ids_by_name: HashMap<String, String>,
    /// Token hash → agent id.
    agent_by_token: HashMap<String, String>,
    token_of_agent: HashMap<String, String>,
    /// Agents whose deletion is in flight: invisible to lookups, so no new work reaches them.
    deleting: HashSet<String>,
    board: Option<Addr<TaskBoard>>,
}

impl AgentDirectory {
    /// Starts the directory and one actor per stored agent.
    pub fn start(agents: Vec<AgentState>, tokens: Vec<(String, String)>, deps: Deps) -> Addr<AgentDirectory> {
        let mut directory = AgentDirectory {
            deps,
            agents: HashMap::new(),
            ids_by_name: HashMap::new(),
            agent_by_token: HashMap::new(),
            token_of_agent: HashMap::new(),
            deleting: HashSet::new(),
            board: None,
        };
        for agent in agents {
            directory.adopt(agent);
        }
        for (agent_id, hash) in tokens {
            directory.agent_by_token.insert(hash.clone(), agent_id.clone());
            directory.token_of_agent.insert(agent_id, hash);
        }
        directory.start()
    }

    fn adopt(&mut self, state: AgentState) {
        let agent: &Agent = &state.agent;
        self.ids_by_name.insert(agent.name.clone(), agent.id.clone());
        let id = agent.id.clone();
        let name = agent.name.clone();
        let addr = AgentActor::start(state, self.deps.clone());
        self.agents.insert(id, Entry { name, addr });
    }

    /// An agent's id from its id or name (names are case-insensitive), unless it is being deleted.
    fn id_of(&self, key: &str) -> Option<String> {
        let id = if self.agents.contains_key(key) {
            Some(key.to_string())
        } else {
            self.ids_by_name.get(&key.trim().to_lowercase()).cloned()
        };
        id.filter(|id| !self.deleting.contains(id))
    }

    fn addr_of(&self, key: &str) -> Option<(String, Addr<AgentActor>)> {
        let id = self.id_of(key)?;
        let entry = self.agents.get(&id)?;
        Some((id, entry.addr.clone()))
    }

    fn forget(&mut self, id: &str) {
        if let Some(entry) = self.agents.remove(id) {
            self.ids_by_name.remove(&entry.name);
        }
        if let Some(hash) = self.token_of_agent.remove(id) {
            self.agent_by_token.remove(&hash);
        }
        self.deleting.remove(id);
    }
}

impl Actor for AgentDirectory {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(1024);
    }
}
