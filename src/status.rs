//! The status report shown by `status`, `list-accounts` and the admin API.

use serde::{Deserialize, Serialize};

use crate::accounts::AccountView;
use crate::config::Strategy;
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
}

impl StatusReport {
    /// Whether at least one account is usable.
    pub fn any_usable(&self) -> bool {
        self.accounts.iter().any(|a| a.state == crate::accounts::AccountState::Active)
    }
}
