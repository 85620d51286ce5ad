//! Mission Control: an actor-model runtime for teams of AI agents.
//!
//! Embed it with [`runtime::Runtime::start`] and talk to the returned [`runtime::Handles`], or serve it over
//! HTTP with [`api::server`]. The layers point one way: `api → actors → domain`, `actors → store → domain`.

pub mod actors;
pub mod api;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod ids;
pub mod observability;
pub mod runtime;
pub mod store;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::Config;
pub use runtime::{Handles, Runtime};
