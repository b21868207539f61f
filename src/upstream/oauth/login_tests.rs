//! Login flows against the mock OAuth server: pasted `code#state`, loopback redirect, deep link, and the
//! state and expiry checks.

use std::sync::Arc;

use mock_upstream::{MockUpstream, OAuthMockConfig};
use serde_json::json;

use super::login::{PendingLogin, load_pending, save_pending};
use super::test_support::{MemoryStore, http, mock_settings};
use super::*;
use crate::secrets::SecretStore;

fn query_pairs(url: &str) -> Vec<(String, String)> {
    url::Url::parse(url).unwrap().query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

#[test]
fn authorize_url_parameters_in_order() {
    let store = MemoryStore::new();
    let settings = OAuthSettings::default();
    let url = start_login(store.as_ref(), &settings, "acc_1").unwrap();
    assert!(url.starts_with("https://claude.ai/oauth/authorize?code=true&client_id=9d1c250a-e61b-44d9-88ed-5944d1962f5e&response_type=code&redirect_uri=https%3A%2F%2Fplatform.claude.com%2Foauth%2Fcode%2Fcallback&scope=org%3Acreate_api_key+user%3Aprofile+user%3Ainference&code_challenge="), "{url}");
    let pairs = query_pairs(&url);
    let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "code",
            "client_id",
            "response_type",
            "redirect_uri",
            "scope",
            "code_challenge",
            "code_challenge_method",
            "state"
        ]
    );
    assert_eq!(pairs[4].1, "org:create_api_key user:profile user:inference");
    assert_eq!(pairs[6].1, "S256");
    let pending = load_pending(store.as_ref(), "acc_1").unwrap().unwrap();
    assert_eq!(pairs[7].1, pending.state);
    assert_eq!(pairs[5].1, pkce::challenge(pending.verifier()));
    assert_eq!(pending.redirect_uri, settings.redirect_uri);
    // The stored JSON has the verifier; the URL does not.
    let stored = store.json("oauth:pending:acc_1").unwrap();
    assert!(!url.contains(stored["verifier"].as_str().unwrap()));

    // A second start replaces the first login and its state index.
    let again = start_login(store.as_ref(), &settings, "acc_1").unwrap();
    assert_ne!(query_pairs(&again)[7].1, pending.state);
    assert_eq!(store.keys().iter().filter(|k| k.starts_with("oauth:pending-state:")).count(), 1);
}

#[test]
fn authorize_url_keeps_an_existing_query() {
    let store = MemoryStore::new();
    let settings = OAuthSettings { authorize_url: "https://x.test/authorize?org=1".into(), ..OAuthSettings::default() };
    let url = start_login(store.as_ref(), &settings, "a").unwrap();
    assert!(url.starts_with("https://x.test/authorize?org=1&code=true&client_id="), "{url}");
    let bad = OAuthSettings { authorize_url: "not a url".into(), ..OAuthSettings::default() };
    assert!(matches!(start_login(store.as_ref(), &bad, "a"), Err(OAuthError::Settings(_))));
}

#[tokio::test]
async fn full_login_with_pasted_code_and_state() {
    let mock = MockUpstream::start().await.unwrap();
    let store = MemoryStore::new();
    let settings = mock_settings(&mock);
    let url = start_login(store.as_ref(), &settings, "acc_1").unwrap();
    let pasted = mock.approve(&url).unwrap();
    let dyn_store: Arc<dyn SecretStore> = store.clone();
    let out =
        complete_login(dyn_store.clone(), &http(), &settings, Some("acc_1"), &format!("  {pasted}\n")).await.unwrap();
    assert_eq!(out.account_id, "acc_1");
    assert_eq!(out.email.as_deref(), Some("mock-user@example.com"));
    assert_eq!(out.organization.as_deref(), Some("Mock Organization"));
    assert_eq!(out.scopes, ["user:profile", "user:inference"]);
    assert!(out.expires_at > unix_now() + 28_000);

    // The exchange request: JSON, keys in protocol order, the pending login's verifier and state.
    let req = mock.requests().into_iter().find(|r| r.path == "/v1/oauth/token").unwrap();
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("accept"), Some("application/json"));
    let (code, state) = pasted.split_once('#').unwrap();
    let pending_verifier = req.json().unwrap()["code_verifier"].as_str().unwrap().to_string();
    let expected = json!({"grant_type":"authorization_code","code":code,"redirect_uri":settings.redirect_uri,
        "client_id":settings.client_id,"code_verifier":pending_verifier,"state":state});
    let keys: Vec<String> = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&req.body)
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert!(req.body.starts_with(r#"{"grant_type":"authorization_code","code":"#), "{}", req.body);
    assert_eq!(req.json().unwrap(), expected);
    assert_eq!(keys.len(), 6);

    // Tokens stored in one record; the pending login and its index are gone.
    let record = store.json("account:acc_1:oauth").unwrap();
    assert!(record["access_token"].as_str().unwrap().starts_with("sk-ant-oat01-mock-"));
    assert!(record["refresh_token"].as_str().unwrap().starts_with("sk-ant-ort01-mock-"));
    assert_eq!(store.keys(), ["account:acc_1:oauth"]);

    // The token works upstream once enhanced.
    let manager = TokenManager::new(dyn_store.clone(), http());
    let token = manager.access_token("acc_1", &settings).await.unwrap();
    assert_eq!(token.expose(), record["access_token"].as_str().unwrap());
    assert_eq!(manager.status("acc_1").await.state, OAuthState::Active);
    let mut headers = http::HeaderMap::new();
    headers.insert("x-api-key", http::HeaderValue::from_static("client-key"));
    let body = br#"{"model":"claude-sonnet-5","max_tokens":10,"messages":[{"role":"user","content":"Hi"}]}"#;
    let new_body = enhance_request(body, &mut headers, &token, CLAUDE_CODE_IDENTITY).unwrap().unwrap();
    let resp = http().post(format!("{}/v1/messages", mock.base_url())).headers(headers).body(new_body).send().await;
    assert_eq!(resp.unwrap().status(), 200);
    // Without the enhancement the mock refuses (identity missing).
    let resp = http()
        .post(format!("{}/v1/messages", mock.base_url()))
        .bearer_auth(token.expose())
        .header("anthropic-beta", OAUTH_BETA)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    // The code was single-use: pasting it again finds no pending login.
    let again = complete_login(dyn_store, &http(), &settings, Some("acc_1"), &pasted).await;
    assert!(matches!(again, Err(OAuthError::NoPendingLogin { .. })), "{again:?}");
}

#[tokio::test]
async fn loopback_redirect_and_deep_link_find_the_account_by_state() {
    let mock = MockUpstream::start().await.unwrap();
    let store = MemoryStore::new();
    let dyn_store: Arc<dyn SecretStore> = store.clone();
    let settings = OAuthSettings { redirect_uri: "http://localhost:54545/callback".into(), ..mock_settings(&mock) };
    start_login(store.as_ref(), &settings, "acc_other").unwrap();
    let url = start_login(store.as_ref(), &settings, "acc_loop").unwrap();
    // The browser's GET of the authorize URL redirects to the loopback callback.
    let client = reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("http://localhost:54545/callback?code="), "{location}");
    let out = complete_login(dyn_store.clone(), &http(), &settings, None, &location).await.unwrap();
    assert_eq!(out.account_id, "acc_loop");
    assert!(store.json("account:acc_loop:oauth").is_some());
    assert!(store.json("oauth:pending:acc_other").is_some());

    // Deep link for the other account.
    let pending = load_pending(store.as_ref(), "acc_other").unwrap().unwrap();
    let code = mock.issue_code(
        &settings.client_id,
        &pkce::challenge(pending.verifier()),
        &settings.redirect_uri,
        &pending.state,
    );
    let link = format!("llm-gateway://oauth/callback?code={code}&state={}", pending.state);
    let settings_for = |id: &str| (id == "acc_other").then(|| settings.clone());
    let out = complete_from_deep_link(dyn_store.clone(), &http(), settings_for, &link).await.unwrap();
    assert_eq!(out.account_id, "acc_other");
    assert_eq!(mock.oauth_stats().exchange_calls, 2);

    let not_a_link = complete_from_deep_link(dyn_store, &http(), |_| None, "https://x/cb?code=a&state=b").await;
    assert!(matches!(not_a_link, Err(OAuthError::InvalidInput(_))));
}

#[tokio::test]
async fn state_mismatch_missing_state_and_unknown_state() {
    let mock = MockUpstream::start().await.unwrap();
    let store = MemoryStore::new();
    let dyn_store: Arc<dyn SecretStore> = store.clone();
    let settings = mock_settings(&mock);
    let url = start_login(store.as_ref(), &settings, "acc_1").unwrap();
    let pasted = mock.approve(&url).unwrap();
    let (code, _) = pasted.split_once('#').unwrap();
    let r = complete_login(dyn_store.clone(), &http(), &settings, Some("acc_1"), &format!("{code}#forged")).await;
    assert!(matches!(r, Err(OAuthError::StateMismatch { .. })), "{r:?}");
    let r = complete_login(dyn_store.clone(), &http(), &settings, Some("acc_1"), code).await;
    assert!(matches!(r, Err(OAuthError::MissingState)), "{r:?}");
    let r = complete_login(dyn_store.clone(), &http(), &settings, None, &format!("{code}#unknown")).await;
    assert!(matches!(r, Err(OAuthError::NoPendingLogin { account_id: None })), "{r:?}");
    assert_eq!(mock.oauth_stats().exchange_calls, 0);
    // The pending login survived the bad attempts.
    let r = complete_login(dyn_store, &http(), &settings, Some("acc_1"), &pasted).await;
    assert!(r.is_ok(), "{r:?}");
}

#[tokio::test]
async fn expired_pending_login_is_refused_and_removed() {
    let mock = MockUpstream::start().await.unwrap();
    let store = MemoryStore::new();
    let dyn_store: Arc<dyn SecretStore> = store.clone();
    let settings = mock_settings(&mock);
    let (mut login, _) = PendingLogin::generate("acc_old", &settings.redirect_uri).unwrap();
    login.created_at -= PENDING_LOGIN_TTL_SECS + 1;
    save_pending(store.as_ref(), &login).unwrap();
    let r = complete_login(dyn_store, &http(), &settings, None, &format!("somecode#{}", login.state)).await;
    assert!(matches!(r, Err(OAuthError::LoginExpired { .. })), "{r:?}");
    assert!(store.keys().is_empty(), "{:?}", store.keys());
    assert_eq!(mock.oauth_stats().exchange_calls, 0);
}

#[tokio::test]
async fn exchange_failures_are_reported() {
    let mock = MockUpstream::start().await.unwrap();
    let store = MemoryStore::new();
    let dyn_store: Arc<dyn SecretStore> = store.clone();
    let settings = mock_settings(&mock);
    let url = start_login(store.as_ref(), &settings, "acc_1").unwrap();
    let pasted = mock.approve(&url).unwrap();
    mock.oauth_config(OAuthMockConfig { fail_next_with_status: Some(500), ..Default::default() });
    let r = complete_login(dyn_store.clone(), &http(), &settings, Some("acc_1"), &pasted).await;
    assert!(matches!(r, Err(OAuthError::TokenEndpoint { status: 500, .. })), "{r:?}");
    // A wrong verifier (a code issued for another challenge) is invalid_grant.
    let url = start_login(store.as_ref(), &settings, "acc_1").unwrap();
    let state = query_pairs(&url)[7].1.clone();
    let code = mock.issue_code(&settings.client_id, "not-the-challenge", &settings.redirect_uri, &state);
    let r = complete_login(dyn_store.clone(), &http(), &settings, Some("acc_1"), &format!("{code}#{state}")).await;
    assert!(matches!(r, Err(OAuthError::InvalidGrant { .. })), "{r:?}");
    assert!(store.json("account:acc_1:oauth").is_none());
    // Unreachable endpoint: a network error.
    let dead = OAuthSettings { token_url: "http://127.0.0.1:9/v1/oauth/token".into(), ..settings.clone() };
    let pasted = mock.approve(&start_login(store.as_ref(), &dead, "acc_1").unwrap()).unwrap();
    let r = complete_login(dyn_store, &http(), &dead, Some("acc_1"), &pasted).await;
    assert!(matches!(r, Err(OAuthError::Network { .. })), "{r:?}");
}
