//! Reads of messages and templates that are not served from actor memory: inbox history, sent messages,
//! search, statistics, and what the owners load at boot.

use super::queries::escape_like;
use super::rows::{MessageRow, TemplateRow};
use super::schema::{message_templates, messages};
use super::{AnyConnection, StoreError};
use crate::domain::message::{InboxFilter, InboxStats, Message};
use crate::domain::query::{Page, PageRequest};
use crate::domain::template::MessageTemplate;
use diesel::dsl::{count_star, sql};
use diesel::prelude::*;
use diesel::sql_types::{Double, Nullable, Text};

diesel::define_sql_function!(fn lower(x: Text) -> Text);

fn to_messages(rows: Vec<MessageRow>) -> Result<Vec<Message>, StoreError> {
    rows.into_iter().map(Message::try_from).collect()
}

/// Unexpired messages still waiting to be read or acknowledged: every recipient's open inbox.
pub fn open_messages(conn: &mut AnyConnection, now: i64) -> Result<Vec<Message>, StoreError> {
    let rows = messages::table
        .filter(messages::read_at.is_null().or(messages::acknowledged_at.is_null()))
        .filter(messages::expires_at.gt(now))
        .order(messages::id.asc())
        .select(MessageRow::as_select())
        .load(conn)?;
    to_messages(rows)
}

/// `(sender id, idempotency key, message id, sent at)` of the messages sent since `since`.
pub fn idempotency_keys_since(
    conn: &mut AnyConnection,
    since: i64,
) -> Result<Vec<(String, String, String, i64)>, StoreError> {
    let rows: Vec<(Option<String>, Option<String>, String, i64)> = messages::table
        .filter(messages::idempotency_key.is_not_null())
        .filter(messages::created_at.gt(since))
        .select((
            messages::from_agent_id,
            messages::idempotency_key,
            messages::id,
            messages::created_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(from, key, id, at)| Some((from?, key?, id, at)))
        .collect())
}

pub fn message_by_id(conn: &mut AnyConnection, id: &str) -> Result<Option<Message>, StoreError> {
    let row: Option<MessageRow> = messages::table
        .find(id)
        .select(MessageRow::as_select())
        .first(conn)
        .optional()?;
    row.map(Message::try_from).transpose()
}

/// An agent's inbox, newest first, filtered.
pub fn list_inbox(
    conn: &mut AnyConnection,
    agent_id: &str,
    filter: &InboxFilter,
    page: &PageRequest,
) -> Result<Page<Message>, StoreError> {
    let mut query = messages::table
        .filter(messages::to_agent_id.eq(agent_id.to_string()))
        .select(MessageRow::as_select())
        .into_boxed();
    match filter.unread {
        Some(true) => query = query.filter(messages::read_at.is_null()),
        Some(false) => query = query.filter(messages::read_at.is_not_null()),
        None => {}
    }
    match filter.unacknowledged {
        Some(true) => query = query.filter(messages::acknowledged_at.is_null()),
        Some(false) => query = query.filter(messages::acknowledged_at.is_not_null()),
        None => {}
    }
    if let Some(kind) = filter.kind {
        query = query.filter(messages::kind.eq(kind.as_str()));
    }
    if let Some(priority) = filter.priority {
        query = query.filter(messages::priority.eq(priority.as_str()));
    }
    if let Some(task) = &filter.task_id {
        query = query.filter(messages::task_id.eq(task.clone()));
    }
    if let Some(from) = &filter.from_agent {
        query = query.filter(
            messages::from_agent_id
                .eq(from.clone())
                .or(messages::from_agent_name.eq(from.trim().to_lowercase())),
        );
    }
    if let Some(since) = filter.since {
        query = query.filter(messages::created_at.ge(since));
    }
    if let Some(cursor) = &page.cursor {
        query = query.filter(messages::id.lt(cursor.clone()));
    }
    let rows = query.order(messages::id.desc()).limit(page.limit + 1).load(conn)?;
    Ok(Page::from_rows(to_messages(rows)?, page.limit, |m| m.id.clone()))
}

/// What an agent sent, newest first.
pub fn list_sent(conn: &mut AnyConnection, agent_id: &str, page: &PageRequest) -> Result<Page<Message>, StoreError> {
    let mut query = messages::table
        .filter(messages::from_agent_id.eq(agent_id.to_string()))
        .select(MessageRow::as_select())
        .into_boxed();
    if let Some(cursor) = &page.cursor {
        query = query.filter(messages::id.lt(cursor.clone()));
    }
    let rows = query.order(messages::id.desc()).limit(page.limit + 1).load(conn)?;
    Ok(Page::from_rows(to_messages(rows)?, page.limit, |m| m.id.clone()))
}

/// Case-insensitive substring search over an agent's inbox: subject, body and sender name. Case folding is
/// the database's `lower()`, which folds ASCII letters on SQLite and all letters on PostgreSQL.
pub fn search_inbox(
    conn: &mut AnyConnection,
    agent_id: &str,
    text: &str,
    page: &PageRequest,
) -> Result<Page<Message>, StoreError> {
    // The pattern goes through the same `lower()` as the columns, so both sides fold alike on either backend.
    let pattern = || lower(format!("%{}%", escape_like(text)).into_sql::<Text>());
    let mut query = messages::table
        .filter(messages::to_agent_id.eq(agent_id.to_string()))
        .filter(
            lower(messages::subject)
                .like(pattern())
                .escape('\\')
                .or(lower(messages::body).like(pattern()).escape('\\'))
                .or(lower(messages::from_agent_name).like(pattern()).escape('\\')),
        )
        .select(MessageRow::as_select())
        .into_boxed();
    if let Some(cursor) = &page.cursor {
        query = query.filter(messages::id.lt(cursor.clone()));
    }
    let rows = query.order(messages::id.desc()).limit(page.limit + 1).load(conn)?;
    Ok(Page::from_rows(to_messages(rows)?, page.limit, |m| m.id.clone()))
}

/// Totals over an agent's whole inbox.
pub fn inbox_stats(conn: &mut AnyConnection, agent_id: &str) -> Result<InboxStats, StoreError> {
    let mine = || messages::table.filter(messages::to_agent_id.eq(agent_id.to_string()));
    let mut stats = InboxStats::empty();
    let by_type: Vec<(String, i64)> = mine()
        .group_by(messages::kind)
        .select((messages::kind, count_star()))
        .load(conn)?;
    for (kind, n) in by_type {
        stats.total += n;
        stats.by_type.insert(kind, n);
    }
    let by_priority: Vec<(String, i64)> = mine()
        .group_by(messages::priority)
        .select((messages::priority, count_star()))
        .load(conn)?;
    stats.by_priority.extend(by_priority);
    stats.unread = mine()
        .filter(messages::read_at.is_null())
        .select(count_star())
        .first(conn)?;
    stats.unacknowledged = mine()
        .filter(messages::acknowledged_at.is_null())
        .select(count_star())
        .first(conn)?;
    stats.acknowledged = stats.total - stats.unacknowledged;
    let average_ms: Option<f64> = mine()
        .filter(messages::acknowledged_at.is_not_null())
        .select(sql::<Nullable<Double>>(
            "AVG(CAST(acknowledged_at - created_at AS DOUBLE PRECISION))",
        ))
        .first(conn)?;
    stats.average_ack_seconds = average_ms.map(|ms| (ms / 100.0).round() / 10.0);
    Ok(stats)
}

/// `(id, recipient id)` of every message whose expiry is at or before `now`.
pub fn expired_messages(conn: &mut AnyConnection, now: i64) -> Result<Vec<(String, String)>, StoreError> {
    Ok(messages::table
        .filter(messages::expires_at.le(now))
        .select((messages::id, messages::to_agent_id))
        .load(conn)?)
}

/// Which of these messages are still waiting for their acknowledgement (neither acknowledged nor deleted).
pub fn unacknowledged(conn: &mut AnyConnection, ids: &[String]) -> Result<Vec<String>, StoreError> {
    Ok(messages::table
        .filter(messages::id.eq_any(ids))
        .filter(messages::acknowledged_at.is_null())
        .select(messages::id)
        .load(conn)?)
}

pub fn all_templates(conn: &mut AnyConnection) -> Result<Vec<MessageTemplate>, StoreError> {
    let rows: Vec<TemplateRow> = message_templates::table
        .order(message_templates::name.asc())
        .select(TemplateRow::as_select())
        .load(conn)?;
    rows.into_iter().map(MessageTemplate::try_from).collect()
}
