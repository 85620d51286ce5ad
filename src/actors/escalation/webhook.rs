//! Escalation webhooks: a JSON POST with a 5 s timeout, tried up to three times with exponential backoff
//! (200 ms, then 400 ms). Any 2xx answer is delivery; anything else, or no answer, is retried.

use std::collections::BTreeMap;
use std::time::Duration;

pub const TIMEOUT: Duration = Duration::from_secs(5);
pub const TRIES: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// The HTTP client the scheduler keeps for its webhooks (connections are reused across firings).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .user_agent(concat!("mission-control/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// POSTs `payload` to `url`. Replies with what happened, in words: the status and the number of tries on
/// delivery, the last error after the last try.
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    headers: &BTreeMap<String, String>,
    payload: &serde_json::Value,
) -> Result<String, String> {
    let mut last_error = String::new();
    for attempt in 1..=TRIES {
        let mut request = client.post(url).json(payload);
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => {
                return Ok(format!(
                    "POST {url}: HTTP {} (try {attempt} of {TRIES})",
                    response.status().as_u16()
                ));
            }
            Ok(response) => last_error = format!("HTTP {}", response.status().as_u16()),
            Err(e) if e.is_timeout() => last_error = format!("no answer within {} s", TIMEOUT.as_secs()),
            Err(e) if e.is_builder() => return Err(format!("POST {url}: cannot build the request: {e}")),
            Err(e) => last_error = without_url(e),
        }
        if attempt < TRIES {
            tokio::time::sleep(FIRST_BACKOFF * 2u32.pow(attempt - 1)).await;
        }
    }
    Err(format!("POST {url}: {last_error} after {TRIES} tries"))
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
