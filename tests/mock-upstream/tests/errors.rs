//! Key-selected and header-selected errors, validation errors, unknown paths.

mod common;

use common::{assert_error, body, client, post};
use mock_upstream::MockUpstream;
use serde_json::json;

fn is_rfc3339(s: &str) -> bool {
    s.len() == 20 && s.as_bytes()[10] == b'T' && s.ends_with('Z') && s[..4].parse::<u32>().is_ok()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn hdr<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers().get(name).unwrap_or_else(|| panic!("missing {name}")).to_str().unwrap()
}

#[tokio::test]
async fn key_selected_errors() {
    let mock = MockUpstream::start().await.unwrap();
    let url = mock.base_url();
    let b = body(false);

    let r = post(&url, "sk-invalid-1", &b).send().await.unwrap();
    assert_eq!(hdr(&r, "x-should-retry"), "false");
    assert_eq!(assert_error(r, 401, "authentication_error").await, "invalid x-api-key");

    let r = post(&url, "sk-ratelimited", &b).send().await.unwrap();
    assert_eq!(hdr(&r, "retry-after"), "30");
    for kind in ["requests", "tokens"] {
        assert_eq!(hdr(&r, &format!("anthropic-ratelimit-{kind}-remaining")), "0");
        assert!(hdr(&r, &format!("anthropic-ratelimit-{kind}-limit")).parse::<u64>().unwrap() > 0);
        assert!(is_rfc3339(hdr(&r, &format!("anthropic-ratelimit-{kind}-reset"))));
    }
    assert_error(r, 429, "rate_limit_error").await;

    let r = post(&url, "sk-overloaded", &b).send().await.unwrap();
    assert_eq!(hdr(&r, "x-should-retry"), "true");
    assert_eq!(assert_error(r, 529, "overloaded_error").await, "Overloaded");

    // Bearer works as well as x-api-key.
    let r = client()
        .post(format!("{url}/v1/messages"))
        .bearer_auth("sk-ant-oat01-oauthlimited")
        .json(&b)
        .send()
        .await
        .unwrap();
    assert_eq!(hdr(&r, "anthropic-ratelimit-unified-status"), "rejected");
    let reset: u64 = hdr(&r, "anthropic-ratelimit-unified-reset").parse().unwrap();
    assert!(reset.abs_diff(unix_now() + 3600) < 60);
    assert_eq!(hdr(&r, "anthropic-ratelimit-unified-5h-status"), "rejected");
    assert_eq!(hdr(&r, "anthropic-ratelimit-unified-7d-status"), "allowed");
    assert_eq!(hdr(&r, "anthropic-ratelimit-unified-representative-claim"), "five_hour");
    assert!(hdr(&r, "retry-after").parse::<u64>().unwrap() > 0);
    assert_error(r, 429, "rate_limit_error").await;

    let r = post(&url, "sk-broken", &b).send().await.unwrap();
    assert_error(r, 500, "api_error").await;

    // The same keys apply to count_tokens and models.
    let r = client().get(format!("{url}/v1/models")).header("x-api-key", "invalid").send().await.unwrap();
    assert_error(r, 401, "authentication_error").await;
}

#[tokio::test]
async fn missing_auth_and_oauth_beta() {
    let mock = MockUpstream::start().await.unwrap();
    let url = format!("{}/v1/messages", mock.base_url());
    let r = client().post(&url).json(&body(false)).send().await.unwrap();
    assert_error(r, 401, "authentication_error").await;

    let r = client().post(&url).bearer_auth("sk-ant-oat01-abc").json(&body(false)).send().await.unwrap();
    let msg = assert_error(r, 401, "authentication_error").await;
    assert_eq!(msg, "OAuth authentication is currently not supported.");

    let r = client()
        .post(&url)
        .bearer_auth("sk-ant-oat01-abc")
        .header("anthropic-beta", "claude-code-20250219,oauth-2025-04-20")
        .json(&body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(hdr(&r, "anthropic-ratelimit-unified-status"), "allowed");

    // An ordinary key as Bearer (what the current SDK sends) is fine without the beta.
    let r = client().post(&url).bearer_auth("sk-ant-api03-abc").json(&body(false)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(hdr(&r, "anthropic-ratelimit-requests-remaining"), "3999");
}

#[tokio::test]
async fn header_selected_status() {
    let mock = MockUpstream::start().await.unwrap();
    let url = mock.base_url();
    let send = |code: &str| post(&url, "k", &body(true)).header("x-mock-status", code).send();
    let r = send("429").await.unwrap();
    assert_eq!(hdr(&r, "retry-after"), "1");
    assert_eq!(hdr(&r, "anthropic-ratelimit-requests-remaining"), "0");
    assert_error(r, 429, "rate_limit_error").await;
    assert_eq!(assert_error(send("529").await.unwrap(), 529, "overloaded_error").await, "Overloaded");
    for (code, kind) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (402, "billing_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (500, "api_error"),
        (503, "api_error"),
    ] {
        assert_error(send(&code.to_string()).await.unwrap(), code, kind).await;
    }
}

#[tokio::test]
async fn validation_errors() {
    let mock = MockUpstream::start().await.unwrap();
    let url = format!("{}/v1/messages", mock.base_url());
    let raw = |b: &'static str| {
        client().post(&url).header("x-api-key", "k").header("content-type", "application/json").body(b).send()
    };
    assert_error(raw("{not json").await.unwrap(), 400, "invalid_request_error").await;
    assert_error(raw("").await.unwrap(), 400, "invalid_request_error").await;
    let msg =
        assert_error(raw(r#"{"model":"claude-x","messages":[]}"#).await.unwrap(), 400, "invalid_request_error").await;
    assert_eq!(msg, "max_tokens: Field required");
    let msg = assert_error(
        raw(r#"{"model":"claude-x","max_tokens":"ten","messages":[]}"#).await.unwrap(),
        400,
        "invalid_request_error",
    )
    .await;
    assert!(msg.starts_with("max_tokens:"), "{msg}");
    let msg =
        assert_error(raw(r#"{"model":"claude-x","max_tokens":1}"#).await.unwrap(), 400, "invalid_request_error").await;
    assert_eq!(msg, "messages: Field required");

    let mut b = body(false);
    b["model"] = json!("mock-missing-model");
    let r = post(&mock.base_url(), "k", &b).send().await.unwrap();
    assert_eq!(assert_error(r, 404, "not_found_error").await, "model: mock-missing-model");
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let mock = MockUpstream::start().await.unwrap();
    let url = mock.base_url();
    let r = client().head(format!("{url}/")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers().get("request-id").is_some());
    let r = client().get(format!("{url}/v1/nope")).send().await.unwrap();
    assert_error(r, 404, "not_found_error").await;
    let r = client().get(format!("{url}/v1/messages")).header("x-api-key", "k").send().await.unwrap();
    assert_error(r, 404, "not_found_error").await;
    assert_eq!(mock.requests().len(), 3);
}

#[tokio::test]
async fn subscription_plans_set_over_http_answer_per_token_as_protocol_md_describes() {
    let mock = MockUpstream::start().await.unwrap();
    let url = mock.base_url();
    let oauth = |token: &str| {
        client()
            .post(format!("{url}/v1/messages"))
            .bearer_auth(token)
            .header("anthropic-beta", "claude-code-20250219,oauth-2025-04-20")
            .json(&body(false))
    };
    let reset = unix_now() + 7200;
    let set = |plan: serde_json::Value| client().post(format!("{url}/_mock/plan")).json(&plan).send();
    assert_eq!(
        set(json!({"token": "sk-ant-oat01-x", "mode": "exhausted", "five_hour_reset": reset})).await.unwrap().status(),
        204
    );
    assert_eq!(set(json!({"mode": "nope"})).await.unwrap().status(), 400);

    // Exhausted, extra usage off: the captured 429 (protocol.md §3).
    let r = oauth("sk-ant-oat01-x").send().await.unwrap();
    assert_eq!(hdr(&r, "anthropic-ratelimit-unified-status"), "rejected");
    assert_eq!(hdr(&r, "anthropic-ratelimit-unified-5h-status"), "rejected");
    assert_eq!(hdr(&r, "anthropic-ratelimit-unified-5h-reset"), reset.to_string());
    assert_eq!(hdr(&r, "anthropic-ratelimit-unified-overage-status"), "rejected");
    assert_eq!(hdr(&r, "anthropic-ratelimit-unified-overage-disabled-reason"), "org_level_disabled");
    assert!(hdr(&r, "retry-after").parse::<u64>().unwrap() <= 7200);
    assert_error(r, 429, "rate_limit_error").await;
    // Another token keeps the default plan.
    let r = oauth("sk-ant-oat01-y").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(hdr(&r, "anthropic-ratelimit-unified-status"), "allowed");

    // Served beyond the plan: a 200 with the plan rejected and overage allowed.
    set(json!({"token": "sk-ant-oat01-x", "mode": "overage", "model_window": "7d_oi"})).await.unwrap();
    let r = oauth("sk-ant-oat01-x").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(hdr(&r, "anthropic-ratelimit-unified-status"), "rejected");
    assert_eq!(hdr(&r, "anthropic-ratelimit-unified-overage-status"), "allowed");
    assert_eq!(hdr(&r, "anthropic-ratelimit-unified-7d_oi-utilization"), "0.4");

    // Third-party traffic: the 400, in exactly the reported shape.
    set(json!({"token": "sk-ant-oat01-x", "mode": "third_party"})).await.unwrap();
    let r = oauth("sk-ant-oat01-x").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let id = hdr(&r, "request-id").to_string();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": mock_upstream::THIRD_PARTY_MESSAGE},
               "request_id": id})
    );
}
