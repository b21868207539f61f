//! The error every management operation returns: a kind each front door maps on its own (an HTTP status, a CLI
//! exit code, a desktop notice), a message that says what to do, and the input field or config key it is about.

use serde::Serialize;

use crate::config::ConfigError;
use crate::secrets::SecretError;
use crate::upstream::oauth::OAuthError;

/// What kind of failure an operation met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The input is not acceptable (`field` names it).
    InvalidInput,
    /// No account, key or login by that id or name.
    NotFound,
    /// The change conflicts with what exists (a duplicate name, an account of the wrong kind).
    Conflict,
    /// The account has no usable login; start one.
    NeedsLogin,
    /// The upstream or the OAuth token endpoint could not be reached or refused.
    UpstreamUnavailable,
    /// The config file or the secret store could not be read or written.
    Storage,
    /// Nothing runs that could do this (e.g. no gateway for a command that needs one).
    NotRunning,
    /// A bug or an unexpected failure.
    Internal,
}

impl ErrorKind {
    /// The kind's name in JSON (`invalid_input`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidInput => "invalid_input",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::NeedsLogin => "needs_login",
            Self::UpstreamUnavailable => "upstream_unavailable",
            Self::Storage => "storage",
            Self::NotRunning => "not_running",
            Self::Internal => "internal",
        }
    }
}

/// Why a management operation failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// What went wrong and, where possible, what to do.
    pub message: String,
    /// The input field or config key the error is about (`name`, `routing.strategy`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Error {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), field: None }
    }

    /// Invalid input in `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::InvalidInput, message: message.into(), field: Some(field.into()) }
    }

    /// Nothing by that id or name.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// A conflict with what exists, about `field`.
    pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Conflict, message: message.into(), field: Some(field.into()) }
    }

    /// An unexpected failure.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    pub(crate) fn task(e: tokio::task::JoinError) -> Self {
        Self::internal(format!("a background task failed: {e}"))
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        match e {
            ConfigError::Invalid { key, message } => {
                Self { kind: ErrorKind::InvalidInput, message: format!("`{key}`: {message}"), field: Some(key) }
            }
            ConfigError::Rejected(message) => Self::new(ErrorKind::Conflict, message),
            ConfigError::Serialize(message) => Self::internal(message),
            e @ (ConfigError::Io { .. } | ConfigError::Parse { .. }) => Self::new(ErrorKind::Storage, e.to_string()),
        }
    }
}

impl From<SecretError> for Error {
    fn from(e: SecretError) -> Self {
        Self::new(ErrorKind::Storage, format!("secret store: {e}"))
    }
}

impl From<OAuthError> for Error {
    fn from(e: OAuthError) -> Self {
        let kind = match &e {
            OAuthError::InvalidInput(_)
            | OAuthError::Denied { .. }
            | OAuthError::MissingState
            | OAuthError::StateMismatch { .. }
            | OAuthError::LoginExpired { .. }
            | OAuthError::InvalidBody(_)
            // The code's state matches no login in progress (for this account): a stale, used or mistyped code.
            | OAuthError::NoPendingLogin { .. } => {
                return Self::invalid("code", e.to_string());
            }
            OAuthError::Settings(_) => return Self::invalid("oauth", e.to_string()),
            OAuthError::NeedsLogin { .. } | OAuthError::InvalidGrant { .. } => ErrorKind::NeedsLogin,
            OAuthError::RateLimited { .. }
            | OAuthError::TokenEndpoint { .. }
            | OAuthError::Network { .. }
            | OAuthError::BadResponse(_) => ErrorKind::UpstreamUnavailable,
            OAuthError::Store(_) | OAuthError::CorruptRecord { .. } | OAuthError::PendingIndex { .. } => {
                ErrorKind::Storage
            }
            OAuthError::Internal(_) => ErrorKind::Internal,
        };
        Self::new(kind, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_errors_keep_the_key_as_the_field() {
        let e = Error::from(ConfigError::Invalid { key: "routing.strategy".into(), message: "unknown".into() });
        assert_eq!(e.kind, ErrorKind::InvalidInput);
        assert_eq!(e.field.as_deref(), Some("routing.strategy"));
        assert!(e.message.contains("routing.strategy"));
    }

    #[test]
    fn oauth_errors_keep_their_kind() {
        assert_eq!(Error::from(OAuthError::MissingState).field.as_deref(), Some("code"));
        let needs = OAuthError::NeedsLogin { account_id: "a".into(), message: "x".into() };
        assert_eq!(Error::from(needs).kind, ErrorKind::NeedsLogin);
        let net = OAuthError::Network { url: "u".into(), message: "m".into() };
        assert_eq!(Error::from(net).kind, ErrorKind::UpstreamUnavailable);
    }
}
