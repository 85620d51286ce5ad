//! Listing requests and pages: plain data shared by the API, the actors and the store.

use super::{ActivityKind, Priority, TaskStatus};
use serde::Serialize;
use utoipa::ToSchema;

pub const DEFAULT_PAGE_SIZE: i64 = 20;
pub const MAX_PAGE_SIZE: i64 = 100;

/// A page of results. `nextCursor` is null on the last page; pass it back as `?cursor=` for the next one.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Position in a listing: items after `cursor` (exclusive), at most `limit` of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub cursor: Option<String>,
    pub limit: i64,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            cursor: None,
            limit: DEFAULT_PAGE_SIZE,
        }
    }
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched in order: the extra row, if present, only says that
    /// another page exists.
    pub fn from_rows(mut rows: Vec<T>, limit: i64, cursor_of: impl Fn(&T) -> String) -> Self {
        let limit = usize::try_from(limit).unwrap_or(0);
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(cursor_of)
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskQuery {
    pub status: Option<TaskStatus>,
    pub assignee_id: Option<String>,
    pub priority: Option<Priority>,
    pub tag: Option<String>,
    pub mission_id: Option<String>,
    pub pillar_id: Option<String>,
    pub parent_id: Option<String>,
    pub page: PageRequest,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityQuery {
    /// Matches activity done by this agent or about it.
    pub agent_id: Option<String>,
    pub task_id: Option<String>,
    pub kind: Option<ActivityKind>,
    /// Only activity at or after this time (epoch ms).
    pub since: Option<i64>,
    pub page: PageRequest,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BreachQuery {
    /// Breaches of tasks this agent had when they were detected.
    pub agent_id: Option<String>,
    pub kind: Option<super::slo::BreachKind>,
    /// Only breaches detected at or after this time (epoch ms).
    pub since: Option<i64>,
    pub page: PageRequest,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EscalationQuery {
    pub task_id: Option<String>,
    pub rule_id: Option<String>,
    /// `Some(true)`: only unresolved; `Some(false)`: only resolved.
    pub open: Option<bool>,
    /// Only firings at or after this time (epoch ms).
    pub since: Option<i64>,
    pub page: PageRequest,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extra_row_becomes_the_cursor_of_the_last_item() {
        let page = Page::from_rows(vec![5, 4, 3], 2, |n| n.to_string());
        assert_eq!(page.items, vec![5, 4]);
        assert_eq!(page.next_cursor.as_deref(), Some("4"));
        let page = Page::from_rows(vec![5, 4], 2, |n| n.to_string());
        assert_eq!(page.next_cursor, None);
    }
}
