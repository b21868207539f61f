//! [`OAuthError`]: everything that can go wrong in a login, a token call or a request enhancement.
//!
//! No variant carries a token, a verifier or an authorization code, so errors can be logged and shown to
//! users as they are.

use std::sync::Arc;

use crate::secrets::SecretError;

/// Why an OAuth operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OAuthError {
    /// The pasted code or callback URL could not be understood.
    #[error("invalid OAuth callback input: {0}")]
    InvalidInput(String),

    /// The authorization server redirected back with `?error=…` (the user refused, or the request was bad).
    #[error("the authorization server refused the login: {error}{}", description_suffix(description))]
    Denied {
        /// The `error` query parameter.
        error: String,
        /// The `error_description` query parameter, if any.
        description: Option<String>,
    },

    /// A pasted code came without its state.
    #[error(
        "the pasted code has no state; paste the whole `code#state` value shown by the login page, \
         or the full callback URL"
    )]
    MissingState,

    /// No login is in progress for this account (or none with this state).
    #[error("no login in progress{}; run oauth-start first", account_suffix(account_id))]
    NoPendingLogin {
        /// The account asked for, when known.
        account_id: Option<String>,
    },

    /// The state in the callback is not the one of the pending login (a stale or foreign code).
    #[error(
        "the state in the callback does not match the login in progress for account {account_id}; \
         run oauth-start again and use the newest code"
    )]
    StateMismatch {
        /// The account whose pending login was checked.
        account_id: String,
    },

    /// The pending login is older than ten minutes.
    #[error("the login for account {account_id} expired (logins must finish within 10 minutes); run oauth-start again")]
    LoginExpired {
        /// The account.
        account_id: String,
    },

    /// The account has no usable refresh token: it must log in again.
    #[error("account {account_id} needs a new login: {message}")]
    NeedsLogin {
        /// The account.
        account_id: String,
        /// Why, in words for the user.
        message: String,
    },

    /// The token endpoint answered `400 {"error":"invalid_grant"}`: the code or refresh token is not valid.
    #[error("the token endpoint rejected the grant (invalid_grant){}", description_suffix(description))]
    InvalidGrant {
        /// The endpoint's `error_description`, if any.
        description: Option<String>,
    },

    /// The token endpoint answered 429; no call is made before `until`.
    #[error("the OAuth token endpoint is rate limiting; not retrying before {}", format_unix(*until))]
    RateLimited {
        /// Unix seconds before which calls fail fast.
        until: i64,
    },

    /// The token endpoint answered with another error status.
    #[error("the OAuth token endpoint answered HTTP {status}: {message}")]
    TokenEndpoint {
        /// HTTP status.
        status: u16,
        /// The endpoint's error message (never a token).
        message: String,
    },

    /// The token endpoint could not be reached (connection, TLS, timeout).
    #[error("cannot reach the OAuth token endpoint {url}: {message}")]
    Network {
        /// The token URL.
        url: String,
        /// The transport error.
        message: String,
    },

    /// The token endpoint answered 2xx with a body we cannot use.
    #[error("unexpected response from the OAuth token endpoint: {0}")]
    BadResponse(String),

    /// The secret store failed.
    #[error("secret store error: {0}")]
    Store(#[source] Arc<SecretError>),

    /// Stored OAuth data (pending login or token record) is not in the expected format.
    #[error("stored OAuth data for {id} is unreadable: {detail}")]
    CorruptRecord {
        /// Secret id of the record.
        id: String,
        /// What is wrong.
        detail: String,
    },

    /// The non-secret index of pending logins beside the config could not be read or written.
    #[error("pending-login index {path}: {message}")]
    PendingIndex {
        /// The index file.
        path: String,
        /// What failed.
        message: String,
    },

    /// The request body to enhance is not a JSON object.
    #[error("invalid request body: {0}")]
    InvalidBody(String),

    /// The OAuth settings are unusable (bad URL, ...).
    #[error("invalid OAuth settings: {0}")]
    Settings(String),

    /// A background task failed unexpectedly.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<SecretError> for OAuthError {
    fn from(e: SecretError) -> Self {
        OAuthError::Store(Arc::new(e))
    }
}

fn description_suffix(d: &Option<String>) -> String {
    d.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
}

fn account_suffix(a: &Option<String>) -> String {
    a.as_deref().map(|a| format!(" for account {a}")).unwrap_or_default()
}

/// Unix seconds as RFC 3339 UTC (falls back to the number).
pub(crate) fn format_unix(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| format!("unix time {secs}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_fix() {
        let e = OAuthError::RateLimited { until: 0 };
        assert_eq!(
            e.to_string(),
            "the OAuth token endpoint is rate limiting; not retrying before 1970-01-01T00:00:00Z"
        );
        let e = OAuthError::NoPendingLogin { account_id: Some("acc_1".into()) };
        assert_eq!(e.to_string(), "no login in progress for account acc_1; run oauth-start first");
        let e = OAuthError::InvalidGrant { description: Some("Refresh token not found or invalid".into()) };
        assert!(e.to_string().ends_with("(invalid_grant): Refresh token not found or invalid"));
    }
}
