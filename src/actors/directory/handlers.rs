use super::messages::*;
use super::AgentDirectory;
use crate::actors::agent::messages as agent_msg;
use crate::actors::agent::AgentState;
use crate::actors::events::{AgentEvent, AgentEventKind};
use crate::actors::task_board::messages::ReleaseAgentTasks;
use crate::actors::{atomic, persist_then, reply_now};
use crate::domain::query::Page;
use crate::domain::{agent as rules, token, Activity, ActivityKind, Agent, AgentStatus, Principal};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::ids::new_id;
use crate::store::{queries, WriteOp};
use actix::fut::{self, ActorFutureExt};
use actix::prelude::*;
use futures_util::future::join_all;

fn not_found(key: &str) -> AppError {
    AppError::agent_not_found(key)
}

impl Handler<SetTaskBoard> for AgentDirectory {
    type Result = ();
    fn handle(&mut self, msg: SetTaskBoard, _: &mut Context<Self>) {
        self.board = Some(msg.0);
    }
}

impl Handler<Register> for AgentDirectory {
    type Result = AtomicResponse<Self, AppResult<AgentWithToken>>;

    fn handle(&mut self, msg: Register, _: &mut Context<Self>) -> Self::Result {
        if !msg.by.is_admin() {
            return atomic(reply_now(Err(AppError::forbidden(
                "registering agents needs the admin token",
            ))));
        }
        let now = self.deps.now();
        let mut draft = msg.draft;
        if let Some(lead) = draft.lead_id.take() {
            match self.id_of(&lead) {
                Some(id) => draft.lead_id = Some(id),
                None => return atomic(reply_now(Err(not_found(&lead)))),
            }
        }
        let agent = match rules::register(draft, new_id(), now) {
            Ok(agent) => agent,
            Err(violation) => return atomic(reply_now(Err(violation.into()))),
        };
        if self.ids_by_name.contains_key(&agent.name) {
            return atomic(reply_now(Err(AppError::new(
                ErrorCode::DuplicateName,
                format!("an agent named '{}' already exists", agent.name),
            )
            .with_details(serde_json::json!({ "field": "name" })))));
        }
        let secret = token::generate_token();
        let hash = token::hash_token(&secret);
        let activity = Activity::new(
            new_id(),
            ActivityKind::AgentRegistered,
            &msg.by,
            format!("{} registered as {} ({})", agent.name, agent.level, agent.role),
            now,
        )
        .agent(&agent.id);
        let ops = vec![
            WriteOp::insert_agent(&agent),
            WriteOp::agent_token(new_id(), &agent.id, hash.clone(), now),
            WriteOp::activity(&activity),
        ];
        atomic(persist_then(
            &self.deps.journal,
            ops,
            move |dir: &mut AgentDirectory| {
                dir.agent_by_token.insert(hash.clone(), agent.id.clone());
                dir.token_of_agent.insert(agent.id.clone(), hash);
                dir.adopt(AgentState {
                    agent: agent.clone(),
                    open_messages: Vec::new(),
                    idempotency_keys: Vec::new(),
                });
                dir.deps.events.publish_agent(AgentEvent {
                    kind: AgentEventKind::Registered,
                    agent: agent.clone(),
                    at: now,
                });
                Ok(AgentWithToken { agent, token: secret })
            },
        ))
    }
}

impl Handler<Resolve> for AgentDirectory {
    type Result = ResponseFuture<AppResult<Agent>>;

    fn handle(&mut self, msg: Resolve, _: &mut Context<Self>) -> Self::Result {
        let target = self.addr_of(&msg.key);
        Box::pin(async move {
            let (_, addr) = target.ok_or_else(|| not_found(&msg.key))?;
            addr.send(agent_msg::GetAgent).await.map_err(AppError::mailbox)
        })
    }
}

impl Handler<ListAgents> for AgentDirectory {
    type Result = ResponseFuture<AppResult<Page<Agent>>>;

    fn handle(&mut self, msg: ListAgents, _: &mut Context<Self>) -> Self::Result {
        let mut ids: Vec<&String> = self.agents.keys().filter(|id| !self.deleting.contains(*id)).collect();
        ids.sort();
        let addrs: Vec<_> = ids
            .into_iter()
            .filter(|id| msg.page.cursor.as_ref().is_none_or(|cursor| *id > cursor))
            .filter_map(|id| self.agents.get(id).map(|e| e.addr.clone()))
            .collect();
        Box::pin(async move {
            let profiles = join_all(addrs.iter().map(|addr| addr.send(agent_msg::GetAgent))).await;
            let filter = msg.filter;
            let matching: Vec<Agent> = profiles
                .into_iter()
                .filter_map(Result::ok)
                .filter(|a| filter.status.is_none_or(|s| a.status == s))
                .filter(|a| filter.level.is_none_or(|l| a.level == l))
                .filter(|a| {
                    filter
                        .specialization
                        .as_ref()
                        .is_none_or(|s| a.specializations.iter().any(|x| x.eq_ignore_ascii_case(s)))
                })
                .take(usize::try_from(msg.page.limit).unwrap_or(0) + 1)
                .collect();
            Ok(Page::from_rows(matching, msg.page.limit, |a| a.id.clone()))
        })
    }
}

impl Handler<Update> for AgentDirectory {
    type Result = ResponseFuture<AppResult<Agent>>;

    fn handle(&mut self, msg: Update, _: &mut Context<Self>) -> Self::Result {
        let target = self.addr_of(&msg.key);
        let mut patch = msg.patch;
        let lead = match patch.lead_id.take() {
            Some(Some(lead)) => match self.id_of(&lead) {
                Some(id) => Ok(Some(Some(id))),
                None => Err(not_found(&lead)),
            },
            other => Ok(other),
        };
        Box::pin(async move {
            let (_, addr) = target.ok_or_else(|| not_found(&msg.key))?;
            patch.lead_id = lead?;
            addr.send(agent_msg::UpdateAgent { patch, by: msg.by })
                .await
                .map_err(AppError::mailbox)?
        })
    }
}

impl Handler<Heartbeat> for AgentDirectory {
    type Result = ResponseFuture<AppResult<Agent>>;

    fn handle(&mut self, msg: Heartbeat, _: &mut Context<Self>) -> Self::Result {
        let target = self.addr_of(&msg.key);
        Box::pin(async move {
            let (_, addr) = target.ok_or_else(|| not_found(&msg.key))?;
            let beat = agent_msg::Heartbeat {
                status: msg.status,
                current_task_id: msg.current_task_id,
                by: msg.by,
            };
            addr.send(beat).await.map_err(AppError::mailbox)?
        })
    }
}

impl Handler<RotateToken> for AgentDirectory {
    type Result = AtomicResponse<Self, AppResult<AgentWithToken>>;

    fn handle(&mut self, msg: RotateToken, _: &mut Context<Self>) -> Self::Result {
        let Some((id, addr)) = self.addr_of(&msg.key) else {
            return atomic(reply_now(Err(not_found(&msg.key))));
        };
        if !(msg.by.is_admin() || msg.by.is_agent(&id)) {
            return atomic(reply_now(Err(AppError::forbidden(
                "rotating another agent's token needs the admin token",
            ))));
        }
        let now = self.deps.now();
        let secret = token::generate_token();
        let hash = token::hash_token(&secret);
        let activity =
            Activity::new(new_id(), ActivityKind::AgentTokenRotated, &msg.by, "token rotated", now).agent(&id);
        let ops = vec![
            WriteOp::SetAgentToken {
                agent_id: id.clone(),
                token_hash: hash.clone(),
            },
            WriteOp::activity(&activity),
        ];
        let journal = self.deps.journal.clone();
        let fut = fut::wrap_future::<_, Self>(async move { journal.commit(ops).await }).then(
            move |committed, dir: &mut AgentDirectory, _| {
                let applied = committed.map_err(AppError::store).map(|()| {
                    if let Some(old) = dir.token_of_agent.insert(id.clone(), hash.clone()) {
                        dir.agent_by_token.remove(&old);
                    }
                    dir.agent_by_token.insert(hash, id);
                });
                fut::wrap_future(async move {
                    applied?;
                    let agent = addr.send(agent_msg::GetAgent).await.map_err(AppError::mailbox)?;
                    Ok(AgentWithToken { agent, token: secret })
                })
            },
        );
        atomic(Box::pin(fut))
    }
}

impl Handler<Delete> for AgentDirectory {
    type Result = ResponseActFuture<Self, AppResult<DeletedAgent>>;

    fn handle(&mut self, msg: Delete, _: &mut Context<Self>) -> Self::Result {
        if !msg.by.is_admin() {
            return reply_now(Err(AppError::forbidden("deleting agents needs the admin token")));
        }
        let Some((id, addr)) = self.addr_of(&msg.key) else {
            return reply_now(Err(not_found(&msg.key)));
        };
        let Some(board) = self.board.clone() else {
            return reply_now(Err(AppError::internal("the task board is not wired to the directory")));
        };
        self.deleting.insert(id.clone());
        let by = msg.by.clone();
        let agent_id = id.clone();
        let release = async move {
            let agent = addr.send(agent_msg::GetAgent).await.map_err(AppError::mailbox)?;
            let released = board
                .send(ReleaseAgentTasks {
                    agent_id,
                    force: msg.force,
                    by,
                })
                .await
                .map_err(AppError::mailbox)??;
            Ok::<_, AppError>((agent, released, addr))
        };
        let by = msg.by;
        Box::pin(
            fut::wrap_future::<_, Self>(release).then(move |released, dir: &mut AgentDirectory, _| {
                let (agent, released_task_ids, addr) = match released {
                    Ok(parts) => parts,
                    Err(e) => {
                        dir.deleting.remove(&id);
                        return reply_now(Err(e));
                    }
                };
                let now = dir.deps.now();
                let activity = Activity::new(
                    new_id(),
                    ActivityKind::AgentDeleted,
                    &by,
                    format!(
                        "{} deleted ({} open tasks released)",
                        agent.name,
                        released_task_ids.len()
                    ),
                    now,
                )
                .agent(&agent.id)
                .change(
                    serde_json::to_value(&agent).unwrap_or_default(),
                    serde_json::Value::Null,
                );
                let ops = vec![
                    WriteOp::DeleteAgent { id: agent.id.clone() },
                    WriteOp::activity(&activity),
                ];
                let journal = dir.deps.journal.clone();
                Box::pin(
                    fut::wrap_future::<_, Self>(async move { journal.commit(ops).await }).map(
                        move |committed, dir: &mut AgentDirectory, _| {
                            if let Err(e) = committed {
                                dir.deleting.remove(&id);
                                return Err(AppError::store(e));
                            }
                            dir.forget(&id);
                            addr.do_send(agent_msg::Retire);
                            for entry in dir.agents.values() {
                                entry.addr.do_send(agent_msg::ForgetLead { lead_id: id.clone() });
                            }
                            Ok(DeletedAgent {
                                agent,
                                released_task_ids,
                            })
                        },
                    ),
                )
            }),
        )
    }
}

impl Handler<Authenticate> for AgentDirectory {
    type Result = ResponseFuture<AppResult<Principal>>;

    fn handle(&mut self, msg: Authenticate, _: &mut Context<Self>) -> Self::Result {
        let hash = token::hash_token(&msg.token);
        let agent = self
            .agent_by_token
            .get_key_value(&hash)
            .filter(|(stored, _)| token::verify_token(&msg.token, stored))
            .and_then(|(_, id)| self.agents.get(id).map(|e| (id.clone(), e.addr.clone())));
        let store = self.deps.store.clone();
        Box::pin(async move {
            if let Some((id, addr)) = agent {
                let profile = addr.send(agent_msg::GetAgent).await.map_err(AppError::mailbox)?;
                if profile.status == AgentStatus::Suspended {
                    return Err(AppError::new(
                        ErrorCode::AgentSuspended,
                        format!("agent {} is suspended; its token is refused", profile.name),
                    ));
                }
                return Ok(Principal::Agent(id));
            }
            // The admin token is read from the store on each use, so `token rotate-admin` run from another
            // process takes effect at once.
            let admin_hashes = store.read(queries::admin_token_hashes).await.map_err(AppError::store)?;
            if admin_hashes
                .iter()
                .any(|stored| token::verify_token(&msg.token, stored))
            {
                Ok(Principal::Admin)
            } else {
                Err(AppError::new(ErrorCode::Unauthorized, "unknown token"))
            }
        })
    }
}

impl Handler<Tick> for AgentDirectory {
    type Result = ResponseFuture<AppResult<Vec<String>>>;

    fn handle(&mut self, _: Tick, _: &mut Context<Self>) -> Self::Result {
        let agents: Vec<(String, String, Addr<crate::actors::agent::AgentActor>)> = self
            .agents
            .iter()
            .map(|(id, e)| (id.clone(), e.name.clone(), e.addr.clone()))
            .collect();
        let board = self.board.clone();
        Box::pin(async move {
            let checks = join_all(agents.iter().map(|(_, _, addr)| addr.send(agent_msg::CheckHeartbeat))).await;
            let mut offline = Vec::new();
            for ((id, name, _), outcome) in agents.into_iter().zip(checks) {
                match outcome {
                    Ok(Ok(true)) => {
                        // Its queued work goes back to the pool before the tick reports it offline.
                        super::release::release_queued(board.clone(), id, name.clone()).await;
                        offline.push(name);
                    }
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => log::warn!("heartbeat check for {name} failed: {e}"),
                    Err(e) => log::warn!("heartbeat check for {name} not delivered: {e}"),
                }
            }
            Ok(offline)
        })
    }
}
