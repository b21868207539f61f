//! A gateway on a thread of its own, with its own runtime: what the desktop app runs, so its UI thread and its
//! own async runtime never carry gateway work, and the gateway keeps the one-thread runtime the server command
//! uses (measured cheapest per request).

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::{GatewayHandle, StartError, StartOptions, start};
use crate::config::ConfigFile;
use crate::manage::Ops;

/// The async runtime a gateway runs on: sized by `server.worker_threads` (1, the default, is a current-thread
/// runtime; 0 means one worker per core). A config that cannot be read here is reported by [`start`] itself.
pub fn server_runtime(config_path: &Path) -> std::io::Result<tokio::runtime::Runtime> {
    let mut config = ConfigFile::new(config_path).load().unwrap_or_default();
    crate::config::env_overrides(&mut config);
    let mut builder = match config.server.worker_threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        0 => tokio::runtime::Builder::new_multi_thread(),
        n => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(n);
            builder
        }
    };
    builder.enable_all().thread_name("llm-gateway").build()
}

/// A gateway running on a thread of its own. Operations run on the gateway's runtime ([`Self::call`]), so they
/// can be awaited from any other runtime (Tauri's) or blocked on from a plain thread.
#[derive(Debug)]
pub struct BackgroundGateway {
    addr: SocketAddr,
    runtime: tokio::runtime::Handle,
    ops: Ops,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl BackgroundGateway {
    /// Starts a gateway on a new thread with its own runtime and waits until it listens (or failed to start).
    pub fn spawn(options: StartOptions) -> Result<Self, StartError> {
        let runtime = server_runtime(&options.config_path)
            .map_err(|e| StartError::Internal(format!("cannot start the gateway's runtime: {e}")))?;
        let (ready_tx, ready_rx) =
            std::sync::mpsc::channel::<Result<(SocketAddr, tokio::runtime::Handle, Ops), StartError>>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("llm-gateway".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let handle: GatewayHandle = match start(options).await {
                        Ok(handle) => handle,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let ready = (handle.addr(), tokio::runtime::Handle::current(), handle.ops());
                    if ready_tx.send(Ok(ready)).is_err() {
                        handle.shutdown().await;
                        return;
                    }
                    // Until told to stop, or until the owner is gone (the sender dropped): either way, drain.
                    let _ = stop_rx.await;
                    handle.shutdown().await;
                });
            })
            .map_err(|e| StartError::Internal(format!("cannot start the gateway's thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok((addr, runtime, ops))) => Ok(Self { addr, runtime, ops, stop: Some(stop_tx), thread: Some(thread) }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(StartError::Internal("the gateway's thread ended before it started".into()))
            }
        }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The gateway's runtime (to spawn work beside it, e.g. following its events).
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    /// Runs an operation on the gateway's runtime and returns its result; await it from any runtime.
    pub async fn call<T, F, Fut>(&self, operation: F) -> Result<T, crate::manage::Error>
    where
        T: Send + 'static,
        F: FnOnce(Ops) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, crate::manage::Error>> + Send + 'static,
    {
        let ops = self.ops.clone();
        self.runtime
            .spawn(async move { operation(ops).await })
            .await
            .map_err(|e| crate::manage::Error::internal(format!("the operation's task failed: {e}")))?
    }

    /// Runs an operation on the gateway's runtime and blocks this thread until it is done. Not from inside an
    /// async task (it would block that task's runtime): use [`Self::call`] there.
    pub fn call_blocking<T, F, Fut>(&self, operation: F) -> Result<T, crate::manage::Error>
    where
        T: Send + 'static,
        F: FnOnce(Ops) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, crate::manage::Error>> + Send + 'static,
    {
        let ops = self.ops.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        self.runtime.spawn(async move {
            let _ = tx.send(operation(ops).await);
        });
        rx.recv().map_err(|_| crate::manage::Error::internal("the gateway stopped during the operation"))?
    }

    /// Stops the gateway (graceful drain, see [`GatewayHandle::shutdown`]) and waits for its thread to end: when
    /// this returns, the port is free and nothing of the gateway runs. Blocking.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the gateway's thread panicked while stopping");
        }
    }
}

impl Drop for BackgroundGateway {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
