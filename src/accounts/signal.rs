//! [`StateSignal`]: how the places that may change an account's public state (a bench, a rejected credential, a
//! token refresh, a reload) wake whoever follows that state (the gateway's account-state monitor), without the
//! request path knowing who listens.

use std::sync::Arc;

use tokio::sync::Notify;

/// A wake-up for the account-state monitor. Cheap to clone; all clones wake the same waiter. Notifying costs an
/// atomic operation or two and never blocks; a notification sent while nobody waits is kept (one), so the next
/// wait returns at once and nothing is missed between two looks.
///
/// Only sent when state *may* have changed (a bench, a credential error, an OAuth phase change), never on a
/// healthy answer: the monitor re-reads every account when woken, so a spurious wake-up costs it one pass.
#[derive(Debug, Clone, Default)]
pub struct StateSignal(Arc<Notify>);

impl StateSignal {
    /// A new signal nobody waits on yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Something that may change an account's public state happened.
    pub fn notify(&self) {
        self.0.notify_one();
    }

    /// Completes at the next [`StateSignal::notify`], or at once if one came since the last wait.
    pub async fn notified(&self) {
        self.0.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_notification_sent_while_nobody_waits_is_kept_for_the_next_wait() {
        let signal = StateSignal::new();
        signal.clone().notify();
        tokio::time::timeout(std::time::Duration::from_secs(5), signal.notified())
            .await
            .expect("the earlier notification wakes the wait");
    }
}
