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
mod escalation_actions;
mod escalation_defaults;
mod escalation_rules;
mod messages;
mod messaging;
mod messaging_delivery;
mod messaging_load;
mod messaging_ticks;
mod persistence;
mod slo;
mod smoke;
mod suitable_agents;
mod tasks;
