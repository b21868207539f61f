//! [`OAuthStatus`]: what `status`, `list-accounts` and the admin API show for an OAuth account.

use serde::Serialize;

/// An OAuth account's token state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum OAuthState {
    /// A token is stored (it may still be refreshed on demand).
    Active,
    /// A refresh is in progress.
    Refreshing,
    /// No usable refresh token: the user must log in again (`oauth-start`).
    NeedsLogin {
        /// Why, for the user.
        message: String,
    },
    /// The last refresh failed (network, token endpoint error, rate limit); the next call retries.
    Error {
        /// What failed.
        message: String,
    },
}

impl OAuthState {
    /// `active`, `refreshing`, `needs_login` or `error`.
    pub fn as_str(&self) -> &'static str {
        match self {
            OAuthState::Active => "active",
            OAuthState::Refreshing => "refreshing",
            OAuthState::NeedsLogin { .. } => "needs_login",
            OAuthState::Error { .. } => "error",
        }
    }
}

/// What `status`, `list-accounts` and the admin API show for an OAuth account (the email comes from config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OAuthStatus {
    /// The state, serialised as `"state": "active"` (plus `"message"` for the failing ones).
    #[serde(flatten)]
    pub state: OAuthState,
    /// Unix seconds when the access token expires.
    pub expires_at: Option<i64>,
    /// Unix seconds of the last successful refresh or login.
    pub last_refresh: Option<i64>,
    /// Unix seconds until which the token endpoint is not called again after a 429.
    pub rate_limited_until: Option<i64>,
}
