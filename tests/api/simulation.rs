//! A small simulation on the real runtime (5 agents, 50 tasks, one agent that crashes holding work, failures,
//! slow agents, tasks beyond some agents, and a restart halfway): nothing lost, nothing stuck, every message
//! delivered, the crashed agent's work taken back by the escalation rules, the same totals as the same run
//! without the restart, and report figures consistent with the history they come from. The ablation runs the
//! same seed with the rules off and with the capacity checks off.

use crate::common::{Backend, TestDb};
use crate::on_both_backends;
use crate::simulation_lib::report::{prevented_percent, Report};
use crate::simulation_lib::workload::Shape;
use crate::simulation_lib::{run, run_ablation, SimConfig};

fn config(db: &TestDb, restart_at: Option<f64>) -> SimConfig {
    SimConfig {
        shape: Shape {
            agents: 5,
            tasks: 50,
            seed: 7,
            failure_rate: 0.1,
            offline_agents: 1,
        },
        restart_at,
        serial: false,
        database_url: Some(db.url.clone()),
    }
}

/// Everything but the wall time and the restart itself.
fn totals(report: &Report) -> serde_json::Value {
    let mut value = serde_json::to_value(report).expect("report serializes");
    let object = value.as_object_mut().expect("report is an object");
    object.remove("wallSeconds");
    object.remove("restartedAtMinute");
    object["settings"]
        .as_object_mut()
        .expect("settings")
        .remove("restartAtPercent");
    value
}

async fn a_small_team_finishes_everything_across_a_restart(backend: Backend) {
    let Some(db) = TestDb::new(backend) else { return };
    let restarted = run(&config(&db, Some(0.5))).await.expect("simulation runs");

    assert!(restarted.restarted_at_minute.is_some(), "the runtime was restarted");
    let tasks = &restarted.tasks;
    assert_eq!(
        (tasks.total, tasks.done, tasks.lost, tasks.stuck),
        (50, 50, 0, 0),
        "{restarted}"
    );
    let messages = &restarted.messages;
    assert!(messages.sent > 0, "{restarted}");
    assert_eq!(messages.delivered, messages.sent, "{restarted}");
    assert_eq!(messages.delivery_rate_percent, 100.0);
    assert!(restarted.faults.failed_attempts > 0, "{restarted}");
    assert_eq!(restarted.faults.agents_gone_silent, 1);
    assert_eq!(restarted.faults.agents_marked_offline, 1, "{restarted}");
    let silent = restarted
        .escalations
        .by_rule
        .iter()
        .find(|rule| rule.rule == "assignee silent")
        .unwrap_or_else(|| panic!("the silent agent's work was never taken back:\n{restarted}"));
    assert!(silent.fired >= 1 && silent.useful == silent.fired, "{restarted}");
    assert!(restarted.passed());
    figures_are_consistent(&restarted);

    let Some(fresh) = TestDb::new(backend) else { return };
    let straight = run(&config(&fresh, None)).await.expect("simulation runs");
    assert_eq!(
        totals(&straight),
        totals(&restarted),
        "a restart changes nothing:\n{straight}\n{restarted}"
    );
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// Every derived figure is computed from the same history as its parts.
fn figures_are_consistent(report: &Report) {
    let e = &report.escalations;
    assert_eq!(e.total, e.by_rule.iter().map(|r| r.fired).sum::<usize>(), "{report}");
    // The ratings stored in the runtime (what `useful` counts) agree with the judge's verdicts.
    assert_eq!(e.useful, e.by_rule.iter().map(|r| r.useful).sum::<usize>(), "{report}");
    assert_eq!(
        e.useful,
        e.useful_by_reason.iter().map(|r| r.count).sum::<usize>(),
        "{report}"
    );
    assert!(e.total > 0, "{report}");
    assert_eq!(
        e.precision_percent,
        Some(round1(e.useful as f64 * 100.0 / e.total as f64)),
        "{report}"
    );
    assert_eq!(
        e.recall_caught,
        e.recall_by_trouble.iter().map(|r| r.count).sum::<usize>()
    );
    assert_eq!(
        e.recall_cases,
        e.recall_by_trouble.iter().map(|r| r.of.unwrap_or(0)).sum::<usize>()
    );
    assert!(
        e.recall_cases >= e.tasks_ever_stuck,
        "every stuck task is a recall case: {report}"
    );
    assert!(e.recall_cases > 0, "the crashed agent's task needed help: {report}");
    assert_eq!(
        e.recall_percent,
        Some(round1(e.recall_caught as f64 * 100.0 / e.recall_cases as f64))
    );
    assert_eq!(
        e.recall_window_minutes,
        2 * 5 + 30,
        "two heartbeat timeouts and one cooldown"
    );
    let slo = &report.slo;
    assert_eq!(slo.met + slo.missed, slo.with_deadline, "{report}");
    assert_eq!(
        slo.missed as i64, slo.runtime_missed,
        "with every task finished, the truth and the runtime agree on the late ones: {report}"
    );
    let d = &report.dependencies;
    assert!(
        d.dependents_started > 0 && d.start_median_minutes <= d.start_p95_minutes,
        "{report}"
    );
    assert_eq!(
        report.capacity.overloads, 0,
        "with capacity checks on no agent goes over its limits: {report}"
    );
}

async fn the_ablation_switches_off_the_rules_and_the_capacity_checks(backend: Backend) {
    let Some(db) = TestDb::new(backend) else { return };
    let ablation = run_ablation(&config(&db, None)).await.expect("simulation runs");

    assert_eq!(ablation.as_is.settings.variant, "as is");
    assert!(ablation.as_is.passed(), "{}", ablation.as_is);
    let off = &ablation.rules_off;
    assert_eq!(off.settings.variant, "escalation rules off");
    let built_in = ["ack_deadline", "slo_breach"];
    assert!(
        off.escalations
            .by_rule
            .iter()
            .all(|r| built_in.contains(&r.rule.as_str())),
        "only the built-in escalations fire with every rule disabled: {off}"
    );
    assert!(
        off.tasks.stuck > 0,
        "nobody takes the crashed agent's task back without the rules: {off}"
    );
    assert_eq!(
        ablation.breaches_prevented_percent,
        prevented_percent(ablation.as_is.slo.missed, off.slo.missed)
    );

    let unchecked = &ablation.capacity_off;
    assert_eq!(unchecked.settings.variant, "capacity checks off");
    assert!(unchecked.capacity.overloads > 0, "{unchecked}");
    assert_eq!(ablation.as_is.capacity.overloads, 0);
    assert_eq!(ablation.overloads_prevented_percent, Some(100.0));
}

on_both_backends!(
    a_small_team_finishes_everything_across_a_restart,
    the_ablation_switches_off_the_rules_and_the_capacity_checks
);

#[test]
fn prevented_is_one_minus_with_over_without() {
    assert_eq!(prevented_percent(1, 4), Some(75.0));
    assert_eq!(prevented_percent(0, 0), None, "nothing to prevent");
    assert_eq!(prevented_percent(3, 1), Some(-200.0), "worse with it than without");
}
