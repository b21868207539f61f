//! The gateway's task set. Every task a gateway spawns (the accept loop, connections, HTTP/2 streams, the OAuth
//! refresher, reloads) is tracked here, so that shutdown can wait for them, abort what outlives the grace period
//! and await the aborts: when [`crate::GatewayHandle::shutdown`] returns, nothing of the old gateway runs.

use std::future::Future;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Tracked tasks plus the token that aborts them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tasks {
    tracker: TaskTracker,
    abort: CancellationToken,
}

impl Tasks {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Spawns `task`, tracked, ending it (dropping it) when the set is aborted.
    pub(crate) fn spawn<F>(&self, task: F)
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let abort = self.abort.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                biased;
                () = abort.cancelled() => {}
                _ = task => {}
            }
        });
    }

    /// Spawns `task`, tracked, which watches [`Tasks::aborted`] itself (connection tasks do, to avoid a second
    /// wrapper around the busiest futures).
    pub(crate) fn spawn_watching<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(task);
    }

    /// Completes once the set is aborted.
    pub(crate) fn aborted(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.abort.cancelled()
    }

    /// Aborts every task (without waiting); tasks end at their next poll.
    pub(crate) fn abort(&self) {
        self.abort.cancel();
    }

    /// Completes when every task has ended.
    pub(crate) async fn wait(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// HTTP/2 streams are spawned through this, so they are tracked and aborted with their gateway.
impl<F> hyper::rt::Executor<F> for Tasks
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        self.spawn(fut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn abort_ends_every_task_and_wait_awaits_them() {
        let tasks = Tasks::new();
        let dropped = Arc::new(AtomicBool::new(false));
        struct SetOnDrop(Arc<AtomicBool>);
        impl Drop for SetOnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let guard = SetOnDrop(dropped.clone());
        tasks.spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        });
        let watching = tasks.clone();
        tasks.spawn_watching(async move { watching.aborted().await });
        tasks.abort();
        tasks.wait().await;
        assert!(dropped.load(Ordering::SeqCst), "the aborted task's future was dropped before wait returned");
    }
}
