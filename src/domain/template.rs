//! Message templates: `{placeholder}` text with declared required and optional variables.
//!
//! Every placeholder must be declared, so a typo is caught when the template is saved rather than when an
//! agent sends with it. `{{` and `}}` stand for literal braces. A missing required variable fails the render;
//! a missing optional one renders as empty text; a variable the template does not declare is refused.

use super::agent::nullable;
use super::message::{MessagePriority, MessageType, MAX_BODY, MAX_SUBJECT};
use super::{check_text, RuleViolation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageTemplate {
    pub id: String,
    /// Unique, lowercase: `[a-z][a-z0-9_-]*`, 2–50 characters.
    pub name: String,
    #[serde(rename = "type")]
    pub kind: MessageType,
    pub priority: MessagePriority,
    pub subject_template: String,
    pub body_template: String,
    pub required_vars: Vec<String>,
    pub optional_vars: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateDraft {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: Option<MessageType>,
    pub priority: Option<MessagePriority>,
    pub subject_template: String,
    #[serde(default)]
    pub body_template: String,
    #[serde(default)]
    pub required_vars: Vec<String>,
    #[serde(default)]
    pub optional_vars: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplatePatch {
    #[serde(rename = "type")]
    pub kind: Option<MessageType>,
    pub priority: Option<MessagePriority>,
    pub subject_template: Option<String>,
    pub body_template: Option<String>,
    pub required_vars: Option<Vec<String>>,
    pub optional_vars: Option<Vec<String>>,
    /// Not changeable: present only so that a body naming it gets a clear error.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(ignore)]
    pub name: Option<Option<String>>,
}

/// The pieces of a template text: literal text and placeholder names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Brace(char),
    Var(&'a str),
}

fn pieces<'a>(field: &'static str, text: &'a str) -> Result<Vec<Piece<'a>>, RuleViolation> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find(['{', '}']) {
        if pos > 0 {
            out.push(Piece::Text(&rest[..pos]));
        }
        let tail = &rest[pos..];
        if let Some(after) = tail.strip_prefix("{{") {
            out.push(Piece::Brace('{'));
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            out.push(Piece::Brace('}'));
            rest = after;
        } else if tail.starts_with('}') {
            return Err(RuleViolation::invalid(
                field,
                "unmatched '}' (write '}}' for a literal brace)",
            ));
        } else {
            let end = tail
                .find('}')
                .ok_or_else(|| RuleViolation::invalid(field, "unclosed '{' (write '{{' for a literal brace)"))?;
            let name = &tail[1..end];
            check_var_name(field, name)?;
            out.push(Piece::Var(name));
            rest = &tail[end + 1..];
        }
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

fn check_var_name(field: &'static str, name: &str) -> Result<(), RuleViolation> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.len() <= 50
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(RuleViolation::invalid(
            field,
            format!("'{name}' is not a variable name (letters, digits and '_', starting with a letter)"),
        ))
    }
}

fn check_name(name: &str) -> Result<String, RuleViolation> {
    let name = name.trim().to_lowercase();
    let valid = (2..=50).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if valid {
        Ok(name)
    } else {
        Err(RuleViolation::invalid(
            "name",
            "must be 2–50 characters of a-z, 0-9, '_' or '-', starting with a letter",
        ))
    }
}

/// Validates a whole template: names, texts, declared variables, and that every placeholder is declared.
fn check(template: &MessageTemplate) -> Result<(), RuleViolation> {
    check_text("subjectTemplate", &template.subject_template, 1, MAX_SUBJECT)?;
    if template.body_template.chars().count() > MAX_BODY {
        return Err(RuleViolation::invalid(
            "bodyTemplate",
            format!("must be at most {MAX_BODY} characters"),
        ));
    }
    for (field, vars) in [
        ("requiredVars", &template.required_vars),
        ("optionalVars", &template.optional_vars),
    ] {
        if vars.len() > 32 {
            return Err(RuleViolation::invalid(field, "at most 32 variables"));
        }
        for var in vars {
            check_var_name(field, var)?;
        }
    }
    if let Some(both) = template
        .required_vars
        .iter()
        .find(|v| template.optional_vars.contains(v))
    {
        return Err(RuleViolation::invalid(
            "optionalVars",
            format!("'{both}' is also a required variable"),
        ));
    }
    for (field, text) in [
        ("subjectTemplate", &template.subject_template),
        ("bodyTemplate", &template.body_template),
    ] {
        for piece in pieces(field, text)? {
            if let Piece::Var(name) = piece {
                if !template.declares(name) {
                    return Err(RuleViolation::invalid(
                        field,
                        format!("placeholder {{{name}}} is not declared in requiredVars or optionalVars"),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn dedup(vars: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(vars.len());
    for var in vars.into_iter().map(|v| v.trim().to_string()) {
        if !out.contains(&var) {
            out.push(var);
        }
    }
    out
}

pub fn create(draft: TemplateDraft, id: String, now: i64) -> Result<MessageTemplate, RuleViolation> {
    let template = MessageTemplate {
        id,
        name: check_name(&draft.name)?,
        kind: draft
            .kind
            .ok_or_else(|| RuleViolation::invalid("type", "is required"))?,
        priority: draft.priority.unwrap_or(MessagePriority::Normal),
        subject_template: draft.subject_template.trim().to_string(),
        body_template: draft.body_template,
        required_vars: dedup(draft.required_vars),
        optional_vars: dedup(draft.optional_vars),
        created_at: now,
        updated_at: now,
    };
    check(&template)?;
    Ok(template)
}

pub fn apply_patch(
    current: &MessageTemplate,
    patch: TemplatePatch,
    now: i64,
) -> Result<MessageTemplate, RuleViolation> {
    if patch.name.is_some() {
        return Err(RuleViolation::invalid(
            "name",
            "cannot be changed; create a new template instead",
        ));
    }
    let mut next = current.clone();
    if let Some(kind) = patch.kind {
        next.kind = kind;
    }
    if let Some(priority) = patch.priority {
        next.priority = priority;
    }
    if let Some(subject) = patch.subject_template {
        next.subject_template = subject.trim().to_string();
    }
    if let Some(body) = patch.body_template {
        next.body_template = body;
    }
    if let Some(vars) = patch.required_vars {
        next.required_vars = dedup(vars);
    }
    if let Some(vars) = patch.optional_vars {
        next.optional_vars = dedup(vars);
    }
    check(&next)?;
    if next != *current {
        next.updated_at = now;
    }
    Ok(next)
}

impl MessageTemplate {
    fn declares(&self, name: &str) -> bool {
        self.required_vars.iter().chain(&self.optional_vars).any(|v| v == name)
    }

    /// Renders with the variables of `vars` that this template declares, ignoring the rest: for callers that
    /// offer a fixed set of facts (escalation notices) to templates written by operators.
    pub fn render_declared(&self, vars: &BTreeMap<String, Value>) -> Result<Rendered, RuleViolation> {
        let declared = vars
            .iter()
            .filter(|(name, _)| self.declares(name))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        self.render(&declared)
    }

    /// Renders subject and body with `vars` (a JSON object of strings, numbers or booleans).
    pub fn render(&self, vars: &BTreeMap<String, Value>) -> Result<Rendered, RuleViolation> {
        let mut values: BTreeMap<&str, String> = BTreeMap::new();
        for (name, value) in vars {
            if !self.declares(name) {
                return Err(RuleViolation::invalid(
                    "vars",
                    format!("'{name}' is not a variable of template '{}'", self.name),
                ));
            }
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => continue,
                _ => {
                    return Err(RuleViolation::invalid(
                        "vars",
                        format!("'{name}' must be a string, number or boolean"),
                    ))
                }
            };
            values.insert(name.as_str(), text);
        }
        let missing: Vec<&String> = self
            .required_vars
            .iter()
            .filter(|v| values.get(v.as_str()).is_none_or(|t| t.trim().is_empty()))
            .collect();
        if let Some(first) = missing.first() {
            let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
            return Err(RuleViolation::invalid(
                "vars",
                format!(
                    "missing required variable '{first}' (template '{}' needs: {})",
                    self.name,
                    names.join(", ")
                ),
            ));
        }
        let fill = |field: &'static str, text: &str| -> Result<String, RuleViolation> {
            let mut out = String::with_capacity(text.len());
            for piece in pieces(field, text)? {
                match piece {
                    Piece::Text(t) => out.push_str(t),
                    Piece::Brace(c) => out.push(c),
                    Piece::Var(name) => out.push_str(values.get(name).map(String::as_str).unwrap_or("")),
                }
            }
            Ok(out)
        };
        Ok(Rendered {
            kind: self.kind,
            priority: self.priority,
            subject: fill("subjectTemplate", &self.subject_template)?,
            body: fill("bodyTemplate", &self.body_template)?,
        })
    }
}

/// A rendered template, ready to become a message draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub kind: MessageType,
    pub priority: MessagePriority,
    pub subject: String,
    pub body: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template() -> MessageTemplate {
        create(
            TemplateDraft {
                name: "Help_Request".into(),
                kind: Some(MessageType::HelpRequest),
                priority: Some(MessagePriority::High),
                subject_template: "Help needed: {taskTitle}".into(),
                body_template: "{agentName} is stuck on {taskTitle}. {{literal}} {details}".into(),
                required_vars: vec!["taskTitle".into(), "agentName".into()],
                optional_vars: vec!["details".into()],
            },
            "t1".into(),
            5,
        )
        .unwrap()
    }

    fn vars(value: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn renders_required_and_optional_variables() {
        let t = template();
        assert_eq!(t.name, "help_request");
        let r = t
            .render(&vars(
                json!({"taskTitle": "Parser", "agentName": "alice", "details": 3}),
            ))
            .unwrap();
        assert_eq!(r.subject, "Help needed: Parser");
        assert_eq!(r.body, "alice is stuck on Parser. {literal} 3");
        let r = t
            .render(&vars(json!({"taskTitle": "Parser", "agentName": "alice"})))
            .unwrap();
        assert_eq!(r.body, "alice is stuck on Parser. {literal} ");
    }

    #[test]
    fn a_missing_required_variable_is_named() {
        let err = template().render(&vars(json!({"taskTitle": "Parser"}))).unwrap_err();
        let RuleViolation::Invalid { problem, .. } = err else {
            panic!("expected invalid")
        };
        assert!(problem.contains("'agentName'"), "{problem}");
    }

    #[test]
    fn unknown_variables_and_placeholders_are_refused() {
        assert!(template()
            .render(&vars(json!({"taskTitle": "x", "agentName": "y", "bogus": "z"})))
            .is_err());
        let undeclared = create(
            TemplateDraft {
                name: "x1".into(),
                kind: Some(MessageType::Alert),
                subject_template: "Hi {who}".into(),
                ..TemplateDraft::default()
            },
            "t".into(),
            1,
        );
        assert!(undeclared.is_err());
        let unclosed = create(
            TemplateDraft {
                name: "x1".into(),
                kind: Some(MessageType::Alert),
                subject_template: "Hi {who".into(),
                required_vars: vec!["who".into()],
                ..TemplateDraft::default()
            },
            "t".into(),
            1,
        );
        assert!(unclosed.is_err());
    }

    #[test]
    fn patches_revalidate_and_keep_the_name() {
        let t = template();
        let patched = apply_patch(
            &t,
            TemplatePatch {
                subject_template: Some("Stuck: {taskTitle}".into()),
                ..TemplatePatch::default()
            },
            9,
        )
        .unwrap();
        assert_eq!(patched.subject_template, "Stuck: {taskTitle}");
        assert_eq!(patched.updated_at, 9);
        let bad = apply_patch(
            &t,
            TemplatePatch {
                required_vars: Some(vec![]),
                ..TemplatePatch::default()
            },
            9,
        );
        assert!(bad.is_err(), "placeholders would become undeclared");
        let rename = apply_patch(
            &t,
            TemplatePatch {
                name: Some(Some("other".into())),
                ..TemplatePatch::default()
            },
            9,
        );
        assert!(rename.is_err());
    }
}
