//! Webhook POSTs: one attempt each, with a per-attempt timeout; the outbox retries. Every attempt of one
//! outbox row carries the same `Idempotency-Key`, so a receiver can drop a repeat.

use std::collections::BTreeMap;
use std::time::Duration;

pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The HTTP client for webhooks (connections are reused across deliveries).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .user_agent(concat!("mission-control/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// Why an attempt failed, and whether trying again could help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub error: String,
    /// A 4xx answer other than 408 and 429 (the receiver rejects this request as it is), or a request that
    /// cannot be built: retrying the same request cannot succeed.
    pub permanent: bool,
}

/// POSTs `payload` to `url` once. Replies with what happened, in words.
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    headers: &BTreeMap<String, String>,
    idempotency_key: &str,
    payload: &serde_json::Value,
) -> Result<String, Refused> {
    let mut request = client
        .post(url)
        .json(payload)
        .header("Idempotency-Key", idempotency_key);
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    match request.send().await {
        Ok(response) if response.status().is_success() => {
            Ok(format!("POST {url}: HTTP {}", response.status().as_u16()))
        }
        Ok(response) => {
            let status = response.status();
            Err(Refused {
                error: format!("POST {url}: HTTP {}", status.as_u16()),
                permanent: status.is_client_error() && !matches!(status.as_u16(), 408 | 429),
            })
        }
        Err(e) if e.is_timeout() => Err(Refused {
            error: format!("POST {url}: no answer within {} s", TIMEOUT.as_secs()),
            permanent: false,
        }),
        Err(e) if e.is_builder() => Err(Refused {
            error: format!("POST {url}: cannot build the request: {e}"),
            permanent: true,
        }),
        Err(e) => Err(Refused {
            error: format!("POST {url}: {}", without_url(e)),
            permanent: false,
        }),
    }
}

/// reqwest's messages repeat the URL; the caller already names it.
fn without_url(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}
