//! The OpenAPI 3 document, generated from the handlers' annotations and the types' schemas.

use super::{
    activity, agents, capacity, escalation, health, messages, outbox, slo, stream, tasks, telemetry, templates,
};
use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Mission Control", description = "An actor-model runtime for teams of AI agents."),
    paths(
        health::healthz, telemetry::metrics,
        agents::register, agents::list, agents::get, agents::update, agents::delete, agents::rotate_token,
        agents::heartbeat,
        tasks::create, tasks::list, tasks::get, tasks::update, tasks::transition, tasks::assign, tasks::claim,
        tasks::complete, tasks::fail, tasks::add_dependency, tasks::remove_dependency, tasks::delete,
        activity::list,
        messages::send_message, messages::send_from_template, messages::inbox, messages::sent, messages::search,
        messages::stats, messages::read_batch, messages::read_one, messages::acknowledge, messages::get,
        messages::wake, stream::stream,
        templates::create, templates::list, templates::get, templates::update, templates::delete,
        capacity::get, capacity::set, capacity::forecast, capacity::fleet, capacity::suitable_agents,
        capacity::auto_assign,
        slo::task_slo, slo::overview, slo::breaches,
        escalation::create_rule, escalation::list_rules, escalation::get_rule, escalation::update_rule,
        escalation::delete_rule, escalation::evaluate, escalation::check_all, escalation::history,
        escalation::feedback, escalation::stats,
        outbox::list, outbox::get, outbox::retry,
    ),
    modifiers(&BearerAuth),
    tags((name = "agents"), (name = "tasks"), (name = "messages"), (name = "message-templates"),
        (name = "capacity"), (name = "slo"), (name = "escalation"),
        (name = "outbox"), (name = "activity"), (name = "health"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
