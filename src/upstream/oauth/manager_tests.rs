//! [`TokenManager`] against the mock OAuth server: rotation persisted before use, single-flight under 100
//! concurrent callers, `invalid_grant`, 429 backoff, 401-after-expiry, save failures, background refresh.

use std::sync::Arc;

use mock_upstream::{MockUpstream, OAuthMockConfig};

use super::test_support::{MemoryStore, http, mock_settings};
use super::*;
use crate::secrets::SecretStore;

struct Fixture {
    mock: MockUpstream,
    store: Arc<MemoryStore>,
    settings: OAuthSettings,
    manager: TokenManager,
}

impl Fixture {
    /// A mock, a store, and account `acc_1` logged in with tokens that expire after `expires_in` seconds
    /// (later tokens live 8 h).
    async fn logged_in(expires_in: i64) -> Fixture {
        let mock = MockUpstream::start().await.unwrap();
        let store = MemoryStore::new();
        let settings = mock_settings(&mock);
        mock.oauth_config(OAuthMockConfig { expires_in: Some(expires_in), ..Default::default() });
        let url = start_login(store.as_ref(), &settings, "acc_1").unwrap();
        let pasted = mock.approve(&url).unwrap();
        let dyn_store: Arc<dyn SecretStore> = store.clone();
        complete_login(dyn_store.clone(), &http(), &settings, Some("acc_1"), &pasted).await.unwrap();
        mock.oauth_config(OAuthMockConfig { expires_in: Some(28_800), ..Default::default() });
        let manager = TokenManager::new(dyn_store, http());
        Fixture { mock, store, settings, manager }
    }

    fn stored(&self, field: &str) -> String {
        self.store.json("account:acc_1:oauth").unwrap()[field].as_str().unwrap_or_default().to_string()
    }

    async fn token(&self) -> Result<Secret, OAuthError> {
        self.manager.access_token("acc_1", &self.settings).await
    }

    /// Status of a `/v1/messages` call with this token, enhanced.
    async fn upstream_status(&self, token: &Secret) -> u16 {
        let mut headers = http::HeaderMap::new();
        let body = br#"{"model":"claude-sonnet-5","max_tokens":10,"messages":[{"role":"user","content":"Hi"}]}"#;
        let body = enhance_request(body, &mut headers, token, CLAUDE_CODE_IDENTITY).unwrap().unwrap();
        let url = format!("{}/v1/messages", self.mock.base_url());
        http().post(url).headers(headers).body(body).send().await.unwrap().status().as_u16()
    }
}

#[tokio::test]
async fn fresh_token_is_served_without_refresh() {
    let f = Fixture::logged_in(28_800).await;
    let t = f.token().await.unwrap();
    assert_eq!(t.expose(), f.stored("access_token"));
    assert_eq!(f.mock.oauth_stats().refresh_calls, 0);
    assert_eq!(f.upstream_status(&t).await, 200);
    let s = f.manager.status("acc_1").await;
    assert_eq!(s.state, OAuthState::Active);
    assert!(s.expires_at.unwrap() > unix_now() + 28_000);
    assert!(s.last_refresh.is_some());
}

#[tokio::test]
async fn refresh_rotates_and_persists_before_use() {
    let f = Fixture::logged_in(0).await;
    let (old_access, old_refresh) = (f.stored("access_token"), f.stored("refresh_token"));
    assert_eq!(f.upstream_status(&Secret::new(old_access.as_str())).await, 401);
    let t = f.token().await.unwrap();
    // When the caller gets the new token, the store already has it and the rotated refresh token.
    assert_ne!(t.expose(), old_access);
    assert_eq!(t.expose(), f.stored("access_token"));
    let new_refresh = f.stored("refresh_token");
    assert_ne!(new_refresh, old_refresh);
    assert_eq!(f.mock.oauth_stats().refresh_calls, 1);
    assert_eq!(f.upstream_status(&t).await, 200);
    // The refresh request body is exactly protocol.md's.
    let req = f.mock.requests().into_iter().rfind(|r| r.path == "/v1/oauth/token").unwrap();
    let expected = format!(
        r#"{{"grant_type":"refresh_token","refresh_token":"{old_refresh}","client_id":"{}"}}"#,
        f.settings.client_id
    );
    assert_eq!(req.body, expected);
    // The old refresh token is spent; a manager started afresh (a restart) uses the persisted one.
    let spent = refresh_tokens(&http(), &f.settings, &Secret::new(old_refresh.as_str())).await;
    assert!(matches!(spent, Err(OAuthError::InvalidGrant { .. })), "{spent:?}");
    f.mock.oauth_expire_access_tokens();
    let dyn_store: Arc<dyn SecretStore> = f.store.clone();
    let restarted = TokenManager::new(dyn_store, http());
    let rejected = restarted.access_token("acc_1", &f.settings).await.unwrap();
    assert_eq!(f.upstream_status(&rejected).await, 401);
    let t2 = restarted.refresh_after_rejection("acc_1", &f.settings, &rejected).await.unwrap();
    assert_eq!(f.upstream_status(&t2).await, 200);
    assert_eq!(t2.expose(), f.stored("access_token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_callers_cause_one_refresh() {
    let f = Fixture::logged_in(0).await;
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (m, s) = (f.manager.clone(), f.settings.clone());
        tasks.push(tokio::spawn(async move { m.access_token("acc_1", &s).await }));
    }
    let mut tokens = Vec::new();
    for t in tasks {
        tokens.push(t.await.unwrap().unwrap().expose().to_string());
    }
    assert_eq!(f.mock.oauth_stats().refresh_calls, 1);
    assert_eq!(f.manager.refresh_counts(), [("acc_1".to_string(), 1, 0)], "one refresh counted for /metrics");
    assert_eq!(tokens.len(), 100);
    assert!(tokens.iter().all(|t| *t == tokens[0]));
    assert_eq!(tokens[0], f.stored("access_token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rejection_refreshes_once_for_concurrent_callers() {
    let f = Fixture::logged_in(28_800).await;
    let t = f.token().await.unwrap();
    f.mock.oauth_expire_access_tokens();
    assert_eq!(f.upstream_status(&t).await, 401);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (m, s, bad) = (f.manager.clone(), f.settings.clone(), t.clone());
        tasks.push(tokio::spawn(async move { m.refresh_after_rejection("acc_1", &s, &bad).await }));
    }
    for task in tasks {
        let new = task.await.unwrap().unwrap();
        assert_ne!(new.expose(), t.expose());
    }
    assert_eq!(f.mock.oauth_stats().refresh_calls, 1);
    let current = f.token().await.unwrap();
    assert_eq!(f.upstream_status(&current).await, 200);
    // A late rejection of the old token does not refresh again.
    let again = f.manager.refresh_after_rejection("acc_1", &f.settings, &t).await.unwrap();
    assert_eq!(again.expose(), current.expose());
    assert_eq!(f.mock.oauth_stats().refresh_calls, 1);
}

#[tokio::test]
async fn invalid_grant_means_needs_login_without_retries() {
    let f = Fixture::logged_in(0).await;
    // Someone else used the refresh token (rotation): ours is dead.
    let rt = Secret::new(f.stored("refresh_token"));
    refresh_tokens(&http(), &f.settings, &rt).await.unwrap();
    assert_eq!(f.mock.oauth_stats().refresh_calls, 1);
    let r = f.token().await;
    assert!(matches!(r, Err(OAuthError::NeedsLogin { .. })), "{r:?}");
    assert_eq!(f.mock.oauth_stats().refresh_calls, 2);
    let OAuthState::NeedsLogin { message } = f.manager.status("acc_1").await.state else { panic!("not needs_login") };
    assert!(message.contains("invalid_grant") && message.contains("oauth-start"), "{message}");
    for _ in 0..3 {
        assert!(matches!(f.token().await, Err(OAuthError::NeedsLogin { .. })));
    }
    f.manager.refresh_due(&[("acc_1".into(), f.settings.clone())], DEFAULT_REFRESH_MARGIN).await;
    assert_eq!(f.mock.oauth_stats().refresh_calls, 2);
    assert_eq!(f.manager.refresh_counts(), [("acc_1".to_string(), 0, 1)], "the refused refresh counted for /metrics");

    // A new login (another process) is picked up without a restart.
    let url = start_login(f.store.as_ref(), &f.settings, "acc_1").unwrap();
    let pasted = f.mock.approve(&url).unwrap();
    let dyn_store: Arc<dyn SecretStore> = f.store.clone();
    complete_login(dyn_store, &http(), &f.settings, Some("acc_1"), &pasted).await.unwrap();
    let t = f.token().await.unwrap();
    assert_eq!(t.expose(), f.stored("access_token"));
    assert_eq!(f.manager.status("acc_1").await.state, OAuthState::Active);
}

#[tokio::test]
async fn rate_limited_refresh_backs_off() {
    let f = Fixture::logged_in(0).await;
    f.mock.oauth_config(OAuthMockConfig {
        fail_next_with_status: Some(429),
        retry_after: Some(30),
        ..Default::default()
    });
    let before = unix_now();
    let Err(OAuthError::RateLimited { until }) = f.token().await else { panic!("not rate limited") };
    assert!((before + 30..=before + 32).contains(&until), "{until} vs {before}");
    // Within the backoff: fail fast, no call.
    let Err(e @ OAuthError::RateLimited { .. }) = f.token().await else { panic!("not rate limited") };
    assert!(e.to_string().contains("not retrying before"), "{e}");
    f.manager.refresh_due(&[("acc_1".into(), f.settings.clone())], DEFAULT_REFRESH_MARGIN).await;
    assert_eq!(f.mock.oauth_stats().refresh_calls, 1);
    let s = f.manager.status("acc_1").await;
    assert_eq!(s.state.as_str(), "error");
    assert_eq!(s.rate_limited_until, Some(until));
    // A tiny Retry-After is clamped up to 5 s.
    let f = Fixture::logged_in(0).await;
    f.mock.oauth_config(OAuthMockConfig {
        fail_next_with_status: Some(429),
        retry_after_ms: Some(10),
        ..Default::default()
    });
    let before = unix_now();
    let Err(OAuthError::RateLimited { until }) = f.token().await else { panic!("not rate limited") };
    assert!((before + 5..=before + 7).contains(&until), "{until} vs {before}");
}

#[tokio::test]
async fn network_error_is_retried_next_time() {
    let f = Fixture::logged_in(0).await;
    let dead = OAuthSettings { token_url: "http://127.0.0.1:9/v1/oauth/token".into(), ..f.settings.clone() };
    let r = f.manager.access_token("acc_1", &dead).await;
    assert!(matches!(r, Err(OAuthError::Network { .. })), "{r:?}");
    assert_eq!(f.manager.status("acc_1").await.state.as_str(), "error");
    let t = f.token().await.unwrap();
    assert_eq!(f.upstream_status(&t).await, 200);
    assert_eq!(f.manager.status("acc_1").await.state, OAuthState::Active);
}

#[tokio::test]
async fn save_failure_keeps_the_rotated_token_and_saves_it_later() {
    let f = Fixture::logged_in(0).await;
    f.store.fail_sets(1);
    let r = f.token().await;
    assert!(matches!(r, Err(OAuthError::Store(_))), "{r:?}");
    assert_eq!(f.manager.status("acc_1").await.state.as_str(), "error");
    // The store still has the old (spent) refresh token; the next call saves the new one, no second refresh.
    let t = f.token().await.unwrap();
    assert_eq!(f.mock.oauth_stats().refresh_calls, 1);
    assert_eq!(t.expose(), f.stored("access_token"));
    assert_eq!(f.upstream_status(&t).await, 200);
}

#[tokio::test]
async fn background_refresh_of_due_tokens() {
    let f = Fixture::logged_in(300).await;
    let accounts = [("acc_1".to_string(), f.settings.clone()), ("acc_none".to_string(), f.settings.clone())];
    // 5 minutes left: not due for a request (60 s margin), due for the background (10 min).
    let t = f.token().await.unwrap();
    assert_eq!(f.mock.oauth_stats().refresh_calls, 0);
    f.manager.refresh_due(&accounts, DEFAULT_REFRESH_MARGIN).await;
    assert_eq!(f.mock.oauth_stats().refresh_calls, 1);
    let t2 = f.token().await.unwrap();
    assert_ne!(t.expose(), t2.expose());
    f.manager.refresh_due(&accounts, DEFAULT_REFRESH_MARGIN).await;
    assert_eq!(f.mock.oauth_stats().refresh_calls, 1);
    assert_eq!(f.manager.status("acc_none").await.state.as_str(), "needs_login");
    assert!(matches!(f.manager.access_token("acc_none", &f.settings).await, Err(OAuthError::NeedsLogin { .. })));
    // forget() drops the cache; status reads the store again.
    f.manager.forget("acc_1");
    assert_eq!(f.manager.status("acc_1").await.state, OAuthState::Active);
}

#[tokio::test]
async fn missing_refresh_token_in_response_keeps_the_old_one() {
    let f = Fixture::logged_in(0).await;
    let old_refresh = f.stored("refresh_token");
    f.mock.oauth_config(OAuthMockConfig { omit_refresh_token: Some(true), ..Default::default() });
    let t = f.token().await.unwrap();
    assert_eq!(f.stored("refresh_token"), old_refresh);
    assert_eq!(t.expose(), f.stored("access_token"));
}

#[tokio::test]
async fn a_caller_that_goes_away_does_not_lose_the_rotated_token() {
    let f = Fixture::logged_in(0).await;
    let old_refresh = f.stored("refresh_token");
    f.mock.oauth_config(OAuthMockConfig { delay_ms: Some(300), ..Default::default() });
    let gave_up = tokio::time::timeout(std::time::Duration::from_millis(50), f.token()).await;
    assert!(gave_up.is_err(), "the call should still be waiting");
    f.mock.oauth_config(OAuthMockConfig { delay_ms: Some(0), ..Default::default() });
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    // The refresh finished in the background and its rotated refresh token was saved.
    assert_eq!(f.mock.oauth_stats().refresh_calls, 1);
    assert_ne!(f.stored("refresh_token"), old_refresh);
    let t = f.token().await.unwrap();
    assert_eq!(t.expose(), f.stored("access_token"));
    assert_eq!(f.mock.oauth_stats().refresh_calls, 1);
    assert_eq!(f.manager.status("acc_1").await.state, OAuthState::Active);
}
