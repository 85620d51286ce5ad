//! Pure types and rules: no actix, no diesel, no IO, nothing else of ours.
//!
//! Everything here is a plain function over plain data, unit-tested without actors, clocks or databases.

pub mod activity;
pub mod agent;
pub mod capacity;
pub mod dependency;
pub mod escalation;
pub mod matching;
pub mod message;
pub mod outbox;
pub mod principal;
pub mod query;
pub mod slo;
pub mod task;
pub mod template;
mod text_enum;
pub mod token;

pub use activity::{Activity, ActivityKind};
pub use agent::{Agent, AgentConstraints, AgentKind, AgentLevel, AgentStatus};
pub use message::{Message, MessagePriority, MessageType, SenderKind};
pub use principal::Principal;
pub use task::{Priority, SlaTier, Task, TaskFailure, TaskRequirements, TaskStatus};

/// A rule said no. The API layer turns each case into its stable error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleViolation {
    Invalid {
        field: &'static str,
        problem: String,
    },
    InvalidTransition {
        from: TaskStatus,
        to: TaskStatus,
        allowed: Vec<TaskStatus>,
    },
    /// Work cannot start or be reviewed without an assignee.
    Unassigned {
        to: TaskStatus,
    },
    /// The task cannot leave `blocked` while these blockers are unfinished.
    OpenBlockers {
        blocked_by: Vec<String>,
    },
    SelfDependency,
    DependencyCycle {
        path: Vec<String>,
    },
}

impl RuleViolation {
    pub fn invalid(field: &'static str, problem: impl Into<String>) -> Self {
        RuleViolation::Invalid {
            field,
            problem: problem.into(),
        }
    }
}

/// Checks a free-text field's length in characters (not bytes), after trimming.
pub fn check_text(field: &'static str, value: &str, min: usize, max: usize) -> Result<String, RuleViolation> {
    let trimmed = value.trim();
    let len = trimmed.chars().count();
    if len < min {
        return Err(if min == 1 {
            RuleViolation::invalid(field, "must not be empty")
        } else {
            RuleViolation::invalid(field, format!("must be at least {min} characters"))
        });
    }
    if len > max {
        return Err(RuleViolation::invalid(
            field,
            format!("must be at most {max} characters (got {len})"),
        ));
    }
    Ok(trimmed.to_string())
}

/// Checks a list of short labels (tags, specializations, capabilities): each 1..=50 characters, at most 32,
/// duplicates dropped, order kept.
pub fn check_labels(field: &'static str, values: &[String]) -> Result<Vec<String>, RuleViolation> {
    const MAX_LABELS: usize = 32;
    if values.len() > MAX_LABELS {
        return Err(RuleViolation::invalid(field, format!("at most {MAX_LABELS} entries")));
    }
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for value in values {
        let label = check_text(field, value, 1, 50)?;
        if !out.contains(&label) {
            out.push(label);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_and_counted_in_characters() {
        assert_eq!(check_text("title", "  hi  ", 1, 2).unwrap(), "hi");
        assert!(check_text("title", "   ", 1, 10).is_err());
        assert!(check_text("title", &"é".repeat(200), 1, 200).is_ok());
        assert!(check_text("title", &"é".repeat(201), 1, 200).is_err());
    }

    #[test]
    fn labels_drop_duplicates_and_reject_empty_ones() {
        let labels = check_labels("tags", &["a".into(), "b".into(), "a".into()]).unwrap();
        assert_eq!(labels, vec!["a", "b"]);
        assert!(check_labels("tags", &["".into()]).is_err());
        assert!(check_labels("tags", &vec!["x".to_string(); 33]).is_err());
    }
}
