//! The store `open_store` returns when the keychain works: keychain first,
//! then the encrypted file for secrets written during an earlier fallback.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use super::file::{FileStore, KeyChoice, SECRETS_FILE};
use super::keychain::KeychainStore;
use super::{BackendKind, Secret, SecretError, SecretStore};

/// Reads the keychain, and on a miss `secrets.enc` if it exists; writes go
/// to the keychain only; deletes remove the id from both.
///
/// The file store is opened lazily: `secrets.enc` may appear after startup
/// (a CLI run without D-Bus fell back to it), and opening it may cost an
/// argon2 derivation that most processes never need.
pub(crate) struct KeychainWithFileFallback {
    keychain: KeychainStore,
    dir: PathBuf,
    key: KeyChoice,
    file: Mutex<Option<Arc<FileStore>>>,
}

impl fmt::Debug for KeychainWithFileFallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeychainWithFileFallback")
            .field("keychain", &self.keychain)
            .field("fallback_file", &self.dir.join(SECRETS_FILE))
            .finish_non_exhaustive()
    }
}

impl KeychainWithFileFallback {
    pub(crate) fn new(keychain: KeychainStore, dir: PathBuf, key: KeyChoice) -> Self {
        KeychainWithFileFallback { keychain, dir, key, file: Mutex::new(None) }
    }

    /// The fallback file store, or `None` while no `secrets.enc` exists.
    /// A failed open is not cached, so fixing the key takes effect without a
    /// restart.
    fn file_store(&self) -> Result<Option<Arc<FileStore>>, SecretError> {
        let mut slot = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(store) = slot.as_ref() {
            return Ok(Some(Arc::clone(store)));
        }
        let path = self.dir.join(SECRETS_FILE);
        match path.try_exists() {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => return Err(SecretError::io(path, e)),
        }
        let store = Arc::new(FileStore::open_with(&self.dir, self.key.clone())?);
        tracing::debug!(path = %path.display(), "reading secrets stored during an earlier keychain fallback");
        *slot = Some(Arc::clone(&store));
        Ok(Some(store))
    }
}

impl SecretStore for KeychainWithFileFallback {
    fn get(&self, id: &str) -> Result<Option<Secret>, SecretError> {
        // A keychain error is returned, not papered over with the file: the
        // file copy may be stale relative to the keychain.
        if let Some(secret) = self.keychain.get(id)? {
            return Ok(Some(secret));
        }
        match self.file_store()? {
            Some(file) => file.get(id),
            None => Ok(None),
        }
    }

    fn set(&self, id: &str, value: &Secret) -> Result<(), SecretError> {
        self.keychain.set(id, value)
    }

    fn delete(&self, id: &str) -> Result<(), SecretError> {
        // Try both so a keychain failure doesn't leave the file copy behind.
        let keychain = self.keychain.delete(id);
        let file = match self.file_store() {
            Ok(Some(file)) => file.delete(id),
            Ok(None) => Ok(()),
            // The file can't be opened with the current key, so any copy in
            // it is unreadable anyway; failing here would make the secret
            // impossible to delete.
            Err(e) => {
                tracing::warn!(id, error = %e, "could not open the fallback secrets file to delete an entry from it");
                Ok(())
            }
        };
        keychain.and(file)
    }

    fn backend(&self) -> BackendKind {
        BackendKind::Keychain
    }
}
