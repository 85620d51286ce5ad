//! Embeds the runtime as a library: a temporary SQLite store, a manual clock, two agents and a small
//! dependency chain. Shows claim order, automatic unblocking and the heartbeat monitor without any HTTP.
//!
//! `cargo run --example quickstart`

use mission_control::actors::directory::messages::{Heartbeat, Register};
use mission_control::actors::task_board::messages::{AddDependency, Claim, Complete, CreateTask, GetTask};
use mission_control::config::Config;
use mission_control::domain::task::CompletionOutcome;
use mission_control::domain::Principal;
use mission_control::{ManualClock, Runtime};
use std::sync::Arc;

#[actix_rt::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let clock = ManualClock::starting_now();
    let mut config = Config::embedded(&dir.path().join("quickstart.db").display().to_string(), dir.path())?;
    config.clock = Arc::new(clock.clone());
    let runtime = Runtime::start(config).await?;
    let h = runtime.handles();
    let admin = Principal::Admin;

    for name in ["ada", "grace"] {
        let draft = serde_json::from_value(serde_json::json!({ "name": name, "specializations": ["rust"] }))?;
        let registered = h
            .directory
            .send(Register {
                draft,
                by: admin.clone(),
            })
            .await??;
        println!("registered {} ({})", registered.agent.name, registered.agent.id);
    }

    let create = |title: &str, assignee: &str, priority: &str| CreateTask {
        draft: serde_json::from_value(
            serde_json::json!({ "title": title, "assigneeId": assignee, "priority": priority }),
        )
        .expect("valid draft"),
        by: Principal::Admin,
    };
    let schema = h.board.send(create("Design the schema", "ada", "P1")).await??;
    let api = h.board.send(create("Build the API on it", "grace", "P0")).await??;
    h.board
        .send(AddDependency {
            id: api.id.clone(),
            blocker_id: schema.id.clone(),
            by: admin.clone(),
        })
        .await??;
    println!(
        "'{}' is {} until '{}' is done",
        api.title,
        h.board.send(GetTask { id: api.id.clone() }).await??.task.status,
        schema.title
    );

    let claimed = h
        .board
        .send(Claim {
            agent: "ada".into(),
            force: false,
            by: admin.clone(),
        })
        .await??;
    println!("ada claimed '{}' ({})", claimed.title, claimed.status);
    let done = Complete {
        id: claimed.id,
        outcome: CompletionOutcome::Done,
        notes: None,
        actual_minutes: Some(42),
        by: admin.clone(),
    };
    h.board.send(done).await??;
    println!(
        "after ada finished, '{}' is {}",
        api.title,
        h.board.send(GetTask { id: api.id.clone() }).await??.task.status
    );

    h.directory
        .send(Heartbeat {
            key: "grace".into(),
            status: None,
            current_task_id: None,
            by: admin.clone(),
        })
        .await??;
    clock.advance_ms(6 * 60_000);
    let report = h.tick().await?;
    println!(
        "six silent minutes later the heartbeat monitor marked offline: {:?}",
        report.went_offline
    );

    runtime.stop().await;
    Ok(())
}
