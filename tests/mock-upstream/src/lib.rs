//! A mock of Anthropic's Messages API, faithful to `shared/docs/protocol.md`, for the gateway's
//! tests: in-process via [`MockUpstream`], or as the `mock-upstream` binary with a control API
//! under `/_mock/`.
//!
//! Default behaviour (no [`Scripted`] queued): every response carries `request-id: req_mock_<n>`
//! and `anthropic-organization-id`; the API key's name selects account-level errors
//! (`invalid`, `ratelimited`, `overloaded`, `oauthlimited`, `broken`); the request headers
//! `x-mock-status`, `x-mock-event-interval-ms`, `x-mock-text` and `x-mock-tools: none` steer one
//! request; `/v1/messages` answers with text or a `tool_use` of the first tool, streamed as
//! SSE when `stream: true`.

mod api;
mod control;
mod errors;
mod messages;
mod models;
mod ratelimit;
mod reply;
mod server;
mod sse;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use errors::{ORGANIZATION_ID, error_body, error_type_for_status};
pub use messages::DEFAULT_TEXT;
pub use models::MODELS;
pub use sse::message_stream_events;
pub use state::{RecordedRequest, Scripted};

/// A running mock server. Dropping it stops the server.
#[derive(Debug)]
pub struct MockUpstream {
    addr: SocketAddr,
    shared: Arc<state::Shared>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl MockUpstream {
    /// Starts a server on `127.0.0.1` with an OS-chosen port.
    pub async fn start() -> std::io::Result<MockUpstream> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts a server on `addr` (port 0 picks a free port). Must run inside a Tokio runtime.
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<MockUpstream> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(state::Shared::default());
        let router = Router::new().merge(control::router()).fallback(api::handle).with_state(shared.clone());
        let (shutdown, rx) = watch::channel(false);
        let task = tokio::spawn(server::serve(listener, router, rx));
        Ok(MockUpstream { addr, shared, shutdown, task: Some(task) })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every recorded request, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.clear_requests();
    }

    /// Queues a script (FIFO): the next `/v1/messages*` request gets it instead of the default.
    pub fn enqueue(&self, r: Scripted) {
        self.shared.enqueue(r);
    }

    /// Stops the server and waits until its listener and connections are closed.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}
