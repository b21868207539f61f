//! The record of what `setup` changed in a settings file and what was there before, kept in the gateway's state
//! directory (`claude-code-setup.json` beside the config, 0600: earlier values may include the user's own keys).
//! `restore` reads it to put back exactly those keys; nothing else in the settings file is ever touched.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ClaudeCodeError;
use super::fsio;
use super::settings::KeyPath;

/// The record file's name in the gateway's state directory.
pub const RECORD_FILE: &str = "claude-code-setup.json";
const LOCK_FILE: &str = ".claude-code-setup.lock";
const VERSION: u32 = 1;

/// How setup pointed Claude Code at the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SetupMode {
    /// Not signed in to claude.ai: `apiKeyHelper` runs this binary to print the dedicated gateway key.
    ApiKeyHelper,
    /// Signed in to claude.ai, own-login forwarding on, gateway open on loopback: only the base URL.
    OwnLogin,
    /// Signed in to claude.ai, own-login forwarding on, gateway with client keys: the base URL and the dedicated
    /// key in `ANTHROPIC_CUSTOM_HEADERS` (`x-llm-gateway-key`), so `Authorization` keeps the claude.ai login.
    OwnLoginWithKey,
}

/// One key setup changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// The key.
    pub key: KeyPath,
    /// Its value before the first setup (`None`: absent).
    pub before: Option<Value>,
    /// Its position among its siblings before (to put a removed key back in place).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_index: Option<usize>,
    /// SHA-256 of the value setup wrote (`None`: setup removed the key). A hash, not the value: the value may be
    /// a gateway key, and the hash is all restore needs to tell "still ours" from "changed by the user".
    pub after_sha256: Option<String>,
}

/// What setup did to one settings file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetupRecord {
    /// The settings file.
    pub settings_path: PathBuf,
    /// When setup first changed it (RFC 3339).
    pub created_at: String,
    /// When setup last changed it.
    pub updated_at: String,
    /// The mode of the last setup.
    pub mode: SetupMode,
    /// Whether the file existed before the first setup.
    pub file_existed: bool,
    /// Whether setup created the `env` object (restore removes it again when it is left empty).
    pub env_created: bool,
    /// The copy of the file as it was before the first setup.
    pub original_backup: Option<PathBuf>,
    /// SHA-256 of the bytes setup last wrote: when the file still has them, restore writes the original back
    /// byte for byte.
    pub written_sha256: Option<String>,
    /// The keys setup changed, in the order it changed them.
    pub changes: Vec<Change>,
}

impl SetupRecord {
    /// The change recorded for `key`.
    pub fn change(&self, key: &KeyPath) -> Option<&Change> {
        self.changes.iter().find(|c| &c.key == key)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct RecordFile {
    version: u32,
    setups: Vec<SetupRecord>,
}

/// The record file of one gateway state directory.
#[derive(Debug, Clone)]
pub(crate) struct Records {
    path: PathBuf,
}

impl Records {
    pub fn new(state_dir: &Path) -> Self {
        Self { path: state_dir.join(RECORD_FILE) }
    }

    /// Takes the lock that serialises setups and restores sharing this state directory.
    pub fn lock(&self) -> Result<fsio::Lock, ClaudeCodeError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fsio::ensure_dir(dir)?;
        fsio::Lock::acquire(&dir.join(LOCK_FILE), fsio::LOCK_TIMEOUT)
    }

    fn load_all(&self) -> Result<RecordFile, ClaudeCodeError> {
        let Some(bytes) = fsio::read_optional(&self.path)? else { return Ok(RecordFile::default()) };
        let file: RecordFile = serde_json::from_slice(&bytes)
            .map_err(|e| ClaudeCodeError::InvalidRecord { path: self.path.clone(), message: e.to_string() })?;
        if file.version > VERSION {
            return Err(ClaudeCodeError::InvalidRecord {
                path: self.path.clone(),
                message: format!("written by a newer llm-gateway (record version {})", file.version),
            });
        }
        Ok(file)
    }

    /// The record for the settings file `settings`, if setup changed it.
    pub fn get(&self, settings: &Path) -> Result<Option<SetupRecord>, ClaudeCodeError> {
        Ok(self.load_all()?.setups.into_iter().find(|r| r.settings_path == settings))
    }

    /// Stores `record` for its settings file (replacing an earlier one), or removes the entry for `settings`
    /// when `record` is `None`. Callers hold [`Records::lock`].
    pub fn put(&self, settings: &Path, record: Option<SetupRecord>) -> Result<(), ClaudeCodeError> {
        let mut file = self.load_all()?;
        file.version = VERSION;
        file.setups.retain(|r| r.settings_path != settings);
        file.setups.extend(record);
        if file.setups.is_empty() {
            return fsio::remove_file(&self.path);
        }
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| ClaudeCodeError::Internal(e.to_string()))?;
        crate::config::write_private(&self.path, &bytes)?;
        Ok(())
    }
}

/// SHA-256 of a JSON value as recorded in [`Change::after_sha256`].
pub(crate) fn value_hash(value: &Value) -> String {
    fsio::sha256_hex(value.to_string().as_bytes())
}
