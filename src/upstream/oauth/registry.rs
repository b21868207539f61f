//! Which pending login a callback's `state` belongs to, answered from memory.
//!
//! Any web page can make the browser call `GET /oauth/callback?code=…&state=…` (an `<img>` is enough), so a
//! state that matches no pending login must cost no secret-store (keychain) I/O. The gateway keeps the SHA-256
//! of each pending login's state with its account and expiry: those started in this process are registered
//! directly; those started by another process (`llm-gateway oauth-start` while a server runs) are recorded in
//! a small non-secret index file beside the config ([`PENDING_INDEX_FILE`], 0600), which the gateway re-reads only
//! when it changed, checked at most every [`INDEX_CHECK_INTERVAL`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::time::Instant;

use super::slot::lock;
use super::{OAuthError, PENDING_LOGIN_TTL_SECS, PendingLogin};

/// The index of pending logins started by other processes, beside the config file.
pub const PENDING_INDEX_FILE: &str = "oauth-pending.json";

/// Serialises read-modify-write cycles of the index file across processes.
const INDEX_LOCK_FILE: &str = ".oauth-pending.lock";

/// The index file is looked at (one `stat`) at most this often.
pub const INDEX_CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// A pending login's public facts: no state, verifier or code, only the state's hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingState {
    /// SHA-256 of the login's `state`, lowercase hex.
    pub state_sha256: String,
    /// The account the login is for.
    pub account_id: String,
    /// Unix seconds after which the login is no longer accepted.
    pub expires_at: i64,
}

impl PendingState {
    /// The facts of `login`.
    pub fn of(login: &PendingLogin) -> Self {
        PendingState {
            state_sha256: state_hash(&login.state),
            account_id: login.account_id.clone(),
            expires_at: login.created_at.saturating_add(PENDING_LOGIN_TTL_SECS),
        }
    }

    fn live(&self, now: i64) -> bool {
        now <= self.expires_at
    }
}

/// SHA-256 of a state, lowercase hex.
pub fn state_hash(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct IndexFile {
    #[serde(default)]
    logins: Vec<PendingState>,
}

/// The index file's path for a config directory.
pub fn pending_index_path(dir: &Path) -> PathBuf {
    dir.join(PENDING_INDEX_FILE)
}

/// Records a login in the index file of config directory `dir`, replacing the account's earlier login (a new
/// login replaces the pending one in the secret store too) and dropping expired entries. Blocking.
pub fn record_pending(dir: &Path, entry: &PendingState) -> Result<(), OAuthError> {
    let now = super::unix_now();
    modify_index(dir, |logins| {
        logins.retain(|l| l.live(now) && l.account_id != entry.account_id);
        logins.push(entry.clone());
    })
}

/// Removes the login whose state hashes to `state_sha256` from the index file (after it completed). Blocking.
pub fn forget_pending(dir: &Path, state_sha256: &str) -> Result<(), OAuthError> {
    let now = super::unix_now();
    modify_index(dir, |logins| logins.retain(|l| l.live(now) && l.state_sha256 != state_sha256))
}

fn modify_index(dir: &Path, change: impl FnOnce(&mut Vec<PendingState>)) -> Result<(), OAuthError> {
    let path = pending_index_path(dir);
    let fail = |message: String| OAuthError::PendingIndex { path: path.display().to_string(), message };
    let _lock = crate::config::FileLock::acquire(&dir.join(INDEX_LOCK_FILE)).map_err(|e| fail(e.to_string()))?;
    let mut index = match std::fs::read(&path) {
        Ok(bytes) => parse_index(&bytes).unwrap_or_else(|e| {
            tracing::warn!(path = %path.display(), "pending-login index unreadable, starting it over: {e}");
            IndexFile::default()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => IndexFile::default(),
        Err(e) => return Err(fail(e.to_string())),
    };
    let before = index.logins.clone();
    change(&mut index.logins);
    if index.logins == before && path.exists() {
        return Ok(());
    }
    let json = serde_json::to_vec_pretty(&index).map_err(|e| fail(e.to_string()))?;
    crate::config::write_private(&path, &json).map_err(|e| fail(e.to_string()))
}

fn parse_index(bytes: &[u8]) -> Result<IndexFile, serde_json::Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(IndexFile::default());
    }
    serde_json::from_slice(bytes)
}

/// What identifies one version of the index file without reading it. The inode changes on every atomic
/// rename, so two writes within the file system's timestamp granularity are still told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        Stamp { modified: meta.modified().ok(), len: meta.len(), inode }
    }
}

#[derive(Debug, Default)]
struct FileView {
    stamp: Option<Stamp>,
    /// When the last check started: a callback that arrived before it may use its result.
    checked_at: Option<Instant>,
    /// How many checks ran (each one `stat`).
    checks: u64,
    logins: HashMap<String, PendingState>,
}

/// The pending logins a callback may complete: this process's, and those in the index file.
#[derive(Debug)]
pub struct PendingRegistry {
    local: Mutex<HashMap<String, PendingState>>,
    index_path: PathBuf,
    file: tokio::sync::Mutex<FileView>,
}

impl PendingRegistry {
    /// A registry for the config directory `dir` (its index file is read lazily, on the first unknown state).
    pub fn new(dir: &Path) -> Self {
        PendingRegistry {
            local: Mutex::new(HashMap::new()),
            index_path: pending_index_path(dir),
            file: tokio::sync::Mutex::new(FileView::default()),
        }
    }

    /// Registers a login started by this process (replacing the account's earlier one).
    pub fn insert(&self, entry: PendingState) {
        let now = super::unix_now();
        let mut local = lock(&self.local);
        local.retain(|_, l| l.live(now) && l.account_id != entry.account_id);
        local.insert(entry.state_sha256.clone(), entry);
    }

    /// Forgets a login (it completed): a replayed callback with its state is then refused from memory.
    pub async fn remove(&self, state: &str) {
        let hash = state_hash(state);
        lock(&self.local).remove(&hash);
        self.file.lock().await.logins.remove(&hash);
    }

    /// The account whose unexpired pending login has this `state`, if any. Never touches the secret store;
    /// at most one `stat` of the index file per [`INDEX_CHECK_INTERVAL`], and a read only when it changed.
    /// A callback may wait up to that interval, so a login recorded just before it arrived is still found.
    pub async fn account_for(&self, state: &str, now: i64) -> Option<String> {
        let hash = state_hash(state);
        if let Some(login) = lock(&self.local).get(&hash).filter(|l| l.live(now)) {
            return Some(login.account_id.clone());
        }
        let arrived = Instant::now();
        let mut view = self.file.lock().await;
        if view.checked_at.is_none_or(|at| at < arrived) {
            if let Some(at) = view.checked_at {
                tokio::time::sleep_until(at + INDEX_CHECK_INTERVAL).await;
            }
            view.checked_at = Some(Instant::now());
            view.checks += 1;
            self.refresh(&mut view).await;
        }
        view.logins.get(&hash).filter(|l| l.live(now)).map(|l| l.account_id.clone())
    }

    async fn refresh(&self, view: &mut FileView) {
        let stamp = match tokio::fs::metadata(&self.index_path).await {
            Ok(meta) => Some(Stamp::of(&meta)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                tracing::debug!(path = %self.index_path.display(), "cannot stat the pending-login index: {e}");
                return;
            }
        };
        if stamp == view.stamp {
            return;
        }
        view.stamp = stamp;
        view.logins.clear();
        if stamp.is_none() {
            return;
        }
        match tokio::fs::read(&self.index_path)
            .await
            .map_err(|e| e.to_string())
            .and_then(|bytes| parse_index(&bytes).map_err(|e| e.to_string()))
        {
            Ok(index) => {
                view.logins = index.logins.into_iter().map(|l| (l.state_sha256.clone(), l)).collect();
            }
            Err(e) => tracing::warn!(path = %self.index_path.display(), "cannot read the pending-login index: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(state: &str, account: &str, expires_at: i64) -> PendingState {
        PendingState { state_sha256: state_hash(state), account_id: account.into(), expires_at }
    }

    #[tokio::test]
    async fn local_logins_are_found_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let registry = PendingRegistry::new(dir.path());
        let now = super::super::unix_now();
        registry.insert(entry("s1", "acc_1", now + 600));
        assert_eq!(registry.account_for("s1", now).await.as_deref(), Some("acc_1"));
        assert_eq!(registry.account_for("s1", now + 601).await, None, "expired");
        assert_eq!(registry.account_for("other", now).await, None);
        // A new login for the account replaces the earlier one.
        registry.insert(entry("s2", "acc_1", now + 600));
        assert_eq!(registry.account_for("s1", now).await, None);
        registry.remove("s2").await;
        assert_eq!(registry.account_for("s2", now).await, None);
    }

    #[tokio::test]
    async fn logins_recorded_by_another_process_are_read_from_the_index_file() {
        let dir = tempfile::tempdir().unwrap();
        let registry = PendingRegistry::new(dir.path());
        let now = super::super::unix_now();
        assert_eq!(registry.account_for("s1", now).await, None, "no index file yet");
        record_pending(dir.path(), &entry("s1", "acc_1", now + 600)).unwrap();
        record_pending(dir.path(), &entry("s2", "acc_2", now + 600)).unwrap();
        // Recorded right after a check: the lookup waits for the next check instead of missing it.
        assert_eq!(registry.account_for("s1", now).await.as_deref(), Some("acc_1"));
        assert_eq!(registry.account_for("s2", now).await.as_deref(), Some("acc_2"));
        forget_pending(dir.path(), &state_hash("s1")).unwrap();
        assert_eq!(registry.account_for("s1", now).await, None);
        assert_eq!(registry.account_for("s2", now).await.as_deref(), Some("acc_2"));
        // A new login of acc_2 replaces its entry.
        record_pending(dir.path(), &entry("s3", "acc_2", now + 600)).unwrap();
        assert_eq!(registry.account_for("s2", now).await, None);
        assert_eq!(registry.account_for("s3", now).await.as_deref(), Some("acc_2"));
        let text = std::fs::read_to_string(pending_index_path(dir.path())).unwrap();
        assert!(!text.contains("\"s3\""), "only hashes are stored: {text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(pending_index_path(dir.path())).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[tokio::test]
    async fn a_burst_of_unknown_states_checks_the_file_at_most_once_per_interval() {
        let dir = tempfile::tempdir().unwrap();
        let registry = std::sync::Arc::new(PendingRegistry::new(dir.path()));
        let now = super::super::unix_now();
        let lookups = (0..50).map(|i| {
            let registry = registry.clone();
            async move { registry.account_for(&format!("bogus-{i}"), now).await }
        });
        let found = futures_util::future::join_all(lookups).await;
        assert!(found.iter().all(Option::is_none));
        // 50 concurrent lookups share the first check and the one after it (which each of them waits for).
        let checks = registry.file.lock().await.checks;
        assert!((1..=2).contains(&checks), "{checks} checks");
    }
}
