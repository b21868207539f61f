//! The status report: the running gateway's view of itself (accounts with state, windows, counters), also built
//! from the config alone when no gateway runs (`manage`).

use serde::{Deserialize, Serialize};

use crate::accounts::{AccountState, AccountView};
use crate::clock::rfc3339_secs;
use crate::config::AccountKind;
use crate::config::Strategy;
use crate::secrets::backend_name;
use crate::upstream::oauth::{OAuthState, OAuthStatus};
use crate::usage::UsageTotals;
use crate::usage::counters::day_start;

use super::Gateway;

use crate::config::watch::ConfigSync;

/// Where a report's data came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportSource {
    /// A running server answered: runtime state is live.
    Server,
    /// No server answered: configuration only.
    Config,
}

/// The gateway's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReport {
    /// Live server data or config only.
    pub source: ReportSource,
    /// Gateway version.
    pub version: String,
    /// The listen address (of the running server, or as configured).
    pub listen: String,
    /// Server reports: the address clients on this machine use (`http://127.0.0.1:8787`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Server reports: accounts a request could be sent with right now (`GET /ready` is 200 when above 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usable_accounts: Option<usize>,
    /// Seconds since the server started (server reports only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_secs: Option<u64>,
    /// Active routing strategy.
    pub strategy: Strategy,
    /// Secret store backend in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_backend: Option<String>,
    /// Number of general-purpose gateway keys (dedicated ones, such as Claude Code's, are not counted); 0 means
    /// the API is open (loopback only).
    pub client_keys: usize,
    /// Accounts with their state.
    pub accounts: Vec<AccountView>,
    /// Server reports: which version of the config file is in force, and a newer one not applied yet (why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigSync>,
    /// Usage since UTC midnight (absent when recording is off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub today: Option<UsageTotals>,
    /// Server reports: request records not stored since start-up (the writer fell behind, or the disk failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_dropped: Option<u64>,
    /// Server reports: clients' own logins passed through (`subscriptions.own_login: forward`), each tracked like
    /// an account under a short hash of its credential ("Claude Code login ·a1b2"), most recently used first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub own_logins: Vec<AccountView>,
    /// Server reports: requests since start-up by client kind (`usage::ClientKind::detect`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients_seen: Option<ClientCounts>,
}

/// Requests by client kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCounts {
    /// The Claude Code CLI.
    pub claude_code: u64,
    /// Anthropic SDKs and other Messages clients.
    pub anthropic_sdk: u64,
    /// OpenAI-format clients.
    pub openai: u64,
    /// Anything else.
    pub other: u64,
}

impl StatusReport {
    /// Whether at least one account is usable.
    pub fn any_usable(&self) -> bool {
        self.accounts.iter().any(|a| a.state == crate::accounts::AccountState::Active)
    }
}

impl Gateway {
    /// The status report from memory only (OAuth token states as last seen, no secret-store read): for
    /// synchronous callers such as the desktop tray, which must never wait on a keychain.
    pub fn status_now(&self) -> StatusReport {
        let live = self.live();
        let now = self.now_ms();
        let accounts = live
            .accounts
            .iter()
            .map(|a| {
                let mut view = a.view(now);
                if a.kind() == AccountKind::Oauth
                    && let Some(status) = self.oauth.cached_status(a.id())
                {
                    with_oauth(&mut view, &status);
                }
                view
            })
            .collect();
        self.report(&live, now, accounts, None)
    }

    /// The live status report. Reading an OAuth account's token state for the first time goes to the secret
    /// store on a blocking thread, so a slow keychain delays this report but never the runtime.
    pub async fn status(&self) -> StatusReport {
        let live = self.live();
        let now = self.now_ms();
        let accounts = futures_util::future::join_all(live.accounts.iter().map(|a| async move {
            let mut view = a.view(now);
            if a.kind() == AccountKind::Oauth {
                with_oauth(&mut view, &self.oauth.status(a.id()).await);
            }
            view
        }))
        .await;
        let today = self.usage.query(move |r| r.summary_since(day_start(now), now)).await.ok();
        self.report(&live, now, accounts, today)
    }

    fn report(
        &self,
        live: &super::Live,
        now: u64,
        accounts: Vec<AccountView>,
        today: Option<UsageTotals>,
    ) -> StatusReport {
        let stats = self.usage.stats();
        StatusReport {
            source: ReportSource::Server,
            version: env!("CARGO_PKG_VERSION").into(),
            listen: self.listen.to_string(),
            url: Some(crate::config::connect_url(self.listen)),
            usable_accounts: Some(live.accounts.iter().filter(|a| a.is_available(now)).count()),
            uptime_secs: Some(self.started.elapsed().as_secs()),
            strategy: live.config.routing.strategy,
            secrets_backend: Some(backend_name(self.secrets.backend()).into()),
            client_keys: live.client_keys.general(),
            accounts,
            config: Some(self.config_sync.borrow().clone()),
            today,
            usage_dropped: stats.enabled.then(|| stats.dropped()),
            clients_seen: Some(self.clients_seen.snapshot()),
            own_logins: self.own_logins.views(now),
        }
    }
}

/// Adds an OAuth account's token status to its view; a login problem becomes the account's state.
pub(crate) fn with_oauth(view: &mut AccountView, status: &OAuthStatus) {
    view.oauth_state = Some(status.state.as_str().to_string());
    // Unix seconds from the token endpoint: a time RFC 3339 cannot show is left out rather than overflowing.
    view.token_expires_at = status.expires_at.and_then(rfc3339_secs);
    view.last_refresh = status.last_refresh.and_then(rfc3339_secs);
    match &status.state {
        OAuthState::NeedsLogin { message } if view.enabled => {
            view.state = AccountState::NeedsLogin;
            view.error = Some(message.clone());
        }
        OAuthState::Refreshing if view.state == AccountState::Active => view.state = AccountState::Refreshing,
        OAuthState::Error { message } if view.error.is_none() => view.error = Some(format!("OAuth: {message}")),
        _ => {}
    }
}
