//! Reads of escalation rules and history.

use super::rows::{EscalationRow, RuleRow};
use super::schema::{escalation_rules, escalations};
use super::{AnyConnection, StoreError};
use crate::domain::escalation::{Escalation, EscalationRule};
use crate::domain::outbox;
use crate::domain::query::{EscalationQuery, Page};
use diesel::prelude::*;

pub fn all_rules(conn: &mut AnyConnection) -> Result<Vec<EscalationRule>, StoreError> {
    let rows: Vec<RuleRow> = escalation_rules::table
        .order(escalation_rules::id.asc())
        .select(RuleRow::as_select())
        .load(conn)?;
    rows.into_iter().map(EscalationRule::try_from).collect()
}

fn to_escalations(rows: Vec<EscalationRow>) -> Result<Vec<Escalation>, StoreError> {
    rows.into_iter().map(Escalation::try_from).collect()
}

/// Each action delivered through the outbox shown as its row stands now (the row, not the escalation, is
/// written by the dispatcher).
fn with_deliveries(conn: &mut AnyConnection, mut escalations: Vec<Escalation>) -> Result<Vec<Escalation>, StoreError> {
    let ids: Vec<String> = escalations
        .iter()
        .filter(|e| e.actions.iter().any(|a| a.outbox_id.is_some()))
        .map(|e| e.id.clone())
        .collect();
    if ids.is_empty() {
        return Ok(escalations);
    }
    let rows = super::outbox_queries::for_escalations(conn, &ids)?;
    for e in &mut escalations {
        outbox::overlay(&mut e.actions, &rows);
    }
    Ok(escalations)
}

/// Every unresolved firing: the rungs of the ladders the scheduler rebuilds at boot.
pub fn open_escalations(conn: &mut AnyConnection) -> Result<Vec<Escalation>, StoreError> {
    let rows = escalations::table
        .filter(escalations::resolved_at.is_null())
        .order(escalations::id.asc())
        .select(EscalationRow::as_select())
        .load(conn)?;
    to_escalations(rows)
}

pub fn escalation_by_id(conn: &mut AnyConnection, id: &str) -> Result<Option<Escalation>, StoreError> {
    let row: Option<EscalationRow> = escalations::table
        .find(id)
        .select(EscalationRow::as_select())
        .first(conn)
        .optional()?;
    let found = to_escalations(row.into_iter().collect())?;
    Ok(with_deliveries(conn, found)?.pop())
}

/// The history, newest first, filtered.
pub fn list_escalations(conn: &mut AnyConnection, query: &EscalationQuery) -> Result<Page<Escalation>, StoreError> {
    let mut q = escalations::table.select(EscalationRow::as_select()).into_boxed();
    if let Some(task) = &query.task_id {
        q = q.filter(escalations::task_id.eq(task.clone()));
    }
    if let Some(rule) = &query.rule_id {
        q = q.filter(escalations::rule_id.eq(rule.clone()));
    }
    match query.open {
        Some(true) => q = q.filter(escalations::resolved_at.is_null()),
        Some(false) => q = q.filter(escalations::resolved_at.is_not_null()),
        None => {}
    }
    if let Some(since) = query.since {
        q = q.filter(escalations::triggered_at.ge(since));
    }
    if let Some(cursor) = &query.page.cursor {
        q = q.filter(escalations::id.lt(cursor.clone()));
    }
    let rows = q.order(escalations::id.desc()).limit(query.page.limit + 1).load(conn)?;
    let found = to_escalations(rows)?;
    Ok(Page::from_rows(with_deliveries(conn, found)?, query.page.limit, |e| {
        e.id.clone()
    }))
}

/// The whole history, for the statistics.
pub fn all_escalations(conn: &mut AnyConnection) -> Result<Vec<Escalation>, StoreError> {
    let rows = escalations::table
        .order(escalations::id.asc())
        .select(EscalationRow::as_select())
        .load(conn)?;
    to_escalations(rows)
}

/// The firings of one trigger kind at or after `since`, resolved or not, oldest first.
pub fn firings_since(conn: &mut AnyConnection, trigger: &str, since: i64) -> Result<Vec<Escalation>, StoreError> {
    let rows = escalations::table
        .filter(escalations::trigger_kind.eq(trigger))
        .filter(escalations::triggered_at.ge(since))
        .order(escalations::id.asc())
        .select(EscalationRow::as_select())
        .load(conn)?;
    to_escalations(rows)
}
