//! Reads of the action outbox.

use super::rows::OutboxRow;
use super::schema::{messages, outbox};
use super::{AnyConnection, StoreError};
use crate::domain::outbox::{OutboxItem, OutboxStatus};
use crate::domain::query::{Page, PageRequest};
use diesel::dsl::count_star;
use diesel::prelude::*;

fn to_items(rows: Vec<OutboxRow>) -> Result<Vec<OutboxItem>, StoreError> {
    rows.into_iter().map(OutboxItem::try_from).collect()
}

/// Pending rows due by `now`, the longest waiting first, at most `limit`.
pub fn due(conn: &mut AnyConnection, now: i64, limit: i64) -> Result<Vec<OutboxItem>, StoreError> {
    let rows = outbox::table
        .filter(outbox::delivered_at.is_null())
        .filter(outbox::dead_at.is_null())
        .filter(outbox::next_attempt_at.le(now))
        .order((outbox::next_attempt_at.asc(), outbox::id.asc()))
        .limit(limit)
        .select(OutboxRow::as_select())
        .load(conn)?;
    to_items(rows)
}

/// When the next pending row falls due, if any is pending.
pub fn next_due_at(conn: &mut AnyConnection) -> Result<Option<i64>, StoreError> {
    let next = outbox::table
        .filter(outbox::delivered_at.is_null())
        .filter(outbox::dead_at.is_null())
        .select(diesel::dsl::min(outbox::next_attempt_at))
        .first::<Option<i64>>(conn)?;
    Ok(next)
}

pub fn by_id(conn: &mut AnyConnection, id: &str) -> Result<Option<OutboxItem>, StoreError> {
    let row: Option<OutboxRow> = outbox::table
        .find(id)
        .select(OutboxRow::as_select())
        .first(conn)
        .optional()?;
    row.map(OutboxItem::try_from).transpose()
}

/// These rows, by id (missing ids are left out).
pub fn by_ids(conn: &mut AnyConnection, ids: &[String]) -> Result<Vec<OutboxItem>, StoreError> {
    let mut items = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let rows = outbox::table
            .filter(outbox::id.eq_any(chunk))
            .select(OutboxRow::as_select())
            .load(conn)?;
        items.extend(to_items(rows)?);
    }
    Ok(items)
}

/// The rows written for these escalations' actions.
pub fn for_escalations(conn: &mut AnyConnection, escalation_ids: &[String]) -> Result<Vec<OutboxItem>, StoreError> {
    let mut items = Vec::new();
    for chunk in escalation_ids.chunks(500) {
        let rows = outbox::table
            .filter(outbox::escalation_id.eq_any(chunk))
            .order(outbox::id.asc())
            .select(OutboxRow::as_select())
            .load(conn)?;
        items.extend(to_items(rows)?);
    }
    Ok(items)
}

/// Rows in one state, newest first.
pub fn list(
    conn: &mut AnyConnection,
    status: Option<OutboxStatus>,
    page: &PageRequest,
) -> Result<Page<OutboxItem>, StoreError> {
    let mut q = outbox::table.select(OutboxRow::as_select()).into_boxed();
    match status {
        Some(OutboxStatus::Pending) => {
            q = q
                .filter(outbox::delivered_at.is_null())
                .filter(outbox::dead_at.is_null());
        }
        Some(OutboxStatus::Delivered) => q = q.filter(outbox::delivered_at.is_not_null()),
        Some(OutboxStatus::Dead) => {
            q = q
                .filter(outbox::delivered_at.is_null())
                .filter(outbox::dead_at.is_not_null())
        }
        None => {}
    }
    if let Some(cursor) = &page.cursor {
        q = q.filter(outbox::id.lt(cursor.clone()));
    }
    let rows = q.order(outbox::id.desc()).limit(page.limit + 1).load(conn)?;
    Ok(Page::from_rows(to_items(rows)?, page.limit, |o| o.id.clone()))
}

/// How many rows are pending and how many dead.
pub fn depth(conn: &mut AnyConnection) -> Result<(i64, i64), StoreError> {
    let pending = outbox::table
        .filter(outbox::delivered_at.is_null())
        .filter(outbox::dead_at.is_null())
        .select(count_star())
        .first::<i64>(conn)?;
    let dead = outbox::table
        .filter(outbox::delivered_at.is_null())
        .filter(outbox::dead_at.is_not_null())
        .select(count_star())
        .first::<i64>(conn)?;
    Ok((pending, dead))
}

/// The recipients (agent ids) that already hold a message made with this idempotency key: the deliveries of
/// an outbox row that happened before a crash.
pub fn delivered_to(conn: &mut AnyConnection, idempotency_key: &str) -> Result<Vec<String>, StoreError> {
    Ok(messages::table
        .filter(messages::idempotency_key.eq(idempotency_key))
        .select(messages::to_agent_id)
        .load(conn)?)
}
