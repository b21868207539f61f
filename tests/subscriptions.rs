//! Subscriptions done right (issue #13): every request's client kind (Claude Code, Anthropic SDK, OpenAI), stored
//! subscription (OAuth) accounts serving Claude Code only unless opted in (`clients: any`), the explanatory 503 in
//! the client's own format, and the identity system prompt added only when an opted-in account serves another
//! client (never a second copy).

mod common;

use common::Harness;
use llm_gateway::config::AccountClients;
use serde_json::{Value, json};

const IDENTITY: &str = "You are Claude Code, Anthropic's official CLI for Claude.";

/// A gateway with one subscription (OAuth) account `max`, logged in through the mock, serving `clients`.
async fn subscription_gateway(clients: Option<AccountClients>) -> Harness {
    let mut id = String::new();
    let h = Harness::with(|p| {
        common::edit_config(p, common::oauth_at_mock);
        id = common::add_oauth_account(p, "max", clients);
    })
    .await;
    let url = h.manager().oauth_start(&id).unwrap();
    let pasted = h.mock.approve(&url).unwrap();
    h.manager().oauth_complete(Some(&id), &pasted, &reqwest::Client::new()).await.unwrap();
    h.eventually("account logged in", || async { h.status_json().await["accounts"][0]["state"] == "active" }).await;
    h.mock.clear_requests();
    h
}

/// A request as Claude Code sends it (headers of the real CLI, protocol.md §7), with its own system prompt.
async fn claude_code_request(h: &Harness, model: &str, system: Value) -> reqwest::Response {
    h.http
        .post(format!("{}/v1/messages?beta=true", h.url))
        .header("user-agent", "claude-cli/2.1.197 (external, cli)")
        .header("x-app", "cli")
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14")
        .json(&json!({
            "model": model, "max_tokens": 32, "system": system,
            "messages": [{"role": "user", "content": "hi"}],
        }))
        .send()
        .await
        .unwrap()
}

/// A request as the Anthropic SDK sends it.
async fn sdk_request(h: &Harness) -> reqwest::Response {
    h.http
        .post(format!("{}/v1/messages", h.url))
        .header("user-agent", "Anthropic/Python 0.75.0")
        .header("anthropic-version", "2023-06-01")
        .json(&json!({
            "model": "claude-sonnet-5", "max_tokens": 32, "system": "Be brief.",
            "messages": [{"role": "user", "content": "hi"}],
        }))
        .send()
        .await
        .unwrap()
}

/// A request as the OpenAI SDK sends it.
async fn openai_request(h: &Harness) -> reqwest::Response {
    h.http
        .post(format!("{}/v1/chat/completions", h.url))
        .header("user-agent", "OpenAI/Python 2.8.0")
        .json(&json!({"model": "claude-sonnet-5", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"}
        ]}))
        .send()
        .await
        .unwrap()
}

fn sent_messages(h: &Harness) -> Vec<Value> {
    h.mock.requests().into_iter().filter(|r| r.path == "/v1/messages").map(|r| r.json().unwrap()).collect()
}

fn identities(body: &Value) -> usize {
    let system = body["system"].as_array().cloned().unwrap_or_default();
    system.iter().filter(|b| b["text"].as_str().is_some_and(|t| t.starts_with("You are Claude Code"))).count()
}

fn assert_names_the_switch(message: &str) {
    assert!(message.contains("serves Claude Code only"), "{message}");
    assert!(message.contains("`clients: any`"), "names the switch: {message}");
    assert!(message.contains("Anthropic's terms"), "says why: {message}");
    assert!(message.contains("/admin/api/v1/accounts/"), "and where to flip it: {message}");
}

#[tokio::test]
async fn other_clients_get_a_503_in_their_own_format_naming_the_switch_when_only_a_subscription_exists() {
    let h = subscription_gateway(None).await;

    let response = openai_request(&h).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert!(body.get("type").is_none(), "OpenAI's shape, not Anthropic's: {body}");
    assert_names_the_switch(body["error"]["message"].as_str().unwrap());

    let message = common::error_of(sdk_request(&h).await, 503, "api_error").await;
    assert_names_the_switch(&message);
    assert!(sent_messages(&h).is_empty(), "nothing reached the upstream with the subscription");

    // Claude Code itself is served by the same account.
    assert_eq!(
        claude_code_request(&h, "claude-sonnet-5", json!([{"type": "text", "text": IDENTITY}])).await.status(),
        200
    );
    assert_eq!(sent_messages(&h).len(), 1);

    // Every request was classified, refused ones included.
    let seen = &h.status_json().await["clients_seen"];
    assert_eq!(*seen, json!({"claude_code": 1, "anthropic_sdk": 1, "openai": 1, "other": 0}), "{seen}");
    h.shutdown().await;
}

#[tokio::test]
async fn claude_codes_own_requests_go_out_without_an_added_identity() {
    let h = subscription_gateway(None).await;
    // Claude Code's system prompt: its billing block, then its identity, then the rest. Sent as it came.
    let system = json!([
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197; cc_entrypoint=cli;"},
        {"type": "text", "text": IDENTITY},
        {"type": "text", "text": "long prompt"}
    ]);
    assert_eq!(claude_code_request(&h, "claude-sonnet-5", system.clone()).await.status(), 200);
    let sent = h.mock.requests().into_iter().find(|r| r.path == "/v1/messages").unwrap();
    assert_eq!(sent.json().unwrap()["system"], system, "untouched");
    assert!(sent.header("authorization").unwrap().starts_with("Bearer sk-ant-oat01-mock-"), "the stored login");
    assert_eq!(
        sent.header("anthropic-beta"),
        Some("claude-code-20250219,interleaved-thinking-2025-05-14,oauth-2025-04-20")
    );
    h.shutdown().await;
}

#[tokio::test]
async fn clients_any_serves_other_clients_with_the_identity_added_once() {
    let h = subscription_gateway(Some(AccountClients::Any)).await;

    let response = openai_request(&h).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(sdk_request(&h).await.status(), 200);
    let sent = sent_messages(&h);
    assert_eq!(sent.len(), 2);
    for body in &sent {
        assert_eq!(identities(body), 1, "exactly one identity: {body}");
        assert_eq!(body["system"][0]["text"], IDENTITY, "first: {body}");
        assert_eq!(body["system"][1]["text"], "Be brief.", "the caller's prompt kept: {body}");
    }

    // A Claude Code request through the same account keeps its own prompt, without the gateway's identity (a
    // Haiku request, which the upstream takes without one).
    h.mock.clear_requests();
    assert_eq!(claude_code_request(&h, "claude-haiku-4-5", json!("Be brief.")).await.status(), 200);
    assert_eq!(sent_messages(&h)[0]["system"], "Be brief.", "Claude Code's request is not enhanced");
    h.shutdown().await;
}

// ---- Claude Code's own login passed through (subscriptions.own_login) ----

const OWN_TOKEN: &str = "sk-ant-oat01-own-login-token-of-the-user-0123456789";
const CLAUDE_CODE_BETAS: &str = "claude-code-20250219,oauth-2025-04-20,interleaved-thinking-2025-05-14";

/// A gateway with one API-key account; with a general client key when `with_key` (returned).
async fn own_login_gateway(with_key: bool, own_login: &str) -> (Harness, Option<String>) {
    let mut key = None;
    let own_login = own_login.to_string();
    let h = Harness::with(|p| {
        common::add_account(p, "primary", common::GOOD_KEY, &[]);
        if with_key {
            key = Some(common::create_key(p, "laptop", |_| {}));
        }
        common::edit_config(p, |c| {
            c.subscriptions.own_login = serde_json::from_value(json!(own_login)).unwrap();
        });
    })
    .await;
    h.mock.oauth_config(mock_upstream::OAuthMockConfig {
        accept_tokens: Some(vec![OWN_TOKEN.to_string()]),
        ..Default::default()
    });
    (h, key)
}

/// A Claude Code request on its own login: its token as Bearer and its betas; `gateway_key` in the custom header.
async fn own_login_request(h: &Harness, token: &str, gateway_key: Option<&str>) -> reqwest::Response {
    let mut request = h
        .http
        .post(format!("{}/v1/messages?beta=true", h.url))
        .header("user-agent", "claude-cli/2.1.197 (external, cli)")
        .header("x-app", "cli")
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", CLAUDE_CODE_BETAS)
        .header("authorization", format!("Bearer {token}"))
        .json(&json!({
            "model": "claude-sonnet-5", "max_tokens": 32, "system": [{"type": "text", "text": IDENTITY}],
            "messages": [{"role": "user", "content": "hi"}],
        }));
    if let Some(key) = gateway_key {
        request = request.header("x-llm-gateway-key", key);
    }
    request.send().await.unwrap()
}

/// Every file under the config directory, as text.
fn config_dir_text(h: &Harness) -> String {
    let mut all = String::new();
    let mut dirs = vec![h.dir.path().to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                all.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default()));
            }
        }
    }
    all
}

#[tokio::test]
async fn claude_codes_own_login_goes_upstream_untouched_and_is_tracked_under_a_hash() {
    let (mut h, key) = own_login_gateway(true, "forward").await;
    let response = own_login_request(&h, OWN_TOKEN, key.as_deref()).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());

    let sent = h.mock.requests().into_iter().find(|r| r.path == "/v1/messages").unwrap();
    assert_eq!(sent.header_all("authorization"), [format!("Bearer {OWN_TOKEN}")], "exactly the client's token");
    assert_eq!(sent.header_all("anthropic-beta"), [CLAUDE_CODE_BETAS], "exactly the client's betas");
    assert!(sent.header("x-api-key").is_none(), "no stored account's key");
    assert!(sent.header("x-llm-gateway-key").is_none(), "the gateway key never leaves");
    assert_eq!(sent.json().unwrap()["system"], json!([{"type": "text", "text": IDENTITY}]), "no enhancement");

    let status = h.status_json().await;
    assert_eq!(status["accounts"][0]["requests"], 0, "no stored account was used: {status}");
    let own = &status["own_logins"][0];
    let name = own["name"].as_str().unwrap();
    assert!(name.starts_with("Claude Code login ·") && name.chars().count() == "Claude Code login ·a1b2".len() - 1);
    assert_eq!(own["state"], "active");
    assert_eq!(own["requests"], 1);
    assert!(own["windows"]["five_hour"].is_object(), "its plan windows, from the answer: {own}");
    let id = own["id"].as_str().unwrap().to_string();

    // Its usage is grouped under the hash too.
    let token = h.admin_token();
    h.eventually("request recorded", || async {
        let page: Value = h
            .http
            .get(format!("{}/admin/api/v1/requests", h.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let first = &page["requests"][0];
        first["account"] == id.as_str() && first["client_kind"] == "claude_code"
    })
    .await;
    let shown = serde_json::to_string(&h.status_json().await).unwrap();
    assert!(!shown.contains("own-login-token"), "no credential in status");
    // Shut down (the usage store written and closed), then look at every file the gateway keeps.
    h.gateway.take().unwrap().shutdown().await;
    let files = config_dir_text(&h);
    assert!(h.dir.path().join("usage.db").exists(), "the usage store is among them");
    assert!(!files.contains("own-login-token"), "the token is in no file under the config dir");
}

#[tokio::test]
async fn an_own_login_without_the_gateway_key_gets_a_401_naming_the_header() {
    let (h, _) = own_login_gateway(true, "forward").await;
    let message = common::error_of(own_login_request(&h, OWN_TOKEN, None).await, 401, "authentication_error").await;
    assert!(message.contains("x-llm-gateway-key") && message.contains("ANTHROPIC_CUSTOM_HEADERS"), "{message}");
    let message =
        common::error_of(own_login_request(&h, OWN_TOKEN, Some("lgw-wrong")).await, 401, "authentication_error").await;
    assert!(message.contains("invalid gateway key"), "{message}");
    assert!(h.mock.requests().is_empty());
    h.shutdown().await;
}

#[tokio::test]
async fn own_login_refuse_answers_401_saying_how_to_use_a_gateway_key() {
    let (h, key) = own_login_gateway(true, "refuse").await;
    let message =
        common::error_of(own_login_request(&h, OWN_TOKEN, key.as_deref()).await, 401, "authentication_error").await;
    assert!(message.contains("subscriptions.own_login: refuse"), "{message}");
    assert!(message.contains("llm-gateway claude-code setup") && message.contains("ANTHROPIC_API_KEY"), "{message}");
    assert!(h.mock.requests().is_empty(), "nothing forwarded");
    // The same client with its gateway key only is served by the stored account.
    let response = h.message(&[("x-api-key", key.as_deref().unwrap())]).await;
    assert_eq!(response.status(), 200);
    h.shutdown().await;
}

#[tokio::test]
async fn without_client_keys_a_loopback_gateway_forwards_claude_codes_login_with_only_the_base_url_set() {
    let (h, _) = own_login_gateway(false, "forward").await;
    assert_eq!(own_login_request(&h, OWN_TOKEN, None).await.status(), 200);
    let sent = h.mock.requests().into_iter().find(|r| r.path == "/v1/messages").unwrap();
    assert_eq!(sent.header("authorization"), Some(format!("Bearer {OWN_TOKEN}").as_str()));
    // A token the upstream does not know comes back as the upstream's 401 (Claude Code then refreshes its login),
    // and no stored account stands in for it.
    h.mock.clear_requests();
    let refused = own_login_request(&h, "sk-ant-oat01-unknown", None).await;
    assert_eq!(refused.status(), 401);
    let sent: Vec<_> = h.mock.requests().into_iter().filter(|r| r.path == "/v1/messages").collect();
    assert_eq!(sent.len(), 1, "one attempt, with the client's own token");
    assert_eq!(h.status_json().await["accounts"][0]["requests"], 0);
    h.shutdown().await;
}

#[tokio::test]
async fn an_own_login_at_its_plan_limit_is_benched_and_answered_429_until_the_reset() {
    let (h, _) = own_login_gateway(false, "forward").await;
    let limited = "sk-ant-oat01-oauthlimited-user";
    let first = own_login_request(&h, limited, None).await;
    assert_eq!(first.status(), 429, "the upstream's own answer goes back");
    assert_eq!(first.headers()["anthropic-ratelimit-unified-status"], "rejected");
    let second = own_login_request(&h, limited, None).await;
    assert_eq!(second.status(), 429);
    let retry_after: u64 = second.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((3500..=3600).contains(&retry_after), "retry-after at the 5-hour window's reset: {retry_after}");
    assert_eq!(second.headers()["x-should-retry"], "false", "an hour away: report it rather than retry");
    let message = common::error_of(second, 429, "rate_limit_error").await;
    assert!(message.contains("Claude Code login ·"), "{message}");
    let sent = h.mock.requests().into_iter().filter(|r| r.path == "/v1/messages").count();
    assert_eq!(sent, 1, "the benched login is not sent upstream, nor any stored account used");
    let status = h.status_json().await;
    assert_eq!(status["own_logins"][0]["state"], "cooling_down", "{status}");
    assert_eq!(status["accounts"][0]["requests"], 0);
    h.shutdown().await;
}

#[tokio::test]
async fn a_fresh_gateway_without_any_account_serves_claude_code_on_its_own_login() {
    let h = Harness::with(|_| {}).await;
    assert_eq!(own_login_request(&h, OWN_TOKEN, None).await.status(), 200, "a new Pro/Max user needs nothing stored");
    let message = common::error_of(sdk_request(&h).await, 503, "api_error").await;
    assert!(message.contains("no account is configured"), "other tools still need an account: {message}");
    h.shutdown().await;
}

#[tokio::test]
async fn an_own_login_at_its_plan_limit_spills_over_to_an_api_key_without_its_credential_when_allowed() {
    let h = Harness::with(|p| {
        common::add_account(p, "primary", common::GOOD_KEY, &[]);
        common::edit_config(p, |c| {
            c.routing.spillover = serde_json::from_value(json!("api_keys")).unwrap();
        });
    })
    .await;
    let limited = "sk-ant-oat01-oauthlimited-user";
    let first = own_login_request(&h, limited, None).await;
    assert_eq!(first.status(), 200, "an API-key account took over");
    assert_eq!(first.headers()["x-llm-gateway-spillover"], "api_key");
    let second = own_login_request(&h, limited, None).await;
    assert_eq!(second.status(), 200);
    assert_eq!(second.headers()["x-llm-gateway-spillover"], "api_key", "while benched, straight to the API key");

    let sent: Vec<_> = h.mock.requests().into_iter().filter(|r| r.path == "/v1/messages").collect();
    assert_eq!(sent.len(), 3, "the login once, then the API key twice");
    assert_eq!(sent[0].header("authorization"), Some(format!("Bearer {limited}").as_str()));
    for spilled in &sent[1..] {
        assert_eq!(spilled.header("x-api-key"), Some(common::GOOD_KEY));
        assert_eq!(spilled.header("authorization"), None, "the client's login does not go with the API key");
        let betas = spilled.header_all("anthropic-beta").join(",");
        assert!(!betas.contains("oauth-2025-04-20") && betas.contains("claude-code-20250219"), "{betas}");
    }
    let status = h.status_json().await;
    assert_eq!(status["own_logins"][0]["state"], "cooling_down", "{status}");
    assert_eq!(status["accounts"][0]["requests"], 2);
    h.shutdown().await;
}
