//! Subscriptions done right (issue #13): every request's client kind (Claude Code, Anthropic SDK, OpenAI), stored
//! subscription (OAuth) accounts serving Claude Code only unless opted in (`clients: any`), the explanatory 503 in
//! the client's own format, and the identity system prompt added only when an opted-in account serves another
//! client (never a second copy).

mod common;

use common::Harness;
use llm_gateway::config::AccountClients;
use llm_gateway::manage::NewOAuthAccount;
use serde_json::{Value, json};

const IDENTITY: &str = "You are Claude Code, Anthropic's official CLI for Claude.";

/// A gateway with one subscription (OAuth) account `max`, logged in through the mock, serving `clients`.
async fn subscription_gateway(clients: Option<AccountClients>) -> Harness {
    let mut id = String::new();
    let h = Harness::with(|p| {
        common::edit_config(p, |c| {
            let base = c.upstream.base_url.clone();
            c.oauth.token_url = format!("{base}/v1/oauth/token");
            c.oauth.authorize_url = format!("{base}/oauth/authorize");
        });
        id = common::manager(p)
            .add_oauth(NewOAuthAccount {
                name: "max".into(),
                client_id: None,
                client_secret: None,
                weight: 1,
                priority: 0,
                models: vec![],
                clients,
            })
            .unwrap()
            .id;
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
