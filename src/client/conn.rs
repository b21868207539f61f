//! One client connection's activity, for the header-read and idle timeouts: how many requests are in flight, when
//! the last one finished, and when the next one's first bytes arrived. The service counts requests (a request ends
//! when hyper drops its response body), the socket wrapper notices bytes arriving on an idle connection, and
//! the connection task (`serve.rs`) reads the state to decide when to close.
//!
//! hyper 1.x has a header-read timeout for HTTP/1 only, and it is also its keep-alive idle timeout (the same
//! timer restarts as soon as a response is done), while the version detection before it (`auto::Builder`) has
//! none; so both timeouts are kept here, for HTTP/1 and HTTP/2 alike.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;
use tower::Service as _;

/// "No time recorded" for the millisecond stamps below.
const NONE: u64 = u64::MAX;

/// A connection's shared activity state. Times are milliseconds since the connection was accepted.
#[derive(Debug)]
pub(crate) struct Activity {
    accepted: Instant,
    /// Requests (HTTP/2: streams) whose response has not been fully sent.
    active: AtomicUsize,
    /// When `active` last dropped to zero.
    idle_since: AtomicU64,
    /// When the first bytes of the next request arrived while nothing was in flight (`NONE`: none yet). A new
    /// connection starts at 0: its first request's headers are due within the header timeout of the accept.
    head_since: AtomicU64,
    /// The connection speaks HTTP/2: bytes between streams are frames (pings, window updates), not a request.
    h2: AtomicBool,
    /// Set by the connection task while it waits for the connection to go idle; the last response to finish
    /// then wakes it through `idle`.
    wants_idle: AtomicBool,
    idle: Notify,
}

/// What a connection's watchdog should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Requests are in flight: no timeout applies; wait for the connection to go idle.
    Busy,
    /// Nothing to do before this deadline.
    WaitUntil(Instant),
    /// A request's headers did not arrive in time: close the connection.
    HeadersLate,
    /// The connection sat idle for the idle timeout: close it gracefully.
    Idle,
}

impl Activity {
    pub(crate) fn new() -> Self {
        Self {
            accepted: Instant::now(),
            active: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            head_since: AtomicU64::new(0),
            h2: AtomicBool::new(false),
            wants_idle: AtomicBool::new(false),
            idle: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.accepted.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn at(&self, ms: u64) -> Instant {
        self.accepted + Duration::from_millis(ms)
    }

    /// A request starts (its headers have been read); the returned guard ends it when dropped.
    fn start(self: &Arc<Self>, version: http::Version) -> RequestGuard {
        if version == http::Version::HTTP_2 && !self.h2.load(Ordering::Relaxed) {
            self.h2.store(true, Ordering::Relaxed);
        }
        self.active.fetch_add(1, Ordering::SeqCst);
        RequestGuard(self.clone())
    }

    /// Bytes arrived from the client.
    fn on_read(&self) {
        if self.active.load(Ordering::Relaxed) == 0
            && self.head_since.load(Ordering::Relaxed) == NONE
            && !self.h2.load(Ordering::Relaxed)
        {
            self.head_since.store(self.now_ms(), Ordering::Relaxed);
        }
    }

    /// Where the connection stands against its timeouts at `now`.
    pub(crate) fn check(&self, now: Instant, header_timeout: Duration, idle_timeout: Duration) -> Check {
        if self.active.load(Ordering::SeqCst) > 0 {
            return Check::Busy;
        }
        let head_since = self.head_since.load(Ordering::Relaxed);
        let (deadline, verdict) = if head_since == NONE {
            (self.at(self.idle_since.load(Ordering::Relaxed)) + idle_timeout, Check::Idle)
        } else {
            (self.at(head_since) + header_timeout, Check::HeadersLate)
        };
        if now >= deadline { verdict } else { Check::WaitUntil(deadline) }
    }

    /// Asks to be woken when the last request in flight finishes. False when nothing is in flight any more (the
    /// caller checks again instead of waiting).
    pub(crate) fn park(&self) -> bool {
        self.wants_idle.store(true, Ordering::SeqCst);
        if self.active.load(Ordering::SeqCst) == 0 {
            self.wants_idle.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Completes after a [`Activity::park`] once the connection has gone idle.
    pub(crate) fn went_idle(&self) -> tokio::sync::futures::Notified<'_> {
        self.idle.notified()
    }
}

/// Ends a request when dropped: with its response body (sent, or dropped because the client left), or with its
/// handler future if there was no response yet.
#[derive(Debug)]
pub(crate) struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let activity = &self.0;
        if activity.active.fetch_sub(1, Ordering::SeqCst) == 1 {
            activity.idle_since.store(activity.now_ms(), Ordering::Relaxed);
            activity.head_since.store(NONE, Ordering::Relaxed);
            // Load first: the watchdog rarely waits, and a plain load is cheaper than a swap per request.
            if activity.wants_idle.load(Ordering::SeqCst) && activity.wants_idle.swap(false, Ordering::SeqCst) {
                activity.idle.notify_one();
            }
        }
    }
}

/// The accepted socket, reporting arriving bytes to the connection's [`Activity`].
#[derive(Debug)]
pub(crate) struct WatchedStream {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl WatchedStream {
    pub(crate) fn new(stream: TcpStream, activity: Arc<Activity>) -> Self {
        Self { stream, activity }
    }
}

impl AsyncRead for WatchedStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.on_read();
        }
        result
    }
}

impl AsyncWrite for WatchedStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The router as a hyper service for one connection, counting its requests. Each request carries the peer's
/// address as axum's `ConnectInfo<SocketAddr>` extension (client-key rules such as loopback-only keys read it).
#[derive(Debug, Clone)]
pub(crate) struct ConnService {
    app: Router,
    activity: Arc<Activity>,
    peer: SocketAddr,
}

impl ConnService {
    pub(crate) fn new(app: Router, activity: Arc<Activity>, peer: SocketAddr) -> Self {
        Self { app, activity, peer }
    }
}

impl hyper::service::Service<http::Request<Incoming>> for ConnService {
    type Response = http::Response<CountedBody>;
    type Error = Infallible;
    type Future = CountedFuture;

    fn call(&self, mut request: http::Request<Incoming>) -> Self::Future {
        let guard = self.activity.start(request.version());
        request.extensions_mut().insert(axum::extract::ConnectInfo(self.peer));
        // `Router::call` needs `&mut`; the clone is one reference count.
        CountedFuture { inner: self.app.clone().call(request), guard: Some(guard) }
    }
}

/// The router's future, holding the request's guard until the response exists.
pub(crate) struct CountedFuture {
    inner: axum::routing::future::RouteFuture<Infallible>,
    guard: Option<RequestGuard>,
}

impl std::future::Future for CountedFuture {
    type Output = Result<http::Response<CountedBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Poll::Ready(result) = Pin::new(&mut this.inner).poll(cx) else {
            return Poll::Pending;
        };
        let guard = this.guard.take();
        Poll::Ready(result.map(|response: Response| response.map(|body| CountedBody { body, _guard: guard })))
    }
}

/// A response body that ends its request when hyper drops it.
#[derive(Debug)]
pub(crate) struct CountedBody {
    body: Body,
    _guard: Option<RequestGuard>,
}

impl http_body::Body for CountedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: Duration = Duration::from_secs(30);
    const IDLE: Duration = Duration::from_secs(120);

    #[test]
    fn a_new_connection_owes_its_headers_within_the_header_timeout() {
        let a = Arc::new(Activity::new());
        assert_eq!(a.check(a.accepted, HEAD, IDLE), Check::WaitUntil(a.accepted + HEAD));
        assert_eq!(a.check(a.accepted + HEAD, HEAD, IDLE), Check::HeadersLate);
    }

    #[test]
    fn requests_in_flight_suspend_every_timeout_and_the_idle_clock_starts_when_the_last_ends() {
        let a = Arc::new(Activity::new());
        let first = a.start(http::Version::HTTP_11);
        let second = a.start(http::Version::HTTP_11);
        assert_eq!(a.check(a.accepted + IDLE * 10, HEAD, IDLE), Check::Busy);
        assert!(a.park(), "busy: the watchdog waits");
        drop(first);
        assert_eq!(a.check(a.accepted + IDLE * 10, HEAD, IDLE), Check::Busy);
        drop(second);
        assert!(!a.wants_idle.load(Ordering::SeqCst), "the last request woke the watchdog");
        let idle_since = a.at(a.idle_since.load(Ordering::Relaxed));
        assert_eq!(a.check(idle_since, HEAD, IDLE), Check::WaitUntil(idle_since + IDLE));
        assert_eq!(a.check(idle_since + IDLE, HEAD, IDLE), Check::Idle);
        assert!(!a.park(), "idle: nothing to wait for");
    }

    #[test]
    fn bytes_after_an_idle_period_start_the_header_clock_on_http1_only() {
        let a = Arc::new(Activity::new());
        drop(a.start(http::Version::HTTP_11));
        a.on_read();
        let head_since = a.at(a.head_since.load(Ordering::Relaxed));
        assert_eq!(a.check(head_since, HEAD, IDLE), Check::WaitUntil(head_since + HEAD));
        assert_eq!(a.check(head_since + HEAD, HEAD, IDLE), Check::HeadersLate);

        let h2 = Arc::new(Activity::new());
        drop(h2.start(http::Version::HTTP_2));
        h2.on_read();
        let idle_since = h2.at(h2.idle_since.load(Ordering::Relaxed));
        assert_eq!(h2.check(idle_since + HEAD, HEAD, IDLE), Check::WaitUntil(idle_since + IDLE));
    }
}
