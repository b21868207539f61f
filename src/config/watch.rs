//! Hot reload: notices changes to the config file and hands over each new valid version.
//!
//! Polling the file's bytes every half second is deliberate: it works the same on every platform and filesystem,
//! sees atomic renames (which inode watchers can miss when they watch the file rather than the directory), and
//! costs one small read per tick.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Config, ConfigFile};

/// How often the file is checked.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// A changed file is read again after this long and applied only if it did not change meanwhile: an editor or
/// `echo > config.yaml` writes in place, and a read can land between the truncation and the write.
const SETTLE: Duration = Duration::from_millis(100);

/// Watches `file`, starting from the contents `initial_text`; each valid new version is passed to `apply`. An
/// invalid version is logged and skipped, keeping the last good configuration. Ends when `stop` changes.
pub fn spawn(
    file: ConfigFile,
    initial_text: Vec<u8>,
    mut stop: watch::Receiver<bool>,
    apply: impl Fn(Config) + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = initial_text;
        let mut ticker = tokio::time::interval(POLL_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.changed() => return,
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
            let blank = |b: &[u8]| b.iter().all(u8::is_ascii_whitespace);
            if blank(&bytes) && !blank(&last) {
                // Almost always a write caught half-way; applying it would drop every account from the server.
                tracing::warn!(
                    path = %file.path().display(),
                    "configuration file is empty; keeping the current configuration"
                );
                last = bytes;
                continue;
            }
            let text = String::from_utf8_lossy(&bytes).into_owned();
            last = bytes;
            match file.parse(&text) {
                Ok(config) => {
                    tracing::info!(path = %file.path().display(), "configuration changed; applying");
                    apply(config);
                }
                Err(e) => tracing::warn!(
                    path = %file.path().display(),
                    "configuration change ignored, keeping the last good configuration: {e}"
                ),
            }
        }
    })
}
