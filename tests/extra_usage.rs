//! Plan limits before extra usage and spill-over (issue #13, items 4–5): with `subscriptions.extra_usage: avoid`
//! a subscription whose plan is exhausted (a rejected 429 with the overage headers, a 200 served beyond the plan,
//! the 400 "Third-party apps now draw from your extra usage") is benched until its window resets and the request
//! fails over or gets a 429 with `retry-after` at the reset; `allow` passes through; `routing.spillover` decides
//! whether an API-key account serves a Claude Code request whose subscriptions are all exhausted. Time is the
//! gateway's manual clock; the mock's plans name their resets on it.

mod common;

use std::sync::Arc;

use common::Harness;
use llm_gateway::clock::{Clock, ManualClock, SystemClock};
use llm_gateway::config::AccountClients;
use llm_gateway::manage::NewOAuthAccount;
use llm_gateway::secrets::Secret;
use mock_upstream::{PlanConfig, PlanMode, THIRD_PARTY_MESSAGE};
use serde_json::{Value, json};

const TOKEN_A: &str = "sk-ant-oat01-plan-a";
const TOKEN_B: &str = "sk-ant-oat01-plan-b";
const API_KEY: &str = "sk-ant-api03-spill-key";

/// Claude Code's own request headers (protocol.md §7).
const CLAUDE_CODE: [(&str, &str); 2] = [("x-app", "cli"), ("user-agent", "claude-cli/2.1.197 (external, cli)")];

/// A manual clock on a whole second a little before now: resets the mock computes from the system clock (whole
/// seconds) then never land before the gateway's "now".
fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new((SystemClock.now_ms() / 1000) * 1000 - 5000))
}

/// Adds a subscription (OAuth) account logged in with `token` (stored as the login would store it).
fn add_subscription(path: &std::path::Path, name: &str, token: &str, priority: u32, clients: Option<AccountClients>) {
    let manager = common::manager(path);
    let new = NewOAuthAccount {
        name: name.into(),
        client_id: None,
        client_secret: None,
        weight: 1,
        priority,
        models: vec![],
        clients,
    };
    let id = manager.add_oauth(new).unwrap().id;
    let expires_at = SystemClock.now_ms() / 1000 + 365 * 86_400;
    let record = json!({"access_token": token, "refresh_token": "sk-ant-ort01-unused", "expires_at": expires_at,
                        "scopes": ["user:inference"]});
    manager.secrets().unwrap().set(&format!("account:{id}:oauth"), &Secret::new(record.to_string())).unwrap();
}

fn yaml(extra_usage: &str, spillover: &str) -> String {
    format!("subscriptions:\n  extra_usage: {extra_usage}\nrouting:\n  spillover: {spillover}\n")
}

async fn gateway(clock: &Arc<ManualClock>, config: &str, setup: impl FnOnce(&std::path::Path)) -> Harness {
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    Harness::with_clock("", "", Some(dyn_clock), |p| {
        let text = std::fs::read_to_string(p).unwrap() + config;
        std::fs::write(p, text).unwrap();
        setup(p);
    })
    .await
}

fn plan(token: &str, mode: PlanMode, five_hour_reset: u64) -> PlanConfig {
    PlanConfig { token: Some(token.into()), mode, five_hour_reset: Some(five_hour_reset), ..PlanConfig::default() }
}

/// Requests the mock received with this credential (Bearer token or API key).
fn sent_with(h: &Harness, credential: &str) -> usize {
    h.mock
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/messages")
        .filter(|r| {
            r.header("authorization") == Some(format!("Bearer {credential}").as_str())
                || r.header("x-api-key") == Some(credential)
        })
        .count()
}

fn account<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["accounts"].as_array().unwrap().iter().find(|a| a["name"] == name).unwrap()
}

fn rfc3339(secs: u64) -> String {
    llm_gateway::clock::rfc3339(secs * 1000)
}

async fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"].to_str().unwrap().parse().unwrap()
}

/// Two subscriptions, `max-a` (tier 0, `TOKEN_A`) and its fallback `max-b` (tier 1, `TOKEN_B`), with
/// `subscriptions.extra_usage: extra_usage` and no spill-over.
async fn two_subscriptions(clock: &Arc<ManualClock>, extra_usage: &str) -> Harness {
    gateway(clock, &yaml(extra_usage, "none"), |p| {
        add_subscription(p, "max-a", TOKEN_A, 0, None);
        add_subscription(p, "max-b", TOKEN_B, 1, None);
    })
    .await
}

#[tokio::test]
async fn a_rejected_plan_benches_the_account_until_its_reset_and_the_request_fails_over_to_the_next_subscription() {
    let clock = clock();
    let now = clock.now_ms() / 1000;
    let h = two_subscriptions(&clock, "avoid").await;
    h.mock.plan(plan(TOKEN_A, PlanMode::Exhausted, now + 3600));

    let response = h.message(&CLAUDE_CODE).await;
    assert_eq!(response.status(), 200);
    assert_eq!(sent_with(&h, TOKEN_A), 1);
    assert_eq!(sent_with(&h, TOKEN_B), 1, "failed over to the other subscription");
    let status = h.status_json().await;
    let a = account(&status, "max-a");
    assert_eq!(a["state"], "cooling_down");
    assert_eq!(a["cooldown_reason"], "extra_usage");
    assert_eq!(a["cooldown_until"], rfc3339(now + 3600), "benched until the 5-hour window resets");
    assert_eq!(a["windows"]["overage_status"], "rejected");
    assert_eq!(a["windows"]["overage_disabled_reason"], "org_level_disabled");

    // Until the reset, the exhausted plan is not asked again.
    clock.advance(3_590_000);
    assert_eq!(h.message(&CLAUDE_CODE).await.status(), 200);
    assert_eq!(sent_with(&h, TOKEN_A), 1);
    // After it, the plan is tried again (and serves: it has reset).
    clock.advance(20_000);
    h.mock.plan(plan(TOKEN_A, PlanMode::Within, now + 5 * 3600));
    assert_eq!(h.message(&CLAUDE_CODE).await.status(), 200);
    assert_eq!(sent_with(&h, TOKEN_A), 2);
    h.shutdown().await;
}

#[tokio::test]
async fn with_no_other_account_the_exhausted_plan_answers_429_with_retry_after_at_the_reset() {
    let clock = clock();
    let now = clock.now_ms() / 1000;
    let h = gateway(&clock, &yaml("avoid", "none"), |p| add_subscription(p, "max", TOKEN_A, 0, None)).await;
    h.mock.plan(plan(TOKEN_A, PlanMode::Exhausted, now + 7200));

    let response = h.message(&CLAUDE_CODE).await;
    assert_eq!(retry_after(&response).await, 7200);
    assert_eq!(response.headers()["x-should-retry"], "false");
    // What Claude Code reads to tell a plan limit from a throttle (protocol.md §9).
    assert_eq!(response.headers()["anthropic-ratelimit-unified-status"], "rejected");
    assert_eq!(response.headers()["anthropic-ratelimit-unified-reset"], (now + 7200).to_string().as_str());
    let message = common::error_of(response, 429, "rate_limit_error").await;
    assert!(message.contains("extra usage") && message.contains("max"), "{message}");
    h.shutdown().await;
}

#[tokio::test]
async fn a_200_served_beyond_the_plan_is_delivered_and_benches_the_account_for_the_next_requests() {
    let clock = clock();
    let now = clock.now_ms() / 1000;
    let h = two_subscriptions(&clock, "avoid").await;
    h.mock.plan(plan(TOKEN_A, PlanMode::Overage, now + 1800));

    let response = h.message(&CLAUDE_CODE).await;
    assert_eq!(response.status(), 200, "already served: it cannot be undone");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "message");
    assert_eq!((sent_with(&h, TOKEN_A), sent_with(&h, TOKEN_B)), (1, 0));
    let status = h.status_json().await;
    assert_eq!(account(&status, "max-a")["cooldown_until"], rfc3339(now + 1800));

    assert_eq!(h.message(&CLAUDE_CODE).await.status(), 200);
    assert_eq!((sent_with(&h, TOKEN_A), sent_with(&h, TOKEN_B)), (1, 1), "the next request avoids the overage");
    h.shutdown().await;
}

#[tokio::test]
async fn the_third_party_extra_usage_400_benches_until_the_reset_and_fails_over() {
    let clock = clock();
    let now = clock.now_ms() / 1000;
    let h = two_subscriptions(&clock, "avoid").await;
    h.mock.plan(plan(TOKEN_A, PlanMode::ThirdParty, now + 2400));

    assert_eq!(h.message(&CLAUDE_CODE).await.status(), 200);
    assert_eq!((sent_with(&h, TOKEN_A), sent_with(&h, TOKEN_B)), (1, 1));
    let status = h.status_json().await;
    let a = account(&status, "max-a");
    assert_eq!(a["cooldown_reason"], "extra_usage");
    assert_eq!(a["cooldown_until"], rfc3339(now + 2400));
    h.shutdown().await;
}

#[tokio::test]
async fn an_openai_client_gets_the_429_in_openai_shape_with_retry_after_at_the_reset() {
    let clock = clock();
    let now = clock.now_ms() / 1000;
    let h =
        gateway(&clock, &yaml("avoid", "none"), |p| add_subscription(p, "max", TOKEN_A, 0, Some(AccountClients::Any)))
            .await;
    h.mock.plan(plan(TOKEN_A, PlanMode::ThirdParty, now + 600));
    let chat = || {
        h.http
            .post(format!("{}/v1/chat/completions", h.url))
            .json(&json!({"model": "claude-sonnet-5", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };

    let response = chat().await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(retry_after(&response).await, 600);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("extra usage"), "{body}");
    assert!(body.get("type").is_none(), "OpenAI's shape, not Anthropic's: {body}");
    // While benched, the next request gets the same 429 (not a 503) without reaching the upstream.
    clock.advance(100_000);
    let response = chat().await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(retry_after(&response).await, 500);
    assert!(response.json::<Value>().await.unwrap()["error"]["message"].as_str().unwrap().contains("plan limit"));
    assert_eq!(sent_with(&h, TOKEN_A), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn allow_passes_overage_and_the_third_party_400_through_without_benching() {
    let clock = clock();
    let now = clock.now_ms() / 1000;
    let h = two_subscriptions(&clock, "allow").await;
    h.mock.plan(plan(TOKEN_A, PlanMode::Overage, now + 1800));
    for _ in 0..2 {
        assert_eq!(h.message(&CLAUDE_CODE).await.status(), 200);
    }
    assert_eq!((sent_with(&h, TOKEN_A), sent_with(&h, TOKEN_B)), (2, 0), "served as extra usage, as allowed");

    h.mock.plan(plan(TOKEN_A, PlanMode::ThirdParty, now + 1800));
    let response = h.message(&CLAUDE_CODE).await;
    let message = common::error_of(response, 400, "invalid_request_error").await;
    assert_eq!(message, THIRD_PARTY_MESSAGE, "the upstream's answer, unmodified");
    assert_eq!(sent_with(&h, TOKEN_B), 0);
    assert_eq!(account(&h.status_json().await, "max-a")["state"], "active");
    h.shutdown().await;
}

#[tokio::test]
async fn status_shows_each_plan_window_per_model_windows_the_overage_status_and_the_warning() {
    let clock = clock();
    let now = clock.now_ms() / 1000;
    let h = gateway(&clock, &yaml("avoid", "none"), |p| add_subscription(p, "max", TOKEN_A, 0, None)).await;
    h.mock.plan(PlanConfig {
        model_window: Some("7d_oi".into()),
        seven_day_reset: Some(now + 4 * 86_400),
        ..plan(TOKEN_A, PlanMode::Warning, now + 3000)
    });
    assert_eq!(h.message(&CLAUDE_CODE).await.status(), 200);
    let status = h.status_json().await;
    let w = &account(&status, "max")["windows"];
    assert_eq!(w["unified_status"], "allowed_warning");
    assert_eq!(w["warning"], true);
    assert_eq!(w["five_hour"], json!({"status": "allowed_warning", "utilization": 0.91, "reset": rfc3339(now + 3000)}));
    assert_eq!(w["seven_day"]["utilization"], 0.69);
    assert_eq!(
        w["other_windows"]["7d_oi"],
        json!({"status": "allowed", "utilization": 0.4, "reset": rfc3339(now + 4 * 86_400)})
    );
    assert_eq!(account(&status, "max")["state"], "active", "a warning is not a limit");
    let metrics = h.http.get(format!("{}/metrics", h.url)).send().await.unwrap().text().await.unwrap();
    let line =
        metrics.lines().find(|l| l.starts_with("llm_gateway_plan_utilization") && l.contains("window=\"7d_oi\""));
    assert!(line.is_some_and(|l| l.ends_with(" 0.4")), "{metrics}");
    h.shutdown().await;
}

/// The request log (newest first), once every record so far is written.
async fn logged(h: &Harness) -> Vec<Value> {
    let usage = h.gateway.as_ref().unwrap().gateway().usage().clone();
    tokio::task::spawn_blocking(move || usage.flush()).await.unwrap();
    let page: Value = h
        .http
        .get(format!("{}/admin/api/v1/requests?limit=100", h.url))
        .bearer_auth(h.admin_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["requests"].as_array().unwrap().clone()
}

#[tokio::test]
async fn spillover_lets_an_api_key_account_serve_claude_code_when_its_subscription_is_exhausted_and_marks_it() {
    let clock = clock();
    let now = clock.now_ms() / 1000;
    let h = gateway(&clock, &yaml("avoid", "api_keys"), |p| {
        add_subscription(p, "max", TOKEN_A, 0, None);
        common::add_account(p, "key", API_KEY, &[]);
    })
    .await;
    h.mock.plan(plan(TOKEN_A, PlanMode::Exhausted, now + 3600));

    let response = h.message(&CLAUDE_CODE).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-llm-gateway-spillover"], "api_key");
    assert_eq!((sent_with(&h, TOKEN_A), sent_with(&h, API_KEY)), (1, 1), "the plan first, then the API key");
    // While the plan is benched, Claude Code goes straight to the API key, still marked.
    let response = h.message(&CLAUDE_CODE).await;
    assert_eq!(response.headers()["x-llm-gateway-spillover"], "api_key");
    assert_eq!((sent_with(&h, TOKEN_A), sent_with(&h, API_KEY)), (1, 2));
    // Another tool's request on the same API key is ordinary routing, not a spill-over.
    let response = h.message(&[]).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("x-llm-gateway-spillover").is_none());

    let log = logged(&h).await;
    let marks: Vec<_> = log.iter().map(|r| (r["client_kind"].as_str().unwrap(), r["spillover"] == true)).collect();
    assert_eq!(marks, [("anthropic_sdk", false), ("claude_code", true), ("claude_code", true)], "{log:#?}");
    let first = &log[2];
    assert_eq!(first["attempts"][0]["reason"], "extra_usage", "{first}");
    assert_eq!(first["account_name"], "key");
    h.shutdown().await;
}

#[tokio::test]
async fn without_spillover_claude_code_gets_a_429_until_the_earliest_reset_and_no_api_key_is_used() {
    let clock = clock();
    let now = clock.now_ms() / 1000;
    let h = gateway(&clock, &yaml("avoid", "none"), |p| {
        add_subscription(p, "max-a", TOKEN_A, 0, None);
        add_subscription(p, "max-b", TOKEN_B, 0, None);
        common::add_account(p, "key", API_KEY, &[]);
    })
    .await;
    h.mock.plan(plan(TOKEN_A, PlanMode::Exhausted, now + 3600));
    h.mock.plan(plan(TOKEN_B, PlanMode::Exhausted, now + 1800));

    let response = h.message(&CLAUDE_CODE).await;
    assert_eq!(retry_after(&response).await, 1800, "the earliest reset of the two plans");
    let message = common::error_of(response, 429, "rate_limit_error").await;
    assert!(message.contains("routing.spillover"), "{message}");
    assert_eq!((sent_with(&h, TOKEN_A), sent_with(&h, TOKEN_B), sent_with(&h, API_KEY)), (1, 1, 0));

    // Ten minutes later: still exhausted, answered without asking the upstream.
    clock.advance(600_000);
    let response = h.message(&CLAUDE_CODE).await;
    assert_eq!(response.status(), 429);
    assert_eq!(retry_after(&response).await, 1200);
    assert_eq!(h.mock.requests().len(), 2);
    // Other tools still use the API key.
    assert_eq!(h.message(&[]).await.status(), 200);
    assert_eq!(sent_with(&h, API_KEY), 1);
    let log = logged(&h).await;
    assert!(log.iter().all(|r| r["spillover"] == false), "{log:#?}");
    h.shutdown().await;
}

#[tokio::test]
async fn claude_code_stays_on_its_subscription_while_it_has_room_and_api_keys_serve_the_other_tools() {
    let clock = clock();
    // Without session affinity, round robin would alternate between the two accounts.
    let config = yaml("avoid", "api_keys") + "  session_affinity: false\n";
    let h = gateway(&clock, &config, |p| {
        add_subscription(p, "max", TOKEN_A, 0, None);
        common::add_account(p, "key", API_KEY, &[]);
    })
    .await;
    for _ in 0..4 {
        let response = h.message(&CLAUDE_CODE).await;
        assert_eq!(response.status(), 200);
        assert!(response.headers().get("x-llm-gateway-spillover").is_none());
    }
    assert_eq!(
        (sent_with(&h, TOKEN_A), sent_with(&h, API_KEY)),
        (4, 0),
        "round robin does not hand Claude Code to the key"
    );
    for _ in 0..2 {
        assert_eq!(h.message(&[]).await.status(), 200);
    }
    assert!(sent_with(&h, API_KEY) >= 1, "other tools use the API key as usual");
    h.shutdown().await;
}

#[tokio::test]
async fn a_claude_code_request_with_no_subscription_path_routes_to_api_keys_as_usual() {
    let clock = clock();
    let h = gateway(&clock, &yaml("avoid", "none"), |p| {
        // A subscription that is not logged in is no path.
        common::add_oauth_account(p, "max", None);
        common::add_account(p, "key", API_KEY, &[]);
    })
    .await;
    let response = h.message(&CLAUDE_CODE).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("x-llm-gateway-spillover").is_none());
    assert_eq!(sent_with(&h, API_KEY), 1);
    assert_eq!(logged(&h).await[0]["spillover"], false);
    h.shutdown().await;
}
