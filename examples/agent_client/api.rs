//! The HTTP side of the agent client: the error type, the parts of the server's JSON the client reads, and
//! one token's requests (with the rate limit's retries). Only what docs/API.md promises is relied on; unknown
//! fields are ignored, so a server that adds fields does not break the client.

use super::ClientConfig;
use reqwest::header::RETRY_AFTER;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

/// Requests other than the long poll should never take this long; a server that does is treated as down.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A 429 is retried after its `Retry-After` this many times before the send is given up.
const RATE_LIMIT_RETRIES: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("the server refused the token (401 unauthorized: {0}); check --token or --admin-token")]
    Unauthorized(String),
    #[error("{request}: {status} {code}: {message}")]
    Api {
        request: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("{request}: {}", causes(source))]
    Transport {
        request: String,
        #[source]
        source: reqwest::Error,
    },
}

/// reqwest's own message ("error sending request") hides the cause ("Connection refused") in its sources.
fn causes(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl ClientError {
    pub fn code(&self) -> &str {
        match self {
            ClientError::Api { code, .. } => code,
            _ => "",
        }
    }

    /// Worth retrying later: the server could not be reached or could not commit (nothing was changed).
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Transport { source, .. } => !source.is_decode(),
            ClientError::Api { status, .. } => matches!(status, 502..=504),
            _ => false,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub lead_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Registered {
    pub agent: Agent,
    pub token: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: String,
    pub title: String,
    pub status: String,
    pub priority: String,
    pub assignee_id: Option<String>,
    pub attempts: i32,
}

#[derive(Debug, Deserialize)]
pub struct TaskRef {
    pub id: String,
    pub title: String,
    pub status: String,
}

#[derive(Debug, Deserialize)]
pub struct TaskDetail {
    pub blocks: Vec<TaskRef>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    pub from_agent_id: Option<String>,
    pub from_agent_name: String,
    pub to_agent_id: String,
    pub to_agent_name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub subject: String,
    pub body: String,
    pub ack_deadline_at: Option<i64>,
    pub acknowledged_at: Option<i64>,
    pub reply_to_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capacity {
    pub can_accept_work: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Wakeup {
    pub messages: Vec<Message>,
    pub in_progress: Vec<Task>,
    pub ready: Vec<Task>,
    pub capacity: Capacity,
}

#[derive(Debug, Deserialize)]
pub struct InboxPage {
    pub items: Vec<Message>,
}

#[derive(Debug, Deserialize)]
pub struct Acknowledged {
    pub reply: Option<Message>,
}

/// One token's view of the server. Rate limits are handled here, so callers see a 429 only once the
/// retries are used up.
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
    /// The `[name]` prefix of the log lines.
    pub name: String,
}

impl Api {
    pub fn new(http: &reqwest::Client, base: &str, token: &str, name: &str) -> Api {
        Api {
            http: http.clone(),
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            name: name.to_string(),
        }
    }

    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, ClientError> {
        self.request(method, path, body, None, REQUEST_TIMEOUT).await
    }

    pub async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let request = format!("{method} {path}");
        let transport = |source| ClientError::Transport {
            request: request.clone(),
            source,
        };
        let mut retries = 0;
        loop {
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .bearer_auth(&self.token)
                .timeout(timeout);
            if let Some(body) = body {
                req = req.json(body);
            }
            if let Some(key) = idempotency_key {
                // Makes the retry below (and any after a lost response) replay the first send, not repeat it.
                req = req.header("Idempotency-Key", key);
            }
            let res = req.send().await.map_err(transport)?;
            let status = res.status();
            if status.is_success() {
                return res.json().await.map_err(transport);
            }
            let retry_after = res
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let envelope: Value = res.json().await.unwrap_or(Value::Null);
            let code = envelope["error"]["code"].as_str().unwrap_or("").to_string();
            let message = envelope["error"]["message"].as_str().unwrap_or("").to_string();
            if status.as_u16() == 401 {
                return Err(ClientError::Unauthorized(message));
            }
            if status.as_u16() == 429 && retries < RATE_LIMIT_RETRIES {
                retries += 1;
                let wait = retry_after.unwrap_or(60).max(1);
                println!("[{}] rate limited ({message}); retrying in {wait} s", self.name);
                tokio::time::sleep(Duration::from_secs(wait)).await;
                continue;
            }
            return Err(ClientError::Api {
                request,
                status: status.as_u16(),
                code,
                message,
            });
        }
    }
}

/// Registers the agent with the operator's token; if the name is taken, takes the agent over by rotating its
/// token (any process still using the old one is locked out, which is what a restart wants).
pub async fn register(admin: &Api, config: &ClientConfig) -> Result<(Agent, String), ClientError> {
    let mut profile = json!({
        "name": config.name,
        "role": "external agent client",
        "level": config.level,
        "specializations": config.specializations,
    });
    if let Some(lead) = &config.lead {
        profile["leadId"] = json!(lead);
    }
    let mut result = admin
        .call::<Registered>(Method::POST, "/api/agents", Some(&profile))
        .await;
    if config.lead.is_some() && result.as_ref().is_err_and(|e| e.code() == "agent_not_found") {
        println!("[{}] lead not registered yet; registering without one", config.name);
        if let Some(fields) = profile.as_object_mut() {
            fields.remove("leadId");
        }
        result = admin
            .call::<Registered>(Method::POST, "/api/agents", Some(&profile))
            .await;
    }
    let registered = match result {
        Ok(registered) => {
            let agent = &registered.agent;
            println!("[{}] registered as {} ({})", config.name, agent.name, agent.id);
            registered
        }
        Err(e) if e.code() == "duplicate_name" => {
            let path = format!("/api/agents/{}/token/rotate", config.name);
            let rotated: Registered = admin.call(Method::POST, &path, None).await?;
            println!("[{}] already registered; rotated its token", config.name);
            rotated
        }
        Err(e) => return Err(e),
    };
    Ok((registered.agent, registered.token))
}
