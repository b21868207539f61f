use openmetrics_parser::{MetricNumber, OpenMetricsType, OpenMetricsValue, openmetrics::parse_openmetrics};

use super::*;
use crate::usage::record::{Attempt, ClientKind, Outcome, Route, Tokens};

fn record(model: &str) -> RequestRecord {
    let mut r = RequestRecord::new(1, "req", Route::Messages, ClientKind::ClaudeCode);
    r.status = 200;
    r.outcome = Outcome::Ok;
    r.account_id = Some("acc_1".into());
    r.account_name = Some("work".into());
    r.model_answered = Some(model.into());
    r.latency_ms = 2500;
    r.first_byte_ms = Some(400);
    r.upstream_ms = 2499;
    r.tokens = Tokens { input: 10, output: 20, cache_creation: 0, cache_read: 300, cache_creation_1h: 0 };
    r.attempts = vec![
        Attempt { account_id: "acc_0".into(), status: Some(529), failover: Some(FailoverReason::Overloaded), ms: 3 },
        Attempt { account_id: "acc_1".into(), status: Some(200), failover: None, ms: 390 },
    ];
    r
}

fn number(n: &MetricNumber) -> f64 {
    n.as_f64()
}

/// The value of a counter or gauge sample with exactly these labels.
fn sample(text: &str, family: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let exposition = parse_openmetrics(text).expect("valid OpenMetrics");
    let family = exposition.families.get(family)?;
    family.iter_samples().find_map(|s| {
        let set = s.get_labelset().ok()?;
        let pairs: Vec<(&str, &str)> = set.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let ok = pairs.len() == labels.len() && labels.iter().all(|l| pairs.contains(l));
        if !ok {
            return None;
        }
        match &s.value {
            OpenMetricsValue::Counter(c) => Some(number(&c.value)),
            OpenMetricsValue::Gauge(g) => Some(number(g)),
            OpenMetricsValue::Unknown(u) => Some(number(u)),
            _ => None,
        }
    })
}

#[test]
fn render_parses_as_openmetrics_with_the_documented_names_and_labels() {
    let m = Metrics::default();
    m.observe(&record("claude-sonnet-5"));
    m.observe(&record("claude-sonnet-5"));
    m.set_account_state("work", "active");
    m.set_account_state("work", "cooling");
    m.set_cooldown_remaining("work", 42.5);
    m.set_plan_utilization("work", "5h", 0.82);
    m.token_refreshed("work", true);
    let text = m.render();
    let exposition = parse_openmetrics(&text).unwrap_or_else(|e| panic!("render must parse: {e:?}\n{text}"));

    let request_labels = [
        ("route", "messages"),
        ("status", "200"),
        ("account", "work"),
        ("model", "claude-sonnet-5"),
        ("client_kind", "claude_code"),
    ];
    assert_eq!(sample(&text, "llm_gateway_requests", &request_labels), Some(2.0));
    assert_eq!(exposition.families["llm_gateway_requests"].family_type, OpenMetricsType::Counter);
    let token = |kind| {
        sample(&text, "llm_gateway_tokens", &[("kind", kind), ("account", "work"), ("model", "claude-sonnet-5")])
    };
    assert_eq!((token("input"), token("output"), token("cache_read")), (Some(20.0), Some(40.0), Some(600.0)));
    assert_eq!(token("cache_creation"), None, "zero counts create no series");
    assert_eq!(sample(&text, "llm_gateway_failovers", &[("reason", "overloaded")]), Some(2.0));
    assert_eq!(sample(&text, "llm_gateway_account_state", &[("account", "work"), ("state", "cooling")]), Some(1.0));
    assert_eq!(sample(&text, "llm_gateway_account_state", &[("account", "work"), ("state", "active")]), Some(0.0));
    assert_eq!(sample(&text, "llm_gateway_account_cooldown_seconds", &[("account", "work")]), Some(42.5));
    assert_eq!(sample(&text, "llm_gateway_plan_utilization", &[("account", "work"), ("window", "5h")]), Some(0.82));
    assert_eq!(sample(&text, "llm_gateway_token_refreshes", &[("account", "work"), ("result", "ok")]), Some(1.0));
    assert_eq!(sample(&text, "llm_gateway_usage_records_dropped", &[("reason", "queue_full")]), Some(0.0));

    for histogram in
        ["llm_gateway_request_duration_seconds", "llm_gateway_first_byte_seconds", "llm_gateway_gateway_added_seconds"]
    {
        let family = &exposition.families[histogram];
        assert_eq!(family.family_type, OpenMetricsType::Histogram, "{histogram}");
        let s = family.iter_samples().next().unwrap();
        let OpenMetricsValue::Histogram(h) = &s.value else { panic!("{histogram} is a histogram") };
        assert_eq!(h.count, Some(2));
    }
    // 2.5 s total latency lands in the (1.6, 3.2] bucket; the gateway added 1 ms.
    let family = &exposition.families["llm_gateway_request_duration_seconds"];
    let OpenMetricsValue::Histogram(h) = &family.iter_samples().next().unwrap().value else { unreachable!() };
    let le = |bound: f64| h.buckets.iter().find(|b| (b.upper_bound - bound).abs() < 1e-9).map(|b| number(&b.count));
    assert_eq!((le(1.6), le(3.2)), (Some(0.0), Some(2.0)));
}

#[test]
fn model_labels_are_normalised_and_capped() {
    assert_eq!(normalise_model("Claude-Opus-4-8[1m]"), "claude-opus-4-8_1m_");
    assert_eq!(normalise_model(""), "none");
    assert_eq!(normalise_model(&"x".repeat(200)).len(), 64);
    let m = Metrics::default();
    for i in 0..(MAX_MODELS + 10) {
        m.observe(&record(&format!("model-{i}")));
    }
    let text = m.render();
    let exposition = parse_openmetrics(&text).unwrap();
    let family = &exposition.families["llm_gateway_requests"];
    let models: std::collections::HashSet<String> = family
        .iter_samples()
        .filter_map(|s| s.get_labelset().ok()?.iter().find(|(k, _)| *k == "model").map(|(_, v)| v.clone()))
        .collect();
    assert_eq!(models.len(), MAX_MODELS + 1, "{MAX_MODELS} models and `other`");
    assert!(models.contains("other"));
    assert_eq!(
        sample(
            &text,
            "llm_gateway_requests",
            &[
                ("route", "messages"),
                ("status", "200"),
                ("account", "work"),
                ("model", "other"),
                ("client_kind", "claude_code"),
            ]
        ),
        Some(10.0)
    );
}

#[test]
fn dropped_usage_records_show_in_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let stall = std::sync::Arc::new(crate::usage::Stall::default());
    stall.close();
    let config = crate::config::UsageConfig { queue_capacity: 16, ..Default::default() };
    let usage = Usage::try_open(crate::usage::UsageOptions {
        path: dir.path().join("usage.db"),
        config,
        clock: std::sync::Arc::new(crate::clock::ManualClock::new(1_796_032_800_000)),
        stall: Some(stall.clone()),
    })
    .unwrap();
    for _ in 0..100 {
        usage.record(record("claude-sonnet-5"));
    }
    let m = Metrics::new(usage.clone());
    let dropped = usage.stats().dropped_queue_full;
    assert!(dropped > 0);
    let text = m.render();
    assert_eq!(sample(&text, "llm_gateway_usage_records_dropped", &[("reason", "queue_full")]), Some(dropped as f64));
    // Rendering again does not count twice.
    assert_eq!(
        sample(&m.render(), "llm_gateway_usage_records_dropped", &[("reason", "queue_full")]),
        Some(dropped as f64)
    );
    stall.open();
    usage.flush();
    let written = usage.stats().written;
    assert_eq!(written + dropped, 100);
    assert_eq!(sample(&m.render(), "llm_gateway_usage_records_written", &[]), Some(written as f64));
}

#[test]
fn token_refresh_counters_follow_the_token_managers_totals() {
    let m = Metrics::default();
    m.set_token_refreshes("max", 2, 1);
    m.set_token_refreshes("max", 2, 1);
    let text = m.render();
    assert_eq!(sample(&text, "llm_gateway_token_refreshes", &[("account", "max"), ("result", "ok")]), Some(2.0));
    assert_eq!(sample(&text, "llm_gateway_token_refreshes", &[("account", "max"), ("result", "error")]), Some(1.0));
    m.set_token_refreshes("max", 5, 1);
    let text = m.render();
    assert_eq!(sample(&text, "llm_gateway_token_refreshes", &[("account", "max"), ("result", "ok")]), Some(5.0));
}
