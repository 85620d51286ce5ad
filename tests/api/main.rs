//! Black-box API tests: the real server on 127.0.0.1:0, a real HTTP client, SQLite and (when
//! `MC_TEST_POSTGRES_URL` is set) PostgreSQL.

mod activity;
mod agent_client;
#[path = "../../examples/agent_client/client.rs"]
mod agent_client_lib;
mod agents;
mod auth;
mod bad_input;
mod capacity;
mod common;
mod dependencies;
mod escalation_accuracy;
mod escalation_actions;
mod escalation_defaults;
mod escalation_rules;
mod loadgen_stats;
/// The load generator's pure logic, tested in `loadgen_stats`; what only the generator uses is unused here.
#[allow(dead_code)]
#[path = "../../examples/loadgen/stats.rs"]
mod loadgen_stats_lib;
mod messages;
mod messaging;
mod messaging_delivery;
mod messaging_load;
mod messaging_ticks;
mod metrics;
mod outbox;
mod persistence;
mod simulation;
// The simulation is an example (`cargo run --example simulate`); this test runs its engine as a module. The
// example's command line uses parts of it that the test does not.
#[allow(dead_code)]
#[path = "../../examples/simulate/sim/mod.rs"]
mod simulation_lib;
mod slo;
mod smoke;
mod suitable_agents;
mod tasks;
mod wiring;
