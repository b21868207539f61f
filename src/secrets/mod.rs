//! Secret storage: account API keys, OAuth tokens and client keys never go
//! into the YAML config; they live in the OS keychain or, where there is none
//! (headless servers, containers), in an AES-256-GCM encrypted file next to
//! the config.
//!
//! All calls are blocking; async code should wrap them in `spawn_blocking`.
//! [`open_store`] picks the backend and falls back from the keychain to the
//! file when the keychain does not answer.

mod crypto;
mod error;
mod file;
mod fsutil;
mod kdf_memory;
mod keychain;
pub mod keys;
mod layered;
mod secret;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use error::SecretError;
pub use file::{FileStore, MASTER_KEY_FILE, SECRETS_FILE};
pub use keychain::{DEFAULT_OP_TIMEOUT, DEFAULT_SERVICE, KeychainStore};
pub use secret::Secret;

use file::KeyChoice;
use layered::KeychainWithFileFallback;

/// Environment variable holding a passphrase for the encrypted secrets file;
/// when unset, a random key in `master.key` is used instead.
pub const MASTER_KEY_ENV: &str = "LLM_GATEWAY_MASTER_KEY";

/// Longest accepted secret id; ids are short names such as
/// `account:acc_1a2b3c:api_key`, and keychains limit attribute lengths.
pub const MAX_ID_LEN: usize = 200;

/// Which backend holds the secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// The OS keychain (Keychain, Credential Manager, Secret Service).
    Keychain,
    /// The encrypted file `secrets.enc` in the config directory.
    File,
}

/// A place to keep secrets by id.
///
/// Blocking API (callers in async code use `spawn_blocking`). Ids are short
/// strings such as `account:acc_1a2b3c:api_key` (at most [`MAX_ID_LEN`]
/// bytes, no control characters).
pub trait SecretStore: Send + Sync + std::fmt::Debug {
    /// The secret stored under `id`, or `None` if there is none.
    fn get(&self, id: &str) -> Result<Option<Secret>, SecretError>;
    /// Stores `value` under `id`, replacing any previous value.
    fn set(&self, id: &str, value: &Secret) -> Result<(), SecretError>;
    /// Removes `id`; removing a missing id is not an error.
    fn delete(&self, id: &str) -> Result<(), SecretError>;
    /// Which backend this store writes to (a keychain store that fell back
    /// to the file reports [`BackendKind::File`]).
    fn backend(&self) -> BackendKind;
}

/// Rejects ids that would be awkward in a keychain entry name or a log line;
/// anything else (spaces, non-ASCII from a user-chosen account id) is fine.
pub(crate) fn validate_id(id: &str) -> Result<(), SecretError> {
    if id.is_empty() || id.len() > MAX_ID_LEN || id.chars().any(char::is_control) {
        return Err(SecretError::InvalidId { id: id.chars().take(MAX_ID_LEN).collect() });
    }
    Ok(())
}

/// Opens the configured backend for the config directory `dir`.
///
/// For [`BackendKind::Keychain`] the keychain is probed with a real round
/// trip that may take at most `probe_timeout` (the gateway passes ~1.5 s).
/// If it does not answer or fails, a warning explains why and the
/// [`FileStore`] in `dir/secrets.enc` is returned instead (its `backend()`
/// is `File`). When the keychain works, the returned store reads the
/// keychain first and, on a miss, `secrets.enc` if it exists, so secrets
/// written during an earlier fallback stay readable; writes go to the
/// keychain; deletes remove the id from both.
pub fn open_store(kind: BackendKind, dir: &Path, probe_timeout: Duration) -> Result<Arc<dyn SecretStore>, SecretError> {
    // A malformed LLM_GATEWAY_MASTER_KEY is a configuration error even when
    // the keychain works: report it now, not at the first keychain miss.
    let key = KeyChoice::from_env()?;
    open_store_with(kind, dir, probe_timeout, KeychainStore::new(DEFAULT_SERVICE), key)
}

/// `open_store` with the keychain and the file key injected, so tests need
/// neither the real keychain nor the process environment.
fn open_store_with(
    kind: BackendKind,
    dir: &Path,
    probe_timeout: Duration,
    keychain: KeychainStore,
    key: KeyChoice,
) -> Result<Arc<dyn SecretStore>, SecretError> {
    if kind == BackendKind::Keychain {
        match keychain.probe(probe_timeout) {
            Ok(()) => {
                tracing::debug!(service = %keychain.service(), "using the OS keychain for secrets");
                return Ok(Arc::new(KeychainWithFileFallback::new(keychain, dir.to_path_buf(), key)));
            }
            Err(e) => {
                tracing::warn!(
                    reason = %e,
                    "OS keychain is unavailable; secrets will be stored in the encrypted file {} instead",
                    dir.join(SECRETS_FILE).display()
                );
            }
        }
    }
    Ok(Arc::new(FileStore::open_with(dir, key)?))
}

/// How long the keychain gets to answer before the encrypted file is used instead.
pub const KEYCHAIN_PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

/// Opens the secret store `config` names (`secrets.backend`) for the config directory `dir` (blocking: probes
/// the keychain for up to [`KEYCHAIN_PROBE_TIMEOUT`]).
pub fn open_for_config(config: &crate::config::Config, dir: &Path) -> Result<Arc<dyn SecretStore>, SecretError> {
    let kind = match config.secrets.backend {
        crate::config::SecretsBackend::Keychain => BackendKind::Keychain,
        crate::config::SecretsBackend::File => BackendKind::File,
    };
    open_store(kind, dir, KEYCHAIN_PROBE_TIMEOUT)
}

/// The backend's name as shown by `status` and the admin API (`keychain` or `file`).
pub fn backend_name(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Keychain => "keychain",
        BackendKind::File => "file",
    }
}

#[cfg(test)]
mod tests;
