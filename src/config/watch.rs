//! Hot reload: notices changes to the config file, hands over each new valid version, and retries a version
//! that failed to apply until it applies or a newer one replaces it.
//!
//! Polling the file's bytes every half second is deliberate: it works the same on every platform and filesystem,
//! sees atomic renames (which inode watchers can miss when they watch the file rather than the directory), and
//! costs one small read per tick.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Config, ConfigFile};

/// How often the file is checked.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// A changed file is read again after this long and applied only if it did not change meanwhile: an editor or
/// `echo > config.yaml` writes in place, and a read can land between the truncation and the write.
const SETTLE: Duration = Duration::from_millis(100);
/// The first retry of a version that failed to apply comes this long after the failure; each further one
/// waits twice as long, up to [`RETRY_MAX`].
pub const RETRY_FIRST: Duration = Duration::from_millis(250);
/// The longest wait between two attempts to apply the same version.
pub const RETRY_MAX: Duration = Duration::from_secs(5);

/// SHA-256 (lowercase hex) of a config file's bytes: how the CLI and the server name a version of the file.
pub fn text_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Which version of the config file is in force, and the newer one that is not (yet), as the admin status
/// reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigSync {
    /// [`text_sha256`] of the file version in force.
    pub applied_sha256: String,
    /// A newer version that is not in force: being applied, waiting for a retry, or invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingChange>,
}

/// A version of the config file that is not in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChange {
    /// [`text_sha256`] of that version.
    pub sha256: String,
    /// Why it is not in force (none while the first attempt runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Failed attempts to apply it so far.
    pub attempts: u32,
    /// Whether the server keeps trying (false: the file itself must change, e.g. it is invalid).
    pub retrying: bool,
}

impl ConfigSync {
    /// The file version `text` is in force and nothing is pending.
    pub fn in_force(text: &[u8]) -> Self {
        ConfigSync { applied_sha256: text_sha256(text), pending: None }
    }
}

/// The wait before the attempt after `failures` failed ones: 250 ms, doubling, at most 5 s.
fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    RETRY_FIRST.saturating_mul(1 << doublings).min(RETRY_MAX)
}

/// A version that failed to apply, waiting for its next attempt.
struct Retry {
    config: Config,
    sha256: String,
    failures: u32,
    error: String,
    at: Instant,
}

/// Watches `file`, starting from the contents `initial_text`; each valid new version is passed to `apply`. A
/// version `apply` fails on is retried with backoff ([`RETRY_FIRST`] doubling to [`RETRY_MAX`]) until it
/// applies or the file changes again. An invalid version is logged and skipped, keeping the last good
/// configuration. `sync` always says which version is in force and what is pending. Ends when `stop` changes.
pub fn spawn<F, Fut, E>(
    file: ConfigFile,
    initial_text: Vec<u8>,
    mut stop: watch::Receiver<bool>,
    sync: watch::Sender<ConfigSync>,
    apply: F,
) -> JoinHandle<()>
where
    F: Fn(Config) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
    E: Display,
{
    tokio::spawn(async move {
        let mut last = initial_text;
        let mut retry: Option<Retry> = None;
        let mut ticker = tokio::time::interval(POLL_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let due = retry.as_ref().map(|r| r.at);
            let retry_now = tokio::select! {
                _ = ticker.tick() => false,
                _ = sleep_until(due) => true,
                _ = stop.changed() => return,
            };
            if retry_now {
                if let Some(r) = retry.take() {
                    retry = attempt(&file, &apply, &sync, r.config, r.sha256, r.failures, Some(r.error)).await;
                }
                continue;
            }
            let Ok(bytes) = tokio::fs::read(file.path()).await else {
                continue;
            };
            if bytes == last {
                continue;
            }
            tokio::time::sleep(SETTLE).await;
            match tokio::fs::read(file.path()).await {
                Ok(again) if again == bytes => {}
                _ => continue,
            }
            // A newer version supersedes one still waiting for a retry.
            retry = None;
            let sha256 = text_sha256(&bytes);
            let blank = |b: &[u8]| b.iter().all(u8::is_ascii_whitespace);
            if blank(&bytes) && !blank(&last) {
                // Almost always a write caught half-way; applying it would drop every account from the server.
                tracing::warn!(
                    path = %file.path().display(),
                    "configuration file is empty; keeping the current configuration"
                );
                let error = "the configuration file is empty; the current configuration stays in force".into();
                mark_pending(&sync, sha256, Some(error), 0, false);
                last = bytes;
                continue;
            }
            let text = String::from_utf8_lossy(&bytes).into_owned();
            last = bytes;
            match file.parse(&text) {
                Ok(config) => {
                    tracing::info!(path = %file.path().display(), "configuration changed; applying");
                    retry = attempt(&file, &apply, &sync, config, sha256, 0, None).await;
                }
                Err(e) => {
                    tracing::warn!(
                        path = %file.path().display(),
                        "configuration change ignored, keeping the last good configuration: {e}"
                    );
                    mark_pending(&sync, sha256, Some(format!("invalid configuration: {e}")), 0, false);
                }
            }
        }
    })
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn mark_pending(
    sync: &watch::Sender<ConfigSync>,
    sha256: String,
    error: Option<String>,
    attempts: u32,
    retrying: bool,
) {
    sync.send_modify(|s| s.pending = Some(PendingChange { sha256, error, attempts, retrying }));
}

/// One attempt to apply a version; a failure comes back as the retry to schedule.
async fn attempt<F, Fut, E>(
    file: &ConfigFile,
    apply: &F,
    sync: &watch::Sender<ConfigSync>,
    config: Config,
    sha256: String,
    failures: u32,
    previous_error: Option<String>,
) -> Option<Retry>
where
    F: Fn(Config) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    mark_pending(sync, sha256.clone(), previous_error.clone(), failures, true);
    match apply(config.clone()).await {
        Ok(()) => {
            if failures > 0 {
                tracing::info!(path = %file.path().display(), attempts = failures + 1, "configuration change applied");
            }
            sync.send_replace(ConfigSync { applied_sha256: sha256, pending: None });
            None
        }
        Err(e) => {
            let failures = failures.saturating_add(1);
            let error = e.to_string();
            let wait = backoff(failures);
            if previous_error.as_deref() != Some(error.as_str()) {
                tracing::warn!(
                    path = %file.path().display(),
                    attempt = failures,
                    "configuration change not applied yet, retrying in {} ms: {error}",
                    wait.as_millis()
                );
            } else {
                tracing::debug!(attempt = failures, "configuration change still not applied: {error}");
            }
            mark_pending(sync, sha256.clone(), Some(error.clone()), failures, true);
            Some(Retry { config, sha256, failures, error, at: Instant::now() + wait })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// Waits (in the paused test clock) until `sync` satisfies `ok`; fails instead of hanging.
    async fn until(sync: &mut watch::Receiver<ConfigSync>, ok: impl FnMut(&ConfigSync) -> bool) -> ConfigSync {
        let waited = tokio::time::timeout(Duration::from_secs(120), sync.wait_for(ok)).await;
        waited.expect("the watcher got there within 2 minutes").expect("watcher alive").clone()
    }

    #[test]
    fn backoff_doubles_from_250_ms_to_5_s() {
        let waits: Vec<u128> = (1..=8).map(|n| backoff(n).as_millis()).collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
        assert_eq!(backoff(u32::MAX), RETRY_MAX);
    }

    #[tokio::test(start_paused = true)]
    async fn a_version_that_fails_to_apply_is_retried_until_it_applies() {
        let dir = tempfile::tempdir().unwrap();
        let file = ConfigFile::new(dir.path().join("config.yaml"));
        std::fs::write(file.path(), "routing:\n  max_attempts: 2\n").unwrap();
        let initial = std::fs::read(file.path()).unwrap();
        let (_stop_tx, stop) = watch::channel(false);
        let (sync_tx, mut sync) = watch::channel(ConfigSync::in_force(&initial));
        let calls = Arc::new(AtomicU32::new(0));
        let counted = calls.clone();
        let task = spawn(file.clone(), initial, stop, sync_tx, move |_config| {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move { if n < 3 { Err(format!("keychain timeout #{n}")) } else { Ok(()) } }
        });
        std::fs::write(file.path(), "routing:\n  max_attempts: 3\n").unwrap();
        let wanted = text_sha256(&std::fs::read(file.path()).unwrap());
        let failed = until(&mut sync, |s| s.pending.as_ref().is_some_and(|p| p.attempts == 1)).await;
        let pending = failed.pending.unwrap();
        assert_eq!(pending.sha256, wanted);
        assert_eq!(pending.error.as_deref(), Some("keychain timeout #0"));
        assert!(pending.retrying);
        let applied = until(&mut sync, |s| s.applied_sha256 == wanted).await;
        assert_eq!(applied.pending, None);
        assert_eq!(calls.load(Ordering::SeqCst), 4, "three failures, then applied");
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_newer_version_replaces_one_waiting_for_a_retry() {
        let dir = tempfile::tempdir().unwrap();
        let file = ConfigFile::new(dir.path().join("config.yaml"));
        std::fs::write(file.path(), "routing:\n  max_attempts: 2\n").unwrap();
        let initial = std::fs::read(file.path()).unwrap();
        let (_stop_tx, stop) = watch::channel(false);
        let (sync_tx, mut sync) = watch::channel(ConfigSync::in_force(&initial));
        let applied = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = applied.clone();
        let task = spawn(file.clone(), initial, stop, sync_tx, move |config: Config| {
            seen.lock().unwrap().push(config.routing.max_attempts);
            let result = if config.routing.max_attempts == 3 { Err("always fails") } else { Ok(()) };
            async move { result }
        });
        std::fs::write(file.path(), "routing:\n  max_attempts: 3\n").unwrap();
        until(&mut sync, |s| s.pending.as_ref().is_some_and(|p| p.attempts >= 2)).await;
        std::fs::write(file.path(), "routing:\n  max_attempts: 4\n").unwrap();
        let wanted = text_sha256(&std::fs::read(file.path()).unwrap());
        until(&mut sync, |s| s.applied_sha256 == wanted && s.pending.is_none()).await;
        tokio::time::sleep(RETRY_MAX * 3).await;
        let applied = applied.lock().unwrap().clone();
        assert_eq!(applied.last(), Some(&4), "{applied:?}");
        assert!(!applied.iter().skip_while(|v| **v != 4).any(|v| *v == 3), "no retry after it was replaced");
        task.abort();
    }
}
