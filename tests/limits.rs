//! Per-client-key limits (issue #9/#12), each at its boundary: requests per minute, tokens per UTC day, estimated
//! cost per UTC month, allowed models, expiry, allowed accounts and priority tiers. Checked before any upstream
//! call, answered in the client's own error format, and recorded. Time is a manual clock.

mod common;

use std::sync::Arc;

use common::{Harness, simple_body};
use llm_gateway::clock::{Clock, ManualClock};
use llm_gateway::manage::ClientKeyLimits;
use serde_json::{Value, json};

/// 2026-11-15T10:00:00Z.
const T0: u64 = 1_794_736_800_000;
const DAY_MS: u64 = 86_400_000;

async fn gateway(clock: &Arc<ManualClock>, setup: impl FnOnce(&std::path::Path)) -> Harness {
    let c: Arc<dyn Clock> = clock.clone();
    Harness::with_clock("", "", Some(c), |p| {
        common::add_account(p, "primary", common::GOOD_KEY, &[]);
        setup(p);
    })
    .await
}

/// A key with these limits, created before the gateway starts.
fn key(path: &std::path::Path, name: &str, limits: impl FnOnce(&mut ClientKeyLimits)) -> String {
    common::create_key(path, name, limits)
}

async fn messages(h: &Harness, key: &str, model: &str) -> reqwest::Response {
    let body = simple_body(false).replace("claude-sonnet-5", model);
    h.http
        .post(format!("{}/v1/messages", h.url))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn chat(h: &Harness, key: &str, model: &str) -> reqwest::Response {
    h.http
        .post(format!("{}/v1/chat/completions", h.url))
        .bearer_auth(key)
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
}

fn upstream_calls(h: &Harness) -> usize {
    h.mock.requests().iter().filter(|r| r.path.starts_with("/v1/")).count()
}

/// An Anthropic-shaped refusal: status, error type, `retry-after` and `x-should-retry` as given.
async fn refused(response: reqwest::Response, status: u16, kind: &str) -> (Option<u64>, Option<String>, String) {
    assert_eq!(response.status().as_u16(), status);
    let retry = response.headers().get("retry-after").map(|v| v.to_str().unwrap().parse().unwrap());
    let should = response.headers().get("x-should-retry").map(|v| v.to_str().unwrap().to_string());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], kind, "{body}");
    (retry, should, body["error"]["message"].as_str().unwrap().to_string())
}

async fn outcomes(h: &Harness) -> Vec<(u64, String)> {
    let usage = h.gateway.as_ref().unwrap().gateway().usage().clone();
    tokio::task::spawn_blocking(move || usage.flush()).await.unwrap();
    let body: Value = h
        .http
        .get(format!("{}/admin/api/v1/requests?limit=100", h.url))
        .bearer_auth(h.admin_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut out: Vec<(u64, String)> = body["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["status"].as_u64().unwrap(), r["outcome"].as_str().unwrap().to_string()))
        .collect();
    out.reverse();
    out
}

#[tokio::test]
async fn requests_per_minute_allow_the_limit_then_429_until_a_slot_frees() {
    let clock = Arc::new(ManualClock::new(T0));
    let mut k = String::new();
    let h = gateway(&clock, |p| k = key(p, "ci", |l| l.rpm = Some(2))).await;
    for _ in 0..2 {
        assert_eq!(messages(&h, &k, "claude-sonnet-5").await.status(), 200);
    }
    let calls = upstream_calls(&h);
    let (retry, should, message) = refused(messages(&h, &k, "claude-sonnet-5").await, 429, "rate_limit_error").await;
    assert_eq!(retry, Some(30), "one request every 30 s at 2 per minute");
    assert_eq!(should, None, "a rate limit is worth retrying");
    assert!(message.contains("2 requests per minute"), "{message}");
    assert_eq!(upstream_calls(&h), calls, "refused before any upstream call");
    // OpenAI clients get OpenAI's shape.
    let openai = chat(&h, &k, "gpt-4o").await;
    assert_eq!(openai.status(), 429);
    let body: Value = openai.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    clock.advance(29_999);
    assert_eq!(messages(&h, &k, "claude-sonnet-5").await.status(), 429);
    clock.advance(1);
    assert_eq!(messages(&h, &k, "claude-sonnet-5").await.status(), 200);
    let recorded = outcomes(&h).await;
    assert_eq!(recorded.iter().filter(|(s, o)| *s == 429 && o == "rate_limited_by_key").count(), 3, "{recorded:?}");
    h.shutdown().await;
}

#[tokio::test]
async fn tokens_per_day_refuse_at_the_limit_until_utc_midnight() {
    let clock = Arc::new(ManualClock::new(T0));
    let (mut exact, mut above) = (String::new(), String::new());
    // Each request uses the same tokens; the first tells how many.
    let probe_h = gateway(&clock, |_| {}).await;
    let probe: Value = probe_h.message(&[]).await.json().await.unwrap();
    let per_request =
        ["input_tokens", "output_tokens"].iter().map(|f| probe["usage"][*f].as_u64().unwrap()).sum::<u64>();
    probe_h.shutdown().await;

    let h = gateway(&clock, |p| {
        exact = key(p, "exact", |l| l.tokens_per_day = Some(per_request));
        above = key(p, "above", |l| l.tokens_per_day = Some(per_request + 1));
    })
    .await;
    assert_eq!(messages(&h, &exact, "claude-sonnet-5").await.status(), 200);
    let (retry, should, message) =
        refused(messages(&h, &exact, "claude-sonnet-5").await, 429, "rate_limit_error").await;
    assert_eq!(retry, Some(14 * 3600), "until 00:00 UTC");
    assert_eq!(should.as_deref(), Some("false"), "a spent budget is not worth retrying soon");
    assert!(message.contains(&format!("its {per_request} tokens for today")), "{message}");
    // One token of headroom lets exactly one more request through.
    assert_eq!(messages(&h, &above, "claude-sonnet-5").await.status(), 200);
    assert_eq!(messages(&h, &above, "claude-sonnet-5").await.status(), 200);
    assert_eq!(messages(&h, &above, "claude-sonnet-5").await.status(), 429);
    // A new UTC day starts over.
    clock.set(T0 - T0 % DAY_MS + DAY_MS);
    assert_eq!(messages(&h, &exact, "claude-sonnet-5").await.status(), 200);
    h.shutdown().await;
}

#[tokio::test]
async fn a_monthly_budget_refuses_once_spent_until_the_next_month() {
    let clock = Arc::new(ManualClock::new(T0));
    let (mut spent, mut zero) = (String::new(), String::new());
    let h = gateway(&clock, |p| {
        // $1 per input token, outputs free: a request costs exactly its input tokens in dollars.
        common::edit_config(p, |c| {
            c.usage.prices.insert(
                "claude-sonnet-5".into(),
                llm_gateway::config::ModelPrice {
                    input: 1_000_000.0,
                    output: 0.0,
                    cache_write: 0.0,
                    cache_read: 0.0,
                    cache_write_1h: None,
                },
            );
        });
        spent = key(p, "spent", |l| l.budget_usd_month = Some(1_000_000.0));
        zero = key(p, "zero", |l| l.budget_usd_month = Some(0.0));
    })
    .await;
    let (_, should, _) = refused(messages(&h, &zero, "claude-sonnet-5").await, 429, "rate_limit_error").await;
    assert_eq!(should.as_deref(), Some("false"));
    let first: Value = messages(&h, &spent, "claude-sonnet-5").await.json().await.unwrap();
    let cost = first["usage"]["input_tokens"].as_f64().unwrap();
    // Lower the budget to exactly what was spent: the next request is refused; a cent more lets it through.
    for (budget, status) in [(cost, 429), (cost + 0.01, 200)] {
        common::edit_config(&h.config_path, |c| {
            c.client_keys.iter_mut().find(|k| k.name == "spent").unwrap().budget_usd_month = Some(budget);
        });
        let expected = status;
        h.eventually("the budget is in force", || async {
            // At `cost + 0.01` the first success spends more; only the status change is awaited.
            messages(&h, &spent, "claude-haiku-4-5").await.status().as_u16() == expected
        })
        .await;
    }
    // Refused until the 1st of the next month (2026-12-01T00:00Z).
    common::edit_config(&h.config_path, |c| {
        c.client_keys.iter_mut().find(|k| k.name == "spent").unwrap().budget_usd_month = Some(cost);
    });
    let month_end = 1_796_083_200_000;
    h.eventually("refused again", || async { messages(&h, &spent, "claude-sonnet-5").await.status() == 429 }).await;
    let (retry, _, _) = refused(messages(&h, &spent, "claude-sonnet-5").await, 429, "rate_limit_error").await;
    assert_eq!(retry, Some((month_end - T0) / 1000));
    clock.set(month_end);
    assert_eq!(messages(&h, &spent, "claude-sonnet-5").await.status(), 200);
    h.shutdown().await;
}

#[tokio::test]
async fn a_model_outside_the_keys_globs_is_refused_with_403_in_the_clients_format() {
    let clock = Arc::new(ManualClock::new(T0));
    let mut k = String::new();
    let h = gateway(&clock, |p| k = key(p, "haiku-only", |l| l.models = vec!["claude-haiku-*".into()])).await;
    assert_eq!(messages(&h, &k, "claude-haiku-4-5-20251001").await.status(), 200);
    let (_, _, message) = refused(messages(&h, &k, "claude-sonnet-5").await, 403, "permission_error").await;
    assert!(message.contains("may not use model `claude-sonnet-5`"), "{message}");
    // OpenAI names are checked after alias mapping: gpt-4o-mini is Haiku, gpt-4o is Sonnet.
    assert_eq!(chat(&h, &k, "gpt-4o-mini").await.status(), 200);
    let denied = chat(&h, &k, "gpt-4o").await;
    assert_eq!(denied.status(), 403);
    let body: Value = denied.json().await.unwrap();
    assert_eq!(body["error"]["type"], "permission_error", "{body}");
    assert!(body.get("type").is_none(), "OpenAI's shape, not Anthropic's: {body}");
    assert_eq!(upstream_calls(&h), 2);
    let recorded = outcomes(&h).await;
    assert_eq!(recorded.iter().filter(|(_, o)| o == "denied_by_key").count(), 2, "{recorded:?}");
    h.shutdown().await;
}

#[tokio::test]
async fn an_expired_key_works_through_its_last_utc_day_only() {
    let clock = Arc::new(ManualClock::new(T0 - T0 % DAY_MS + DAY_MS - 1)); // 2026-11-15T23:59:59.999Z
    let mut k = String::new();
    let h = gateway(&clock, |p| k = key(p, "temp", |l| l.expires = Some("2026-11-15".into()))).await;
    assert_eq!(messages(&h, &k, "claude-sonnet-5").await.status(), 200);
    clock.advance(1);
    let (_, _, message) = refused(messages(&h, &k, "claude-sonnet-5").await, 403, "permission_error").await;
    assert!(message.contains("expired"), "{message}");
    h.shutdown().await;
}

#[tokio::test]
async fn a_keys_accounts_and_tiers_restrict_the_routers_choice() {
    let clock = Arc::new(ManualClock::new(T0));
    let (mut by_name, mut by_tier) = (String::new(), String::new());
    let c: Arc<dyn Clock> = clock.clone();
    let h = Harness::with_clock("", "", Some(c), |p| {
        common::add_account_at(p, "main", "sk-ant-main", None, 0);
        common::add_account_at(p, "batch", "sk-ant-batch", None, 0);
        common::add_account_at(p, "spare", "sk-ant-spare", None, 1);
        by_name = key(p, "batch-jobs", |l| l.accounts = vec!["batch".into()]);
        by_tier = key(p, "overflow", |l| l.priority_tiers = vec![1]);
    })
    .await;
    let used = |h: &Harness| -> Vec<String> {
        h.mock.requests().iter().filter_map(|r| r.header("x-api-key").map(str::to_string)).collect()
    };
    for _ in 0..3 {
        assert_eq!(messages(&h, &by_name, "claude-sonnet-5").await.status(), 200);
    }
    assert_eq!(used(&h), ["sk-ant-batch"; 3]);
    h.mock.clear_requests();
    for _ in 0..2 {
        assert_eq!(messages(&h, &by_tier, "claude-sonnet-5").await.status(), 200);
    }
    assert_eq!(used(&h), ["sk-ant-spare"; 2], "a key's tier is used even while a better tier is usable");
    // The key's only account gone: a 503 that says why, and nothing sent upstream.
    common::manager(&h.config_path).set_enabled("batch", false).unwrap();
    h.mock.clear_requests();
    h.eventually("the disabled account is out", || async {
        messages(&h, &by_name, "claude-sonnet-5").await.status() == 503
    })
    .await;
    let response = messages(&h, &by_name, "claude-sonnet-5").await;
    let (_, _, message) = refused(response, 503, "api_error").await;
    assert!(message.contains("not allowed for gateway key `batch-jobs`"), "{message}");
    assert!(used(&h).iter().all(|k| k == "sk-ant-batch"), "no other account was tried: {:?}", used(&h));
    h.shutdown().await;
}
