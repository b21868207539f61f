//! `GET /metrics`: Prometheus metrics in the OpenMetrics text format, parsed by a strict parser; open on a loopback
//! listen, behind a gateway key or the admin token beyond it.

mod common;

use common::{Harness, simple_body};
use openmetrics_parser::openmetrics::parse_openmetrics;
use openmetrics_parser::{MetricsExposition, OpenMetricsType, OpenMetricsValue};

type Exposition = MetricsExposition<OpenMetricsType, OpenMetricsValue>;

/// A counter's or gauge's value for exactly these labels.
fn value(exposition: &Exposition, family: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let family = exposition.families.get(family)?;
    family.iter_samples().find_map(|s| {
        let set = s.get_labelset().ok()?;
        let pairs: Vec<(&str, &str)> = set.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        if pairs.len() != labels.len() || !labels.iter().all(|l| pairs.contains(l)) {
            return None;
        }
        match &s.value {
            OpenMetricsValue::Counter(c) => Some(c.value.as_f64()),
            OpenMetricsValue::Gauge(g) => Some(g.as_f64()),
            _ => None,
        }
    })
}

async fn scrape(h: &Harness, url: &str, auth: Option<&str>) -> reqwest::Response {
    let mut request = h.http.get(format!("{url}/metrics"));
    if let Some(token) = auth {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn metrics_parse_and_count_requests_tokens_failovers_and_account_state() {
    let h = Harness::with(|p| {
        common::add_account_at(p, "limited", "sk-ant-ratelimited-a", None, 0);
        common::add_account_at(p, "spare", "sk-ant-spare", None, 1);
    })
    .await;
    let response = h
        .http
        .post(format!("{}/v1/messages", h.url))
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .header("x-mock-cache-tokens", "0,4321")
        .body(simple_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap();
    let usage = h.gateway.as_ref().unwrap().gateway().usage().clone();
    tokio::task::spawn_blocking(move || usage.flush()).await.unwrap();

    let response = scrape(&h, &h.url, None).await;
    assert_eq!(response.status(), 200, "open on a loopback listen");
    let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    let text = response.text().await.unwrap();
    let m = parse_openmetrics(&text).unwrap_or_else(|e| panic!("strict OpenMetrics parse: {e:?}\n{text}"));
    let request = [
        ("route", "messages"),
        ("status", "200"),
        ("account", "spare"),
        ("model", "claude-sonnet-5"),
        ("client_kind", "anthropic_sdk"),
    ];
    assert_eq!(value(&m, "llm_gateway_requests", &request), Some(1.0), "{text}");
    let tokens = [("kind", "cache_read"), ("account", "spare"), ("model", "claude-sonnet-5")];
    assert_eq!(value(&m, "llm_gateway_tokens", &tokens), Some(4321.0));
    assert_eq!(value(&m, "llm_gateway_failovers", &[("reason", "rate_limited")]), Some(1.0));
    assert_eq!(value(&m, "llm_gateway_account_state", &[("account", "limited"), ("state", "cooling_down")]), Some(1.0));
    assert_eq!(value(&m, "llm_gateway_account_state", &[("account", "spare"), ("state", "active")]), Some(1.0));
    let cooldown = value(&m, "llm_gateway_account_cooldown_seconds", &[("account", "limited")]).unwrap();
    assert!(cooldown > 0.0, "the 429 benched it: {cooldown}");
    assert_eq!(value(&m, "llm_gateway_account_cooldown_seconds", &[("account", "spare")]), Some(0.0));
    // The mock reports API-key limits with ~59 of 60 requests remaining.
    let used = value(&m, "llm_gateway_plan_utilization", &[("account", "spare"), ("window", "requests")]).unwrap();
    assert!(used > 0.0 && used < 0.1, "{used}");
    assert_eq!(value(&m, "llm_gateway_usage_records_written", &[]), Some(1.0));
    assert_eq!(value(&m, "llm_gateway_usage_records_dropped", &[("reason", "queue_full")]), Some(0.0));
    let histogram = m.families.get("llm_gateway_gateway_added_seconds").expect("gateway-added histogram");
    let count = histogram.iter_samples().find_map(|s| match &s.value {
        OpenMetricsValue::Histogram(h) => h.count,
        _ => None,
    });
    assert_eq!(count, Some(1));
    h.shutdown().await;
}

#[tokio::test]
async fn metrics_beyond_loopback_need_a_gateway_key_or_the_admin_token() {
    let mut key = String::new();
    let h = Harness::with(|p| {
        common::add_account(p, "primary", common::GOOD_KEY, &[]);
        key = common::manager(p).add_client_key("scraper").unwrap();
        common::edit_config(p, |c| c.server.listen = "0.0.0.0:0".into());
    })
    .await;
    let url = format!("http://127.0.0.1:{}", h.gateway.as_ref().unwrap().addr().port());
    assert_eq!(scrape(&h, &url, None).await.status(), 401);
    assert_eq!(scrape(&h, &url, Some("lgw-wrong")).await.status(), 401);
    let with_key = scrape(&h, &url, Some(&key)).await;
    assert_eq!(with_key.status(), 200);
    assert!(parse_openmetrics(&with_key.text().await.unwrap()).is_ok());
    assert_eq!(scrape(&h, &url, Some(&h.admin_token())).await.status(), 200);
    h.shutdown().await;
}
