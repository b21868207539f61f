//! The gateway service: the library's gateway on a thread and async runtime of its own, so the UI thread never
//! waits on it and it never waits on the UI. The thread runs one task (an actor) that owns the running gateway
//! and takes lifecycle commands in order (start, pause, resume, another port, shutdown); operations on the
//! running gateway (logins, status) are spawned next to it on the same runtime, and so is the task that follows
//! the gateway's events.
//!
//! The runtime is sized like the CLI's server (`server.worker_threads`, one thread by default: a current-thread
//! runtime). The shell learns what happens through one listener callback ([`ServiceEvent`]): the service's own
//! phases and the gateway's events.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;

use super::gateway::{self, GatewayEvent, GatewayOps, Running, StartFailure};

/// Where the gateway is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Loading config and secrets, binding.
    Starting,
    /// Serving.
    Running {
        /// Where.
        addr: SocketAddr,
    },
    /// Stopped listening on purpose, every account's state kept; Resume listens on the same address again.
    Paused {
        /// Where it listened.
        addr: SocketAddr,
    },
    /// The address is taken by another program (at start, or when resuming: the paused gateway is kept).
    PortBusy {
        /// The busy address.
        addr: SocketAddr,
        /// A free port nearby to offer instead.
        suggested: Option<u16>,
    },
    /// Could not start for another reason (the library's message).
    Failed {
        /// Why.
        message: String,
    },
    /// Draining in-flight requests before quitting.
    Stopping,
    /// Stopped for good (the app is quitting).
    Stopped,
}

impl Phase {
    /// The address it serves on, while running.
    pub fn running_addr(&self) -> Option<SocketAddr> {
        match self {
            Self::Running { addr } => Some(*addr),
            _ => None,
        }
    }
}

/// What the service tells the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceEvent {
    /// The phase changed.
    Phase(Phase),
    /// The running gateway announced something.
    Gateway(GatewayEvent),
}

type Listener = Box<dyn Fn(ServiceEvent) + Send + Sync>;
type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

enum Command {
    Start,
    Pause,
    Resume,
    UsePort(u16),
    Spawn(Task),
    Shutdown(Box<dyn FnOnce() + Send>),
}

struct Shared {
    phase: Mutex<Phase>,
    ops: Mutex<Option<GatewayOps>>,
    listener: Listener,
}

impl Shared {
    fn set_phase(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner) = phase.clone();
        (self.listener)(ServiceEvent::Phase(phase));
    }

    fn set_ops(&self, ops: Option<GatewayOps>) {
        *self.ops.lock().unwrap_or_else(PoisonError::into_inner) = ops;
    }
}

/// The handle the shell keeps (in Tauri state).
pub struct GatewayService {
    commands: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for GatewayService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayService").field("phase", &self.phase()).finish_non_exhaustive()
    }
}

impl GatewayService {
    /// Starts the service thread, which starts the gateway with the config at `config_path`. Returns at once;
    /// `listener` hears about the start (and everything after it) from the service thread.
    pub fn launch(
        config_path: PathBuf,
        listener: impl Fn(ServiceEvent) + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        let (commands, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            phase: Mutex::new(Phase::Starting),
            ops: Mutex::new(None),
            listener: Box::new(listener),
        });
        let thread_shared = shared.clone();
        std::thread::Builder::new()
            .name("gateway".into())
            .spawn(move || run_thread(config_path, receiver, thread_shared))?;
        let service = Self { commands, shared };
        service.send(Command::Start);
        Ok(service)
    }

    /// The phase now.
    pub fn phase(&self) -> Phase {
        self.shared.phase.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Operations on the gateway (`None` unless it runs, paused or not).
    pub fn ops(&self) -> Option<GatewayOps> {
        self.shared.ops.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Stops listening (requests in flight finish); cooldowns, sessions and tokens stay as they are.
    pub fn pause(&self) {
        self.send(Command::Pause);
    }

    /// Listens again on the address it had before the pause.
    pub fn resume(&self) {
        self.send(Command::Resume);
    }

    /// Tries again after a failure or a busy port: resumes a paused gateway, else starts one with the config
    /// as it is now.
    pub fn retry(&self) {
        self.send(Command::Start);
    }

    /// Saves `server.listen` with `port` (same host) and restarts the gateway there.
    pub fn use_port(&self, port: u16) {
        self.send(Command::UsePort(port));
    }

    /// Runs `task` on the gateway's runtime (after any lifecycle command sent before it has been handled).
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.send(Command::Spawn(Box::pin(task)));
    }

    /// Drains and stops the gateway for good, then calls `done` (on the service thread).
    pub fn shutdown(&self, done: impl FnOnce() + Send + 'static) {
        let done: Box<dyn FnOnce() + Send> = Box::new(done);
        if let Err(mpsc::error::SendError(Command::Shutdown(done))) = self.commands.send(Command::Shutdown(done)) {
            // The service thread is gone already: nothing left to drain.
            done();
        }
    }

    fn send(&self, command: Command) {
        if self.commands.send(command).is_err() {
            tracing::debug!("the gateway service has stopped; command ignored");
        }
    }
}

fn run_thread(config_path: PathBuf, receiver: mpsc::UnboundedReceiver<Command>, shared: Arc<Shared>) {
    let threads = gateway::worker_threads(&config_path);
    let mut builder = match threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        0 => tokio::runtime::Builder::new_multi_thread(),
        n => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(n);
            builder
        }
    };
    let runtime = match builder.enable_all().thread_name("gateway-worker").build() {
        Ok(runtime) => runtime,
        Err(e) => {
            shared.set_phase(Phase::Failed { message: format!("cannot start the async runtime: {e}") });
            return;
        }
    };
    runtime.block_on(Actor { config_path, shared, running: None }.run(receiver));
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
}

struct Actor {
    config_path: PathBuf,
    shared: Arc<Shared>,
    running: Option<Running>,
}

impl Actor {
    async fn run(mut self, mut receiver: mpsc::UnboundedReceiver<Command>) {
        while let Some(command) = receiver.recv().await {
            match command {
                Command::Start => {
                    if self.running.is_none() {
                        self.start(None).await;
                    } else if !matches!(self.phase(), Phase::Running { .. }) {
                        self.resume().await;
                    }
                }
                Command::Pause => {
                    let phase = self.phase();
                    if let (Some(running), Phase::Running { addr }) = (self.running.as_mut(), phase) {
                        running.pause().await;
                        self.shared.set_phase(Phase::Paused { addr });
                    }
                }
                Command::Resume => {
                    if matches!(self.phase(), Phase::Paused { .. }) {
                        self.resume().await;
                    }
                }
                Command::UsePort(port) => self.use_port(port).await,
                Command::Spawn(task) => {
                    tokio::spawn(task);
                }
                Command::Shutdown(done) => {
                    self.shared.set_phase(Phase::Stopping);
                    self.stop().await;
                    self.shared.set_phase(Phase::Stopped);
                    done();
                    return;
                }
            }
        }
        // Every handle is gone without a shutdown: still drain.
        self.stop().await;
    }

    fn phase(&self) -> Phase {
        self.shared.phase.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    async fn start(&mut self, listen: Option<String>) {
        self.shared.set_phase(Phase::Starting);
        match gateway::start(&self.config_path, listen).await {
            Ok(running) => {
                let addr = running.addr();
                let shared = self.shared.clone();
                tokio::spawn(running.follow_events(move |event| (shared.listener)(ServiceEvent::Gateway(event))));
                self.shared.set_ops(Some(running.ops()));
                self.running = Some(running);
                self.shared.set_phase(Phase::Running { addr });
            }
            Err(StartFailure::PortBusy { addr }) => {
                tracing::warn!("cannot listen on {addr}: the address is in use by another program");
                self.shared.set_phase(Phase::PortBusy { addr, suggested: free_port_near(addr) });
            }
            Err(StartFailure::Other(message)) => {
                tracing::error!("the gateway could not start: {message}");
                self.shared.set_phase(Phase::Failed { message });
            }
        }
    }

    /// Listens again with the paused gateway (its state kept).
    async fn resume(&mut self) {
        let Some(running) = self.running.as_mut() else { return };
        let addr = running.addr();
        match running.resume().await {
            Ok(()) => self.shared.set_phase(Phase::Running { addr }),
            Err(StartFailure::PortBusy { addr }) => {
                tracing::warn!("cannot listen on {addr} again: the address is in use by another program");
                self.shared.set_phase(Phase::PortBusy { addr, suggested: free_port_near(addr) });
            }
            Err(StartFailure::Other(message)) => {
                tracing::error!("the gateway could not listen again: {message}");
                self.shared.set_phase(Phase::Failed { message });
            }
        }
    }

    /// Stops the running gateway, if any; returns where it listened.
    async fn stop(&mut self) -> Option<SocketAddr> {
        let running = self.running.take()?;
        let addr = running.addr();
        self.shared.set_ops(None);
        running.stop().await;
        Some(addr)
    }

    async fn use_port(&mut self, port: u16) {
        let ip = match (self.phase(), &self.running) {
            (_, Some(running)) => running.addr().ip(),
            (Phase::PortBusy { addr, .. } | Phase::Paused { addr }, None) => addr.ip(),
            _ => std::net::Ipv4Addr::LOCALHOST.into(),
        };
        let listen = SocketAddr::new(ip, port).to_string();
        self.stop().await;
        if let Err(e) = gateway::save_listen(&self.config_path, listen.clone()).await {
            tracing::warn!("could not save server.listen = {listen} to the config: {e}");
        }
        self.start(Some(listen)).await;
    }
}

/// The first port after `addr`'s that can be bound on the same address right now (a suggestion: another
/// program may take it before the user accepts).
fn free_port_near(addr: SocketAddr) -> Option<u16> {
    (1..=50u16)
        .filter_map(|offset| addr.port().checked_add(offset))
        .find(|port| TcpListener::bind(SocketAddr::new(addr.ip(), *port)).is_ok())
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
