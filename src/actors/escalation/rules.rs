//! Escalation rule management. The scheduler owns the rules: it caches them, validates every change with
//! the domain rule, commits it with an activity row, and only then uses the new version. Only the admin may
//! change rules; anyone authenticated may read them.

use super::EscalationScheduler;
use crate::actors::{atomic, persist_then, reply_now};
use crate::domain::escalation::{self, EscalationRule, RuleDraft, RulePatch};
use crate::domain::{Activity, ActivityKind, Principal};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::ids::new_id;
use crate::store::WriteOp;
use actix::prelude::*;

#[derive(Message)]
#[rtype(result = "AppResult<EscalationRule>")]
pub struct CreateRule {
    pub draft: RuleDraft,
    pub by: Principal,
}

/// Every rule, highest priority first.
#[derive(Message)]
#[rtype(result = "AppResult<Vec<EscalationRule>>")]
pub struct ListRules;

/// A rule by id, or by name (case-insensitive).
#[derive(Message)]
#[rtype(result = "AppResult<EscalationRule>")]
pub struct GetRule {
    pub key: String,
}

#[derive(Message)]
#[rtype(result = "AppResult<EscalationRule>")]
pub struct UpdateRule {
    pub key: String,
    pub patch: RulePatch,
    pub by: Principal,
}

/// Deletes a rule; its open escalations resolve (the history keeps its name).
#[derive(Message)]
#[rtype(result = "AppResult<EscalationRule>")]
pub struct DeleteRule {
    pub key: String,
    pub by: Principal,
}

fn admin_only(by: &Principal) -> AppResult<()> {
    if by.is_admin() {
        Ok(())
    } else {
        Err(AppError::forbidden("only the admin may change escalation rules"))
    }
}

fn rule_json(rule: &EscalationRule) -> serde_json::Value {
    serde_json::to_value(rule).unwrap_or_default()
}

impl EscalationScheduler {
    fn rule(&self, key: &str) -> AppResult<&EscalationRule> {
        let key = key.trim();
        self.rules
            .iter()
            .find(|r| r.id == key)
            .or_else(|| self.rules.iter().find(|r| r.name.eq_ignore_ascii_case(key)))
            .ok_or_else(|| AppError::new(ErrorCode::EscalationRuleNotFound, format!("no escalation rule '{key}'")))
    }

    fn check_name_free(&self, name: &str, except: Option<&str>) -> AppResult<()> {
        let taken = self
            .rules
            .iter()
            .any(|r| r.name.eq_ignore_ascii_case(name) && Some(r.id.as_str()) != except);
        if taken {
            return Err(AppError::new(
                ErrorCode::DuplicateName,
                format!("an escalation rule named '{name}' already exists"),
            )
            .with_details(serde_json::json!({ "field": "name" })));
        }
        Ok(())
    }
}

impl Handler<CreateRule> for EscalationScheduler {
    type Result = AtomicResponse<Self, AppResult<EscalationRule>>;

    fn handle(&mut self, msg: CreateRule, _: &mut Context<Self>) -> Self::Result {
        let now = self.deps.now();
        let planned = admin_only(&msg.by).and_then(|()| {
            let rule = escalation::create_rule(msg.draft, new_id(), now)?;
            self.check_name_free(&rule.name, None)?;
            Ok(rule)
        });
        let rule = match planned {
            Ok(rule) => rule,
            Err(e) => return atomic(reply_now(Err(e))),
        };
        let activity = Activity::new(
            new_id(),
            ActivityKind::EscalationRuleCreated,
            &msg.by,
            format!("escalation rule '{}' created", rule.name),
            now,
        )
        .change(serde_json::Value::Null, rule_json(&rule));
        let ops = vec![WriteOp::insert_rule(&rule), WriteOp::activity(&activity)];
        atomic(persist_then(&self.deps.journal, ops, move |s: &mut Self| {
            s.rules.push(rule.clone());
            Ok(rule)
        }))
    }
}

impl Handler<ListRules> for EscalationScheduler {
    type Result = AppResult<Vec<EscalationRule>>;

    fn handle(&mut self, _: ListRules, _: &mut Context<Self>) -> Self::Result {
        let mut rules = self.rules.clone();
        rules.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.name.cmp(&b.name)));
        Ok(rules)
    }
}

impl Handler<GetRule> for EscalationScheduler {
    type Result = AppResult<EscalationRule>;

    fn handle(&mut self, msg: GetRule, _: &mut Context<Self>) -> Self::Result {
        self.rule(&msg.key).cloned()
    }
}

impl Handler<UpdateRule> for EscalationScheduler {
    type Result = AtomicResponse<Self, AppResult<EscalationRule>>;

    fn handle(&mut self, msg: UpdateRule, _: &mut Context<Self>) -> Self::Result {
        let now = self.deps.now();
        let planned = admin_only(&msg.by).and_then(|()| {
            let current = self.rule(&msg.key)?;
            let next = escalation::apply_patch(current, msg.patch, now)?;
            self.check_name_free(&next.name, Some(&next.id))?;
            Ok((current.clone(), next))
        });
        let (current, next) = match planned {
            Ok(planned) => planned,
            Err(e) => return atomic(reply_now(Err(e))),
        };
        let activity = Activity::new(
            new_id(),
            ActivityKind::EscalationRuleUpdated,
            &msg.by,
            format!("escalation rule '{}' updated", next.name),
            now,
        )
        .change(rule_json(&current), rule_json(&next));
        let ops = vec![WriteOp::update_rule(&next), WriteOp::activity(&activity)];
        atomic(persist_then(&self.deps.journal, ops, move |s: &mut Self| {
            if let Some(slot) = s.rules.iter_mut().find(|r| r.id == next.id) {
                *slot = next.clone();
            }
            Ok(next)
        }))
    }
}

impl Handler<DeleteRule> for EscalationScheduler {
    type Result = AtomicResponse<Self, AppResult<EscalationRule>>;

    fn handle(&mut self, msg: DeleteRule, _: &mut Context<Self>) -> Self::Result {
        let now = self.deps.now();
        let rule = match admin_only(&msg.by).and_then(|()| self.rule(&msg.key).cloned()) {
            Ok(rule) => rule,
            Err(e) => return atomic(reply_now(Err(e))),
        };
        let activity = Activity::new(
            new_id(),
            ActivityKind::EscalationRuleDeleted,
            &msg.by,
            format!("escalation rule '{}' deleted", rule.name),
            now,
        )
        .change(rule_json(&rule), serde_json::Value::Null);
        let open = self.ladders.rule_ids_open(&rule.id);
        let mut ops = vec![
            WriteOp::DeleteRule { id: rule.id.clone() },
            WriteOp::activity(&activity),
        ];
        if !open.is_empty() {
            ops.push(WriteOp::ResolveEscalations { ids: open, at: now });
        }
        atomic(persist_then(&self.deps.journal, ops, move |s: &mut Self| {
            s.rules.retain(|r| r.id != rule.id);
            s.ladders.close_rule(&rule.id);
            Ok(rule)
        }))
    }
}
