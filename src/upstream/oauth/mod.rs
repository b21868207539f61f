//! Claude Code OAuth (Pro/Max) accounts: PKCE login, token exchange and refresh, the per-account token
//! lifecycle, and the request enhancement OAuth traffic needs (docs/protocol.md §1–§2, §7).
//!
//! - [`start_login`] creates a pending login (stored in the secret store, so `oauth-start` and
//!   `oauth-callback` can run in separate processes) and returns the authorize URL.
//! - [`complete_login`] / [`complete_from_deep_link`] finish it from a pasted `code#state`, a callback URL
//!   (loopback or `llm-gateway://oauth/callback?…`), exchange the code and store the tokens.
//! - [`PendingRegistry`] answers which account a callback's state belongs to from memory (and a non-secret
//!   index file of logins other processes started), so a forged callback costs no secret-store I/O.
//! - [`TokenManager`] hands out valid access tokens, refreshing single-flight per account, persisting a
//!   rotated refresh token before the new access token is used, and tracks each account's [`OAuthStatus`].
//! - [`enhance_request`] turns a client request into one an OAuth token may send upstream.
//!
//! Secrets: the token record of an account is under [`token_secret_id`] (`account:<id>:oauth`), a pending
//! login under [`pending_secret_id`] (`oauth:pending:<id>`). Tokens, verifiers and codes are never logged.

mod complete;
mod enhance;
mod error;
mod login;
mod manager;
mod pkce;
mod record;
mod registry;
mod settings;
mod slot;
mod status;
mod token;

pub use complete::{
    CompletedLogin, LoginOutcome, checked_pending, complete_from_deep_link, complete_login, delete_account_tokens,
    exchange_and_store,
};
pub use enhance::enhance_request;
pub use error::OAuthError;
pub use login::{PENDING_LOGIN_TTL_SECS, PendingLogin, StartedLogin, begin_login, parse_callback_input, start_login};
pub use manager::{DEFAULT_REFRESH_MARGIN, TokenManager};
pub use registry::{
    INDEX_CHECK_INTERVAL, PENDING_INDEX_FILE, PendingRegistry, PendingState, forget_pending, pending_index_path,
    record_pending, state_hash,
};
pub use settings::settings_for;
pub use status::{OAuthState, OAuthStatus};
pub use token::{TokenSet, exchange_code, refresh_tokens};

use crate::secrets::Secret;

/// The beta every OAuth request must carry (protocol.md §2).
pub const OAUTH_BETA: &str = "oauth-2025-04-20";

/// The default identity system prompt (config `oauth.system_prompt`).
pub const CLAUDE_CODE_IDENTITY: &str = "You are Claude Code, Anthropic's official CLI for Claude.";

/// Identity lines the real Claude Code CLI sends (protocol.md §7); a request starting with one of these (or
/// with the configured prompt) already has its identity.
pub const KNOWN_IDENTITIES: [&str; 3] = [
    "You are Claude Code, Anthropic's official CLI for Claude.",
    "You are Claude Code, Anthropic's official CLI for Claude, running within the Claude Agent SDK.",
    "You are a Claude agent, built on Anthropic's Claude Agent SDK.",
];

/// The scheme and path of the desktop app's deep link that completes a login.
pub const DEEP_LINK_CALLBACK: &str = "llm-gateway://oauth/callback";

/// The link the loopback success page offers so the desktop app comes to the front.
pub const DEEP_LINK_DONE: &str = "llm-gateway://oauth/done";

/// The OAuth client and endpoints one account uses (config `oauth:`, overridable per account).
#[derive(Debug, Clone)]
pub struct OAuthSettings {
    /// OAuth client id.
    pub client_id: String,
    /// Client secret, sent with the code exchange when set (the Claude Code client has none).
    pub client_secret: Option<Secret>,
    /// Authorization page URL.
    pub authorize_url: String,
    /// Token exchange and refresh URL.
    pub token_url: String,
    /// Redirect URI registered for the client (manual paste page, or a loopback address).
    pub redirect_uri: String,
    /// Scopes requested at login.
    pub scopes: Vec<String>,
}

impl Default for OAuthSettings {
    /// The Claude Code client with today's endpoints (protocol.md §1).
    fn default() -> Self {
        OAuthSettings {
            client_id: "9d1c250a-e61b-44d9-88ed-5944d1962f5e".into(),
            client_secret: None,
            authorize_url: "https://claude.ai/oauth/authorize".into(),
            token_url: "https://platform.claude.com/v1/oauth/token".into(),
            redirect_uri: "https://platform.claude.com/oauth/code/callback".into(),
            scopes: vec!["org:create_api_key".into(), "user:profile".into(), "user:inference".into()],
        }
    }
}

/// Constant-time equality of two secrets (the length may leak, the content does not).
pub(crate) fn secrets_equal(a: &Secret, b: &Secret) -> bool {
    use subtle::ConstantTimeEq as _;
    a.expose().as_bytes().ct_eq(b.expose().as_bytes()).into()
}

/// Secret-store id of an account's token record (`account:<id>:oauth`).
pub fn token_secret_id(account_id: &str) -> String {
    format!("account:{account_id}:oauth")
}

/// Secret-store id of an account's pending login (`oauth:pending:<id>`).
pub fn pending_secret_id(account_id: &str) -> String {
    format!("oauth:pending:{account_id}")
}

/// Whether `redirect_uri` is a loopback address (`http://localhost:PORT/…`, `http://127.0.0.1:PORT/…`,
/// `http://[::1]:PORT/…`) that the running gateway's `GET /oauth/callback` can serve.
pub fn is_loopback_redirect(redirect_uri: &str) -> bool {
    crate::common::net::is_loopback_url(redirect_uri, &["http"])
}

/// Seconds since the Unix epoch, now.
pub(crate) fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod login_tests;
#[cfg(test)]
mod manager_tests;
#[cfg(test)]
mod test_support;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_detection() {
        assert!(is_loopback_redirect("http://localhost:54545/callback"));
        assert!(is_loopback_redirect("http://127.0.0.1:8787/oauth/callback"));
        assert!(is_loopback_redirect("http://[::1]:8787/oauth/callback"));
        assert!(!is_loopback_redirect("https://platform.claude.com/oauth/code/callback"));
        assert!(!is_loopback_redirect("https://localhost:1/cb"));
        assert!(!is_loopback_redirect("not a url"));
    }

    #[test]
    fn secret_ids() {
        assert_eq!(token_secret_id("acc_1"), "account:acc_1:oauth");
        assert_eq!(pending_secret_id("acc_1"), "oauth:pending:acc_1");
    }
}
