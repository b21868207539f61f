//! Pausing a running gateway: [`GatewayHandle::pause`] closes its listener and lets its connections finish
//! (requests in flight, streams included, run to their end; idle connections close within a second), while
//! everything else stays as it is: accounts with their cooldowns and breakers, session affinity, OAuth tokens,
//! UI sessions, the config watcher, the token refresher, event subscriptions. [`GatewayHandle::resume`] listens
//! on the same address again. The desktop tray's Pause/Resume.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::{GatewayHandle, StartError};
use crate::client;
use crate::gateway::Gateway;
use crate::tasks::Tasks;

/// The accept loop of one listening period: its own token (a child of the gateway's drain token, so shutdown
/// ends it too) and a signal that it has ended (its listener is closed then).
#[derive(Debug)]
pub(super) struct Listening {
    stop: CancellationToken,
    ended: oneshot::Receiver<()>,
}

impl Listening {
    /// Serves `gateway` on `listener` with the server settings in force now, tracked in `tasks`.
    pub(super) fn spawn(
        gateway: &Arc<Gateway>,
        listener: TcpListener,
        tasks: &Tasks,
        drain: &CancellationToken,
    ) -> Self {
        let stop = drain.child_token();
        let (ended_tx, ended) = oneshot::channel();
        let settings = client::ServeSettings::from_config(&gateway.live().config.server);
        client::warn_if_few_descriptors(settings.max_connections);
        let serve = client::serve(listener, client::router(gateway.clone()), settings, tasks.clone(), stop.clone());
        tasks.spawn(async move {
            serve.await;
            let _ = ended_tx.send(());
        });
        Self { stop, ended }
    }

    /// Stops accepting and asks this period's connections to finish; returns once the listener is closed.
    async fn close(self) {
        self.stop.cancel();
        // An error means the task was aborted (shutdown): its listener is dropped either way.
        let _ = self.ended.await;
    }
}

impl GatewayHandle {
    /// Stops listening: when this returns the port is free and new connections are refused. Requests in flight
    /// (streams included) run to their end and their connections then close; idle connections close within a
    /// second. Nothing else stops: cooldowns, sessions, tokens, the config watcher and event subscriptions are
    /// kept for [`Self::resume`]. Pausing a paused gateway does nothing.
    pub async fn pause(&mut self) {
        let Some(listening) = self.listening.take() else { return };
        listening.close().await;
        tracing::info!(addr = %self.addr, "gateway paused: not listening");
    }

    /// Listens again on the address it had before [`Self::pause`]. Fails (and stays paused) when another program
    /// took the address meanwhile. Resuming a gateway that listens does nothing.
    pub async fn resume(&mut self) -> Result<(), StartError> {
        if self.listening.is_some() {
            return Ok(());
        }
        let addr: SocketAddr = self.addr;
        let listener = TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })?;
        self.listening = Some(Listening::spawn(&self.gateway, listener, &self.tasks, &self.drain));
        tracing::info!(%addr, "gateway resumed: listening on http://{addr}");
        Ok(())
    }

    /// Whether the gateway is paused (not listening).
    pub fn is_paused(&self) -> bool {
        self.listening.is_none()
    }
}
