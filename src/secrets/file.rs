//! [`FileStore`]: secrets in an AES-256-GCM encrypted JSON file next to the
//! config, for machines without a usable OS keychain.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use zeroize::{Zeroize as _, Zeroizing};

use super::crypto::{self, FORMAT_VERSION, Kdf, KdfParams, MasterKey, OpenError, SecretsFile};
use super::fsutil::{self, FileLock, LOCK_TIMEOUT};
use super::{BackendKind, MASTER_KEY_ENV, Secret, SecretError, SecretStore, validate_id};

/// File name of the encrypted secrets inside the config directory.
pub const SECRETS_FILE: &str = "secrets.enc";
/// File name of the generated master key inside the config directory.
pub const MASTER_KEY_FILE: &str = "master.key";
const LOCK_FILE: &str = "secrets.lock";

/// Which master key a [`FileStore`] uses; resolved once at open.
#[derive(Clone)]
pub(crate) enum KeyChoice {
    /// A passphrase (from `LLM_GATEWAY_MASTER_KEY`), stretched with argon2id.
    Passphrase { passphrase: Zeroizing<String>, params: KdfParams },
    /// A random key in `master.key`, generated on first use.
    KeyFile,
}

impl KeyChoice {
    /// Reads `LLM_GATEWAY_MASTER_KEY`. Kept separate from opening so tests
    /// can choose a key without touching the process-global environment.
    pub(crate) fn from_env() -> Result<KeyChoice, SecretError> {
        match std::env::var_os(MASTER_KEY_ENV) {
            None => Ok(KeyChoice::KeyFile),
            Some(value) => {
                let value = Zeroizing::new(value.into_string().map_err(|_| SecretError::BadMasterKey {
                    reason: format!("{MASTER_KEY_ENV} is not valid UTF-8"),
                })?);
                if value.is_empty() {
                    return Err(SecretError::BadMasterKey {
                        reason: format!("{MASTER_KEY_ENV} is set but empty; unset it to use {MASTER_KEY_FILE}"),
                    });
                }
                Ok(KeyChoice::Passphrase { passphrase: value, params: KdfParams::default() })
            }
        }
    }
}

/// The key in use together with the header that describes it, so a file
/// written by another process with a different salt can be detected.
struct KeyState {
    kdf: Kdf,
    key: MasterKey,
}

/// Secrets in `<dir>/secrets.enc`, each entry sealed with AES-256-GCM under
/// the master key with its id as associated data.
///
/// Every `get` reads the file afresh, so values written by another process
/// (the CLI while the server runs) are seen at once; every `set`/`delete` is
/// a locked read-modify-write with an atomic replace.
pub struct FileStore {
    path: PathBuf,
    lock_path: PathBuf,
    key_path: PathBuf,
    choice: KeyChoice,
    state: Mutex<KeyState>,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = match self.choice {
            KeyChoice::Passphrase { .. } => MASTER_KEY_ENV,
            KeyChoice::KeyFile => MASTER_KEY_FILE,
        };
        f.debug_struct("FileStore").field("path", &self.path).field("key_source", &key).finish_non_exhaustive()
    }
}

impl FileStore {
    /// Opens the store for the config directory `dir` (created if missing).
    ///
    /// The master key comes from `LLM_GATEWAY_MASTER_KEY` when set (stretched
    /// with argon2id; this costs tens of milliseconds once per open), else
    /// from `dir/master.key`, which is generated on first use. Fails with
    /// [`SecretError::Undecryptable`] when an existing `secrets.enc` was
    /// written with a different key, and with [`SecretError::BadMasterKey`]
    /// when the key is malformed or of the other kind than the file's.
    pub fn open(dir: &Path) -> Result<Self, SecretError> {
        Self::open_with(dir, KeyChoice::from_env()?)
    }

    pub(crate) fn open_with(dir: &Path, choice: KeyChoice) -> Result<Self, SecretError> {
        fsutil::ensure_dir(dir)?;
        let path = dir.join(SECRETS_FILE);
        let lock_path = dir.join(LOCK_FILE);
        let key_path = dir.join(MASTER_KEY_FILE);
        let state = match &choice {
            KeyChoice::KeyFile => {
                // Locked so that two processes starting together can't each
                // generate a different master.key.
                let _lock = FileLock::acquire(&lock_path, LOCK_TIMEOUT)?;
                let doc = read_doc(&path)?;
                KeyState { kdf: Kdf::KeyFile, key: load_or_create_key(&key_path, &path, doc.as_ref())? }
            }
            KeyChoice::Passphrase { passphrase, params } => {
                let doc = read_doc(&path)?;
                let kdf = match doc.as_ref().map(|d| &d.kdf) {
                    Some(kdf @ Kdf::Argon2id { .. }) => kdf.clone(),
                    _ => crypto::new_argon2_kdf(*params)?,
                };
                let key = crypto::derive_key(passphrase.as_bytes(), &kdf).map_err(|detail| corrupt(&path, detail))?;
                KeyState { kdf, key }
            }
        };
        let store = FileStore { path, lock_path, key_path, choice, state: Mutex::new(state) };
        if let Some(doc) = read_doc(&store.path)?
            && !doc.entries.is_empty()
        {
            // Fail at open rather than at the first secret lookup. A file
            // without entries holds nothing the key could be wrong for.
            store.key_for(&doc)?;
        }
        Ok(store)
    }

    /// The path of `secrets.enc`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns the key for `doc`, checking that the file was written with the
    /// same kind of key and that the key-check record verifies.
    fn key_for(&self, doc: &SecretsFile) -> Result<MasterKey, SecretError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match (&self.choice, &doc.kdf) {
            (KeyChoice::KeyFile, Kdf::KeyFile) => {}
            (KeyChoice::Passphrase { passphrase, .. }, kdf @ Kdf::Argon2id { .. }) => {
                if *kdf != state.kdf {
                    // Another process created the file with its own salt.
                    let key =
                        crypto::derive_key(passphrase.as_bytes(), kdf).map_err(|detail| corrupt(&self.path, detail))?;
                    *state = KeyState { kdf: kdf.clone(), key };
                }
            }
            (KeyChoice::KeyFile, Kdf::Argon2id { .. }) => {
                return Err(SecretError::BadMasterKey {
                    reason: format!(
                        "{} is encrypted with a key derived from {MASTER_KEY_ENV}, which is not set",
                        self.path.display()
                    ),
                });
            }
            (KeyChoice::Passphrase { .. }, Kdf::KeyFile) => {
                return Err(SecretError::BadMasterKey {
                    reason: format!(
                        "{} is encrypted with the key in {}, but {MASTER_KEY_ENV} is set; \
                         unset it to use that key file",
                        self.path.display(),
                        self.key_path.display()
                    ),
                });
            }
        }
        if let Some(check) = &doc.check {
            crypto::verify_check(&state.key, check).map_err(|e| match e {
                OpenError::Auth => {
                    SecretError::Undecryptable { path: self.path.clone(), detail: "the key check failed".into() }
                }
                OpenError::Malformed(detail) => corrupt(&self.path, format!("key check: {detail}")),
            })?;
        }
        Ok(state.key.clone())
    }

    /// Applies `change` to the file under the inter-process lock; `change`
    /// returns whether it modified the document (no rewrite otherwise).
    fn modify(
        &self,
        needs_key: bool,
        change: impl FnOnce(&mut SecretsFile, Option<&MasterKey>) -> Result<bool, SecretError>,
    ) -> Result<(), SecretError> {
        let _lock = FileLock::acquire(&self.lock_path, LOCK_TIMEOUT)?;
        let (mut doc, key) = match read_doc(&self.path)? {
            None if !needs_key => return Ok(()),
            Some(doc) if !needs_key => (doc, None),
            Some(doc) if !doc.entries.is_empty() => {
                let key = self.key_for(&doc)?;
                (doc, Some(key))
            }
            // No file, or an empty one that may have been made with the other
            // kind of key: nothing in it needs that key, so start over with ours.
            _ => {
                let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                let doc = SecretsFile {
                    version: FORMAT_VERSION,
                    kdf: state.kdf.clone(),
                    check: Some(crypto::seal_check(&state.key)?),
                    entries: Default::default(),
                };
                (doc, Some(state.key.clone()))
            }
        };
        if !change(&mut doc, key.as_ref())? {
            return Ok(());
        }
        if doc.check.is_none()
            && let Some(key) = &key
        {
            doc.check = Some(crypto::seal_check(key)?);
        }
        let json = serde_json::to_vec_pretty(&doc)
            .map_err(|e| SecretError::Crypto { reason: format!("cannot encode the secrets file: {e}") })?;
        fsutil::write_atomic(&self.path, &json)
    }
}

impl SecretStore for FileStore {
    fn get(&self, id: &str) -> Result<Option<Secret>, SecretError> {
        validate_id(id)?;
        let Some(doc) = read_doc(&self.path)? else {
            return Ok(None);
        };
        let Some(sealed) = doc.entries.get(id) else {
            return Ok(None);
        };
        let key = self.key_for(&doc)?;
        let mut plain = crypto::open_entry(&key, id, sealed).map_err(|e| match e {
            OpenError::Auth => SecretError::Undecryptable {
                path: self.path.clone(),
                detail: format!("entry {id:?} fails authentication (tampered or moved from another id)"),
            },
            OpenError::Malformed(detail) => corrupt(&self.path, format!("entry {id:?}: {detail}")),
        })?;
        let bytes = std::mem::take(&mut *plain);
        match String::from_utf8(bytes) {
            Ok(s) => Ok(Some(Secret::from(s))),
            Err(e) => {
                e.into_bytes().zeroize();
                Err(SecretError::InvalidValue { id: id.to_string(), reason: "decrypted value is not UTF-8".into() })
            }
        }
    }

    fn set(&self, id: &str, value: &Secret) -> Result<(), SecretError> {
        validate_id(id)?;
        self.modify(true, |doc, key| {
            let key = key.ok_or_else(|| SecretError::Crypto { reason: "no key for writing".into() })?;
            doc.entries.insert(id.to_string(), crypto::seal_entry(key, id, value.expose())?);
            Ok(true)
        })
    }

    fn delete(&self, id: &str) -> Result<(), SecretError> {
        validate_id(id)?;
        // Deleting needs no key, so it works even when the key is lost.
        self.modify(false, |doc, _| Ok(doc.entries.remove(id).is_some()))
    }

    fn backend(&self) -> BackendKind {
        BackendKind::File
    }
}

fn corrupt(path: &Path, detail: impl Into<String>) -> SecretError {
    SecretError::Corrupt { path: path.to_path_buf(), detail: detail.into() }
}

fn read_doc(path: &Path) -> Result<Option<SecretsFile>, SecretError> {
    let Some(bytes) = fsutil::read_optional(path)? else {
        return Ok(None);
    };
    let doc: SecretsFile =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(path, format!("not a valid secrets file: {e}")))?;
    if doc.version > FORMAT_VERSION {
        return Err(corrupt(
            path,
            format!(
                "format version {} was written by a newer llm-gateway (this one reads up to {FORMAT_VERSION})",
                doc.version
            ),
        ));
    }
    Ok(Some(doc))
}

/// Loads `master.key`, generating it if absent. Must be called under the
/// secrets lock. Refuses to generate a new key while `secrets.enc` holds
/// entries sealed with a (lost) key file, since a fresh key could never open
/// them and would only hide the real problem.
fn load_or_create_key(
    key_path: &Path,
    secrets_path: &Path,
    doc: Option<&SecretsFile>,
) -> Result<MasterKey, SecretError> {
    if let Some(bytes) = fsutil::read_optional(key_path)? {
        let text = Zeroizing::new(bytes);
        let key =
            std::str::from_utf8(&text).ok().and_then(crypto::decode_key).ok_or_else(|| SecretError::BadMasterKey {
                reason: format!("{} does not hold a base64-encoded 32-byte key", key_path.display()),
            })?;
        fsutil::warn_if_exposed(key_path);
        return Ok(key);
    }
    if let Some(doc) = doc
        && doc.kdf == Kdf::KeyFile
        && !doc.entries.is_empty()
    {
        return Err(SecretError::BadMasterKey {
            reason: format!(
                "{} is missing but {} holds secrets encrypted with it; restore the key file \
                 (or delete {} and enter the secrets again)",
                key_path.display(),
                secrets_path.display(),
                secrets_path.display()
            ),
        });
    }
    let key = crypto::random_key()?;
    fsutil::write_atomic(key_path, crypto::encode_key(&key).as_bytes())?;
    tracing::info!(path = %key_path.display(), "generated a new master key for the encrypted secrets file");
    Ok(key)
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
