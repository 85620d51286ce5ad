use super::messages::*;
use super::AgentActor;
use crate::actors::events::AgentEventKind;
use crate::actors::{atomic, persist_then, reply_now};
use crate::domain::activity::diff;
use crate::domain::{agent as rules, Activity, ActivityKind, Agent, AgentStatus, Principal};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::ids::new_id;
use crate::store::WriteOp;
use actix::prelude::*;

fn profile_json(agent: &Agent) -> serde_json::Value {
    serde_json::to_value(agent).unwrap_or_default()
}

impl AgentActor {
    /// Commits the new profile with its activity row, then adopts it and publishes.
    fn commit_profile(
        &mut self,
        next: Agent,
        activity: Activity,
        event: AgentEventKind,
    ) -> ResponseActFuture<Self, AppResult<Agent>> {
        let ops = vec![WriteOp::update_agent(&next), WriteOp::activity(&activity)];
        persist_then(&self.deps.journal, ops, move |actor: &mut AgentActor| {
            actor.agent = next;
            actor.publish(event);
            Ok(actor.agent.clone())
        })
    }
}

impl Handler<GetAgent> for AgentActor {
    type Result = MessageResult<GetAgent>;
    fn handle(&mut self, _: GetAgent, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.agent.clone())
    }
}

impl Handler<UpdateAgent> for AgentActor {
    type Result = AtomicResponse<Self, AppResult<Agent>>;

    fn handle(&mut self, msg: UpdateAgent, _: &mut Context<Self>) -> Self::Result {
        let current = &self.agent;
        let allowed = msg.by.is_admin() || (msg.by.is_agent(&current.id) && !msg.patch.touches_admin_fields(current));
        if !allowed {
            return atomic(reply_now(Err(AppError::forbidden(
                "an agent may change its own role, specializations, constraints, limits and status; level, lead \
                 and suspension need the admin token",
            ))));
        }
        let now = self.deps.now();
        let next = match rules::apply_patch(current, msg.patch, now) {
            Ok(next) => next,
            Err(violation) => return atomic(reply_now(Err(violation.into()))),
        };
        if next == *current {
            return atomic(reply_now(Ok(next)));
        }
        let (before, after) = diff(&profile_json(current), &profile_json(&next));
        let (kind, message) = if next.status != current.status {
            (
                ActivityKind::AgentStatusChanged,
                format!("{} is now {} (was {})", next.name, next.status, current.status),
            )
        } else {
            (ActivityKind::AgentUpdated, format!("{} updated", next.name))
        };
        let activity = Activity::new(new_id(), kind, &msg.by, message, now)
            .agent(&next.id)
            .change(before, after);
        atomic(self.commit_profile(next, activity, AgentEventKind::Updated))
    }
}

impl Handler<Heartbeat> for AgentActor {
    type Result = AtomicResponse<Self, AppResult<Agent>>;

    fn handle(&mut self, msg: Heartbeat, _: &mut Context<Self>) -> Self::Result {
        if !(msg.by.is_admin() || msg.by.is_agent(&self.agent.id)) {
            return atomic(reply_now(Err(AppError::forbidden(
                "an agent may only send its own heartbeat",
            ))));
        }
        if self.agent.status == AgentStatus::Suspended {
            return atomic(reply_now(Err(AppError::new(
                ErrorCode::AgentSuspended,
                format!("{} is suspended", self.agent.name),
            ))));
        }
        let status = match rules::check_heartbeat_status(msg.status.unwrap_or(AgentStatus::Active)) {
            Ok(status) => status,
            Err(violation) => return atomic(reply_now(Err(violation.into()))),
        };
        let now = self.deps.now();
        let mut next = self.agent.clone();
        next.status = status;
        next.current_task_id = msg.current_task_id;
        next.last_heartbeat_at = Some(now);
        next.updated_at = now;
        let mut ops = vec![WriteOp::update_agent(&next)];
        // A heartbeat is not news unless it changes the status: only then does it enter the audit feed.
        if status != self.agent.status {
            let activity = Activity::new(
                new_id(),
                ActivityKind::AgentStatusChanged,
                &msg.by,
                format!("{} is now {} (was {})", next.name, status, self.agent.status),
                now,
            )
            .agent(&next.id)
            .change(
                serde_json::json!({"status": self.agent.status}),
                serde_json::json!({"status": status}),
            );
            ops.push(WriteOp::activity(&activity));
        }
        atomic(persist_then(&self.deps.journal, ops, move |actor: &mut AgentActor| {
            actor.agent = next;
            actor.publish(AgentEventKind::Heartbeat);
            Ok(actor.agent.clone())
        }))
    }
}

impl Handler<CheckHeartbeat> for AgentActor {
    type Result = AtomicResponse<Self, AppResult<bool>>;

    fn handle(&mut self, _: CheckHeartbeat, _: &mut Context<Self>) -> Self::Result {
        let now = self.deps.now();
        let timeout_ms = i64::try_from(self.deps.heartbeat_timeout.as_millis()).unwrap_or(i64::MAX);
        if !rules::is_heartbeat_stale(&self.agent, now, timeout_ms) {
            return atomic(reply_now(Ok(false)));
        }
        let mut next = self.agent.clone();
        next.status = AgentStatus::Offline;
        next.updated_at = now;
        let silent_for = self.agent.last_heartbeat_at.map(|last| (now - last) / 1000);
        let message = match silent_for {
            Some(secs) => format!("{} missed its heartbeat for {secs} s and is now offline", next.name),
            None => format!("{} never sent a heartbeat and is now offline", next.name),
        };
        let activity = Activity::new(
            new_id(),
            ActivityKind::AgentHeartbeatLost,
            &Principal::System,
            message,
            now,
        )
        .agent(&next.id)
        .change(
            serde_json::json!({"status": self.agent.status}),
            serde_json::json!({"status": AgentStatus::Offline}),
        );
        let fut = self.commit_profile(next, activity, AgentEventKind::WentOffline);
        atomic(Box::pin(fut.map(|result, _, _| result.map(|_| true))))
    }
}

impl Handler<ForgetLead> for AgentActor {
    type Result = AtomicResponse<Self, AppResult<()>>;

    fn handle(&mut self, msg: ForgetLead, _: &mut Context<Self>) -> Self::Result {
        if self.agent.lead_id.as_deref() != Some(msg.lead_id.as_str()) {
            return atomic(reply_now(Ok(())));
        }
        let now = self.deps.now();
        let mut next = self.agent.clone();
        next.lead_id = None;
        next.updated_at = now;
        let activity = Activity::new(
            new_id(),
            ActivityKind::AgentUpdated,
            &Principal::System,
            format!("{}'s lead was deleted", next.name),
            now,
        )
        .agent(&next.id)
        .change(
            serde_json::json!({"leadId": msg.lead_id}),
            serde_json::json!({"leadId": null}),
        );
        let fut = self.commit_profile(next, activity, AgentEventKind::Updated);
        atomic(Box::pin(fut.map(|result, _, _| result.map(|_| ()))))
    }
}

impl Handler<Retire> for AgentActor {
    type Result = ();
    fn handle(&mut self, _: Retire, ctx: &mut Context<Self>) {
        self.publish(AgentEventKind::Deleted);
        ctx.stop();
    }
}
