//! The live account pool: each configured account with its credential and runtime health.
//!
//! This is the one place account state lives. The router reads it to choose; the proxy reports outcomes into it;
//! status and the admin API read it. It performs no I/O: credentials are loaded by the gateway on (re)load.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

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
    health: Mutex<Health>,
    requests: AtomicU64,
    failures: AtomicU64,
}

#[derive(Debug, Default, Clone)]
struct Health {
    error: Option<(String, OffsetDateTime)>,
    last_used: Option<OffsetDateTime>,
    last_status: Option<u16>,
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
}

impl AccountState {
    /// The lowercase name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Error => "error",
            Self::MissingCredential => "missing_credential",
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
            health: Mutex::new(Health::default()),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
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

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        // A poisoned lock only means a panic elsewhere mid-update; the data is still a valid snapshot.
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The account's current state.
    pub fn state(&self) -> AccountState {
        if !self.config.enabled {
            AccountState::Disabled
        } else if self.credential.is_none() {
            AccountState::MissingCredential
        } else if self.health().error.is_some() {
            AccountState::Error
        } else {
            AccountState::Active
        }
    }

    /// Whether the router may choose this account now.
    pub fn is_usable(&self) -> bool {
        self.state() == AccountState::Active
    }

    /// The upstream's message from the credential failure that put the account in `error`, if any.
    pub fn error_message(&self) -> Option<String> {
        self.health().error.as_ref().map(|(m, _)| m.clone())
    }

    /// Records that a request is being sent with this account.
    pub fn record_attempt(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.health().last_used = Some(OffsetDateTime::now_utc());
    }

    /// Records the upstream's answer status.
    pub fn record_status(&self, status: u16) {
        if status >= 500 || status == 429 {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        self.health().last_status = Some(status);
    }

    /// Records a failure to reach the upstream at all.
    pub fn record_network_failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Marks the credential as rejected by the upstream, with the upstream's message.
    pub fn mark_error(&self, message: impl Into<String>) {
        let message = message.into();
        tracing::warn!(account = %self.config.name, "account marked error: {message}");
        self.health().error = Some((message, OffsetDateTime::now_utc()));
    }

    /// Builds the account's public view.
    pub fn view(&self) -> AccountView {
        let health = self.health().clone();
        AccountView {
            id: self.config.id.clone(),
            name: self.config.name.clone(),
            kind: self.config.kind,
            state: self.state(),
            enabled: self.config.enabled,
            error: health.error.map(|(m, _)| m),
            weight: self.config.weight,
            models: self.config.models.clone(),
            base_url: self.config.base_url.clone(),
            requests: self.requests.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            last_used: health.last_used.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
            last_status: health.last_status,
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
    /// Model allowlist (empty: all models).
    pub models: Vec<String>,
    /// Base URL override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
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
        let state = if !account.enabled {
            AccountState::Disabled
        } else if has_credential == Some(false) {
            AccountState::MissingCredential
        } else {
            AccountState::Active
        };
        let live = LiveAccount::new(account.clone(), "", None);
        let mut view = live.view();
        view.state = state;
        view
    }
}

/// The accounts in force, in config order.
pub type AccountList = Vec<Arc<LiveAccount>>;
