use super::*;
use crate::domain::task::{create, TaskDraft, TaskFailure};
use serde_json::{json, Value};

const SEC: i64 = 1_000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
/// Every task is created here; `since` values are offsets from it.
const T0: i64 = 1_700_000_000_000;
const MAX_DEPTH: u32 = 3;

/// An assigned task, created at `T0`, in `status` since `since`.
fn task(status: TaskStatus, since: i64) -> Task {
    let draft: TaskDraft = serde_json::from_value(json!({"title": "stuck task"})).unwrap();
    let mut task = create(draft, "t1".into(), "admin".into(), T0).unwrap();
    task.status = status;
    task.status_changed_at = since;
    task.assignee_id = Some("a1".into());
    task
}

fn failure(kind: &str, at: i64) -> TaskFailure {
    TaskFailure {
        at,
        error_kind: kind.into(),
        message: "boom".into(),
        agent_id: Some("a1".into()),
    }
}

fn trigger(value: Value) -> Trigger {
    serde_json::from_value(value).unwrap()
}

fn no_context() -> TaskContext {
    TaskContext::default()
}

fn draft(value: Value) -> RuleDraft {
    serde_json::from_value(value).unwrap()
}

/// A valid draft: blocked for more than 30 min → escalate.
fn valid_draft() -> Value {
    json!({
        "name": "blocked too long",
        "triggers": [{"kind": "blocker_duration", "durationMs": 30 * MIN}],
        "actions": [{"kind": "escalate"}]
    })
}

/// An enabled rule with the given priority, creation time and triggers.
fn rule(id: &str, priority: i32, created_at: i64, triggers: Value) -> EscalationRule {
    let d = draft(json!({
        "name": id,
        "priority": priority,
        "triggers": triggers,
        "actions": [{"kind": "escalate"}]
    }));
    create_rule(d, id.into(), created_at).unwrap()
}

/// The field a rejected draft is blamed on.
fn invalid_field(result: Result<EscalationRule, RuleViolation>) -> &'static str {
    match result {
        Err(RuleViolation::Invalid { field, .. }) => field,
        other => panic!("expected RuleViolation::Invalid, got {other:?}"),
    }
}

fn with(mut base: Value, key: &str, value: Value) -> Value {
    base[key] = value;
    base
}

fn ladders(entries: &[(&str, u32, i64)]) -> BTreeMap<String, Ladder> {
    entries
        .iter()
        .map(|(id, level, at)| {
            (
                (*id).to_string(),
                Ladder {
                    level: *level,
                    last_fired_at: Some(*at),
                },
            )
        })
        .collect()
}

// ---------------------------------------------------------------- human_duration

#[test]
fn human_duration_shows_hours_minutes_or_seconds() {
    assert_eq!(human_duration(0), "0 s");
    assert_eq!(human_duration(-5 * SEC), "0 s", "negative clamps to zero");
    assert_eq!(human_duration(59_999), "59 s");
    assert_eq!(human_duration(MIN), "1 min");
    assert_eq!(human_duration(45 * MIN + 59 * SEC), "45 min");
    assert_eq!(human_duration(HOUR), "1 h");
    assert_eq!(human_duration(2 * HOUR + 14 * MIN + 30 * SEC), "2 h 14 min");
    assert_eq!(human_duration(30 * HOUR), "30 h");
}

// ---------------------------------------------------------------- triggers

#[test]
fn time_in_status_fires_only_strictly_after_the_duration() {
    let tr = trigger(json!({"kind": "time_in_status", "status": "in_progress", "durationMs": 2 * HOUR}));
    let t = task(TaskStatus::InProgress, T0);
    assert_eq!(fires(&tr, &t, no_context(), T0 + 2 * HOUR - 1), None);
    assert_eq!(
        fires(&tr, &t, no_context(), T0 + 2 * HOUR),
        None,
        "exactly the duration is not more"
    );
    assert!(fires(&tr, &t, no_context(), T0 + 2 * HOUR + 1).is_some());
    assert_eq!(
        fires(&tr, &t, no_context(), T0 + 2 * HOUR + 14 * MIN).as_deref(),
        Some("in progress for 2 h 14 min")
    );
}

#[test]
fn time_in_status_ignores_other_statuses_and_updated_at() {
    let tr = trigger(json!({"kind": "time_in_status", "status": "review", "durationMs": HOUR}));
    let now = T0 + 10 * HOUR;
    assert_eq!(fires(&tr, &task(TaskStatus::InProgress, T0), no_context(), now), None);

    // Recently edited, but in review for 10 h: fires.
    let mut edited = task(TaskStatus::Review, T0);
    edited.updated_at = now - 1;
    assert_eq!(
        fires(&tr, &edited, no_context(), now).as_deref(),
        Some("review for 10 h")
    );
    // Untouched for 10 h, but in review for only 30 min: does not fire.
    let mut moved_recently = task(TaskStatus::Review, now - 30 * MIN);
    moved_recently.updated_at = T0;
    assert_eq!(fires(&tr, &moved_recently, no_context(), now), None);
}

#[test]
fn blocker_duration_fires_after_the_duration_and_only_when_blocked() {
    let tr = trigger(json!({"kind": "blocker_duration", "durationMs": 30 * MIN}));
    let t = task(TaskStatus::Blocked, T0);
    assert_eq!(fires(&tr, &t, no_context(), T0 + 30 * MIN - 1), None);
    assert_eq!(fires(&tr, &t, no_context(), T0 + 30 * MIN), None);
    assert!(fires(&tr, &t, no_context(), T0 + 30 * MIN + 1).is_some());
    assert_eq!(
        fires(&tr, &t, no_context(), T0 + 31 * MIN).as_deref(),
        Some("blocked for 31 min")
    );
    let ready = task(TaskStatus::Ready, T0);
    assert_eq!(fires(&tr, &ready, no_context(), T0 + DAY), None);
}

#[test]
fn slo_consumed_fires_at_exactly_the_percentage() {
    let tr = trigger(json!({"kind": "slo_consumed", "percent": 75}));
    let mut t = task(TaskStatus::InProgress, T0);
    t.slo_deadline_at = Some(T0 + 4 * HOUR);
    // 75 % of 4 h is 3 h.
    assert_eq!(fires(&tr, &t, no_context(), T0 + 3 * HOUR - 1), None);
    assert_eq!(
        fires(&tr, &t, no_context(), T0 + 3 * HOUR).as_deref(),
        Some("75% of the SLO used (1 h left)")
    );
    assert!(fires(&tr, &t, no_context(), T0 + 3 * HOUR + 1).is_some());
    assert_eq!(
        fires(&tr, &t, no_context(), T0 + 5 * HOUR).as_deref(),
        Some("125% of the SLO used (none left)")
    );
}

#[test]
fn slo_consumed_never_fires_without_a_deadline_and_defaults_to_75_percent() {
    let tr = trigger(json!({"kind": "slo_consumed"}));
    assert_eq!(tr, Trigger::SloConsumed { percent: 75 });
    assert_eq!(DEFAULT_SLO_PERCENT, 75);

    let no_deadline = task(TaskStatus::InProgress, T0);
    assert_eq!(no_deadline.slo_deadline_at, None);
    assert_eq!(fires(&tr, &no_deadline, no_context(), T0 + 365 * DAY), None);

    let mut t = task(TaskStatus::Ready, T0);
    t.slo_deadline_at = Some(T0 + 100 * MIN);
    assert_eq!(fires(&tr, &t, no_context(), T0 + 75 * MIN - 1), None);
    assert!(fires(&tr, &t, no_context(), T0 + 75 * MIN).is_some());
}

#[test]
fn attempts_exceeded_fires_when_the_failure_count_is_reached() {
    let tr = trigger(json!({"kind": "attempts_exceeded", "attempts": 3}));
    let mut t = task(TaskStatus::Ready, T0);
    t.failures = vec![failure("timeout", T0), failure("crash", T0 + 1)];
    assert_eq!(fires(&tr, &t, no_context(), T0 + HOUR), None);
    t.failures.push(failure("timeout", T0 + 2));
    assert_eq!(
        fires(&tr, &t, no_context(), T0 + HOUR).as_deref(),
        Some("3 failed attempts by its assignee")
    );
    t.failures.push(failure("oom", T0 + 3));
    assert_eq!(
        fires(&tr, &t, no_context(), T0 + HOUR).as_deref(),
        Some("4 failed attempts by its assignee")
    );
    // Given to someone else, the count starts over: their own failures, not the earlier ones.
    t.assignee_id = Some("a2".into());
    assert_eq!(fires(&tr, &t, no_context(), T0 + HOUR), None);
    let theirs = |at| TaskFailure {
        agent_id: Some("a2".into()),
        ..failure("timeout", at)
    };
    t.failures.extend([theirs(T0 + 4), theirs(T0 + 5)]);
    assert_eq!(fires(&tr, &t, no_context(), T0 + HOUR), None);
    t.failures.push(theirs(T0 + 6));
    assert!(fires(&tr, &t, no_context(), T0 + HOUR).is_some());
    // Without an assignee, every failure counts.
    t.assignee_id = None;
    assert_eq!(
        fires(&tr, &t, no_context(), T0 + HOUR).as_deref(),
        Some("7 failed attempts")
    );
}

#[test]
fn error_pattern_counts_only_that_kind_within_the_window_inclusive() {
    let tr = trigger(json!({"kind": "error_pattern", "errorKind": "timeout", "count": 2, "windowMs": 10 * MIN}));
    let now = T0 + HOUR;
    let mut t = task(TaskStatus::InProgress, T0);
    t.failures = vec![
        failure("timeout", now - 10 * MIN - 1), // just outside the window
        failure("crash", now - MIN),            // another kind
        failure("timeout", now - MIN),
    ];
    assert_eq!(fires(&tr, &t, no_context(), now), None);

    // Exactly at the window's edge counts.
    t.failures.push(failure("timeout", now - 10 * MIN));
    assert_eq!(
        fires(&tr, &t, no_context(), now).as_deref(),
        Some("2 'timeout' failures in the last 10 min")
    );
    // One millisecond later the edge failure has aged out.
    assert_eq!(fires(&tr, &t, no_context(), now + 1), None);
}

#[test]
fn no_heartbeat_counts_silence_from_the_later_of_heartbeat_and_status_change() {
    let tr = trigger(json!({"kind": "no_heartbeat", "durationMs": 15 * MIN}));
    let t = task(TaskStatus::InProgress, T0);

    // Heartbeat after the claim: silence counts from the heartbeat.
    let beat = TaskContext {
        assignee_heartbeat_at: Some(T0 + HOUR),
        ..TaskContext::default()
    };
    assert_eq!(fires(&tr, &t, beat, T0 + HOUR + 15 * MIN), None);
    assert_eq!(
        fires(&tr, &t, beat, T0 + HOUR + 15 * MIN + 1).as_deref(),
        Some("assignee silent for 15 min")
    );

    // A heartbeat older than the claim: silence counts from the claim.
    let old_beat = TaskContext {
        assignee_heartbeat_at: Some(T0 - DAY),
        ..TaskContext::default()
    };
    assert_eq!(fires(&tr, &t, old_beat, T0 + 15 * MIN), None);
    assert!(fires(&tr, &t, old_beat, T0 + 15 * MIN + 1).is_some());

    // Never a heartbeat: from the claim too.
    assert_eq!(fires(&tr, &t, no_context(), T0 + 15 * MIN), None);
    assert_eq!(
        fires(&tr, &t, no_context(), T0 + 20 * MIN).as_deref(),
        Some("assignee silent for 20 min")
    );
}

#[test]
fn no_heartbeat_needs_an_assigned_task_in_progress() {
    let tr = trigger(json!({"kind": "no_heartbeat", "durationMs": MIN}));
    let late = T0 + DAY;
    for status in [
        TaskStatus::Ready,
        TaskStatus::Review,
        TaskStatus::Blocked,
        TaskStatus::Backlog,
    ] {
        assert_eq!(fires(&tr, &task(status, T0), no_context(), late), None, "{status}");
    }
    let mut unassigned = task(TaskStatus::InProgress, T0);
    unassigned.assignee_id = None;
    assert_eq!(fires(&tr, &unassigned, no_context(), late), None);
}

#[test]
fn unassigned_fires_for_ready_unassigned_tasks_strictly_after_the_duration() {
    let tr = trigger(json!({"kind": "unassigned", "durationMs": HOUR}));
    let mut t = task(TaskStatus::Ready, T0);
    t.assignee_id = None;
    assert_eq!(fires(&tr, &t, no_context(), T0 + HOUR), None);
    assert_eq!(
        fires(&tr, &t, no_context(), T0 + HOUR + 1).as_deref(),
        Some("ready and unassigned for 1 h")
    );

    let assigned = task(TaskStatus::Ready, T0);
    assert_eq!(fires(&tr, &assigned, no_context(), T0 + DAY), None);
    let mut backlog = task(TaskStatus::Backlog, T0);
    backlog.assignee_id = None;
    assert_eq!(fires(&tr, &backlog, no_context(), T0 + DAY), None);
}

#[test]
fn finished_tasks_never_fire() {
    let triggers = [
        json!({"kind": "time_in_status", "status": "in_progress", "durationMs": 1}),
        json!({"kind": "blocker_duration", "durationMs": 1}),
        json!({"kind": "slo_consumed", "percent": 1}),
        json!({"kind": "slo_at_risk"}),
        json!({"kind": "attempts_exceeded", "attempts": 1}),
        json!({"kind": "error_pattern", "errorKind": "timeout", "count": 1, "windowMs": DAY}),
        json!({"kind": "no_heartbeat", "durationMs": 1}),
        json!({"kind": "unassigned", "durationMs": 1}),
    ];
    let now = T0 + 10 * DAY;
    for status in [TaskStatus::Done, TaskStatus::Cancelled] {
        let mut t = task(status, T0);
        t.slo_deadline_at = Some(T0 + HOUR);
        t.failures = vec![failure("timeout", now - 1)];
        for tr in &triggers {
            let tr = trigger(tr.clone());
            assert_eq!(fires(&tr, &t, no_context(), now), None, "{status}: {}", tr.kind());
        }
        t.assignee_id = None;
        let unassigned = trigger(triggers[6].clone());
        assert_eq!(fires(&unassigned, &t, no_context(), now), None, "{status}");
    }
}

// ---------------------------------------------------------------- applicability and matches

#[test]
fn applicability_filters_by_tags_statuses_priorities_and_mission() {
    let mut t = task(TaskStatus::Blocked, T0);
    t.tags = vec!["backend".into(), "db".into()];
    t.priority = Priority::P1;
    t.mission_id = Some("m1".into());

    let any = Applicability::default();
    assert!(any.matches(&t), "empty lists mean any");

    let tags = |tags: &[&str]| Applicability {
        tags: tags.iter().map(|s| s.to_string()).collect(),
        ..Applicability::default()
    };
    assert!(tags(&["frontend", "db"]).matches(&t), "any one tag is enough");
    assert!(!tags(&["frontend"]).matches(&t));

    let statuses = |statuses: Vec<TaskStatus>| Applicability {
        statuses,
        ..Applicability::default()
    };
    assert!(statuses(vec![TaskStatus::Ready, TaskStatus::Blocked]).matches(&t));
    assert!(!statuses(vec![TaskStatus::InProgress]).matches(&t));

    let priorities = |priorities: Vec<Priority>| Applicability {
        priorities,
        ..Applicability::default()
    };
    assert!(priorities(vec![Priority::P0, Priority::P1]).matches(&t));
    assert!(!priorities(vec![Priority::P2]).matches(&t));

    let mission = |m: &str| Applicability {
        mission_id: Some(m.into()),
        ..Applicability::default()
    };
    assert!(mission("m1").matches(&t));
    assert!(!mission("m2").matches(&t));
    let mut no_mission = t.clone();
    no_mission.mission_id = None;
    assert!(!mission("m1").matches(&no_mission));

    // All filters must hold together.
    let all = Applicability {
        tags: vec!["db".into()],
        statuses: vec![TaskStatus::Blocked],
        priorities: vec![Priority::P1],
        mission_id: Some("m1".into()),
    };
    assert!(all.matches(&t));
    let mut other_priority = t.clone();
    other_priority.priority = Priority::P3;
    assert!(!all.matches(&other_priority));
}

#[test]
fn matches_needs_an_enabled_applicable_rule_and_reports_the_first_firing_trigger() {
    let now = T0 + 2 * HOUR;
    let mut t = task(TaskStatus::Blocked, T0);
    t.tags = vec!["db".into()];
    let mut r = rule(
        "r1",
        50,
        0,
        json!([
            {"kind": "attempts_exceeded", "attempts": 5},
            {"kind": "blocker_duration", "durationMs": HOUR},
            {"kind": "time_in_status", "status": "blocked", "durationMs": HOUR}
        ]),
    );
    assert_eq!(
        matches(&r, &t, no_context(), now),
        Some(Firing {
            trigger: "blocker_duration".into(),
            reason: "blocked for 2 h".into(),
        })
    );

    r.applies_to.tags = vec!["frontend".into()];
    assert_eq!(matches(&r, &t, no_context(), now), None, "not applicable");
    r.applies_to.tags = vec!["db".into()];
    assert!(matches(&r, &t, no_context(), now).is_some());

    r.enabled = false;
    assert_eq!(matches(&r, &t, no_context(), now), None, "disabled rules never match");

    r.enabled = true;
    assert_eq!(matches(&r, &t, no_context(), T0 + HOUR), None, "no trigger fires yet");
}

// ---------------------------------------------------------------- decide

fn blocked_for(duration: i64) -> Value {
    json!([{"kind": "blocker_duration", "durationMs": duration}])
}

#[test]
fn decide_fires_only_the_highest_priority_matching_rule() {
    let now = T0 + 2 * HOUR;
    let t = task(TaskStatus::Blocked, T0);
    let rules = vec![
        rule("low", 10, 0, blocked_for(MIN)),
        rule("high", 90, 5, blocked_for(HOUR)),
        rule("top-but-not-firing", 100, 0, blocked_for(DAY)),
        rule("mid", 50, 0, blocked_for(MIN)),
    ];
    let d = decide(&rules, &t, no_context(), &BTreeMap::new(), MAX_DEPTH, now);
    let (id, level, firing) = d.fire.unwrap();
    assert_eq!((id.as_str(), level), ("high", 1));
    assert_eq!(firing.trigger, "blocker_duration");
    assert_eq!(firing.reason, "blocked for 2 h");
    assert_eq!(d.held_back, None);
    assert!(d.resolve.is_empty());
}

#[test]
fn decide_breaks_priority_ties_by_the_older_rule() {
    let now = T0 + 2 * HOUR;
    let t = task(TaskStatus::Blocked, T0);
    let rules = vec![
        rule("newer", 50, 200, blocked_for(MIN)),
        rule("older", 50, 100, blocked_for(MIN)),
    ];
    let d = decide(&rules, &t, no_context(), &BTreeMap::new(), MAX_DEPTH, now);
    assert_eq!(d.fire.unwrap().0, "older");
}

#[test]
fn decide_holds_everything_back_while_the_top_rule_cools_down() {
    let now = T0 + 2 * HOUR;
    let t = task(TaskStatus::Blocked, T0);
    let rules = vec![
        rule("high", 90, 0, blocked_for(HOUR)),
        rule("low", 10, 0, blocked_for(MIN)),
    ];
    assert_eq!(rules[0].cooldown_ms, DEFAULT_COOLDOWN_MS);
    // "high" fired 10 min ago; its 30 min cooldown has 20 min left.
    let open = ladders(&[("high", 1, now - 10 * MIN)]);
    let d = decide(&rules, &t, no_context(), &open, MAX_DEPTH, now);
    assert_eq!(d.fire, None, "a lower rule does not step in");
    assert_eq!(
        d.held_back.as_deref(),
        Some("'high' matches (blocked for 2 h) but is cooling down for 20 min")
    );
    assert!(d.resolve.is_empty(), "the cooling rule still matches");

    // One millisecond before the cooldown ends: still held back.
    let open = ladders(&[("high", 1, now - DEFAULT_COOLDOWN_MS + 1)]);
    let d = decide(&rules, &t, no_context(), &open, MAX_DEPTH, now);
    assert_eq!(d.fire, None);
    assert!(d.held_back.is_some());
}

#[test]
fn decide_climbs_the_ladder_one_level_per_cooldown() {
    let now = T0 + 2 * HOUR;
    let t = task(TaskStatus::Blocked, T0);
    let rules = vec![rule("r", 50, 0, blocked_for(HOUR))];

    let none = decide(&rules, &t, no_context(), &BTreeMap::new(), MAX_DEPTH, now);
    assert_eq!(none.fire.map(|f| f.1), Some(1), "no open ladder: level 1");

    let open = ladders(&[("r", 1, now - DEFAULT_COOLDOWN_MS)]);
    let d = decide(&rules, &t, no_context(), &open, MAX_DEPTH, now);
    assert_eq!(
        d.fire.map(|f| (f.0, f.1)),
        Some(("r".to_string(), 2)),
        "exactly the cooldown later"
    );
    assert_eq!(d.held_back, None);

    let open = ladders(&[("r", 2, now - HOUR)]);
    let d = decide(&rules, &t, no_context(), &open, MAX_DEPTH, now);
    assert_eq!(d.fire.map(|f| f.1), Some(3));
}

#[test]
fn decide_skips_a_rule_at_the_maximum_depth_and_lets_the_next_fire() {
    let now = T0 + 2 * HOUR;
    let t = task(TaskStatus::Blocked, T0);
    let rules = vec![
        rule("high", 90, 0, blocked_for(HOUR)),
        rule("low", 10, 0, blocked_for(MIN)),
    ];
    // "high" is at the top of its ladder (and long past its cooldown).
    let open = ladders(&[("high", MAX_DEPTH, now - DAY)]);
    let d = decide(&rules, &t, no_context(), &open, MAX_DEPTH, now);
    let (id, level, _) = d.fire.unwrap();
    assert_eq!((id.as_str(), level), ("low", 1));
    assert!(
        d.resolve.is_empty(),
        "the capped rule still matches: its ladder stays open"
    );

    // Alone, the capped rule fires nothing and holds nothing back.
    let d = decide(&rules[..1], &t, no_context(), &open, MAX_DEPTH, now);
    assert_eq!(
        d,
        Decision {
            fire: None,
            held_back: None,
            resolve: vec![]
        }
    );
}

#[test]
fn decide_resolves_open_ladders_whose_rule_no_longer_matches() {
    let now = T0 + 2 * HOUR;
    let rules = vec![
        rule("blocked", 90, 0, blocked_for(HOUR)),
        rule(
            "slow",
            50,
            0,
            json!([{"kind": "time_in_status", "status": "in_progress", "durationMs": HOUR}]),
        ),
    ];
    let open = ladders(&[
        ("blocked", 2, now - HOUR),
        ("slow", 1, now - HOUR),
        ("deleted", 1, now - HOUR),
    ]);

    // The task was unblocked and is now in progress: "blocked" no longer matches.
    let t = task(TaskStatus::InProgress, T0);
    let d = decide(&rules, &t, no_context(), &open, MAX_DEPTH, now);
    assert_eq!(d.resolve, vec!["blocked".to_string(), "deleted".to_string()]);
    assert_eq!(d.fire.map(|f| (f.0, f.1)), Some(("slow".to_string(), 2)));

    // Finished: everything resolves, nothing fires.
    let done = task(TaskStatus::Done, T0);
    let d = decide(&rules, &done, no_context(), &open, MAX_DEPTH, now);
    assert_eq!(d.resolve, vec!["blocked", "deleted", "slow"]);
    assert_eq!(d.fire, None);
    assert_eq!(d.held_back, None);
}

// ---------------------------------------------------------------- validation

#[test]
fn create_rule_applies_defaults_and_trims() {
    let d = draft(with(valid_draft(), "name", json!("  blocked too long  ")));
    let r = create_rule(d, "r1".into(), T0).unwrap();
    assert_eq!(r.name, "blocked too long");
    assert!(r.enabled);
    assert_eq!(r.priority, DEFAULT_RULE_PRIORITY);
    assert_eq!(r.cooldown_ms, DEFAULT_COOLDOWN_MS);
    assert_eq!(r.applies_to, Applicability::default());
    assert_eq!((r.created_at, r.updated_at), (T0, T0));
    assert_eq!(r.actions, vec![Action::Escalate { to: EscalateTo::Lead }]);
}

#[test]
fn create_rule_rejects_empty_triggers_or_actions() {
    let create = |v: Value| create_rule(draft(v), "r".into(), T0);
    assert_eq!(
        invalid_field(create(with(valid_draft(), "triggers", json!([])))),
        "triggers"
    );
    assert_eq!(
        invalid_field(create(with(valid_draft(), "actions", json!([])))),
        "actions"
    );
    assert_eq!(invalid_field(create(with(valid_draft(), "name", json!("   ")))), "name");
}

#[test]
fn create_rule_rejects_durations_outside_1_ms_to_365_days() {
    let create = |tr: Value| create_rule(draft(with(valid_draft(), "triggers", json!([tr]))), "r".into(), T0);
    for bad in [0, -1, 365 * DAY + 1] {
        for kind in ["blocker_duration", "no_heartbeat", "unassigned"] {
            let field = invalid_field(create(json!({"kind": kind, "durationMs": bad})));
            assert_eq!(field, "triggers.durationMs", "{kind} {bad}");
        }
        let field = invalid_field(create(
            json!({"kind": "time_in_status", "status": "review", "durationMs": bad}),
        ));
        assert_eq!(field, "triggers.durationMs", "time_in_status {bad}");
        let field = invalid_field(create(
            json!({"kind": "error_pattern", "errorKind": "timeout", "count": 2, "windowMs": bad}),
        ));
        assert_eq!(field, "triggers.windowMs", "error_pattern {bad}");
    }
    assert!(create(json!({"kind": "blocker_duration", "durationMs": 1})).is_ok());
    assert!(create(json!({"kind": "blocker_duration", "durationMs": 365 * DAY})).is_ok());
}

#[test]
fn create_rule_rejects_bad_priority_cooldown_and_counts() {
    let create = |v: Value| create_rule(draft(v), "r".into(), T0);
    for bad in [-1, 101] {
        assert_eq!(
            invalid_field(create(with(valid_draft(), "priority", json!(bad)))),
            "priority"
        );
    }
    assert!(create(with(valid_draft(), "priority", json!(0))).is_ok());
    assert!(create(with(valid_draft(), "priority", json!(100))).is_ok());
    assert_eq!(
        invalid_field(create(with(valid_draft(), "cooldownMs", json!(-1)))),
        "cooldownMs"
    );
    assert!(create(with(valid_draft(), "cooldownMs", json!(0))).is_ok());

    let with_trigger = |tr: Value| create(with(valid_draft(), "triggers", json!([tr])));
    assert_eq!(
        invalid_field(with_trigger(json!({"kind": "slo_consumed", "percent": 0}))),
        "triggers.percent"
    );
    assert_eq!(
        invalid_field(with_trigger(json!({"kind": "attempts_exceeded", "attempts": 0}))),
        "triggers.attempts"
    );
    assert_eq!(
        invalid_field(with_trigger(
            json!({"kind": "error_pattern", "errorKind": "timeout", "count": 0, "windowMs": MIN})
        )),
        "triggers.count"
    );
    assert_eq!(
        invalid_field(with_trigger(
            json!({"kind": "error_pattern", "errorKind": " ", "count": 1, "windowMs": MIN})
        )),
        "triggers.errorKind"
    );
}

#[test]
fn create_rule_rejects_time_in_status_on_a_finished_status() {
    for status in ["done", "cancelled"] {
        let tr = json!([{"kind": "time_in_status", "status": status, "durationMs": HOUR}]);
        let result = create_rule(draft(with(valid_draft(), "triggers", tr)), "r".into(), T0);
        assert_eq!(invalid_field(result), "triggers.status", "{status}");
    }
}

#[test]
fn create_rule_checks_notify_and_webhook_actions() {
    let create = |action: Value| create_rule(draft(with(valid_draft(), "actions", json!([action]))), "r".into(), T0);
    assert_eq!(
        invalid_field(create(json!({"kind": "notify_assignee"}))),
        "actions.subject",
        "neither template nor subject"
    );
    assert_eq!(
        invalid_field(create(json!({"kind": "notify_assignee", "body": "only a body"}))),
        "actions.subject"
    );
    assert_eq!(
        invalid_field(create(
            json!({"kind": "notify_assignee", "template": "stuck", "subject": "hi"})
        )),
        "actions.template"
    );
    assert!(create(json!({"kind": "notify_assignee", "template": "stuck"})).is_ok());
    assert!(create(json!({"kind": "notify_assignee", "subject": "Stuck?", "body": "Need help?"})).is_ok());

    for bad in ["ftp://example.com/hook", "example.com/hook", ""] {
        assert_eq!(
            invalid_field(create(json!({"kind": "webhook", "url": bad}))),
            "actions.url",
            "{bad:?}"
        );
    }
    assert!(create(json!({"kind": "webhook", "url": "https://example.com/hook"})).is_ok());
    assert!(create(json!({"kind": "webhook", "url": "http://localhost:9000"})).is_ok());
    assert!(
        create(json!({"kind": "webhook"})).is_ok(),
        "no url: the configured default"
    );
}

#[test]
fn apply_patch_keeps_other_fields_and_bumps_updated_at() {
    let original = create_rule(draft(valid_draft()), "r1".into(), T0).unwrap();
    let patch: RulePatch = serde_json::from_value(json!({"priority": 80, "enabled": false})).unwrap();
    let patched = apply_patch(&original, patch, T0 + HOUR).unwrap();
    assert_eq!(patched.priority, 80);
    assert!(!patched.enabled);
    assert_eq!(patched.updated_at, T0 + HOUR);
    assert_eq!(
        EscalationRule {
            priority: original.priority,
            enabled: original.enabled,
            updated_at: original.updated_at,
            ..patched
        },
        original,
        "everything else is unchanged"
    );
}

#[test]
fn a_failed_patch_is_rejected_and_leaves_the_rule_untouched() {
    let original = create_rule(draft(valid_draft()), "r1".into(), T0).unwrap();
    let before = original.clone();
    let patches = [
        (json!({"triggers": []}), "triggers"),
        (json!({"actions": []}), "actions"),
        (json!({"priority": 101}), "priority"),
        (json!({"cooldownMs": -5}), "cooldownMs"),
        (
            json!({"triggers": [{"kind": "unassigned", "durationMs": 0}]}),
            "triggers.durationMs",
        ),
        (json!({"actions": [{"kind": "webhook", "url": "x"}]}), "actions.url"),
    ];
    for (patch, field) in patches {
        let patch: RulePatch = serde_json::from_value(patch).unwrap();
        assert_eq!(invalid_field(apply_patch(&original, patch, T0 + HOUR)), field);
    }
    assert_eq!(original, before);
}

// ---------------------------------------------------------------- serde

#[test]
fn unknown_kinds_and_fields_fail_to_deserialize() {
    let trigger = |v: Value| serde_json::from_value::<Trigger>(v);
    assert!(trigger(json!({"kind": "too_slow", "durationMs": 1})).is_err());
    assert!(trigger(json!({"kind": "blocker_duration", "durationMs": 1, "extra": true})).is_err());
    assert!(
        trigger(json!({"kind": "blocker_duration", "duration_ms": 1})).is_err(),
        "camelCase only"
    );
    assert!(trigger(json!({"durationMs": 1})).is_err(), "no kind");
    assert_eq!(
        trigger(json!({"kind": "blocker_duration", "durationMs": 5})).unwrap(),
        Trigger::BlockerDuration { duration_ms: 5 }
    );

    let action = |v: Value| serde_json::from_value::<Action>(v);
    assert!(action(json!({"kind": "page_someone"})).is_err());
    assert!(action(json!({"kind": "escalate", "level": 2})).is_err());
    assert!(action(json!({"kind": "set_priority", "priority": "P9"})).is_err());
    assert_eq!(
        action(json!({"kind": "reassign"})).unwrap(),
        Action::Reassign {
            strategy: Strategy::Balanced
        }
    );

    let mut unknown_rule_field = valid_draft();
    unknown_rule_field["severity"] = json!("high");
    assert!(serde_json::from_value::<RuleDraft>(unknown_rule_field).is_err());
    assert!(serde_json::from_value::<RulePatch>(json!({"severity": 1})).is_err());
}

#[test]
fn escalate_to_parses_lead_human_and_agent() {
    let parse = |v: Value| serde_json::from_value::<EscalateTo>(v);
    assert_eq!(parse(json!("lead")).unwrap(), EscalateTo::Lead);
    assert_eq!(parse(json!("human")).unwrap(), EscalateTo::Human);
    assert_eq!(parse(json!("agent:bob")).unwrap(), EscalateTo::Agent("bob".into()));
    assert!(parse(json!("boss")).is_err());
    assert!(parse(json!("agent:")).is_err());
    assert!(parse(json!("agent:  ")).is_err());
    assert_eq!(
        serde_json::to_value(EscalateTo::Agent("bob".into())).unwrap(),
        json!("agent:bob")
    );
    assert_eq!(
        serde_json::from_value::<Action>(json!({"kind": "escalate", "to": "agent:bob"})).unwrap(),
        Action::Escalate {
            to: EscalateTo::Agent("bob".into())
        }
    );
}

fn history(rule: Option<&str>, name: &str, triggered: i64, resolved: Option<i64>, useful: Option<bool>) -> Escalation {
    Escalation {
        id: format!("{name}-{triggered}"),
        rule_id: rule.map(str::to_string),
        rule_name: name.to_string(),
        task_id: Some("t".into()),
        message_id: None,
        level: 1,
        trigger: "time_in_status".into(),
        reason: "stuck".into(),
        actions: vec![],
        triggered_at: triggered,
        resolved_at: resolved,
        useful,
        rated_at: useful.map(|_| triggered),
    }
}

#[test]
fn stats_count_firings_resolution_times_and_accuracy_per_rule() {
    let lines = stats(&[
        history(Some("r1"), "stuck", 0, Some(1_000), Some(true)),
        history(Some("r1"), "stuck", 10, Some(3_010), Some(false)),
        history(Some("r1"), "stuck", 20, None, Some(true)),
        history(None, "slo_breach", 5, None, None),
    ]);
    assert_eq!(lines.len(), 2);
    let stuck = &lines[0];
    assert_eq!((stuck.firings, stuck.open, stuck.resolved), (3, 1, 2));
    assert_eq!(stuck.mean_resolution_ms, Some(2_000));
    assert_eq!((stuck.rated, stuck.useful), (3, 2));
    assert_eq!(stuck.accuracy, Some(0.667));
    let builtin = &lines[1];
    assert_eq!((builtin.rule_id.as_deref(), builtin.firings), (None, 1));
    assert_eq!((builtin.mean_resolution_ms, builtin.accuracy), (None, None));
}

#[test]
fn stats_keep_a_renamed_rule_on_one_line_under_its_latest_name() {
    let lines = stats(&[
        history(Some("r1"), "before", 0, None, None),
        history(None, "ack_deadline", 5, None, None),
        history(Some("r1"), "after", 10, None, None),
        history(None, "ack_deadline", 15, None, None),
    ]);
    let names: Vec<(Option<&str>, &str, usize)> = lines
        .iter()
        .map(|l| (l.rule_id.as_deref(), l.rule_name.as_str(), l.firings))
        .collect();
    assert_eq!(names, vec![(None, "ack_deadline", 2), (Some("r1"), "after", 2)]);
}

#[test]
fn webhook_headers_must_be_valid_http_headers() {
    let with_headers = |name: &str, value: &str| {
        let mut headers = BTreeMap::new();
        headers.insert(name.to_string(), value.to_string());
        Action::Webhook { url: None, headers }
    };
    assert!(check_action(&with_headers("X-Token", "abc def")).is_ok());
    for (name, value) in [("", "x"), ("Bad Name", "x"), ("X-Ok", "line\nbreak"), ("X-Ok", "é")] {
        let err = check_action(&with_headers(name, value)).unwrap_err();
        assert!(
            matches!(
                err,
                RuleViolation::Invalid {
                    field: "actions.headers",
                    ..
                }
            ),
            "{name:?}: {err:?}"
        );
    }
}

// --- Chains of blocked tasks --------------------------------------------------------------------------------

const HEARTBEAT_TIMEOUT: i64 = 5 * MIN;

/// An open task upstream, in `status` since `since`, assigned to `a1` unless `assignee` is false.
fn upstream(id: &str, status: TaskStatus, since: i64, assignee: bool) -> Task {
    let mut t = task(status, since);
    t.id = id.into();
    if !assignee {
        t.assignee_id = None;
    }
    t
}

fn chain_context(blocked: &Task, upstream: &[(&Task, Option<i64>)], now: i64) -> TaskContext {
    TaskContext {
        chain: chain_summary(blocked, upstream.iter().copied(), now, HEARTBEAT_TIMEOUT),
        ..TaskContext::default()
    }
}

#[test]
fn upstream_is_the_transitive_closure_of_the_blockers() {
    let mut g = crate::domain::dependency::BlockedBy::new();
    for (t, b) in [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("d", "e"), ("x", "y")] {
        g.entry(t.to_string()).or_default().insert(b.to_string());
    }
    assert_eq!(upstream_of("a", &g), ["b", "c", "d", "e"]);
    assert_eq!(upstream_of("d", &g), ["e"]);
    assert!(upstream_of("e", &g).is_empty());
}

#[test]
fn a_chain_moves_when_an_upstream_task_is_worked_on_by_a_live_assignee() {
    let now = T0 + 2 * HOUR;
    let blocked = task(TaskStatus::Blocked, T0);
    let working = upstream("w", TaskStatus::InProgress, T0 + 10 * MIN, true);
    // Live: a heartbeat exactly at the timeout's edge.
    let live = chain_summary(
        &blocked,
        [(&working, Some(now - HEARTBEAT_TIMEOUT))],
        now,
        HEARTBEAT_TIMEOUT,
    );
    assert_eq!(
        live,
        ChainSummary {
            upstream: 1,
            moving: true,
            last_progress_at: Some(now - HEARTBEAT_TIMEOUT)
        }
    );
    // One millisecond older: silent, not moving; the progress is the last status change.
    let silent = chain_summary(
        &blocked,
        [(&working, Some(now - HEARTBEAT_TIMEOUT - 1))],
        now,
        HEARTBEAT_TIMEOUT,
    );
    assert_eq!(
        silent,
        ChainSummary {
            upstream: 1,
            moving: false,
            last_progress_at: Some(T0 + 10 * MIN)
        }
    );
    // In review, or queued (ready) with a live assignee, moves too, and so does work waiting in the pool
    // (ready, unassigned: queueing); work in progress without an assignee, or finished, does not.
    let review = upstream("r", TaskStatus::Review, T0, true);
    assert!(chain_summary(&blocked, [(&review, Some(now))], now, HEARTBEAT_TIMEOUT).moving);
    let queued = upstream("q", TaskStatus::Ready, T0, true);
    assert!(chain_summary(&blocked, [(&queued, Some(now))], now, HEARTBEAT_TIMEOUT).moving);
    let waiting = upstream("u", TaskStatus::Ready, T0, false);
    let pool = chain_summary(&blocked, [(&waiting, None)], now, HEARTBEAT_TIMEOUT);
    assert!(pool.moving && pool.last_progress_at == Some(now), "{pool:?}");
    let orphan = upstream("o", TaskStatus::InProgress, now, false);
    assert!(!chain_summary(&blocked, [(&orphan, None)], now, HEARTBEAT_TIMEOUT).moving);
    let done = upstream("d", TaskStatus::Done, now, true);
    assert_eq!(
        chain_summary(&blocked, [(&done, Some(now))], now, HEARTBEAT_TIMEOUT).upstream,
        0
    );
    // Taking the work is a sign of life, as for `no_heartbeat`: claimed 2 minutes ago, never a heartbeat.
    let claimed = upstream("c", TaskStatus::InProgress, now - 2 * MIN, true);
    assert!(chain_summary(&blocked, [(&claimed, None)], now, HEARTBEAT_TIMEOUT).moving);
}

#[test]
fn blocker_duration_stays_quiet_while_the_chain_moves() {
    let tr = trigger(json!({"kind": "blocker_duration", "durationMs": 30 * MIN}));
    let blocked = task(TaskStatus::Blocked, T0);
    let blocker = upstream("b", TaskStatus::InProgress, T0 + 5 * MIN, true);
    // Hours behind a blocker whose assignee keeps beating: an ordinary wait.
    for now in [T0 + 30 * MIN + 1, T0 + 3 * HOUR, T0 + DAY] {
        let context = chain_context(&blocked, &[(&blocker, Some(now - MIN))], now);
        assert_eq!(fires(&tr, &blocked, context, now), None, "at {now}");
    }
}

#[test]
fn blocker_duration_fires_on_an_idle_chain_at_its_threshold() {
    let tr = trigger(json!({"kind": "blocker_duration", "durationMs": 30 * MIN}));
    let blocked = task(TaskStatus::Blocked, T0);
    // The blocker's assignee fell silent: nothing upstream moves. Still the blocked time must pass.
    let blocker = upstream("b", TaskStatus::InProgress, T0, true);
    let silent_since = Some(T0 + MIN);
    let at = |now: i64| {
        fires(
            &tr,
            &blocked,
            chain_context(&blocked, &[(&blocker, silent_since)], now),
            now,
        )
    };
    assert_eq!(at(T0 + 30 * MIN), None);
    assert_eq!(
        at(T0 + 30 * MIN + 1).as_deref(),
        Some("blocked for 30 min and nothing upstream has moved for 30 min (1 open tasks upstream, none held by a live assignee)")
    );
    // A blocker waiting in the pool for a free agent (ready, unassigned), directly or above a blocked
    // blocker: queueing, never idle, however long it waits.
    let pooled = upstream("f", TaskStatus::Ready, T0, false);
    for now in [T0 + HOUR, T0 + DAY] {
        let context = chain_context(&blocked, &[(&pooled, None)], now);
        assert_eq!(fires(&tr, &blocked, context, now), None);
    }
    let middle = upstream("m", TaskStatus::Blocked, T0, true);
    let context = chain_context(&blocked, &[(&middle, Some(T0 + HOUR)), (&pooled, None)], T0 + HOUR);
    assert_eq!(fires(&tr, &blocked, context, T0 + HOUR), None);
    // A blocked blocker with nothing moving above it (its own blocker's assignee silent): idle.
    let context = chain_context(
        &blocked,
        &[(&middle, Some(T0 + HOUR)), (&blocker, silent_since)],
        T0 + HOUR,
    );
    assert!(fires(&tr, &blocked, context, T0 + HOUR).is_some());
    // Blocked with nothing known upstream (by hand, or behind a cancelled task): time alone, as before.
    assert_eq!(
        fires(
            &tr,
            &blocked,
            chain_context(&blocked, &[], T0 + 31 * MIN),
            T0 + 31 * MIN
        )
        .as_deref(),
        Some("blocked for 31 min")
    );
}

#[test]
fn blocker_duration_fires_when_a_moving_chain_shows_no_progress_for_longer_than_the_threshold() {
    // A threshold shorter than the heartbeat timeout asks for fresher signs of progress than liveness does.
    let tr = trigger(json!({"kind": "blocker_duration", "durationMs": 2 * MIN}));
    let blocked = task(TaskStatus::Blocked, T0);
    let blocker = upstream("b", TaskStatus::InProgress, T0, true);
    let now = T0 + HOUR;
    let beat = |ago: i64| chain_context(&blocked, &[(&blocker, Some(now - ago))], now);
    assert!(beat(4 * MIN).chain.moving, "within the heartbeat timeout");
    assert_eq!(fires(&tr, &blocked, beat(2 * MIN), now), None);
    assert_eq!(
        fires(&tr, &blocked, beat(2 * MIN + 1), now).as_deref(),
        Some("blocked for 1 h and the chain has not progressed for 2 min")
    );
}

// --- SLO at risk by forecast --------------------------------------------------------------------------------

#[test]
fn slo_at_risk_fires_exactly_when_the_projected_finish_passes_the_deadline() {
    let tr = trigger(json!({"kind": "slo_at_risk"}));
    assert_eq!(tr, Trigger::SloAtRisk {});
    assert_eq!(tr.kind(), "slo_at_risk");
    // In progress since T0 with 60 minutes estimated; the deadline at T0 + 2 h.
    let mut t = task(TaskStatus::InProgress, T0);
    t.estimated_minutes = Some(60);
    t.slo_deadline_at = Some(T0 + 2 * HOUR);
    // 30 minutes in, 30 left: finishes at T0 + 1 h, in time.
    assert_eq!(fires(&tr, &t, no_context(), T0 + 30 * MIN), None);
    // 105 minutes in, the 15-minute floor left: finishes exactly at the deadline, which is in time.
    assert_eq!(fires(&tr, &t, no_context(), T0 + 2 * HOUR - 15 * MIN), None);
    assert!(fires(&tr, &t, no_context(), T0 + 2 * HOUR - 15 * MIN + 1).is_some());
    assert_eq!(
        fires(&tr, &t, no_context(), T0 + 2 * HOUR - 14 * MIN).as_deref(),
        Some("projected to finish 1 min after the SLO deadline (14 min left)")
    );
    assert_eq!(
        fires(&tr, &t, no_context(), T0 + 3 * HOUR).as_deref(),
        Some("projected to finish 1 h 15 min after the SLO deadline (none left)")
    );

    // Not started: its place in the queue plus its estimate.
    let mut queued = task(TaskStatus::Ready, T0);
    queued.estimated_minutes = Some(60);
    queued.slo_deadline_at = Some(T0 + 2 * HOUR);
    let start = |at: i64| TaskContext {
        projected_start_at: Some(at),
        ..TaskContext::default()
    };
    assert_eq!(
        fires(&tr, &queued, start(T0 + HOUR), T0),
        None,
        "starts in an hour, done at the deadline"
    );
    assert!(fires(&tr, &queued, start(T0 + HOUR + 1), T0).is_some());
    assert_eq!(
        fires(&tr, &queued, start(T0 + HOUR + MIN), T0).as_deref(),
        Some("projected to finish 1 min after the SLO deadline (2 h left)")
    );
    // Unassigned (no place in a queue): it could start now.
    assert_eq!(fires(&tr, &queued, no_context(), T0 + HOUR), None);
    assert!(fires(&tr, &queued, no_context(), T0 + HOUR + 1).is_some());

    // No deadline, no risk.
    let mut free = queued.clone();
    free.slo_deadline_at = None;
    assert_eq!(fires(&tr, &free, start(T0 + DAY), T0), None);
}

#[test]
fn slo_at_risk_is_a_valid_trigger_with_nothing_to_configure() {
    let d = draft(with(valid_draft(), "triggers", json!([{"kind": "slo_at_risk"}])));
    let rule = create_rule(d, "r".into(), T0).unwrap();
    assert_eq!(rule.triggers, [Trigger::SloAtRisk {}]);
    assert_eq!(
        serde_json::to_value(&rule.triggers).unwrap(),
        json!([{"kind": "slo_at_risk"}])
    );
    let extra: Result<Trigger, _> = serde_json::from_value(json!({"kind": "slo_at_risk", "percent": 75}));
    assert!(extra.is_err(), "unknown fields are refused");
}

// --- The ping-pong guard ------------------------------------------------------------------------------------

fn silent_rule() -> EscalationRule {
    let d = draft(json!({
        "name": "assignee silent",
        "cooldownMs": 30 * MIN,
        "triggers": [{"kind": "no_heartbeat", "durationMs": 10 * MIN}],
        "actions": [{"kind": "notify_assignee", "subject": "hello"}, {"kind": "reassign"}]
    }));
    create_rule(d, "silent".into(), T0).unwrap()
}

fn silent_firing() -> Firing {
    Firing {
        trigger: "no_heartbeat".into(),
        reason: "assignee silent for 11 min".into(),
    }
}

#[test]
fn a_second_silent_assignee_within_the_cooldown_goes_to_the_lead() {
    let rule = silent_rule();
    let now = T0 + HOUR;
    assert_eq!(
        ping_pong(&rule, &silent_firing(), None, now),
        None,
        "the first takeover runs as written"
    );
    let (actions, reason) = ping_pong(&rule, &silent_firing(), Some(now - 30 * MIN + 1), now).unwrap();
    assert_eq!(
        actions,
        [
            Action::NotifyAssignee {
                template: None,
                subject: Some("hello".into()),
                body: None
            },
            Action::Escalate { to: EscalateTo::Lead }
        ]
    );
    assert_eq!(
        reason,
        "assignee silent for 11 min; it was already taken from a silent assignee 29 min ago, so the lead decides \
         instead of a third assignee"
    );
    // At the end of the cooldown the memory no longer holds it back.
    assert_eq!(ping_pong(&rule, &silent_firing(), Some(now - 30 * MIN), now), None);
    // Other triggers, and rules that do not reassign, are left alone.
    let other = Firing {
        trigger: "time_in_status".into(),
        reason: "in progress for 3 h".into(),
    };
    assert_eq!(ping_pong(&rule, &other, Some(now - MIN), now), None);
    let mut notify_only = silent_rule();
    notify_only.actions.truncate(1);
    assert_eq!(ping_pong(&notify_only, &silent_firing(), Some(now - MIN), now), None);
    // A rule that already escalates does not escalate twice.
    let mut both = silent_rule();
    both.actions = vec![
        Action::Escalate { to: EscalateTo::Lead },
        Action::Reassign {
            strategy: Strategy::Balanced,
        },
    ];
    let (actions, _) = ping_pong(&both, &silent_firing(), Some(now - MIN), now).unwrap();
    assert_eq!(actions, [Action::Escalate { to: EscalateTo::Lead }]);
}

#[test]
fn a_takeover_is_a_no_heartbeat_firing_whose_reassign_ran() {
    let result = |kind: &str, status: ActionStatus| ActionResult {
        kind: kind.into(),
        status,
        detail: String::new(),
        outbox_id: None,
    };
    let mut e = Escalation::opened("e".into(), "assignee silent", Some("t".into()), 1, "why".into(), T0);
    e.trigger = "no_heartbeat".into();
    assert!(
        !took_from_silent_assignee(&e),
        "no actions recorded (a crash before they ran)"
    );
    e.actions = vec![result("reassign", ActionStatus::Failed)];
    assert!(!took_from_silent_assignee(&e));
    e.actions = vec![
        result("notify_assignee", ActionStatus::Executed),
        result("reassign", ActionStatus::Executed),
    ];
    assert!(took_from_silent_assignee(&e));
    // Taken, its handoff notice still on its way (or given up): the task changed hands all the same.
    let mut queued = result("reassign", ActionStatus::Pending);
    queued.outbox_id = Some("o1".into());
    e.actions = vec![queued.clone()];
    assert!(took_from_silent_assignee(&e));
    e.actions = vec![ActionResult {
        status: ActionStatus::Dead,
        ..queued
    }];
    assert!(took_from_silent_assignee(&e));
    e.trigger = "attempts_exceeded".into();
    assert!(!took_from_silent_assignee(&e));
}
