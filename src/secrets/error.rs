//! The error type shared by every secret backend.
//!
//! No variant carries a secret value: messages are built from paths, ids and
//! backend diagnostics only, so errors can be logged and shown to users as-is.

use std::path::PathBuf;
use std::time::Duration;

/// Why a secret could not be read, written or deleted.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The OS keychain cannot be used at all (no D-Bus session, no Secret
    /// Service provider, locked store, ...).
    #[error("cannot access the OS keychain: {reason}")]
    KeychainUnavailable {
        /// What the keychain (or the probe) reported.
        reason: String,
    },

    /// A keychain call did not answer in time; the call may still complete
    /// in the background.
    #[error("the OS keychain did not answer within {} ms ({op})", timeout.as_millis())]
    KeychainTimeout {
        /// Which operation timed out ("get", "set", "delete", "probe").
        op: &'static str,
        /// How long the caller waited.
        timeout: Duration,
    },

    /// The keychain answered with an error.
    #[error("OS keychain error during {op}: {reason}")]
    Keychain {
        /// Which operation failed.
        op: &'static str,
        /// The keychain's diagnostic (never the secret itself).
        reason: String,
    },

    /// A file-system operation failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The secrets file is not in the expected format (truncated, hand
    /// edited, written by an incompatible version).
    #[error("the secrets file {} is corrupt: {detail}", path.display())]
    Corrupt {
        /// The secrets file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },

    /// Authenticated decryption failed: the master key is not the one the
    /// file was written with, or the file was tampered with.
    #[error(
        "cannot decrypt {}: {detail}; the master key may be wrong \
         (check LLM_GATEWAY_MASTER_KEY, or master.key next to the secrets file)",
        path.display()
    )]
    Undecryptable {
        /// The secrets file.
        path: PathBuf,
        /// Which part could not be decrypted.
        detail: String,
    },

    /// The master key is missing, malformed, or of the wrong kind for the
    /// existing secrets file.
    #[error("bad master key: {reason}")]
    BadMasterKey {
        /// What is wrong with the key (never the key itself).
        reason: String,
    },

    /// Another process held the secrets lock for too long.
    #[error("timed out after {} ms waiting for the lock {}", timeout.as_millis(), path.display())]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// How long we waited.
        timeout: Duration,
    },

    /// The secret id is empty, longer than [`MAX_ID_LEN`](super::MAX_ID_LEN)
    /// bytes, or contains control characters.
    #[error("invalid secret id {id:?}: ids are 1-{max} bytes without control characters", max = super::MAX_ID_LEN)]
    InvalidId {
        /// The rejected id (ids are names, not secrets).
        id: String,
    },

    /// The secret value cannot be stored (not valid UTF-8 after decryption,
    /// or too large to encrypt).
    #[error("invalid secret value for {id:?}: {reason}")]
    InvalidValue {
        /// The id of the secret.
        id: String,
        /// What is wrong (never the value).
        reason: String,
    },

    /// A cryptographic primitive or the OS random source failed.
    #[error("cryptographic failure: {reason}")]
    Crypto {
        /// What failed.
        reason: String,
    },
}

impl SecretError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SecretError::Io { path: path.into(), source }
    }
}
