//! The accept loop and the connection tasks: HTTP/1.1 and h2c through hyper-util's `auto` builder, with the
//! header-read and idle timeouts (`conn.rs`), a connection limit, backoff on accept errors, and graceful shutdown.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::conn::{Activity, Check, ConnService, WatchedStream};
use crate::config::ServerConfig;
use crate::tasks::Tasks;

/// After an idle connection is asked to close (HTTP/2: GOAWAY), how long it gets before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// First and longest pause after an accept error such as running out of file descriptors.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));
/// At most one "connection limit reached" warning per this interval.
const LIMIT_WARN_EVERY: Duration = Duration::from_secs(60);

/// The connection settings from `server:`.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// Time to send a request's headers.
    pub header_read_timeout: Duration,
    /// Time a kept-alive connection may sit idle.
    pub idle_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// HTTP/2 PING interval (`None`: off).
    pub http2_keep_alive: Option<Duration>,
}

impl ServeSettings {
    /// The settings of a (validated) server config.
    pub fn from_config(server: &ServerConfig) -> Self {
        let secs = |s: f64| Duration::try_from_secs_f64(s).unwrap_or(Duration::from_secs(30));
        Self {
            header_read_timeout: secs(server.header_read_timeout_secs),
            idle_timeout: secs(server.idle_timeout_secs),
            max_connections: server.max_connections.max(1),
            http2_keep_alive: (server.http2_keep_alive_secs > 0.0).then(|| secs(server.http2_keep_alive_secs)),
        }
    }
}

/// Serves `app` on `listener` until `drain` is cancelled: then it stops accepting (the listener is closed when
/// this returns) and every connection is asked to finish its requests and close. Connection tasks and HTTP/2
/// streams are spawned on `tasks`; after [`Tasks::abort`] they end at once.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    settings: ServeSettings,
    tasks: Tasks,
    drain: CancellationToken,
) {
    let mut builder = auto::Builder::new(tasks.clone());
    // Timeouts are enforced per connection by the watchdog below, not by hyper's HTTP/1-only header timer (which
    // doubles as a keep-alive timeout of the same length, and needs a timer).
    builder.http1().header_read_timeout(None);
    if let Some(interval) = settings.http2_keep_alive {
        builder.http2().timer(TokioTimer::new()).keep_alive_interval(interval);
    }
    let settings = Arc::new(settings);
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let mut backoff = ACCEPT_BACKOFF.0;
    let mut last_limit_warning: Option<Instant> = None;
    loop {
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if last_limit_warning.is_none_or(|at| at.elapsed() >= LIMIT_WARN_EVERY) {
                    last_limit_warning = Some(Instant::now());
                    tracing::warn!(
                        max_connections = settings.max_connections,
                        "connection limit reached (server.max_connections); new connections wait until one closes"
                    );
                }
                tokio::select! {
                    permit = slots.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => return,
                    },
                    () = drain.cancelled() => return,
                }
            }
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = drain.cancelled() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = ACCEPT_BACKOFF.0;
                let connection = serve_connection(
                    (stream, peer),
                    permit,
                    app.clone(),
                    builder.clone(),
                    settings.clone(),
                    tasks.clone(),
                    drain.clone(),
                );
                tasks.spawn_watching(connection);
            }
            // The client gave up before we accepted: nothing to do.
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                // Out of descriptors or memory: retrying at once would spin; wait for connections to close.
                tracing::warn!("cannot accept connections: {e}; retrying in {} ms", backoff.as_millis());
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = drain.cancelled() => return,
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
            }
        }
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted};
    matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted)
}

/// Serves one connection until it closes, times out, or is aborted; the slot is freed when this ends.
async fn serve_connection(
    (stream, peer): (TcpStream, std::net::SocketAddr),
    _slot: OwnedSemaphorePermit,
    app: Router,
    builder: auto::Builder<Tasks>,
    settings: Arc<ServeSettings>,
    tasks: Tasks,
    drain: CancellationToken,
) {
    // Without TCP_NODELAY, Nagle's algorithm holds a small SSE event back until the previous one is acked (tens
    // of ms on loopback with delayed ACKs): streams must leave as they arrive.
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!("cannot set TCP_NODELAY on an accepted connection: {e}");
    }
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(WatchedStream::new(stream, activity.clone()));
    let mut conn = pin!(builder.serve_connection(io, ConnService::new(app, activity.clone(), peer)));
    let mut watchdog = pin!(tokio::time::sleep(settings.header_read_timeout));
    let (header_timeout, idle_timeout) = (settings.header_read_timeout, settings.idle_timeout);
    let mut parked = false;
    let mut draining = false;
    let mut closing: Option<Instant> = None;
    loop {
        tokio::select! {
            biased;
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!("connection ended with an error: {e}");
                }
                return;
            }
            () = watchdog.as_mut(), if !parked => {}
            () = activity.went_idle(), if parked => parked = false,
            () = drain.cancelled(), if !draining => {
                // Requests in flight may finish (HTTP/1 closes after the response, HTTP/2 sends GOAWAY); a
                // connection with none, idle or still sending headers, gets CLOSE_GRACE.
                draining = true;
                conn.as_mut().graceful_shutdown();
                let now = Instant::now();
                closing = Some(closing.map_or(now + CLOSE_GRACE, |at| at.min(now + CLOSE_GRACE)));
                if !parked {
                    watchdog.as_mut().reset(now);
                }
                continue;
            }
            () = tasks.aborted(), if draining => return,
        }
        // The watchdog fired or the connection went idle: see where it stands.
        let now = Instant::now();
        match (activity.check(now, header_timeout, idle_timeout), closing) {
            (Check::Busy, _) => {
                parked = activity.park();
                if !parked {
                    watchdog.as_mut().reset(now);
                }
            }
            // Asked to close while idle (or shutting down): it gets CLOSE_GRACE to do so.
            (_, Some(at)) if now >= at => return,
            (_, Some(at)) => watchdog.as_mut().reset(at),
            (Check::WaitUntil(deadline), None) => watchdog.as_mut().reset(deadline),
            (Check::HeadersLate, None) => {
                tracing::debug!("closing a connection that did not send its request headers in time");
                return;
            }
            (Check::Idle, None) => {
                conn.as_mut().graceful_shutdown();
                closing = Some(now + CLOSE_GRACE);
                watchdog.as_mut().reset(now + CLOSE_GRACE);
            }
        }
    }
}

/// Descriptors a gateway needs besides its connections: listener, config and secrets files, the runtime.
const SPARE_DESCRIPTORS: u64 = 64;

/// Raises this process's open-files soft limit to its hard limit (a connection and its upstream request take a
/// descriptor each: 1,000 concurrent streams need ~2,000, more than the common default soft limit of 1,024).
/// Returns the limit now in force; `None` where the platform has no such limit.
pub fn raise_open_files_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        match rlimit::increase_nofile_limit(u64::MAX) {
            Ok(limit) => Some(limit),
            Err(e) => {
                tracing::warn!("cannot raise the open-files limit: {e}");
                rlimit::Resource::NOFILE.get().ok().map(|(soft, _)| soft)
            }
        }
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Logs a warning when `max_connections` connections (each with a request upstream) would not fit in the
/// open-files limit: accepts would then fail with "too many open files" before the connection limit is reached.
pub fn warn_if_few_descriptors(max_connections: usize) {
    #[cfg(unix)]
    {
        let Ok((soft, _)) = rlimit::Resource::NOFILE.get() else {
            return;
        };
        let needed = (max_connections as u64).saturating_mul(2).saturating_add(SPARE_DESCRIPTORS);
        if soft < needed {
            let fits = soft.saturating_sub(SPARE_DESCRIPTORS) / 2;
            tracing::warn!(
                "server.max_connections is {max_connections}, but the open-files limit ({soft}) leaves room for \
                 about {fits} connections with requests in flight; raise it (`ulimit -n`) or lower \
                 server.max_connections"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = max_connections;
}
