//! Reads: boot-time rehydration and the listings that are not served from actor memory.
//! Synchronous functions over a connection; callers run them on the blocking pool via [`super::Store::read`].

use super::rows::{ActivityRow, AgentRow, DependencyRow, TaskRow, TokenRow};
use super::schema::{activities, agents, api_tokens, task_dependencies, tasks};
use super::{AnyConnection, StoreError};
use crate::domain::query::{ActivityQuery, Page, TaskQuery};
use crate::domain::{Activity, Agent, Task, TaskStatus};
use diesel::prelude::*;

pub fn all_agents(conn: &mut AnyConnection) -> Result<Vec<Agent>, StoreError> {
    let rows: Vec<AgentRow> = agents::table
        .order(agents::id.asc())
        .select(AgentRow::as_select())
        .load(conn)?;
    rows.into_iter().map(Agent::try_from).collect()
}

/// `(agent id, token hash)` for every agent token.
pub fn agent_token_hashes(conn: &mut AnyConnection) -> Result<Vec<(String, String)>, StoreError> {
    let rows: Vec<TokenRow> = api_tokens::table
        .filter(api_tokens::kind.eq("agent"))
        .select(TokenRow::as_select())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|r| r.agent_id.map(|id| (id, r.token_hash)))
        .collect())
}

pub fn admin_token_hashes(conn: &mut AnyConnection) -> Result<Vec<String>, StoreError> {
    Ok(api_tokens::table
        .filter(api_tokens::kind.eq("admin"))
        .select(api_tokens::token_hash)
        .load(conn)?)
}

const TERMINAL: [&str; 2] = ["done", "cancelled"];

pub fn open_tasks(conn: &mut AnyConnection) -> Result<Vec<Task>, StoreError> {
    let rows: Vec<TaskRow> = tasks::table
        .filter(tasks::status.ne_all(TERMINAL))
        .order(tasks::id.asc())
        .select(TaskRow::as_select())
        .load(conn)?;
    rows.into_iter().map(Task::try_from).collect()
}

/// `(id, status, title)` of every finished task: enough to answer dependency questions without loading them.
pub fn finished_task_index(conn: &mut AnyConnection) -> Result<Vec<(String, TaskStatus, String)>, StoreError> {
    let rows: Vec<(String, String, String)> = tasks::table
        .filter(tasks::status.eq_any(TERMINAL))
        .select((tasks::id, tasks::status, tasks::title))
        .load(conn)?;
    rows.into_iter()
        .map(|(id, status, title)| Ok((id, status.parse().map_err(StoreError::Corrupt)?, title)))
        .collect()
}

pub fn all_dependencies(conn: &mut AnyConnection) -> Result<Vec<DependencyRow>, StoreError> {
    Ok(task_dependencies::table.select(DependencyRow::as_select()).load(conn)?)
}

pub fn task_by_id(conn: &mut AnyConnection, id: &str) -> Result<Option<Task>, StoreError> {
    let row: Option<TaskRow> = tasks::table
        .find(id)
        .select(TaskRow::as_select())
        .first(conn)
        .optional()?;
    row.map(Task::try_from).transpose()
}

/// Tasks, newest first, filtered; `tag` matches one element of the JSON tag list.
pub fn list_tasks(conn: &mut AnyConnection, query: &TaskQuery) -> Result<Page<Task>, StoreError> {
    let mut sql = tasks::table.select(TaskRow::as_select()).into_boxed();
    if let Some(status) = query.status {
        sql = sql.filter(tasks::status.eq(status.as_str()));
    }
    if let Some(assignee) = &query.assignee_id {
        sql = sql.filter(tasks::assignee_id.eq(assignee.clone()));
    }
    if let Some(priority) = query.priority {
        sql = sql.filter(tasks::priority.eq(priority.as_str()));
    }
    if let Some(tag) = &query.tag {
        let needle = serde_json::to_string(tag).unwrap_or_default();
        sql = sql.filter(tasks::tags.like(format!("%{}%", escape_like(&needle))).escape('\\'));
    }
    if let Some(mission) = &query.mission_id {
        sql = sql.filter(tasks::mission_id.eq(mission.clone()));
    }
    if let Some(pillar) = &query.pillar_id {
        sql = sql.filter(tasks::pillar_id.eq(pillar.clone()));
    }
    if let Some(parent) = &query.parent_id {
        sql = sql.filter(tasks::parent_id.eq(parent.clone()));
    }
    if let Some(cursor) = &query.page.cursor {
        sql = sql.filter(tasks::id.lt(cursor.clone()));
    }
    let rows: Vec<TaskRow> = sql.order(tasks::id.desc()).limit(query.page.limit + 1).load(conn)?;
    let tasks = rows.into_iter().map(Task::try_from).collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_rows(tasks, query.page.limit, |t| t.id.clone()))
}

/// Escapes `%`, `_` and `\\` for a `LIKE … ESCAPE '\\'` pattern.
pub(super) fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// Activity, newest first.
pub fn list_activity(conn: &mut AnyConnection, query: &ActivityQuery) -> Result<Page<Activity>, StoreError> {
    let mut sql = activities::table.select(ActivityRow::as_select()).into_boxed();
    if let Some(agent) = &query.agent_id {
        sql = sql.filter(
            activities::agent_id
                .eq(agent.clone())
                .or(activities::actor_id.eq(agent.clone())),
        );
    }
    if let Some(task) = &query.task_id {
        sql = sql.filter(activities::task_id.eq(task.clone()));
    }
    if let Some(kind) = query.kind {
        sql = sql.filter(activities::kind.eq(kind.as_str()));
    }
    if let Some(since) = query.since {
        sql = sql.filter(activities::created_at.ge(since));
    }
    if let Some(cursor) = &query.page.cursor {
        sql = sql.filter(activities::id.lt(cursor.clone()));
    }
    let rows: Vec<ActivityRow> = sql
        .order(activities::id.desc())
        .limit(query.page.limit + 1)
        .load(conn)?;
    let items = rows
        .into_iter()
        .map(Activity::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_rows(items, query.page.limit, |a| a.id.clone()))
}
