//! A small simulation on the real runtime (5 agents, 50 tasks, one agent that crashes holding work, failures
//! and a restart halfway): nothing lost, nothing stuck, every message delivered, the crashed agent's work
//! taken back by the escalation rules, and the same totals as the same run without the restart.

use crate::common::{Backend, TestDb};
use crate::on_both_backends;
use crate::simulation_lib::report::Report;
use crate::simulation_lib::workload::Shape;
use crate::simulation_lib::{run, SimConfig};

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

    let Some(fresh) = TestDb::new(backend) else { return };
    let straight = run(&config(&fresh, None)).await.expect("simulation runs");
    assert_eq!(
        totals(&straight),
        totals(&restarted),
        "a restart changes nothing:\n{straight}\n{restarted}"
    );
}

on_both_backends!(a_small_team_finishes_everything_across_a_restart);
