//! `TemplateLibrary`: owns the message templates. Everyone authenticated may read and render them; only the
//! admin may create, change or delete them.

use super::{atomic, persist_then, reply_now, Deps};
use crate::domain::template::{self as rules, MessageTemplate, Rendered, TemplateDraft, TemplatePatch};
use crate::domain::{Activity, ActivityKind, Principal};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::ids::new_id;
use crate::store::WriteOp;
use actix::prelude::*;
use serde_json::Value;
use std::collections::BTreeMap;

pub struct TemplateLibrary {
    deps: Deps,
    /// By name.
    templates: BTreeMap<String, MessageTemplate>,
}

impl TemplateLibrary {
    pub fn start(templates: Vec<MessageTemplate>, deps: Deps) -> Addr<TemplateLibrary> {
        TemplateLibrary {
            deps,
            templates: templates.into_iter().map(|t| (t.name.clone(), t)).collect(),
        }
        .start()
    }

    /// A template by name (case-insensitive) or id.
    fn find(&self, key: &str) -> AppResult<&MessageTemplate> {
        self.templates
            .get(&key.trim().to_lowercase())
            .or_else(|| self.templates.values().find(|t| t.id == key))
            .ok_or_else(|| AppError::new(ErrorCode::TemplateNotFound, format!("no message template '{key}'")))
    }
}

impl Actor for TemplateLibrary {
    type Context = Context<Self>;
}

fn admin_only(by: &Principal) -> AppResult<()> {
    if by.is_admin() {
        Ok(())
    } else {
        Err(AppError::forbidden("managing message templates needs the admin token"))
    }
}

fn template_json(template: &MessageTemplate) -> Value {
    serde_json::to_value(template).unwrap_or_default()
}

#[derive(Message)]
#[rtype(result = "AppResult<MessageTemplate>")]
pub struct CreateTemplate {
    pub draft: TemplateDraft,
    pub by: Principal,
}

#[derive(Message)]
#[rtype(result = "Vec<MessageTemplate>")]
pub struct ListTemplates;

#[derive(Message)]
#[rtype(result = "AppResult<MessageTemplate>")]
pub struct GetTemplate {
    pub key: String,
}

#[derive(Message)]
#[rtype(result = "AppResult<MessageTemplate>")]
pub struct UpdateTemplate {
    pub key: String,
    pub patch: TemplatePatch,
    pub by: Principal,
}

#[derive(Message)]
#[rtype(result = "AppResult<MessageTemplate>")]
pub struct DeleteTemplate {
    pub key: String,
    pub by: Principal,
}

/// Renders a template; a missing required variable → 400 naming it.
#[derive(Message)]
#[rtype(result = "AppResult<Rendered>")]
pub struct RenderTemplate {
    pub key: String,
    pub vars: BTreeMap<String, Value>,
    /// Ignore the variables the template does not declare instead of refusing them.
    pub only_declared: bool,
}

impl Handler<CreateTemplate> for TemplateLibrary {
    type Result = AtomicResponse<Self, AppResult<MessageTemplate>>;

    fn handle(&mut self, msg: CreateTemplate, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = admin_only(&msg.by) {
            return atomic(reply_now(Err(e)));
        }
        let now = self.deps.now();
        let template = match rules::create(msg.draft, new_id(), now) {
            Ok(template) => template,
            Err(violation) => return atomic(reply_now(Err(violation.into()))),
        };
        if self.templates.contains_key(&template.name) {
            return atomic(reply_now(Err(AppError::new(
                ErrorCode::DuplicateName,
                format!("a template named '{}' already exists", template.name),
            )
            .with_details(serde_json::json!({ "field": "name" })))));
        }
        let activity = Activity::new(
            new_id(),
            ActivityKind::TemplateCreated,
            &msg.by,
            format!("message template '{}' created", template.name),
            now,
        )
        .change(Value::Null, template_json(&template));
        let ops = vec![WriteOp::insert_template(&template), WriteOp::activity(&activity)];
        atomic(persist_then(
            &self.deps.journal,
            ops,
            move |lib: &mut TemplateLibrary| {
                lib.templates.insert(template.name.clone(), template.clone());
                Ok(template)
            },
        ))
    }
}

impl Handler<ListTemplates> for TemplateLibrary {
    type Result = MessageResult<ListTemplates>;
    fn handle(&mut self, _: ListTemplates, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.templates.values().cloned().collect())
    }
}

impl Handler<GetTemplate> for TemplateLibrary {
    type Result = AppResult<MessageTemplate>;
    fn handle(&mut self, msg: GetTemplate, _: &mut Context<Self>) -> Self::Result {
        self.find(&msg.key).cloned()
    }
}

impl Handler<UpdateTemplate> for TemplateLibrary {
    type Result = AtomicResponse<Self, AppResult<MessageTemplate>>;

    fn handle(&mut self, msg: UpdateTemplate, _: &mut Context<Self>) -> Self::Result {
        let now = self.deps.now();
        let planned = admin_only(&msg.by).and_then(|()| {
            let current = self.find(&msg.key)?;
            let next = rules::apply_patch(current, msg.patch, now)?;
            Ok((current.clone(), next))
        });
        let (current, next) = match planned {
            Ok(pair) => pair,
            Err(e) => return atomic(reply_now(Err(e))),
        };
        if next == current {
            return atomic(reply_now(Ok(next)));
        }
        let (before, after) = crate::domain::activity::diff(&template_json(&current), &template_json(&next));
        let activity = Activity::new(
            new_id(),
            ActivityKind::TemplateUpdated,
            &msg.by,
            format!("message template '{}' updated", next.name),
            now,
        )
        .change(before, after);
        let ops = vec![WriteOp::update_template(&next), WriteOp::activity(&activity)];
        atomic(persist_then(
            &self.deps.journal,
            ops,
            move |lib: &mut TemplateLibrary| {
                lib.templates.insert(next.name.clone(), next.clone());
                Ok(next)
            },
        ))
    }
}

impl Handler<DeleteTemplate> for TemplateLibrary {
    type Result = AtomicResponse<Self, AppResult<MessageTemplate>>;

    fn handle(&mut self, msg: DeleteTemplate, _: &mut Context<Self>) -> Self::Result {
        let found = admin_only(&msg.by).and_then(|()| self.find(&msg.key).cloned());
        let template = match found {
            Ok(template) => template,
            Err(e) => return atomic(reply_now(Err(e))),
        };
        let now = self.deps.now();
        let activity = Activity::new(
            new_id(),
            ActivityKind::TemplateDeleted,
            &msg.by,
            format!("message template '{}' deleted", template.name),
            now,
        )
        .change(template_json(&template), Value::Null);
        let ops = vec![
            WriteOp::DeleteTemplate {
                id: template.id.clone(),
            },
            WriteOp::activity(&activity),
        ];
        atomic(persist_then(
            &self.deps.journal,
            ops,
            move |lib: &mut TemplateLibrary| {
                lib.templates.remove(&template.name);
                Ok(template)
            },
        ))
    }
}

impl Handler<RenderTemplate> for TemplateLibrary {
    type Result = AppResult<Rendered>;
    fn handle(&mut self, msg: RenderTemplate, _: &mut Context<Self>) -> Self::Result {
        let template = self.find(&msg.key)?;
        let rendered = if msg.only_declared {
            template.render_declared(&msg.vars)
        } else {
            template.render(&msg.vars)
        };
        Ok(rendered?)
    }
}
