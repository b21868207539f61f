//! [`TokenManager`]: per-account access tokens, single-flight refresh with rotation persisted first, backoff
//! after a 429, `needs_login` after `invalid_grant`, and the [`OAuthStatus`] the CLI, status and UI show.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::record::{TokenRecord, load_record, load_record_async, save_record_async};
use super::slot::{Phase, Slot, SlotState, Trigger, fingerprint, lock};
use super::status::{OAuthState, OAuthStatus};
use super::{CompletedLogin, OAuthError, OAuthSettings, refresh_tokens, unix_now};
use crate::accounts::StateSignal;
use crate::secrets::{Secret, SecretStore};

/// How long before expiry the background task refreshes a token (10 minutes).
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(600);

/// A request refreshes first when its token expires within this many seconds.
const DEFAULT_REQUEST_MARGIN: Duration = Duration::from_secs(60);

/// Token lifecycle of the gateway's OAuth accounts. Cheap to clone (shared state).
///
/// The secret `account:<id>:oauth` holds the record `{access_token, refresh_token, expires_at, scopes,
/// last_refresh}`, written whole in one `SecretStore::set`; after a refresh the record with the new (rotated)
/// refresh token is persisted before the new access token is handed to any caller.
#[derive(Debug, Clone)]
pub struct TokenManager {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn SecretStore>,
    http: reqwest::Client,
    request_margin: Duration,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    /// Told whenever an account's token state may have changed (a refresh started or ended, a login adopted).
    signal: StateSignal,
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl TokenManager {
    /// A manager reading and writing token records in `store` and calling token endpoints with `http`.
    pub fn new(store: Arc<dyn SecretStore>, http: reqwest::Client) -> Self {
        Self::with_request_margin(store, http, DEFAULT_REQUEST_MARGIN)
    }

    /// Like [`TokenManager::new`], refreshing on demand when a token expires within `margin` (default 60 s).
    pub fn with_request_margin(store: Arc<dyn SecretStore>, http: reqwest::Client, margin: Duration) -> Self {
        Self::build(store, http, margin, StateSignal::default())
    }

    /// Like [`TokenManager::new`], telling `signal` whenever an account's token state may have changed (a
    /// refresh starts or ends, a login is adopted or forgotten), so the gateway can report it as it happens.
    pub fn with_signal(store: Arc<dyn SecretStore>, http: reqwest::Client, signal: StateSignal) -> Self {
        Self::build(store, http, DEFAULT_REQUEST_MARGIN, signal)
    }

    fn build(store: Arc<dyn SecretStore>, http: reqwest::Client, margin: Duration, signal: StateSignal) -> Self {
        let inner = Inner { store, http, request_margin: margin, slots: Mutex::new(HashMap::new()), signal };
        TokenManager { inner: Arc::new(inner) }
    }

    fn slot(&self, account_id: &str) -> Arc<Slot> {
        lock(&self.inner.slots).entry(account_id.to_string()).or_default().clone()
    }

    /// A valid access token for `account_id`: the cached one, or, when it is expired or expires within the
    /// request margin, a refreshed one. Single-flight: concurrent callers wait for one refresh and share it.
    pub async fn access_token(&self, account_id: &str, settings: &OAuthSettings) -> Result<Secret, OAuthError> {
        let trigger = Trigger::Expiring(secs(self.inner.request_margin));
        self.get(account_id, settings, trigger).await
    }

    /// After an upstream 401 "OAuth token has expired": refreshes unless another caller already replaced
    /// `rejected`, then returns the current token.
    pub async fn refresh_after_rejection(
        &self,
        account_id: &str,
        settings: &OAuthSettings,
        rejected: &Secret,
    ) -> Result<Secret, OAuthError> {
        self.get(account_id, settings, Trigger::Rejected(rejected.clone())).await
    }

    /// Background refresh: every account whose token expires within `margin` (default
    /// [`DEFAULT_REFRESH_MARGIN`]) is refreshed; failures are logged and reflected in [`TokenManager::status`].
    /// Meant to run every ~30 s; calling it at startup also loads every account's status.
    pub async fn refresh_due(&self, accounts: &[(String, OAuthSettings)], margin: Duration) {
        let trigger = &Trigger::Expiring(secs(margin));
        let jobs = accounts.iter().map(|(id, settings)| async move {
            let slot = self.slot(id);
            {
                let st = lock(&slot.state);
                let now = unix_now();
                let backing_off = st.backoff_until.is_some_and(|u| u > now);
                if backing_off || st.usable(trigger, now).is_some() {
                    return;
                }
            }
            if let Err(e) = self.get(id, settings, trigger.clone()).await {
                tracing::debug!(account_id = %id, error = %e, "background OAuth refresh did not succeed");
            }
        });
        futures_util::future::join_all(jobs).await;
    }

    /// Token refreshes since start-up per account id: `(account_id, granted, failed)` (the `/metrics` counters).
    pub fn refresh_counts(&self) -> Vec<(String, u64, u64)> {
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        lock(&self.inner.slots)
            .iter()
            .map(|(id, slot)| (id.clone(), load(&slot.refreshes[0]), load(&slot.refreshes[1])))
            .filter(|(_, ok, failed)| ok + failed > 0)
            .collect()
    }

    /// The account's token state, expiry and last refresh. The first call for an account reads the secret
    /// store on a blocking thread (never on the async runtime: a slow keychain must not stall other tasks).
    pub async fn status(&self, account_id: &str) -> OAuthStatus {
        let slot = self.slot(account_id);
        if !lock(&slot.state).loaded {
            let stored = load_record_async(&self.inner.store, account_id).await;
            lock(&slot.state).adopt_first_load(stored);
        }
        Self::status_of(&slot)
    }

    /// The account's token state as far as it is known without the secret store: `None` until something read it.
    pub fn cached_status(&self, account_id: &str) -> Option<OAuthStatus> {
        let slot = self.slot(account_id);
        let loaded = lock(&slot.state).loaded;
        loaded.then(|| Self::status_of(&slot))
    }

    /// [`TokenManager::status`] for synchronous callers (the CLI): blocks on the secret store on first use.
    pub fn status_blocking(&self, account_id: &str) -> OAuthStatus {
        let slot = self.slot(account_id);
        if !lock(&slot.state).loaded {
            let stored = load_record(self.inner.store.as_ref(), account_id);
            lock(&slot.state).adopt_first_load(stored);
        }
        Self::status_of(&slot)
    }

    fn status_of(slot: &Slot) -> OAuthStatus {
        let st = lock(&slot.state);
        let state = match (&st.phase, &st.record) {
            (Phase::Refreshing, _) => OAuthState::Refreshing,
            (Phase::NeedsLogin(m), _) => OAuthState::NeedsLogin { message: m.clone() },
            (Phase::Error(m), _) => OAuthState::Error { message: m.clone() },
            (Phase::Idle, Some(_)) => OAuthState::Active,
            (Phase::Idle, None) => {
                OAuthState::NeedsLogin { message: "not logged in; run oauth-start to log in".into() }
            }
        };
        let now = unix_now();
        OAuthStatus {
            state,
            expires_at: st.record.as_ref().map(|r| r.expires_at),
            last_refresh: st.record.as_ref().and_then(|r| r.last_refresh),
            rate_limited_until: st.backoff_until.filter(|u| *u > now),
        }
    }

    /// Puts a login this process just completed to use at once: its tokens become the account's (no
    /// secret-store read), and an earlier `needs_login`, error or backoff is cleared. Callers waiting on a
    /// refresh share the new token.
    pub fn adopt_login(&self, account_id: &str, login: &CompletedLogin) {
        let slot = self.slot(account_id);
        let mut st = lock(&slot.state);
        let generation = st.generation.wrapping_add(1);
        *st = SlotState { generation, loaded: true, record: Some(login.record.clone()), ..SlotState::default() };
        drop(st);
        self.inner.signal.notify();
    }

    /// Drops everything cached for the account (after a new login, or when the account is removed); the next
    /// call reads the secret store again.
    pub fn forget(&self, account_id: &str) {
        let slot = self.slot(account_id);
        let mut st = lock(&slot.state);
        let generation = st.generation.wrapping_add(1);
        *st = SlotState { generation, ..SlotState::default() };
        drop(st);
        self.inner.signal.notify();
    }

    async fn get(&self, account_id: &str, settings: &OAuthSettings, trigger: Trigger) -> Result<Secret, OAuthError> {
        let slot = self.slot(account_id);
        let seen = {
            let st = lock(&slot.state);
            if let Some(token) = st.usable(&trigger, unix_now()) {
                return Ok(token);
            }
            st.generation
        };
        // The slow path runs in its own task: a caller that goes away (client disconnect) cannot cancel a
        // refresh between the token endpoint rotating the refresh token and the new one being saved.
        let (this, account, settings) = (self.clone(), account_id.to_string(), settings.clone());
        let flight = tokio::spawn(async move {
            let _flight = slot.flight.lock().await;
            let result = this.refresh_flight(&account, &settings, &slot, &trigger, seen).await;
            // The slow path may have left the account refreshed, in `needs_login` or in error.
            this.inner.signal.notify();
            result
        });
        flight.await.map_err(|e| OAuthError::Internal(format!("token refresh task failed: {e}")))?
    }

    /// The slow path, run by one caller per account at a time.
    async fn refresh_flight(
        &self,
        account_id: &str,
        settings: &OAuthSettings,
        slot: &Slot,
        trigger: &Trigger,
        seen: u64,
    ) -> Result<Secret, OAuthError> {
        let now = unix_now();
        {
            let st = lock(&slot.state);
            if st.generation != seen {
                // A flight finished while we waited: share its outcome.
                if let Some(e) = &st.last_error {
                    return Err(e.clone());
                }
                if let Some(r) = st.record.as_ref().filter(|r| !st.unsaved && trigger.accepts_fresh(r, now)) {
                    return Ok(r.access_token.clone());
                }
            }
            if let Some(token) = st.usable(trigger, now) {
                return Ok(token);
            }
            if let Some(until) = st.backoff_until.filter(|u| *u > now) {
                return Err(OAuthError::RateLimited { until });
            }
        }
        let current = self.current_record(account_id, slot).await?;
        {
            let st = lock(&slot.state);
            if let Some(token) = st.usable(trigger, now) {
                return Ok(token);
            }
            if let Phase::NeedsLogin(message) = &st.phase {
                let message = message.clone();
                return Err(OAuthError::NeedsLogin { account_id: account_id.to_string(), message });
            }
        }
        let Some(refresh_token) = current.refresh_token.clone() else {
            let message =
                "the access token expired and there is no refresh token; run oauth-start to log in".to_string();
            let mut st = lock(&slot.state);
            st.phase = Phase::NeedsLogin(message.clone());
            return st.finish(Err(OAuthError::NeedsLogin { account_id: account_id.to_string(), message }));
        };
        self.refresh(account_id, settings, slot, &current, &refresh_token).await
    }

    /// The record to work from: an unsaved one is saved first; otherwise the store is re-read (another process
    /// may have logged in or refreshed).
    async fn current_record(&self, account_id: &str, slot: &Slot) -> Result<TokenRecord, OAuthError> {
        let unsaved = {
            let st = lock(&slot.state);
            st.record.clone().filter(|_| st.unsaved)
        };
        if let Some(record) = unsaved {
            let saved = save_record_async(&self.inner.store, account_id, &record).await;
            let mut st = lock(&slot.state);
            if let Err(e) = saved {
                tracing::warn!(account_id, error = %e, "refreshed OAuth tokens still cannot be saved");
                st.phase = Phase::Error(format!("refreshed tokens could not be saved: {e}"));
                return st.finish(Err(e));
            }
            tracing::info!(account_id, "refreshed OAuth tokens saved");
            st.unsaved = false;
            st.phase = Phase::Idle;
            return Ok(record);
        }
        let stored = load_record_async(&self.inner.store, account_id).await;
        let mut st = lock(&slot.state);
        match stored {
            Ok(r) => {
                st.adopt(r);
                match st.record.clone() {
                    Some(r) => Ok(r),
                    None => {
                        let message = "not logged in; run oauth-start to log in".to_string();
                        st.finish(Err(OAuthError::NeedsLogin { account_id: account_id.to_string(), message }))
                    }
                }
            }
            Err(e) => {
                st.phase = Phase::Error(e.to_string());
                st.finish(Err(e))
            }
        }
    }

    async fn refresh(
        &self,
        account_id: &str,
        settings: &OAuthSettings,
        slot: &Slot,
        current: &TokenRecord,
        refresh_token: &Secret,
    ) -> Result<Secret, OAuthError> {
        lock(&slot.state).phase = Phase::Refreshing;
        self.inner.signal.notify();
        tracing::debug!(account_id, "refreshing OAuth token");
        let result = refresh_tokens(&self.inner.http, settings, refresh_token).await;
        let now = unix_now();
        let set = match result {
            Ok(set) => set,
            Err(e) => {
                slot.refreshes[1].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return self.refresh_failed(account_id, slot, refresh_token, e);
            }
        };
        slot.refreshes[0].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let record = TokenRecord {
            access_token: set.access_token,
            refresh_token: set.refresh_token.or_else(|| Some(refresh_token.clone())),
            expires_at: set.expires_at,
            scopes: if set.scopes.is_empty() { current.scopes.clone() } else { set.scopes },
            last_refresh: Some(now),
        };
        {
            // The old refresh token is spent: keep the new one in memory even if the save below fails.
            let mut st = lock(&slot.state);
            st.record = Some(record.clone());
            st.unsaved = true;
            st.backoff_until = None;
        }
        let saved = save_record_async(&self.inner.store, account_id, &record).await;
        let mut st = lock(&slot.state);
        if let Err(e) = saved {
            tracing::error!(account_id, error = %e, "OAuth token refreshed but the new refresh token could not be saved");
            st.phase = Phase::Error(format!("refreshed tokens could not be saved: {e}"));
            return st.finish(Err(e));
        }
        st.unsaved = false;
        st.phase = Phase::Idle;
        tracing::info!(account_id, expires_at = record.expires_at, "OAuth token refreshed");
        st.finish(Ok(record.access_token))
    }

    fn refresh_failed(
        &self,
        account_id: &str,
        slot: &Slot,
        refresh_token: &Secret,
        e: OAuthError,
    ) -> Result<Secret, OAuthError> {
        let mut st = lock(&slot.state);
        match e {
            OAuthError::InvalidGrant { description } => {
                let detail = description.map(|d| format!(" ({d})")).unwrap_or_default();
                let message =
                    format!("the refresh token was rejected (invalid_grant{detail}); run oauth-start to log in again");
                tracing::warn!(
                    account_id,
                    "OAuth refresh token rejected (invalid_grant); the account needs a new login"
                );
                st.phase = Phase::NeedsLogin(message.clone());
                st.dead_refresh = Some(fingerprint(refresh_token));
                st.finish(Err(OAuthError::NeedsLogin { account_id: account_id.to_string(), message }))
            }
            OAuthError::RateLimited { until } => {
                tracing::warn!(account_id, until, "OAuth token endpoint answered 429; backing off");
                st.backoff_until = Some(until);
                st.phase = Phase::Error(e.to_string());
                st.finish(Err(e))
            }
            e => {
                tracing::warn!(account_id, error = %e, "OAuth token refresh failed");
                st.phase = Phase::Error(e.to_string());
                st.finish(Err(e))
            }
        }
    }
}
