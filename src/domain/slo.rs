//! SLO clocks: how much of a task's time is used, its status, and which breaches are due.
//!
//! A task's deadline is `createdAt + sloMs` (the explicit `sloMs`, else its tier's duration), stored as
//! `sloDeadlineAt`; a task with neither a tier nor `sloMs`, or with the `backlog` tier, has no deadline
//! (`NONE`). The clock stops when the task is done or cancelled. The monitor and the status read the same
//! stored deadline, so a task the status calls `BREACHED` is one the monitor records.

use super::message::{MessageDraft, MessagePriority, MessageType, MAX_SUBJECT};
use super::task::{Priority, SlaTier, Task, TaskStatus};
use super::text_enum::text_enum;
use serde::Serialize;
use utoipa::ToSchema;

text_enum! {
    /// Open tasks: `OK` → `AT_RISK` → `CRITICAL` → `BREACHED`; finished ones: `MET` or `MISSED`.
    pub enum SloStatus {
        Ok => "OK", AtRisk => "AT_RISK", Critical => "CRITICAL", Breached => "BREACHED",
        Met => "MET", Missed => "MISSED", None => "NONE"
    }
}

text_enum! {
    /// `deadline_missed`: past the deadline and not finished (or finished late). `in_progress_timeout`: in
    /// progress past the deadline. `blocked_too_long`: blocked past the deadline.
    pub enum BreachKind {
        DeadlineMissed => "deadline_missed", InProgressTimeout => "in_progress_timeout",
        BlockedTooLong => "blocked_too_long"
    }
}

impl SloStatus {
    /// Order of urgency for lists: the most urgent first.
    pub fn urgency(self) -> u8 {
        match self {
            SloStatus::Breached => 0,
            SloStatus::Critical => 1,
            SloStatus::AtRisk => 2,
            SloStatus::Ok => 3,
            SloStatus::Missed => 4,
            SloStatus::Met => 5,
            SloStatus::None => 6,
        }
    }
}

/// When an open task counts as at risk or critical.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SloThresholds {
    /// `AT_RISK` from this share of the SLO used (percent).
    pub at_risk_percent: u32,
    /// `CRITICAL` when less than this is left (ms).
    pub critical_remaining_ms: i64,
}

impl Default for SloThresholds {
    fn default() -> Self {
        SloThresholds {
            at_risk_percent: 75,
            critical_remaining_ms: 10 * 60_000,
        }
    }
}

/// The status of an SLO clock that runs from `created_at` to `deadline_at` and reads `at` (now, or when the
/// task finished).
pub fn classify(created_at: i64, deadline_at: i64, at: i64, finished: bool, thresholds: SloThresholds) -> SloStatus {
    let remaining = deadline_at - at;
    if finished {
        return if remaining > 0 {
            SloStatus::Met
        } else {
            SloStatus::Missed
        };
    }
    let slo_ms = (deadline_at - created_at).max(1);
    let used = at - created_at;
    if remaining <= 0 {
        SloStatus::Breached
    } else if remaining < thresholds.critical_remaining_ms {
        SloStatus::Critical
    } else if i128::from(used) * 100 >= i128::from(thresholds.at_risk_percent) * i128::from(slo_ms) {
        SloStatus::AtRisk
    } else {
        SloStatus::Ok
    }
}

/// `GET /api/tasks/{id}/slo`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SloReading {
    pub task_id: String,
    pub title: String,
    pub task_status: TaskStatus,
    pub priority: Priority,
    pub assignee_id: Option<String>,
    pub sla_tier: Option<SlaTier>,
    /// The SLO in effect: the task's `sloMs`, else its tier's duration; null without a deadline.
    pub slo_ms: Option<i64>,
    pub deadline_at: Option<i64>,
    pub created_at: i64,
    /// Time since creation; for a finished task, until it finished (the clock stopped).
    pub age_ms: i64,
    /// `ageMs / sloMs × 100`, one decimal; may exceed 100.
    pub percent_used: Option<f64>,
    /// `deadlineAt − now` (or − finish time); negative once past the deadline.
    pub ms_remaining: Option<i64>,
    pub status: SloStatus,
    /// When the clock stopped (the task finished); null while it runs.
    pub stopped_at: Option<i64>,
}

pub fn reading(task: &Task, now: i64, thresholds: SloThresholds) -> SloReading {
    let finished = task.status.is_terminal();
    let stopped_at = if finished {
        task.completed_at.or(Some(task.updated_at))
    } else {
        None
    };
    let at = stopped_at.unwrap_or(now);
    let age_ms = (at - task.created_at).max(0);
    let deadline = task.slo_deadline_at;
    let slo_ms = deadline.map(|d| d - task.created_at);
    SloReading {
        task_id: task.id.clone(),
        title: task.title.clone(),
        task_status: task.status,
        priority: task.priority,
        assignee_id: task.assignee_id.clone(),
        sla_tier: task.sla_tier,
        slo_ms,
        deadline_at: deadline,
        created_at: task.created_at,
        age_ms,
        percent_used: slo_ms.map(|ms| super::capacity::one_decimal(age_ms as f64 * 100.0 / ms.max(1) as f64)),
        ms_remaining: deadline.map(|d| d - at),
        status: match deadline {
            Some(d) => classify(task.created_at, d, at, finished, thresholds),
            None => SloStatus::None,
        },
        stopped_at,
    }
}

/// Sorts readings most urgent first: by status, then by the least time remaining.
pub fn by_urgency(a: &SloReading, b: &SloReading) -> std::cmp::Ordering {
    a.status
        .urgency()
        .cmp(&b.status.urgency())
        .then(
            a.ms_remaining
                .unwrap_or(i64::MAX)
                .cmp(&b.ms_remaining.unwrap_or(i64::MAX)),
        )
        .then(a.task_id.cmp(&b.task_id))
}

/// The breaches due for `task` at `now` that are not in `recorded`: for an open task past its deadline,
/// `deadline_missed` plus the kind of its current status (in progress, blocked); for a task that finished
/// at or after its deadline, `deadline_missed`.
pub fn breaches_due(task: &Task, now: i64, recorded: &[BreachKind]) -> Vec<BreachKind> {
    let Some(deadline) = task.slo_deadline_at else {
        return Vec::new();
    };
    let mut due = Vec::new();
    if task.status.is_terminal() {
        if task.completed_at.unwrap_or(task.updated_at) >= deadline {
            due.push(BreachKind::DeadlineMissed);
        }
    } else if now >= deadline {
        due.push(BreachKind::DeadlineMissed);
        match task.status {
            TaskStatus::InProgress => due.push(BreachKind::InProgressTimeout),
            TaskStatus::Blocked => due.push(BreachKind::BlockedTooLong),
            _ => {}
        }
    }
    due.retain(|kind| !recorded.contains(kind));
    due
}

/// One recorded breach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SloBreach {
    pub id: String,
    pub task_id: String,
    pub task_title: String,
    /// The task's assignee when the breach was detected.
    pub agent_id: Option<String>,
    pub kind: BreachKind,
    pub sla_tier: Option<SlaTier>,
    pub slo_ms: i64,
    pub deadline_at: i64,
    pub detected_at: i64,
    /// When the task was escalated for it; null when the task had already finished (a late finish).
    pub escalated_at: Option<i64>,
}

/// Builds the record of a breach detected now; `escalate` says whether the task is still open to escalate.
pub fn breach(id: String, task: &Task, kind: BreachKind, now: i64) -> Option<SloBreach> {
    let deadline = task.slo_deadline_at?;
    Some(SloBreach {
        id,
        task_id: task.id.clone(),
        task_title: task.title.clone(),
        agent_id: task.assignee_id.clone(),
        kind,
        sla_tier: task.sla_tier,
        slo_ms: deadline - task.created_at,
        deadline_at: deadline,
        detected_at: now,
        escalated_at: (!task.status.is_terminal()).then_some(now),
    })
}

/// The alert a lead gets when a task breaches its SLO.
pub fn breach_alert(to: String, task: &Task, kinds: &[BreachKind], now: i64) -> MessageDraft {
    let deadline = task.slo_deadline_at.unwrap_or(task.created_at);
    let kinds_text: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    let subject: String = format!("SLO breached: {}", task.title)
        .chars()
        .take(MAX_SUBJECT)
        .collect();
    let overdue_min = (now - deadline).max(0) / 60_000;
    let body = format!(
        "\"{}\" (task {}, {}) passed its SLO deadline {} ({overdue_min} min ago) and is still {}: {}. \
         It has been raised to {}.",
        task.title,
        task.id,
        task.assignee_id
            .as_deref()
            .map_or("unassigned".to_string(), |a| format!("assignee {a}")),
        rfc3339(deadline),
        task.status,
        kinds_text.join(", "),
        task.priority.raised(),
    );
    MessageDraft {
        to_agent_id: to,
        kind: Some(MessageType::Alert),
        subject,
        body,
        priority: Some(
            if task.priority.raised() == Priority::P0 || task.sla_tier == Some(SlaTier::Critical) {
                MessagePriority::Critical
            } else {
                MessagePriority::High
            },
        ),
        task_id: Some(task.id.clone()),
        data: Some(serde_json::json!({
            "reason": "slo_breach",
            "breaches": kinds_text,
            "deadlineAt": deadline,
            "assigneeId": task.assignee_id,
        })),
        ..MessageDraft::default()
    }
}

/// The reason recorded on the task's escalation.
pub fn breach_reason(task: &Task, kinds: &[BreachKind]) -> String {
    let kinds_text: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    let slo = match (task.slo_ms, task.sla_tier) {
        (Some(ms), _) => format!("{ms} ms"),
        (None, Some(tier)) => format!("{tier} tier"),
        (None, None) => "SLO".to_string(),
    };
    format!("SLO breach ({slo} deadline passed): {}", kinds_text.join(", "))
}

fn rfc3339(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::task::{create, moved, TaskDraft};
    use serde_json::json;

    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;

    fn task(body: serde_json::Value) -> Task {
        let draft: TaskDraft = serde_json::from_value(body).unwrap();
        create(draft, "t1".into(), "admin".into(), 0).unwrap()
    }

    #[test]
    fn tiers_map_to_durations() {
        assert_eq!(SlaTier::Critical.duration_ms(), Some(HOUR));
        assert_eq!(SlaTier::Urgent.duration_ms(), Some(4 * HOUR));
        assert_eq!(SlaTier::Normal.duration_ms(), Some(24 * HOUR));
        assert_eq!(SlaTier::Backlog.duration_ms(), None);
    }

    #[test]
    fn status_moves_through_ok_at_risk_critical_breached() {
        let th = SloThresholds::default();
        // A 4-hour SLO: 75 % is at 3 h; 10 minutes left is at 3 h 50 min.
        let deadline = 4 * HOUR;
        assert_eq!(classify(0, deadline, 0, false, th), SloStatus::Ok);
        assert_eq!(classify(0, deadline, 3 * HOUR - 1, false, th), SloStatus::Ok);
        assert_eq!(
            classify(0, deadline, 3 * HOUR, false, th),
            SloStatus::AtRisk,
            "exactly 75 %"
        );
        assert_eq!(
            classify(0, deadline, deadline - 10 * MIN, false, th),
            SloStatus::AtRisk,
            "exactly 10 min left"
        );
        assert_eq!(
            classify(0, deadline, deadline - 10 * MIN + 1, false, th),
            SloStatus::Critical
        );
        assert_eq!(classify(0, deadline, deadline - 1, false, th), SloStatus::Critical);
        assert_eq!(classify(0, deadline, deadline, false, th), SloStatus::Breached);
        assert_eq!(classify(0, deadline, deadline + HOUR, false, th), SloStatus::Breached);
    }

    #[test]
    fn a_short_slo_is_critical_from_the_start() {
        assert_eq!(
            classify(0, 5 * MIN, 0, false, SloThresholds::default()),
            SloStatus::Critical
        );
    }

    #[test]
    fn finished_tasks_met_or_missed_their_deadline() {
        let th = SloThresholds::default();
        assert_eq!(classify(0, HOUR, HOUR - 1, true, th), SloStatus::Met);
        assert_eq!(classify(0, HOUR, HOUR, true, th), SloStatus::Missed);
    }

    #[test]
    fn thresholds_are_configurable() {
        let th = SloThresholds {
            at_risk_percent: 50,
            critical_remaining_ms: HOUR,
        };
        assert_eq!(classify(0, 4 * HOUR, 2 * HOUR, false, th), SloStatus::AtRisk);
        assert_eq!(classify(0, 4 * HOUR, 3 * HOUR + 1, false, th), SloStatus::Critical);
    }

    #[test]
    fn a_reading_reports_percent_used_and_time_left() {
        let t = task(json!({"title": "x", "slaTier": "critical"}));
        let r = reading(&t, 45 * MIN, SloThresholds::default());
        assert_eq!(r.slo_ms, Some(HOUR));
        assert_eq!(r.deadline_at, Some(HOUR));
        assert_eq!(r.age_ms, 45 * MIN);
        assert_eq!(r.percent_used, Some(75.0));
        assert_eq!(r.ms_remaining, Some(15 * MIN));
        assert_eq!(r.status, SloStatus::AtRisk);
        let none = reading(&task(json!({"title": "x"})), 45 * MIN, SloThresholds::default());
        assert_eq!(
            (none.status, none.percent_used, none.deadline_at),
            (SloStatus::None, None, None)
        );
        let backlog = reading(
            &task(json!({"title": "x", "slaTier": "backlog"})),
            0,
            SloThresholds::default(),
        );
        assert_eq!(backlog.status, SloStatus::None);
    }

    #[test]
    fn the_clock_stops_when_the_task_finishes() {
        let mut t = task(json!({"title": "x", "sloMs": HOUR}));
        t.assignee_id = Some("a".into());
        let done = moved(&moved(&t, TaskStatus::Ready, 0), TaskStatus::Cancelled, 30 * MIN);
        let r = reading(&done, 10 * HOUR, SloThresholds::default());
        assert_eq!(r.age_ms, 30 * MIN);
        assert_eq!(r.stopped_at, Some(30 * MIN));
        assert_eq!(r.status, SloStatus::Met);
        let late = moved(&moved(&t, TaskStatus::Ready, 0), TaskStatus::Cancelled, 2 * HOUR);
        assert_eq!(
            reading(&late, 10 * HOUR, SloThresholds::default()).status,
            SloStatus::Missed
        );
    }

    #[test]
    fn breaches_follow_the_status_and_are_never_due_twice() {
        let t = task(json!({"title": "x", "sloMs": HOUR}));
        assert!(breaches_due(&t, HOUR - 1, &[]).is_empty());
        assert_eq!(breaches_due(&t, HOUR, &[]), [BreachKind::DeadlineMissed]);
        let mut running = t.clone();
        running.status = TaskStatus::InProgress;
        assert_eq!(
            breaches_due(&running, HOUR, &[]),
            [BreachKind::DeadlineMissed, BreachKind::InProgressTimeout]
        );
        assert_eq!(
            breaches_due(&running, 2 * HOUR, &[BreachKind::DeadlineMissed]),
            [BreachKind::InProgressTimeout]
        );
        let mut blocked = t.clone();
        blocked.status = TaskStatus::Blocked;
        assert_eq!(
            breaches_due(
                &blocked,
                2 * HOUR,
                &[BreachKind::DeadlineMissed, BreachKind::InProgressTimeout]
            ),
            [BreachKind::BlockedTooLong]
        );
        assert!(breaches_due(&task(json!({"title": "x"})), 100 * HOUR, &[]).is_empty());
    }

    #[test]
    fn the_alert_names_the_task_the_breaches_and_the_new_priority() {
        let mut t = task(json!({"title": "Ship it", "slaTier": "critical", "priority": "P2"}));
        t.status = TaskStatus::InProgress;
        t.assignee_id = Some("bob".into());
        let alert = breach_alert(
            "lead".into(),
            &t,
            &[BreachKind::DeadlineMissed, BreachKind::InProgressTimeout],
            HOUR + 5 * MIN,
        );
        assert_eq!(alert.subject, "SLO breached: Ship it");
        assert!(
            alert.body.contains("1970-01-01T01:00:00Z (5 min ago)"),
            "{}",
            alert.body
        );
        assert!(
            alert.body.contains("deadline_missed, in_progress_timeout"),
            "{}",
            alert.body
        );
        assert!(alert.body.contains("raised to P1"), "{}", alert.body);
        assert_eq!(alert.priority, Some(MessagePriority::Critical));
        assert_eq!(
            breach_reason(&t, &[BreachKind::DeadlineMissed]),
            "SLO breach (critical tier deadline passed): deadline_missed"
        );
    }

    #[test]
    fn a_late_finish_is_a_missed_deadline() {
        let mut t = task(json!({"title": "x", "sloMs": HOUR}));
        t.status = TaskStatus::Done;
        t.completed_at = Some(HOUR + 1);
        assert_eq!(breaches_due(&t, 5 * HOUR, &[]), [BreachKind::DeadlineMissed]);
        assert!(breaches_due(&t, 5 * HOUR, &[BreachKind::DeadlineMissed]).is_empty());
        t.completed_at = Some(HOUR - 1);
        assert!(breaches_due(&t, 5 * HOUR, &[]).is_empty());
        let record = breach("b".into(), &t, BreachKind::DeadlineMissed, 5 * HOUR).unwrap();
        assert_eq!(record.escalated_at, None, "a finished task is not escalated");
    }
}
