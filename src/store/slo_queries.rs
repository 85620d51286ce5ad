//! Reads of SLO breaches and of finished tasks' SLO outcomes.

use super::rows::BreachRow;
use super::schema::{slo_breaches, tasks};
use super::{AnyConnection, StoreError};
use crate::domain::query::{BreachQuery, Page};
use crate::domain::slo::{BreachKind, SloBreach};
use diesel::dsl::count_star;
use diesel::prelude::*;

/// Breaches, newest first, filtered.
pub fn list_breaches(conn: &mut AnyConnection, query: &BreachQuery) -> Result<Page<SloBreach>, StoreError> {
    let mut q = slo_breaches::table.select(BreachRow::as_select()).into_boxed();
    if let Some(agent) = &query.agent_id {
        q = q.filter(slo_breaches::agent_id.eq(agent.clone()));
    }
    if let Some(kind) = query.kind {
        q = q.filter(slo_breaches::kind.eq(kind.as_str()));
    }
    if let Some(since) = query.since {
        q = q.filter(slo_breaches::detected_at.ge(since));
    }
    if let Some(cursor) = &query.page.cursor {
        q = q.filter(slo_breaches::id.lt(cursor.clone()));
    }
    let rows = q
        .order(slo_breaches::id.desc())
        .limit(query.page.limit + 1)
        .load(conn)?;
    let breaches = rows
        .into_iter()
        .map(SloBreach::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_rows(breaches, query.page.limit, |b| b.id.clone()))
}

/// `(task id, kind)` of every breach recorded for a task that is still open: what the SLO monitor must not
/// record again.
pub fn open_task_breaches(conn: &mut AnyConnection) -> Result<Vec<(String, BreachKind)>, StoreError> {
    let rows: Vec<(String, String)> = slo_breaches::table
        .inner_join(tasks::table.on(tasks::id.eq(slo_breaches::task_id)))
        .filter(tasks::status.ne_all(["done", "cancelled"]))
        .select((slo_breaches::task_id, slo_breaches::kind))
        .load(conn)?;
    rows.into_iter()
        .map(|(task, kind)| Ok((task, kind.parse().map_err(StoreError::Corrupt)?)))
        .collect()
}

/// How many finished tasks with a deadline finished before it (`MET`) and at or after it (`MISSED`).
pub fn finished_outcomes(conn: &mut AnyConnection) -> Result<(i64, i64), StoreError> {
    let finished = || {
        tasks::table
            .filter(tasks::status.eq_any(["done", "cancelled"]))
            .filter(tasks::slo_deadline_at.is_not_null())
            .into_boxed()
    };
    let met: i64 = finished()
        .filter(tasks::completed_at.lt(tasks::slo_deadline_at))
        .select(count_star())
        .first(conn)?;
    let all: i64 = finished().select(count_star()).first(conn)?;
    Ok((met, all - met))
}
