//! `GET /metrics`: the body is valid Prometheus text (checked by a strict parser of the exposition format),
//! only the admin may read it unless `MC_METRICS_PUBLIC` is set, and its figures move when the API is used.
//!
//! Counters and histograms belong to the process, which every test of this binary shares and runs in
//! parallel: these tests assert that a figure moved by at least what they caused, never a total. The open
//! tasks per status are set from the scraped runtime at scrape time, so they are asserted exactly.

use crate::common::*;
use crate::on_both_backends;
use reqwest::Method;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};

const MINUTE: i64 = 60_000;

type Labels = BTreeMap<String, String>;

#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: Labels,
    value: f64,
}

#[derive(Debug, Default)]
struct Family {
    kind: String,
    help: Option<String>,
    samples: Vec<Sample>,
}

/// A parsed exposition: metric families by name.
#[derive(Debug)]
struct Exposition(HashMap<String, Family>);

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => text.parse::<f64>().map_err(|e| format!("value '{text}': {e}")),
    }
}

/// `{a="x",b="y"}` at the start of `text`: the labels and the rest of the line.
fn parse_labels(text: &str) -> Result<(Labels, &str), String> {
    let mut labels = Labels::new();
    let mut rest = text.strip_prefix('{').ok_or("labels must start with {")?;
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let (name, after) = rest
            .split_once("=\"")
            .ok_or_else(|| format!("label without =\" in '{text}'"))?;
        if !is_label_name(name) {
            return Err(format!("invalid label name '{name}'"));
        }
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?} in '{text}'")),
                },
                Some((i, '"')) => break i,
                Some((_, '\n')) | None => return Err(format!("unterminated label value in '{text}'")),
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(name.to_string(), value).is_some() {
            return Err(format!("label '{name}' repeated in '{text}'"));
        }
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// The family a sample name belongs to, given the declared types.
fn family_of<'a>(name: &'a str, families: &HashMap<String, Family>) -> Option<&'a str> {
    if families.contains_key(name) {
        return Some(name);
    }
    ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
        let base = name.strip_suffix(suffix)?;
        let kind = families.get(base)?.kind.as_str();
        let allowed = matches!((kind, *suffix), ("histogram", _) | ("summary", "_sum" | "_count"));
        allowed.then_some(base)
    })
}

fn parse(text: &str) -> Result<Exposition, String> {
    let mut families: HashMap<String, Family> = HashMap::new();
    let mut seen: Vec<(String, Labels)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut parts = comment.trim_start().splitn(3, ' ');
            let (keyword, name, rest) = (parts.next(), parts.next(), parts.next());
            match (keyword, name) {
                (Some("HELP"), Some(name)) => {
                    let family = families.entry(name.to_string()).or_default();
                    if family.help.replace(rest.unwrap_or("").to_string()).is_some() {
                        return Err(format!("second HELP for {name}"));
                    }
                }
                (Some("TYPE"), Some(name)) => {
                    let kind = rest.ok_or_else(|| format!("TYPE of {name} without a type"))?;
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(format!("unknown type '{kind}' for {name}"));
                    }
                    let family = families.entry(name.to_string()).or_default();
                    if !family.kind.is_empty() || !family.samples.is_empty() {
                        return Err(format!("TYPE of {name} repeated or after its samples"));
                    }
                    family.kind = kind.to_string();
                }
                _ => {}
            }
            if let Some(name) = name.filter(|_| matches!(keyword, Some("HELP" | "TYPE"))) {
                if !is_metric_name(name) {
                    return Err(format!("invalid metric name '{name}'"));
                }
            }
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| format!("sample without a value: '{line}'"))?;
        let name = &line[..name_end];
        if !is_metric_name(name) {
            return Err(format!("invalid metric name '{name}'"));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..])?
        } else {
            (Labels::new(), &line[name_end..])
        };
        let mut fields = rest.split_whitespace();
        let value = parse_value(fields.next().ok_or_else(|| format!("no value in '{line}'"))?)?;
        if let Some(timestamp) = fields.next() {
            timestamp
                .parse::<i64>()
                .map_err(|e| format!("timestamp in '{line}': {e}"))?;
        }
        if fields.next().is_some() || !rest.starts_with(' ') {
            return Err(format!("malformed sample line '{line}'"));
        }
        let base = family_of(name, &families).ok_or_else(|| format!("sample {name} has no TYPE"))?;
        let family = families.get_mut(base).ok_or("family vanished")?;
        if family.kind.is_empty() {
            return Err(format!("sample {name} has a HELP but no TYPE"));
        }
        if family.kind == "counter" && (value.is_nan() || value < 0.0) {
            return Err(format!("counter {name} is {value}"));
        }
        if seen.iter().any(|(n, l)| n == name && *l == labels) {
            return Err(format!("series {name}{labels:?} repeated"));
        }
        seen.push((name.to_string(), labels.clone()));
        family.samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    for (name, family) in &families {
        if family.kind == "histogram" {
            check_histogram(name, family)?;
        }
    }
    Ok(Exposition(families))
}

/// One histogram series: its `(le, count)` buckets in the order given, its `_count` and its `_sum`.
#[derive(Default)]
struct Series {
    buckets: Vec<(f64, f64)>,
    count: Option<f64>,
    sum: Option<f64>,
}

/// Per series: buckets cumulative in `le` order, ending at `+Inf` equal to `_count`, and a `_sum`.
fn check_histogram(name: &str, family: &Family) -> Result<(), String> {
    let mut series: BTreeMap<Labels, Series> = BTreeMap::new();
    for s in &family.samples {
        let mut key = s.labels.clone();
        let le = key.remove("le");
        let entry = series.entry(key).or_default();
        if s.name.ends_with("_bucket") {
            let le = le.ok_or_else(|| format!("{name} bucket without le"))?;
            entry.buckets.push((parse_value(&le)?, s.value));
        } else if s.name.ends_with("_count") {
            entry.count = Some(s.value);
        } else if s.name.ends_with("_sum") {
            entry.sum = Some(s.value);
        }
    }
    for (labels, Series { buckets, count, sum }) in series {
        let count = count.ok_or_else(|| format!("{name}{labels:?} has no _count"))?;
        sum.ok_or_else(|| format!("{name}{labels:?} has no _sum"))?;
        let mut previous = (f64::NEG_INFINITY, 0.0);
        for &(le, n) in &buckets {
            if le <= previous.0 || n < previous.1 {
                return Err(format!("{name}{labels:?} buckets are not cumulative at le={le}"));
            }
            previous = (le, n);
        }
        if previous.0 != f64::INFINITY || previous.1 != count {
            return Err(format!(
                "{name}{labels:?}: +Inf bucket {previous:?} is not the count {count}"
            ));
        }
    }
    Ok(())
}

impl Exposition {
    fn family(&self, name: &str) -> &Family {
        self.0.get(name).unwrap_or_else(|| panic!("no metric {name}"))
    }

    /// The sum of the samples named `name` whose labels include every pair given (0 when there are none).
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .values()
            .flat_map(|f| &f.samples)
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .sum()
    }
}

async fn scrape_with(app: &TestApp, token: Option<&str>) -> Exposition {
    let res = app
        .request(Method::GET, "/metrics", token)
        .send()
        .await
        .expect("scrape");
    assert_eq!(res.status().as_u16(), 200);
    let content_type = res.headers()["content-type"].to_str().expect("ascii").to_string();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let body = res.text().await.expect("body");
    parse(&body).unwrap_or_else(|e| panic!("invalid exposition: {e}\n{body}"))
}

async fn scrape(app: &TestApp) -> Exposition {
    scrape_with(app, Some(ADMIN_TOKEN)).await
}

#[track_caller]
fn assert_moved(before: &Exposition, after: &Exposition, name: &str, labels: &[(&str, &str)], by: f64) {
    let (was, is) = (before.sum(name, labels), after.sum(name, labels));
    assert!(
        is >= was + by,
        "{name}{labels:?} went from {was} to {is}, expected +{by}"
    );
}

// ---------------------------------------------------------------------------------------------------------

async fn requests_are_counted_by_route_pattern(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let before = scrape(&app).await;
    app.admin(Method::GET, "/api/tasks", None).await.expect(200);
    app.admin(Method::GET, "/api/tasks", None).await.expect(200);
    let unknown = "no-such-task-4711";
    app.admin(Method::GET, &format!("/api/tasks/{unknown}"), None)
        .await
        .expect_error(404, "task_not_found");
    app.admin(Method::GET, "/no/such/route", None)
        .await
        .expect_error(404, "route_not_found");
    let after = scrape(&app).await;

    let list = [("method", "GET"), ("route", "/api/tasks"), ("status", "200")];
    assert_moved(&before, &after, "mc_http_requests_total", &list, 2.0);
    assert_moved(&before, &after, "mc_http_request_duration_seconds_count", &list, 2.0);
    let one = [("method", "GET"), ("route", "/api/tasks/{id}"), ("status", "404")];
    assert_moved(&before, &after, "mc_http_requests_total", &one, 1.0);
    let stray = [("method", "GET"), ("route", "unmatched"), ("status", "404")];
    assert_moved(&before, &after, "mc_http_requests_total", &stray, 1.0);
    let requests = after.family("mc_http_requests_total");
    assert_eq!(requests.kind, "counter");
    assert!(
        requests.samples.iter().all(|s| !s.labels["route"].contains(unknown)),
        "a raw path became a label"
    );
    assert_eq!(after.family("mc_http_request_duration_seconds").kind, "histogram");
    // Every metric of ours says what it is.
    for (name, family) in &after.0 {
        if name.starts_with("mc_") {
            assert!(
                family.help.as_deref().is_some_and(|h| !h.is_empty()),
                "{name} has no HELP"
            );
        }
    }
    // Requests to actors are counted while they wait; by the time the reply is rendered they are answered.
    let depth = after.family("mc_mailbox_depth");
    assert_eq!(depth.kind, "gauge");
    for actor in ["agent_directory", "task_board"] {
        let sample = depth.samples.iter().find(|s| s.labels["actor"] == actor);
        assert!(sample.is_some_and(|s| s.value >= 0.0), "{actor}: {:?}", depth.samples);
    }
    app.stop().await;
}

async fn messages_and_journal_commits_move(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (_, alice) = app.agent("alice").await;
    app.agent("bob").await;
    let before = scrape(&app).await;
    let message = json!({"toAgentId": "bob", "type": "status_query", "subject": "status?"});
    app.call(Method::POST, "/api/agents/alice/messages", Some(&alice), Some(message))
        .await
        .expect(201);
    let after = scrape(&app).await;
    let agent = [("sender_kind", "agent")];
    assert_moved(&before, &after, "mc_messages_sent_total", &agent, 1.0);
    assert_moved(&before, &after, "mc_messages_delivered_total", &agent, 1.0);
    for name in [
        "mc_journal_commit_batches",
        "mc_journal_commit_ops",
        "mc_journal_commit_duration_seconds",
    ] {
        assert_eq!(after.family(name).kind, "histogram", "{name}");
        assert_moved(&before, &after, &format!("{name}_count"), &[], 1.0);
    }
    // The message and its activity row: at least two writes in the transaction that committed it.
    assert_moved(&before, &after, "mc_journal_commit_ops_sum", &[], 2.0);
    app.stop().await;
}

async fn open_tasks_are_this_runtimes(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let mut ids = Vec::new();
    for title in ["a", "b", "c", "d"] {
        ids.push(id(&app.task(json!({ "title": title })).await));
    }
    move_to(&app, &ids[2], "ready").await.expect(200);
    move_to(&app, &ids[3], "blocked").await.expect(200);
    let counts = |e: &Exposition| {
        ["backlog", "ready", "in_progress", "review", "blocked"].map(|s| e.sum("mc_open_tasks", &[("status", s)]))
    };
    let scraped = scrape(&app).await;
    assert_eq!(scraped.family("mc_open_tasks").kind, "gauge");
    assert_eq!(counts(&scraped), [2.0, 1.0, 0.0, 0.0, 1.0]);

    move_to(&app, &ids[0], "cancelled").await.expect(200);
    let scraped = scrape(&app).await;
    assert_eq!(counts(&scraped), [1.0, 1.0, 0.0, 0.0, 1.0]);
    let statuses: Vec<&str> = scraped
        .family("mc_open_tasks")
        .samples
        .iter()
        .map(|s| s.labels["status"].as_str())
        .collect();
    assert!(
        !statuses.contains(&"cancelled") && !statuses.contains(&"done"),
        "{statuses:?}"
    );
    app.stop().await;
}

async fn escalations_and_breaches_move(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    app.register(json!({"name": "lead", "level": "lead"})).await;
    let (_, alice) = app.register(json!({"name": "alice", "leadId": "lead"})).await;
    app.register(json!({"name": "bob", "leadId": "lead"})).await;
    app.task(json!({"title": "Hot fix", "assigneeId": "alice", "sloMs": MINUTE}))
        .await;
    let waiting = json!({"toAgentId": "bob", "type": "help_request", "subject": "review?", "ackWithinMs": MINUTE});
    app.call(Method::POST, "/api/agents/alice/messages", Some(&alice), Some(waiting))
        .await
        .expect(201);
    let before = scrape(&app).await;
    app.clock.advance_ms(MINUTE + 1);
    let report = app.tick().await;
    let after = scrape(&app).await;

    assert!(!report.slo_breaches.is_empty(), "{report:?}");
    let mut breaches: BTreeMap<&str, f64> = BTreeMap::new();
    for breach in &report.slo_breaches {
        *breaches.entry(breach.kind.as_str()).or_default() += 1.0;
    }
    for (kind, n) in breaches {
        assert_moved(&before, &after, "mc_slo_breaches_total", &[("kind", kind)], n);
    }
    let mut by_rule: BTreeMap<&str, f64> = BTreeMap::new();
    for escalation in &report.escalations {
        *by_rule.entry(escalation.rule_name.as_str()).or_default() += 1.0;
    }
    assert!(by_rule.contains_key("slo_breach"), "{by_rule:?}");
    assert!(by_rule.contains_key("ack_deadline"), "{by_rule:?}");
    for (rule, n) in by_rule {
        assert_moved(&before, &after, "mc_escalations_total", &[("rule", rule)], n);
    }
    // The breach alerted the lead: a system message, sent and delivered.
    let system = [("sender_kind", "system")];
    assert_moved(&before, &after, "mc_messages_sent_total", &system, 1.0);
    assert_moved(&before, &after, "mc_messages_delivered_total", &system, 1.0);
    app.stop().await;
}

async fn only_the_admin_reads_metrics(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (_, token) = app.agent("alice").await;
    app.call(Method::GET, "/metrics", None, None)
        .await
        .expect_error(401, "unauthorized");
    app.call(Method::GET, "/metrics", Some("mc_not_a_token_at_all_0123456789"), None)
        .await
        .expect_error(401, "unauthorized");
    app.call(Method::GET, "/metrics", Some(&token), None)
        .await
        .expect_error(403, "forbidden");
    scrape(&app).await;
    app.stop().await;
}

async fn public_metrics_need_no_token(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |config| config.metrics_public = true).await else {
        return;
    };
    let (_, token) = app.agent("alice").await;
    let scraped = scrape_with(&app, None).await;
    assert!(scraped.0.contains_key("mc_open_tasks"));
    scrape_with(&app, Some(&token)).await;
    // The rest of the API still needs a token.
    app.call(Method::GET, "/api/tasks", None, None)
        .await
        .expect_error(401, "unauthorized");
    app.stop().await;
}

on_both_backends!(
    requests_are_counted_by_route_pattern,
    messages_and_journal_commits_move,
    open_tasks_are_this_runtimes,
    escalations_and_breaches_move,
    only_the_admin_reads_metrics,
    public_metrics_need_no_token,
);

#[test]
fn the_parser_refuses_what_prometheus_would() {
    let valid = "# HELP h_seconds Latency.\n# TYPE h_seconds histogram\n\
        h_seconds_bucket{le=\"0.5\"} 1\nh_seconds_bucket{le=\"+Inf\"} 2\nh_seconds_sum 0.7\nh_seconds_count 2\n\
        # TYPE c_total counter\nc_total{a=\"x\\\"y\",b=\"\"} 3 1700000000000\n";
    let parsed = parse(valid).expect("valid");
    assert_eq!(parsed.sum("c_total", &[("a", "x\"y")]), 3.0);
    let invalid = [
        "# TYPE c counter\nc{a=\"1\"} one\n",
        "# TYPE c counter\nc -1\n",
        "# TYPE 1c counter\n1c 1\n",
        "# TYPE c counter\nc{1a=\"x\"} 1\n",
        "# TYPE c counter\nc{a=x} 1\n",
        "# TYPE c counter\nc{a=\"x} 1\n",
        "# TYPE c counter\nc 1\nc 2\n",
        "c 1\n",
        "# TYPE c counter\n# TYPE c gauge\nc 1\n",
        "# TYPE c kounter\nc 1\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
    ];
    for text in invalid {
        assert!(parse(text).is_err(), "accepted:\n{text}");
    }
}
