//! The gateway's own errors (Anthropic's shape), client-key auth, and Host/Origin checks.

mod common;

use common::{GOOD_KEY, Harness, error_of};

#[tokio::test]
async fn malformed_or_incomplete_bodies_get_a_clear_400() {
    let h = Harness::start().await;
    let post = |body: &'static str| h.http.post(format!("{}/v1/messages", h.url)).body(body).send();
    let message = error_of(post("{not json").await.unwrap(), 400, "invalid_request_error").await;
    assert!(message.contains("not valid JSON"), "{message}");
    let message = error_of(post(r#"{"messages":[]}"#).await.unwrap(), 400, "invalid_request_error").await;
    assert_eq!(message, "model: Field required");
    let message = error_of(post(r#"{"model":"claude-sonnet-5"}"#).await.unwrap(), 400, "invalid_request_error").await;
    assert_eq!(message, "messages: Field required");
    let message = error_of(post("").await.unwrap(), 400, "invalid_request_error").await;
    assert!(message.contains("empty"), "{message}");
    assert!(h.mock.requests().is_empty(), "nothing invalid goes upstream");
    h.shutdown().await;
}

#[tokio::test]
async fn oversized_bodies_get_413_and_unknown_routes_404() {
    let h = Harness::with_config("  max_body_bytes: 2048\n", "", |p| {
        common::add_account(p, "primary", GOOD_KEY, &[]);
    })
    .await;
    let big = format!(r#"{{"model":"m","messages":[{{"role":"user","content":"{}"}}]}}"#, "x".repeat(4096));
    let response = h.http.post(format!("{}/v1/messages", h.url)).body(big.clone()).send().await.unwrap();
    let message = error_of(response, 413, "request_too_large").await;
    assert!(message.contains("2048"), "{message}");
    // Without a Content-Length (chunked), the limit still holds.
    let stream = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(big.into_bytes())]);
    let response =
        h.http.post(format!("{}/v1/messages", h.url)).body(reqwest::Body::wrap_stream(stream)).send().await.unwrap();
    error_of(response, 413, "request_too_large").await;

    let response = h.http.get(format!("{}/v1/nothing-here", h.url)).send().await.unwrap();
    let message = error_of(response, 404, "not_found_error").await;
    assert!(message.contains("/v1/nothing-here"), "{message}");
    h.shutdown().await;
}

#[tokio::test]
async fn no_usable_account_is_503_saying_why() {
    let h = Harness::with(|_| {}).await;
    let message = error_of(h.message(&[]).await, 503, "api_error").await;
    assert!(message.contains("add-api-key"), "{message}");
    let ready = h.http.get(format!("{}/ready", h.url)).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    h.shutdown().await;

    let h = Harness::with(|p| {
        common::add_account(p, "opus-only", GOOD_KEY, &["claude-opus-*"]);
        let id = common::add_account(p, "off", GOOD_KEY, &[]);
        common::manager(p).set_enabled(&id, false).unwrap();
    })
    .await;
    let message = error_of(h.message(&[]).await, 503, "api_error").await;
    assert!(message.contains("1 account disabled"), "{message}");
    assert!(message.contains("not serving model `claude-sonnet-5`"), "{message}");
    h.shutdown().await;
}

#[tokio::test]
async fn rejected_key_marks_the_account_error_with_the_upstream_message() {
    let h = Harness::with(|p| {
        common::add_account(p, "revoked", "sk-ant-invalid-1", &[]);
    })
    .await;
    let response = h.message(&[]).await;
    assert_eq!(response.status(), 401, "the upstream's 401 is passed through");
    let status = h.status_json().await;
    let account = &status["accounts"][0];
    assert_eq!(account["state"], "error");
    assert!(account["error"].as_str().unwrap().contains("invalid x-api-key"), "{account}");
    let message = error_of(h.message(&[]).await, 503, "api_error").await;
    assert!(message.contains("revoked (upstream rejected the credential (401): invalid x-api-key"), "{message}");

    // Re-enabling clears the error so the account is tried again.
    h.manager().set_enabled("revoked", true).unwrap();
    h.eventually("account back to active", || async { h.status_json().await["accounts"][0]["state"] == "active" })
        .await;
    h.shutdown().await;
}

#[tokio::test]
async fn client_keys_are_required_once_one_exists() {
    let h = Harness::start().await;
    // Loopback and no client key: open.
    assert_eq!(h.message(&[]).await.status(), 200);
    let key = h.manager().add_client_key("laptop").unwrap();
    let config_text = std::fs::read_to_string(&h.config_path).unwrap();
    assert!(!config_text.contains(&key), "only the hash is stored");

    h.eventually("auth enforced after hot reload", || async { h.message(&[]).await.status() == 401 }).await;
    let message = error_of(h.message(&[]).await, 401, "authentication_error").await;
    assert!(message.contains("x-api-key"), "{message}");
    let message = error_of(h.message(&[("x-api-key", "lgw-wrong")]).await, 401, "authentication_error").await;
    assert_eq!(message, "invalid gateway key");
    assert_eq!(h.message(&[("x-api-key", &key)]).await.status(), 200);
    let bearer = format!("Bearer {key}");
    assert_eq!(h.message(&[("authorization", &bearer)]).await.status(), 200);
    // The gateway key never goes upstream.
    for r in h.mock.requests() {
        assert!(r.headers.iter().all(|(_, v)| !v.contains(&key)), "gateway key leaked upstream: {:?}", r.headers);
    }
    // health stays open for probes.
    assert_eq!(h.http.get(format!("{}/health", h.url)).send().await.unwrap().status(), 200);
    h.shutdown().await;
}

#[tokio::test]
async fn non_loopback_listen_without_client_keys_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_config(dir.path(), "http://127.0.0.1:9", "", "");
    let err = llm_gateway::start(llm_gateway::StartOptions {
        config_path: path.clone(),
        listen: Some("0.0.0.0:0".into()),
        ..Default::default()
    })
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("add-client-key"), "{err}");

    common::manager(&path).add_client_key("team").unwrap();
    let handle = llm_gateway::start(llm_gateway::StartOptions {
        config_path: path,
        listen: Some("0.0.0.0:0".into()),
        ..Default::default()
    })
    .await
    .expect("starts once a client key exists");
    handle.shutdown().await;
}

#[tokio::test]
async fn foreign_hosts_and_origins_are_refused() {
    let h = Harness::start().await;
    let response = h.message(&[("host", "evil.example:8787")]).await;
    let message = error_of(response, 403, "permission_error").await;
    assert!(message.contains("evil.example"), "{message}");
    let response = h.message(&[("origin", "https://evil.example")]).await;
    error_of(response, 403, "permission_error").await;
    assert_eq!(h.message(&[("origin", "http://localhost:3000")]).await.status(), 200);
    assert_eq!(h.message(&[("host", "localhost:8787")]).await.status(), 200);
    assert!(h.mock.requests().iter().filter(|r| r.path == "/v1/messages").count() == 2);
    h.shutdown().await;
}

#[tokio::test]
async fn admin_api_needs_the_admin_token() {
    let h = Harness::start().await;
    let response = h.http.get(format!("{}/admin/api/v1/status", h.url)).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "unauthorized", "the admin API's own error shape: {body}");
    let wrong = h.http.get(format!("{}/admin/api/v1/status", h.url)).bearer_auth("lgw-wrong").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let status = h.status_json().await;
    assert_eq!(status["source"], "server");
    assert_eq!(status["accounts"][0]["name"], "primary");
    assert!(!status.to_string().contains(GOOD_KEY), "no secret in status");
    h.shutdown().await;
}
