//! The HTTP server over a runtime's handles. `mission-control serve` and the black-box tests both use it.

use super::errors::{path_config, query_config};
use crate::runtime::Handles;
use actix_web::dev::Server;
use actix_web::{middleware, web, App, HttpServer};
use std::net::TcpListener;

/// Builds the server on an already-bound listener (so callers can bind port 0 and learn the port).
/// actix-web stops it gracefully on SIGINT/SIGTERM unless `signals` is false.
pub fn build(handles: Handles, listener: TcpListener, signals: bool) -> std::io::Result<Server> {
    let workers = match handles.config.workers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let body_limit = handles.config.body_limit;
    // Before the first request, so the middleware's first count is not lost to the no-op recorder.
    crate::observability::install();
    let data = web::Data::new(handles);
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(body_limit))
            .app_data(query_config())
            .app_data(path_config())
            .wrap(middleware::from_fn(super::telemetry::track))
            .wrap(middleware::Logger::new("%r %s %Dms"))
            .configure(super::configure)
    })
    .workers(workers)
    .shutdown_timeout(10)
    .listen(listener)?;
    if !signals {
        server = server.disable_signals();
    }
    Ok(server.run())
}
