//! The live account pool: each configured account with its credential and runtime health.
//!
//! This is the one place account state lives. The router reads it to choose; the proxy reports outcomes into it;
//! status and the admin API read it. It performs no I/O: credentials are loaded by the gateway on (re)load.

mod claim;
mod health;
#[cfg(test)]
pub(crate) mod proptests;
mod signal;
pub mod windows;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

pub use claim::Claim;
pub use health::{Admission, BenchReason, Health, HealthPolicy, Observation, TrialToken};
pub use signal::StateSignal;
pub use windows::{RateWindows, Reported};

use crate::clock::rfc3339;
use crate::config::{Account, AccountKind};
use crate::secrets::Secret;

/// An account as the gateway uses it right now.
#[derive(Debug)]
pub struct LiveAccount {
    /// The account's configuration.
    pub config: Account,
    /// The resolved upstream base URL (the account's override or `upstream.base_url`), without a trailing slash.
    pub base_url: String,
    /// The credential, or `None` when the secret store has none for this account.
    pub credential: Option<Secret>,
    /// Routing health (lock-free).
    pub health: Health,
    credential_error: AtomicBool,
    detail: Mutex<Detail>,
    requests: AtomicU64,
    failures: AtomicU64,
    /// Wakes the gateway's account-state monitor when this account's state may have changed.
    signal: StateSignal,
}

#[derive(Debug, Default, Clone)]
struct Detail {
    error: Option<String>,
    last_used_ms: Option<u64>,
    last_status: Option<u16>,
    windows: Option<Reported>,
    /// The windows the usage store had for this account at start-up, shown until the upstream reports new ones.
    restored: Option<RateWindows>,
    /// The windows last handed out to be persisted, and when.
    saved: Option<(Reported, u64)>,
}

/// Where an account stands, as shown by `status`, `list-accounts` and the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    /// Enabled and usable.
    Active,
    /// Turned off by the user.
    Disabled,
    /// The upstream rejected the credential; needs fixing.
    Error,
    /// The secret store holds no credential for it.
    MissingCredential,
    /// Benched until a reset time (429, 529).
    CoolingDown,
    /// Benched by the circuit breaker after repeated failures.
    CircuitOpen,
    /// OAuth account without a usable login (`oauth-start` to log in).
    NeedsLogin,
    /// OAuth account whose token is being refreshed.
    Refreshing,
}

impl AccountState {
    /// The lowercase name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Error => "error",
            Self::MissingCredential => "missing_credential",
            Self::CoolingDown => "cooling_down",
            Self::CircuitOpen => "circuit_open",
            Self::NeedsLogin => "needs_login",
            Self::Refreshing => "refreshing",
        }
    }
}

impl LiveAccount {
    /// Builds a live account with fresh health.
    pub fn new(config: Account, default_base_url: &str, credential: Option<Secret>) -> Self {
        let base_url = config.base_url.as_deref().unwrap_or(default_base_url).trim_end_matches('/').to_string();
        Self {
            config,
            base_url,
            credential,
            health: Health::default(),
            credential_error: AtomicBool::new(false),
            detail: Mutex::new(Detail::default()),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            signal: StateSignal::default(),
        }
    }

    /// The account, reporting possible state changes (a bench, a rejected credential) to `signal`.
    pub fn with_signal(mut self, signal: StateSignal) -> Self {
        self.signal = signal;
        self
    }

    /// Tells the state monitor this account's state may have changed.
    pub(crate) fn state_may_have_changed(&self) {
        self.signal.notify();
    }

    /// The account's id.
    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// The account's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The credential kind.
    pub fn kind(&self) -> AccountKind {
        self.config.kind
    }

    fn detail(&self) -> std::sync::MutexGuard<'_, Detail> {
        // A poisoned lock only means a panic elsewhere mid-update; the data is still a valid snapshot.
        self.detail.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the account could ever be chosen (enabled, credential present and not rejected), ignoring benches.
    pub fn is_configured_usable(&self) -> bool {
        self.config.enabled && self.credential.is_some() && !self.credential_error.load(Ordering::Acquire)
    }

    /// Whether the router may choose this account at `now_ms`.
    pub fn is_available(&self, now_ms: u64) -> bool {
        self.is_configured_usable() && self.health.available(now_ms)
    }

    /// The account's state at `now_ms`.
    pub fn state(&self, now_ms: u64) -> AccountState {
        if !self.config.enabled {
            AccountState::Disabled
        } else if self.credential.is_none() {
            if self.config.kind == AccountKind::Oauth {
                AccountState::NeedsLogin
            } else {
                AccountState::MissingCredential
            }
        } else if self.credential_error.load(Ordering::Acquire) {
            AccountState::Error
        } else {
            match self.health.benched(now_ms) {
                Some((_, BenchReason::CircuitOpen)) => AccountState::CircuitOpen,
                Some(_) => AccountState::CoolingDown,
                None => AccountState::Active,
            }
        }
    }

    /// The upstream's message from the credential failure that put the account in `error`, if any.
    pub fn error_message(&self) -> Option<String> {
        self.detail().error.clone()
    }

    /// Records that a request is being sent with this account.
    pub fn record_attempt(&self, now_ms: u64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.detail().last_used_ms = Some(now_ms);
    }

    /// Records the upstream's answer status and any rate-limit windows it reported.
    pub fn record_response(&self, status: u16, windows: Option<Reported>) {
        if status >= 500 || status == 429 {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(w) = &windows {
            self.health.set_utilization(w.utilization());
        }
        let mut detail = self.detail();
        detail.last_status = Some(status);
        if windows.is_some() {
            detail.windows = windows;
        }
    }

    /// The windows to persist: the latest reported ones when they differ (beyond their timestamp) from those last
    /// handed out here and `min_interval_ms` has passed since; else `None`. Bounds the writes an API key's
    /// per-request `remaining` counts would cause to one per interval per account.
    pub fn windows_to_save(&self, now_ms: u64, min_interval_ms: u64) -> Option<RateWindows> {
        let mut detail = self.detail();
        let current = detail.windows.clone()?;
        if let Some((saved, at)) = &detail.saved
            && (saved.same_values(&current) || now_ms < at.saturating_add(min_interval_ms))
        {
            return None;
        }
        let view = current.view();
        detail.saved = Some((current, now_ms));
        Some(view)
    }

    /// The reset that ends an exhausted plan, from the windows last reported (see [`Reported::plan_reset_ms`]).
    pub fn plan_reset_ms(&self, now_ms: u64) -> Option<u64> {
        self.detail().windows.as_ref().and_then(|w| w.plan_reset_ms(now_ms))
    }

    /// Shows `windows` (as stored before a restart) until the upstream reports new ones.
    pub fn restore_windows(&self, windows: RateWindows) {
        self.detail().restored = Some(windows);
    }

    /// Records a failure to reach the upstream at all.
    pub fn record_network_failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Marks the credential as rejected by the upstream, with the upstream's message.
    pub fn mark_error(&self, message: impl Into<String>) {
        let message = message.into();
        tracing::warn!(account = %self.config.name, "account marked error: {message}");
        self.detail().error = Some(message);
        self.credential_error.store(true, Ordering::Release);
        self.signal.notify();
    }

    /// Takes back a rejection recorded by [`mark_error`](Self::mark_error): for a client's own login, which the
    /// client renews itself, once the upstream accepts it again.
    pub fn clear_error(&self) {
        if self.credential_error.swap(false, Ordering::AcqRel) {
            self.detail().error = None;
            self.signal.notify();
        }
    }

    /// Builds the account's public view at `now_ms`.
    pub fn view(&self, now_ms: u64) -> AccountView {
        let detail = self.detail().clone();
        let bench = self.health.benched(now_ms);
        let (error_rate, latency_ms) = self.health.recent();
        AccountView {
            id: self.config.id.clone(),
            name: self.config.name.clone(),
            kind: self.config.kind,
            state: self.state(now_ms),
            enabled: self.config.enabled,
            error: detail.error,
            weight: self.config.weight,
            priority: self.config.priority,
            models: self.config.models.clone(),
            base_url: self.config.base_url.clone(),
            clients: (self.config.kind == AccountKind::Oauth).then(|| self.config.clients.unwrap_or_default()),
            cooldown_until: bench.map(|(until, _)| rfc3339(until)),
            cooldown_reason: bench.map(|(_, reason)| reason.as_str().to_string()),
            half_open: bench.is_none() && self.health.on_probation(),
            windows: detail.windows.map(|w| w.view()).or(detail.restored),
            recent_error_rate: Some(error_rate),
            recent_latency_ms: Some(latency_ms),
            email: self.config.email.clone(),
            organization: self.config.organization.clone(),
            oauth_state: None,
            token_expires_at: None,
            last_refresh: None,
            requests: self.requests.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            last_used: detail.last_used_ms.map(rfc3339),
            last_status: detail.last_status,
        }
    }
}

/// An account as shown to users and scripts (never includes the credential).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountView {
    /// Account id.
    pub id: String,
    /// Account name.
    pub name: String,
    /// Credential kind.
    pub kind: AccountKind,
    /// Current state.
    pub state: AccountState,
    /// Whether the user has it enabled.
    pub enabled: bool,
    /// The upstream's message when the state is `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Weight under the `weighted` strategy.
    pub weight: u32,
    /// Priority tier (lower is preferred).
    #[serde(default)]
    pub priority: u32,
    /// Model allowlist (empty: all models).
    pub models: Vec<String>,
    /// Base URL override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Subscription (OAuth) accounts: which clients they serve (`claude_code`, the default, or `any`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<crate::config::AccountClients>,
    /// End of the current bench (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_until: Option<String>,
    /// Why it is benched (`rate_limited`, `overloaded`, `circuit_open`, `extra_usage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_reason: Option<String>,
    /// A bench ended and the next request is a trial.
    #[serde(default)]
    pub half_open: bool,
    /// The rate-limit windows the upstream last reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<RateWindows>,
    /// Recent error rate (0–1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent_error_rate: Option<f64>,
    /// Recent latency to response headers (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent_latency_ms: Option<u32>,
    /// OAuth accounts: the login's email and organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// OAuth accounts: organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// OAuth accounts: token state (`active`, `refreshing`, `needs_login`, `error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_state: Option<String>,
    /// OAuth accounts: access token expiry (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_expires_at: Option<String>,
    /// OAuth accounts: last successful refresh or login (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_refresh: Option<String>,
    /// Requests sent with this account since the server started.
    pub requests: u64,
    /// Of which failed (network errors, 429, 5xx).
    pub failures: u64,
    /// When it was last used (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<String>,
    /// The upstream's last status for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
}

impl AccountView {
    /// The view of an account straight from config, for when no server is running.
    pub fn from_config(account: &Account, has_credential: Option<bool>) -> Self {
        let live = LiveAccount::new(account.clone(), "", None);
        let mut view = live.view(0);
        view.recent_error_rate = None;
        view.recent_latency_ms = None;
        view.state = if !account.enabled {
            AccountState::Disabled
        } else if has_credential == Some(false) {
            if account.kind == AccountKind::Oauth { AccountState::NeedsLogin } else { AccountState::MissingCredential }
        } else {
            AccountState::Active
        };
        view
    }
}

/// The accounts in force, in config order.
pub type AccountList = Vec<Arc<LiveAccount>>;
