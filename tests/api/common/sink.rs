//! A tiny HTTP server on 127.0.0.1:0 that records every request and answers with a status the test sets
//! (and can change), for webhook deliveries.

use actix_web::dev::ServerHandle;
use actix_web::{web, HttpRequest, HttpResponse, HttpServer};
use serde_json::Value;
use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

/// One request the sink received.
#[derive(Debug, Clone)]
pub struct Hit {
    pub method: String,
    /// Lowercase names.
    pub headers: HashMap<String, String>,
    pub body: Value,
}

struct SinkState {
    status: Arc<AtomicU16>,
    hits: Arc<Mutex<Vec<Hit>>>,
}

pub struct Sink {
    pub url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    status: Arc<AtomicU16>,
    server: ServerHandle,
}

async fn record(req: HttpRequest, body: web::Bytes, state: web::Data<SinkState>) -> HttpResponse {
    let headers = req
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_string(), value.to_str().ok()?.to_string())))
        .collect();
    let hit = Hit {
        method: req.method().to_string(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    state.hits.lock().expect("sink lock").push(hit);
    let status = actix_web::http::StatusCode::from_u16(state.status.load(Ordering::SeqCst)).expect("status");
    HttpResponse::build(status).body("{}")
}

impl Sink {
    pub async fn start(status: u16) -> Sink {
        let hits = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(status));
        let state = web::Data::new(SinkState {
            status: status.clone(),
            hits: hits.clone(),
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the sink");
        let url = format!("http://{}/hook", listener.local_addr().expect("sink address"));
        let server = HttpServer::new(move || {
            actix_web::App::new()
                .app_data(state.clone())
                .default_service(web::to(record))
        })
        .workers(1)
        .listen(listener)
        .expect("the sink listens")
        .run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Sink {
            url,
            hits,
            status,
            server: handle,
        }
    }

    /// The status later requests get.
    pub fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("sink lock").clone()
    }

    pub async fn stop(self) {
        self.server.stop(false).await;
    }
}
