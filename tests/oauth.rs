//! Claude Code OAuth accounts end to end (issue #4): login by pasted code and by the loopback callback, request
//! enhancement, refresh on an expired token (single-flight), `invalid_grant` → needs_login, logins completed by
//! the server in force before it answers, forged callbacks answered from memory, and status off the runtime.

mod common;

use common::Harness;
use futures_util::StreamExt;
use llm_gateway::config::AccountClients;
use llm_gateway::manage::NewOAuthAccount;
use mock_upstream::OAuthMockConfig;
use serde_json::Value;

/// A gateway whose OAuth endpoints are the mock's, with one OAuth account (not logged in yet) that serves any
/// client (`clients: any`: these tests send SDK-style requests; tests/subscriptions.rs has the Claude Code rule).
async fn oauth_harness(redirect_uri: Option<&str>) -> (Harness, String) {
    let mut id = String::new();
    let redirect = redirect_uri.map(String::from);
    let h = Harness::with(|p| {
        common::edit_config(p, |c| {
            common::oauth_at_mock(c);
            if let Some(r) = redirect {
                c.oauth.redirect_uri = r;
            }
        });
        id = common::add_oauth_account(p, "max", Some(AccountClients::Any));
    })
    .await;
    (h, id)
}

async fn login(h: &Harness, id: &str) {
    let url = h.manager().oauth_start(id).unwrap();
    let pasted = h.mock.approve(&url).unwrap();
    let outcome = h.manager().oauth_complete(Some(id), &pasted, &reqwest::Client::new()).await.unwrap();
    assert_eq!(outcome.email.as_deref(), Some("mock-user@example.com"));
    h.eventually("account logged in", || async { post(h, None).await.status() == 200 }).await;
}

async fn post(h: &Harness, system: Option<Value>) -> reqwest::Response {
    let mut body = serde_json::json!({
        "model": "claude-sonnet-5", "max_tokens": 32,
        "messages": [{"role": "user", "content": "hi"}],
    });
    if let Some(system) = system {
        body["system"] = system;
    }
    h.http
        .post(format!("{}/v1/messages?beta=true", h.url))
        .header("anthropic-beta", "interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14")
        .header("x-api-key", "client-key-never-forwarded")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

fn account_view(status: &Value) -> &Value {
    &status["accounts"][0]
}

#[tokio::test]
async fn pasted_code_login_then_requests_carry_bearer_oauth_beta_and_the_identity_prompt() {
    let (h, id) = oauth_harness(None).await;
    let status = h.status_json().await;
    assert_eq!(account_view(&status)["state"], "needs_login");
    let message = common::error_of(post(&h, None).await, 503, "api_error").await;
    assert!(message.contains("max"), "{message}");

    login(&h, &id).await;
    h.mock.clear_requests();
    assert_eq!(post(&h, Some(Value::String("Be brief.".into()))).await.status(), 200);
    let sent = h.mock.requests().into_iter().find(|r| r.path == "/v1/messages").unwrap();
    assert!(sent.header("authorization").unwrap().starts_with("Bearer sk-ant-oat01-mock-"));
    assert!(sent.header("x-api-key").is_none());
    assert_eq!(
        sent.header("anthropic-beta"),
        Some("interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14,oauth-2025-04-20")
    );
    let body = sent.json().unwrap();
    assert_eq!(body["system"][0]["text"], "You are Claude Code, Anthropic's official CLI for Claude.");
    assert_eq!(body["system"][1]["text"], "Be brief.", "the caller's prompt is kept");
    assert_eq!(body["system"].as_array().unwrap().len(), 2);

    // A request that already carries an identity (after a billing header) gets no second copy.
    h.mock.clear_requests();
    let system = serde_json::json!([
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1; cc_entrypoint=cli;"},
        {"type": "text", "text": "You are a Claude agent, built on Anthropic's Claude Agent SDK."},
        {"type": "text", "text": "long prompt"}
    ]);
    assert_eq!(post(&h, Some(system.clone())).await.status(), 200);
    let sent = h.mock.requests().into_iter().find(|r| r.path == "/v1/messages").unwrap();
    assert_eq!(sent.json().unwrap()["system"], system);

    let status = h.status_json().await;
    let view = account_view(&status);
    assert_eq!(view["state"], "active");
    assert_eq!(view["email"], "mock-user@example.com");
    assert_eq!(view["oauth_state"], "active");
    assert!(view["token_expires_at"].is_string(), "{view}");
    let config = std::fs::read_to_string(&h.config_path).unwrap();
    assert!(!config.contains("sk-ant-oat01") && !config.contains("sk-ant-ort01"), "no token in the config");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refreshed_once_for_a_hundred_concurrent_requests() {
    let (h, id) = oauth_harness(None).await;
    login(&h, &id).await;
    let before = h.mock.oauth_stats().refresh_calls;
    h.mock.oauth_expire_access_tokens();
    let requests = (0..100).map(|_| post(&h, None));
    let statuses: Vec<u16> =
        futures_util::future::join_all(requests).await.into_iter().map(|r| r.status().as_u16()).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(h.mock.oauth_stats().refresh_calls - before, 1, "single-flight refresh");
    let status = h.status_json().await;
    assert!(account_view(&status)["last_refresh"].is_string());
    h.shutdown().await;
}

#[tokio::test]
async fn invalid_grant_puts_the_account_in_needs_login_without_a_retry_loop() {
    let (h, id) = oauth_harness(None).await;
    login(&h, &id).await;
    h.mock.oauth_expire_access_tokens();
    h.mock.oauth_config(OAuthMockConfig {
        fail_next_with_status: Some(400),
        fail_times: Some(100),
        ..Default::default()
    });
    let before = h.mock.oauth_stats().refresh_calls;
    let response = post(&h, None).await;
    assert_eq!(response.status(), 503);
    for _ in 0..3 {
        assert_eq!(post(&h, None).await.status(), 503);
    }
    assert_eq!(h.mock.oauth_stats().refresh_calls - before, 1, "no retry loop against the token endpoint");
    let status = h.status_json().await;
    assert_eq!(account_view(&status)["state"], "needs_login", "{status}");
    h.shutdown().await;
}

#[tokio::test]
async fn loopback_callback_completes_the_login_in_the_running_gateway() {
    let (h, id) = oauth_harness(Some("http://localhost:54545/callback")).await;
    let url = h.manager().oauth_start(&id).unwrap();
    let pasted = h.mock.approve(&url).unwrap();
    let (code, state) = pasted.split_once('#').unwrap();
    let page = h.http.get(format!("{}/oauth/callback?code={code}&state={state}", h.url)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Login complete") && html.contains("You can close this tab"), "{html}");
    // The desktop app's link names the account, so the app can bring its window forward on it.
    assert!(html.contains(&format!("href=\"llm-gateway://oauth/done?account={id}\"")), "{html}");
    h.eventually("logged in through the callback", || async { post(&h, None).await.status() == 200 }).await;

    let page = h.http.get(format!("{}/callback?code=x&state=forged", h.url)).send().await.unwrap();
    assert_eq!(page.status(), 400);
    assert!(page.text().await.unwrap().contains("Login failed"));
    h.shutdown().await;
}

/// `GET {path}?code=…&state=…` on the gateway, as the browser does after approving `authorize_url`.
async fn browser_callback(h: &Harness, path: &str, authorize_url: &str) -> reqwest::Response {
    let pasted = h.mock.approve(authorize_url).unwrap();
    let (code, state) = pasted.split_once('#').unwrap();
    h.http.get(format!("{}{path}?code={code}&state={state}", h.url)).send().await.unwrap()
}

async fn admin_post(h: &Harness, path: &str, body: Value) -> reqwest::Response {
    h.http.post(format!("{}/admin/api/v1{path}", h.url)).bearer_auth(h.admin_token()).json(&body).send().await.unwrap()
}

#[tokio::test]
async fn a_loopback_login_is_in_force_when_the_page_says_so_even_for_30_requests_on_an_expired_token() {
    let (h, id) = oauth_harness(Some("http://localhost:54545/callback")).await;
    let url = h.manager().oauth_start(&id).unwrap();
    let page = browser_callback(&h, "/oauth/callback", &url).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Login complete"));

    // No waiting for a reload: right away, with the new access token already expired upstream, 30 requests at
    // once share one refresh and all succeed.
    h.mock.oauth_expire_access_tokens();
    let before = h.mock.oauth_stats().refresh_calls;
    let statuses: Vec<u16> = futures_util::future::join_all((0..30).map(|_| post(&h, None)))
        .await
        .into_iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(h.mock.oauth_stats().refresh_calls - before, 1, "one refresh for all of them");
    h.shutdown().await;
}

#[tokio::test]
async fn a_login_completed_through_the_admin_api_is_in_force_when_it_answers() {
    let (h, id) = oauth_harness(None).await;
    let started: Value = admin_post(&h, &format!("/accounts/{id}/login"), serde_json::json!({"redirect": "manual"}))
        .await
        .json()
        .await
        .unwrap();
    let pasted = h.mock.approve(started["url"].as_str().unwrap()).unwrap();
    let done = admin_post(&h, &format!("/accounts/{id}/login/complete"), serde_json::json!({"code": pasted})).await;
    assert_eq!(done.status(), 200);
    let outcome: Value = done.json().await.unwrap();
    assert_eq!(outcome["account_id"], id.as_str());
    assert_eq!(post(&h, None).await.status(), 200, "usable without waiting for a reload");
    let status = h.status_json().await;
    assert_eq!(account_view(&status)["state"], "active");
    assert_eq!(account_view(&status)["email"], "mock-user@example.com");
    h.shutdown().await;
}

#[tokio::test]
async fn the_server_completes_a_login_with_the_accounts_own_oauth_client() {
    let (h, _) = oauth_harness(Some("http://localhost:54545/callback")).await;
    let id = h
        .manager()
        .add_oauth(NewOAuthAccount {
            name: "team".into(),
            client_id: Some("team-client".into()),
            client_secret: Some(llm_gateway::secrets::Secret::new("team-secret")),
            weight: 1,
            priority: 0,
            models: vec![],
            clients: None,
        })
        .unwrap()
        .id;
    let secrets = std::collections::HashMap::from([("team-client".to_string(), "team-secret".to_string())]);
    h.mock.oauth_config(OAuthMockConfig { client_secrets: Some(secrets), ..Default::default() });
    h.eventually("account loaded", || async {
        h.status_json().await["accounts"].as_array().is_some_and(|a| a.iter().any(|v| v["id"] == id.as_str()))
    })
    .await;

    // Through the loopback callback.
    let url = h.manager().oauth_start(&id).unwrap();
    assert!(url.contains("client_id=team-client"), "{url}");
    let page = browser_callback(&h, "/callback", &url).await;
    let html = page.text().await.unwrap();
    assert!(html.contains("Login complete"), "{html}");

    // Through the admin API.
    let started: Value = admin_post(&h, &format!("/accounts/{id}/login"), serde_json::json!({"redirect": "manual"}))
        .await
        .json()
        .await
        .unwrap();
    let pasted = h.mock.approve(started["url"].as_str().unwrap()).unwrap();
    let done = admin_post(&h, &format!("/accounts/{id}/login/complete"), serde_json::json!({"code": pasted})).await;
    assert_eq!(done.status(), 200, "{}", done.text().await.unwrap());
    assert_eq!(h.mock.oauth_stats().exchange_calls, 2);
    h.shutdown().await;
}

#[tokio::test]
async fn forged_callbacks_cost_no_secret_store_read_and_a_cli_started_login_still_completes() {
    let mut id = String::new();
    let h = Harness::with_test_store(|p| {
        common::edit_config(p, |c| {
            common::oauth_at_mock(c);
            c.oauth.redirect_uri = "http://localhost:54545/callback".into();
        });
        id = common::add_oauth_account(p, "max", Some(AccountClients::Any));
    })
    .await;
    let store = h.store.clone().unwrap();
    // A login started by another process (the CLI) is pending while the forged callbacks arrive.
    let url = h.manager().oauth_start(&id).unwrap();
    let reads = store.gets();
    let forged = (0..50).map(|i| {
        let path = if i % 2 == 0 { "/oauth/callback" } else { "/callback" };
        h.http.get(format!("{}{path}?code=c{i}&state=forged-{i}", h.url)).send()
    });
    for page in futures_util::future::join_all(forged).await {
        let page = page.unwrap();
        assert_eq!(page.status(), 400);
        assert!(page.text().await.unwrap().contains("Login failed"));
    }
    assert_eq!(store.gets() - reads, 0, "forged callbacks must not touch the secret store");

    let page = browser_callback(&h, "/oauth/callback", &url).await;
    assert_eq!(page.status(), 200);
    assert_eq!(post(&h, None).await.status(), 200);
    h.shutdown().await;
}

#[tokio::test]
async fn reading_a_slow_keychain_for_status_does_not_stall_streams() {
    // The default test runtime has one thread, like the server's default runtime.
    let h = Harness::with_test_store(|p| {
        common::add_account(p, "primary", common::GOOD_KEY, &[]);
        common::add_oauth_account(p, "max", None);
    })
    .await;
    let response = h
        .http
        .post(format!("{}/v1/messages", h.url))
        .header("x-mock-event-interval-ms", "250")
        .body(common::simple_body(true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    stream.next().await.unwrap().unwrap();
    // From now on every keychain read takes 2 s; the first status reads the OAuth account's tokens.
    let sleep = std::time::Duration::from_secs(2);
    h.store.as_ref().unwrap().delay_gets(sleep);
    let status = tokio::spawn({
        let (http, url, token) = (h.http.clone(), h.url.clone(), h.admin_token());
        async move { http.get(format!("{url}/admin/api/v1/status")).bearer_auth(token).send().await.unwrap() }
    });
    let mut last = std::time::Instant::now();
    let mut longest = std::time::Duration::ZERO;
    let mut events = 0;
    while let Some(chunk) = stream.next().await {
        chunk.unwrap();
        longest = longest.max(last.elapsed());
        last = std::time::Instant::now();
        events += 1;
    }
    assert!(events >= 5, "the stream went on while status ran ({events} more chunks)");
    assert!(longest < sleep / 2, "a stream stalled for {longest:?} while status read the keychain");
    let status: Value = status.await.unwrap().json().await.unwrap();
    assert_eq!(status["accounts"][1]["state"], "needs_login", "{status}");
    h.store.as_ref().unwrap().delay_gets(std::time::Duration::ZERO);
    h.shutdown().await;
}
