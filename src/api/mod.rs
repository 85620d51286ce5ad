//! The HTTP API. Handlers are thin: extract, authenticate, forward to an actor address, map the reply.
//! No SQL and no business rule lives here.

mod activity;
mod agents;
mod capacity;
mod errors;
mod escalation;
mod extract;
mod health;
mod messages;
mod openapi;
mod outbox;
pub mod server;
mod slo;
mod stream;
mod tasks;
mod telemetry;
mod templates;

pub use openapi::ApiDoc;

/// Every handler forwards with this: send, and flatten the mailbox error into the reply's error.
use crate::actors::ask as send;
/// For the few requests whose reply is not a `Result`; like `send`, it counts in the mailbox depth.
use crate::actors::request;
use crate::domain::query::{PageRequest, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use crate::error::{AppError, AppResult};
use actix_web::web;

/// The route table.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/api/openapi.json", web::get().to(openapi::document))
        .route("/metrics", web::get().to(telemetry::metrics))
        .service(
            web::scope("/api")
                .route("/agents", web::post().to(agents::register))
                .route("/agents", web::get().to(agents::list))
                .route("/agents/{id}", web::get().to(agents::get))
                .route("/agents/{id}", web::patch().to(agents::update))
                .route("/agents/{id}", web::delete().to(agents::delete))
                .route("/agents/{id}/token/rotate", web::post().to(agents::rotate_token))
                .route("/agents/{id}/heartbeat", web::post().to(agents::heartbeat))
                .route("/agents/{id}/claim", web::post().to(tasks::claim))
                .route("/agents/{id}/capacity", web::get().to(capacity::get))
                .route("/agents/{id}/capacity", web::put().to(capacity::set))
                .route("/agents/{id}/forecast", web::get().to(capacity::forecast))
                .route("/capacity", web::get().to(capacity::fleet))
                .route("/agents/{id}/wake", web::post().to(messages::wake))
                .route("/agents/{id}/stream", web::get().to(stream::stream))
                .route("/agents/{id}/messages", web::post().to(messages::send_message))
                .route("/agents/{id}/messages", web::get().to(messages::inbox))
                .route(
                    "/agents/{id}/messages/from-template",
                    web::post().to(messages::send_from_template),
                )
                .route("/agents/{id}/messages/sent", web::get().to(messages::sent))
                .route("/agents/{id}/messages/search", web::get().to(messages::search))
                .route("/agents/{id}/messages/stats", web::get().to(messages::stats))
                .route("/agents/{id}/messages/read", web::post().to(messages::read_batch))
                .route(
                    "/agents/{id}/messages/{message_id}/read",
                    web::post().to(messages::read_one),
                )
                .route(
                    "/agents/{id}/messages/{message_id}/acknowledge",
                    web::post().to(messages::acknowledge),
                )
                .route("/messages/{id}", web::get().to(messages::get))
                .route("/message-templates", web::post().to(templates::create))
                .route("/message-templates", web::get().to(templates::list))
                .route("/message-templates/{name}", web::get().to(templates::get))
                .route("/message-templates/{name}", web::patch().to(templates::update))
                .route("/message-templates/{name}", web::delete().to(templates::delete))
                .route("/tasks", web::post().to(tasks::create))
                .route("/tasks", web::get().to(tasks::list))
                .route("/tasks/{id}", web::get().to(tasks::get))
                .route("/tasks/{id}", web::patch().to(tasks::update))
                .route("/tasks/{id}", web::delete().to(tasks::delete))
                .route("/tasks/{id}/transition", web::post().to(tasks::transition))
                .route("/tasks/{id}/assign", web::post().to(tasks::assign))
                .route("/tasks/{id}/complete", web::post().to(tasks::complete))
                .route("/tasks/{id}/fail", web::post().to(tasks::fail))
                .route("/tasks/{id}/suitable-agents", web::get().to(capacity::suitable_agents))
                .route("/tasks/{id}/auto-assign", web::post().to(capacity::auto_assign))
                .route("/tasks/{id}/slo", web::get().to(slo::task_slo))
                .route("/slo", web::get().to(slo::overview))
                .route("/slo/breaches", web::get().to(slo::breaches))
                .route("/escalation-rules", web::post().to(escalation::create_rule))
                .route("/escalation-rules", web::get().to(escalation::list_rules))
                .route("/escalation-rules/check-all", web::post().to(escalation::check_all))
                .route(
                    "/escalation-rules/evaluate/{task_id}",
                    web::post().to(escalation::evaluate),
                )
                .route("/escalation-rules/{id}", web::get().to(escalation::get_rule))
                .route("/escalation-rules/{id}", web::patch().to(escalation::update_rule))
                .route("/escalation-rules/{id}", web::delete().to(escalation::delete_rule))
                .route("/escalations", web::get().to(escalation::history))
                .route("/escalations/stats", web::get().to(escalation::stats))
                .route("/escalations/{id}/feedback", web::post().to(escalation::feedback))
                .route("/outbox", web::get().to(outbox::list))
                .route("/outbox/{id}", web::get().to(outbox::get))
                .route("/outbox/{id}/retry", web::post().to(outbox::retry))
                .route("/tasks/{id}/dependencies", web::post().to(tasks::add_dependency))
                .route(
                    "/tasks/{id}/dependencies/{blocker_id}",
                    web::delete().to(tasks::remove_dependency),
                )
                .route("/activity", web::get().to(activity::list)),
        )
        .default_service(web::to(errors::route_not_found));
}

fn page_request(limit: Option<i64>, cursor: Option<String>) -> AppResult<PageRequest> {
    let limit = limit.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&limit) {
        return Err(AppError::validation(
            "limit",
            format!("must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    Ok(PageRequest {
        cursor: cursor.filter(|c| !c.is_empty()),
        limit,
    })
}
