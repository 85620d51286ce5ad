//! Errors are values with stable codes.
//!
//! Every failure a client can see is one [`ErrorCode`] (its snake_case name is the wire code) plus a message
//! written for the client and optional structured `details`. The internal cause, when there is one, is logged
//! and never sent. The HTTP status is chosen in one place, [`ErrorCode::status`].

use serde::Serialize;
use serde_json::Value;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The body is not valid JSON, or does not have the expected shape.
    InvalidJson,
    /// A field, path segment or query parameter has a value the API does not accept.
    ValidationFailed,
    /// No token, or a token nobody issued.
    Unauthorized,
    /// The token is valid but may not do this.
    Forbidden,
    /// The token belongs to a suspended agent, or the target agent is suspended.
    AgentSuspended,
    /// The target agent cannot take work now (it is suspended).
    AgentUnavailable,
    AgentNotFound,
    TaskNotFound,
    DependencyNotFound,
    MessageNotFound,
    TemplateNotFound,
    EscalationRuleNotFound,
    EscalationNotFound,
    OutboxItemNotFound,
    RouteNotFound,
    /// An agent asked for work and has no `ready` task assigned to it.
    NoTaskAvailable,
    /// No agent passes the task's hard filters and can accept work; `details` says why for each.
    NoSuitableAgent,
    MethodNotAllowed,
    /// The task state machine does not allow this move; `details.allowed` lists what it does allow.
    InvalidTransition,
    DuplicateName,
    DependencyCycle,
    /// The agent still has open tasks; `details.taskIds` lists them.
    AgentHasOpenTasks,
    /// The task is done or cancelled and can no longer change.
    TaskFinished,
    /// The agent cannot accept work (utilization or concurrent tasks at the limit); `details` has its figures.
    AgentAtCapacity,
    /// The task still has unfinished blockers; `details.blockedBy` lists them.
    BlockedByDependencies,
    /// The task must have an assignee for this move.
    TaskUnassigned,
    /// The message was already acknowledged; `details.acknowledgedAt` says when.
    AlreadyAcknowledged,
    /// The outbox row was delivered already; there is nothing to retry.
    AlreadyDelivered,
    PayloadTooLarge,
    RateLimited,
    /// The store could not commit or answer; nothing was changed.
    StoreUnavailable,
    Internal,
}

impl ErrorCode {
    pub fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            InvalidJson | ValidationFailed => 400,
            Unauthorized => 401,
            Forbidden | AgentSuspended => 403,
            AgentNotFound
            | TaskNotFound
            | DependencyNotFound
            | MessageNotFound
            | TemplateNotFound
            | RouteNotFound
            | EscalationRuleNotFound
            | EscalationNotFound
            | OutboxItemNotFound
            | NoTaskAvailable
            | NoSuitableAgent => 404,
            MethodNotAllowed => 405,
            AgentUnavailable
            | InvalidTransition
            | DuplicateName
            | DependencyCycle
            | AgentHasOpenTasks
            | TaskFinished
            | AgentAtCapacity
            | BlockedByDependencies
            | TaskUnassigned
            | AlreadyAcknowledged
            | AlreadyDelivered => 409,
            PayloadTooLarge => 413,
            RateLimited => 429,
            Internal => 500,
            StoreUnavailable => 503,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = serde_json::to_value(self).ok();
        match value.as_ref().and_then(Value::as_str) {
            Some(code) => f.write_str(code),
            None => f.write_str("internal"),
        }
    }
}

/// A client-facing failure: code, message, optional details. `Retry-After` rides along for 429.
#[derive(Debug, Clone, PartialEq)]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<Value>,
    pub retry_after_secs: Option<u64>,
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
            retry_after_secs: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn validation(field: &str, problem: impl fmt::Display) -> Self {
        Self::new(ErrorCode::ValidationFailed, format!("{field}: {problem}"))
            .with_details(serde_json::json!({ "field": field }))
    }

    pub fn agent_not_found(id: &str) -> Self {
        Self::new(ErrorCode::AgentNotFound, format!("no agent with id or name '{id}'"))
    }

    pub fn task_not_found(id: &str) -> Self {
        Self::new(ErrorCode::TaskNotFound, format!("no task with id '{id}'"))
    }

    pub fn message_not_found(id: &str) -> Self {
        Self::new(ErrorCode::MessageNotFound, format!("no message with id '{id}'"))
    }

    /// Over the send rate: 429 with `Retry-After`.
    pub fn rate_limited(message: impl Into<String>, retry_after_secs: u64) -> Self {
        let mut error = Self::new(ErrorCode::RateLimited, message);
        error.retry_after_secs = Some(retry_after_secs);
        error
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    /// The store failed. The cause is logged here; the client only learns that nothing was changed.
    pub fn store(cause: impl fmt::Display) -> Self {
        log::error!("store failure: {cause}");
        Self::new(
            ErrorCode::StoreUnavailable,
            "the store is unavailable; nothing was changed, retry later",
        )
    }

    /// An actor could not be reached (it stopped or its mailbox is closed).
    pub fn mailbox(cause: impl fmt::Display) -> Self {
        log::error!("actor mailbox failure: {cause}");
        Self::new(
            ErrorCode::StoreUnavailable,
            "the runtime is shutting down or overloaded; retry later",
        )
    }

    pub fn internal(cause: impl fmt::Display) -> Self {
        log::error!("internal error: {cause}");
        Self::new(ErrorCode::Internal, "internal error")
    }

    /// The JSON envelope every error response carries.
    pub fn body(&self) -> Value {
        let mut error = serde_json::json!({ "code": self.code, "message": self.message });
        if let Some(details) = &self.details {
            error["details"] = details.clone();
        }
        serde_json::json!({ "error": error })
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for AppError {}

impl From<crate::domain::RuleViolation> for AppError {
    fn from(violation: crate::domain::RuleViolation) -> Self {
        use crate::domain::RuleViolation as V;
        match violation {
            V::Invalid { field, problem } => AppError::validation(field, problem),
            V::InvalidTransition { from, to, allowed } => AppError::new(
                ErrorCode::InvalidTransition,
                format!("a task cannot move from {from} to {to}"),
            )
            .with_details(serde_json::json!({ "from": from, "to": to, "allowed": allowed })),
            V::Unassigned { to } => AppError::new(
                ErrorCode::TaskUnassigned,
                format!("the task must be assigned before it moves to {to}"),
            ),
            V::OpenBlockers { blocked_by } => AppError::new(
                ErrorCode::BlockedByDependencies,
                "the task still has unfinished blockers",
            )
            .with_details(serde_json::json!({ "blockedBy": blocked_by })),
            V::SelfDependency => AppError::new(ErrorCode::DependencyCycle, "a task cannot block itself"),
            V::DependencyCycle { path } => {
                AppError::new(ErrorCode::DependencyCycle, "this dependency would create a cycle")
                    .with_details(serde_json::json!({ "cycle": path }))
            }
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_is_the_stable_envelope() {
        let err = AppError::new(ErrorCode::DuplicateName, "name taken");
        assert_eq!(
            err.body(),
            serde_json::json!({"error": {"code": "duplicate_name", "message": "name taken"}})
        );
        let err = AppError::validation("title", "must not be empty");
        assert_eq!(
            err.body(),
            serde_json::json!({"error": {"code": "validation_failed", "message": "title: must not be empty",
                "details": {"field": "title"}}})
        );
    }

    #[test]
    fn codes_map_to_statuses_and_names() {
        assert_eq!(ErrorCode::InvalidTransition.status(), 409);
        assert_eq!(ErrorCode::StoreUnavailable.status(), 503);
        assert_eq!(ErrorCode::AgentSuspended.status(), 403);
        assert_eq!(ErrorCode::NoTaskAvailable.to_string(), "no_task_available");
    }
}
