//! Why a Claude Code operation failed. Each variant keeps its kind so the CLI and the admin API can map it (an
//! invalid settings file is the user's to fix; a lock timeout is worth retrying).

use std::path::PathBuf;
use std::time::Duration;

use crate::config::ConfigError;
use crate::secrets::SecretError;

/// Why `status`, `setup`, `restore` or the `api-key` helper failed.
#[derive(Debug, thiserror::Error)]
pub enum ClaudeCodeError {
    /// A settings file is not valid JSON, or not a JSON object: it is refused and left untouched.
    #[error("{path}: {message}; it was not changed. Fix or remove it, then run the command again")]
    InvalidSettings {
        /// The file.
        path: PathBuf,
        /// What is wrong: `not valid JSON: <parser message with line and column>`, or the shape.
        message: String,
    },
    /// A filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Another setup or restore held the lock for too long.
    #[error("{path} is locked by another llm-gateway process (waited {} s); try again", timeout.as_secs())]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// How long we waited.
        timeout: Duration,
    },
    /// The gateway's record of what setup changed cannot be read.
    #[error("{path}: {message}; move it away to start over (restore will then have nothing to undo)")]
    InvalidRecord {
        /// The record file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The gateway's config could not be read or changed (the dedicated key lives there).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The secret store failed (the dedicated key's plaintext lives there).
    #[error("secret store: {0}")]
    Secrets(#[from] SecretError),
    /// The `apiKeyHelper` command found no usable dedicated key.
    #[error("{0}")]
    NoDedicatedKey(String),
    /// A background task failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ClaudeCodeError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { action, path, source }
    }
}
