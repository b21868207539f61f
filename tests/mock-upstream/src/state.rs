//! Shared server state: the request log, the script queue and the counters.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

/// One request as the mock received it (control requests under `/_mock/` are not recorded).
#[derive(Clone, Debug, Serialize)]
pub struct RecordedRequest {
    /// HTTP method, upper case (`POST`, `GET`, `HEAD`, …).
    pub method: String,
    /// Request path without the query string, e.g. `/v1/messages`.
    pub path: String,
    /// Raw query string without the `?`, e.g. `beta=true`.
    pub query: Option<String>,
    /// Every header as received, names lower-cased, in arrival order (repeated names kept).
    pub headers: Vec<(String, String)>,
    /// Raw body (lossy UTF-8).
    pub body: String,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// A scripted reply for the next `/v1/messages*` request, instead of the default behaviour.
///
/// JSON form (for `POST /_mock/enqueue`), e.g.
/// `{"kind":"response","status":503,"headers":[["retry-after","2"]],"body":"{}"}`,
/// `{"kind":"stream","events":[["message_start","{…}"]],"interval_ms":50,"cut_after":2}`,
/// `{"kind":"chunks","chunks":["event: ping\ndata: {\"type\":\"pi","ng\"}\n\n"],"end":"cut"}`,
/// `{"kind":"reset"}`, `{"kind":"delay","ms":2000}`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scripted {
    /// Exact status, headers, body. `request-id`, `anthropic-organization-id` and
    /// `content-type: application/json` are added only when not given here.
    Response {
        /// HTTP status code.
        status: u16,
        /// Extra response headers, `(name, value)`.
        #[serde(default)]
        headers: Vec<(String, String)>,
        /// Response body, sent as is.
        body: String,
    },
    /// 200 `text/event-stream` with these events (event name, data JSON string), `interval_ms`
    /// between events (the first event is sent immediately after the headers); optionally the
    /// connection is cut (no further events, chunked body never terminated) after `cut_after` events.
    Stream {
        /// `(event name, data)` pairs, written as `event: NAME\ndata: DATA\n\n`.
        events: Vec<(String, String)>,
        /// Delay between two events, in milliseconds.
        #[serde(default)]
        interval_ms: u64,
        /// Cut the connection after this many events.
        #[serde(default)]
        cut_after: Option<usize>,
    },
    /// 200 `text/event-stream` whose body is exactly these chunks, one write each, `interval_ms` apart (the first
    /// right after the headers), then `end`. Chunks need not follow event boundaries: a stream can be cut in the
    /// middle of an event (`end: cut` after a chunk that stops mid-line), or go silent after a partial one.
    Chunks {
        /// The body's pieces, written as they are.
        chunks: Vec<String>,
        /// Delay between two chunks, in milliseconds.
        #[serde(default)]
        interval_ms: u64,
        /// What happens after the last chunk.
        #[serde(default)]
        end: StreamEnd,
    },
    /// Accept the request (body read) then close the connection without any response
    /// (a TCP reset: a network failure).
    Reset,
    /// Wait this long before behaving as default (for timeout tests).
    Delay {
        /// Milliseconds to wait before the default behaviour.
        ms: u64,
    },
}

/// How a [`Scripted::Chunks`] body ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamEnd {
    /// The body ends normally.
    #[default]
    Close,
    /// The connection is dropped without terminating the chunked body (a transport failure).
    Cut,
    /// Nothing more is sent and the body never ends (until the client goes away).
    Hang,
}

/// State shared by every connection of one server.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    requests: Mutex<Vec<RecordedRequest>>,
    scripts: Mutex<VecDeque<Scripted>>,
    request_counter: AtomicU64,
    oauth: Mutex<crate::oauth::MockOAuth>,
    plans: Mutex<crate::plan::Plans>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn record(&self, r: RecordedRequest) {
        lock(&self.requests).push(r);
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.requests).clone()
    }

    pub(crate) fn clear_requests(&self) {
        lock(&self.requests).clear();
    }

    pub(crate) fn enqueue(&self, s: Scripted) {
        lock(&self.scripts).push_back(s);
    }

    pub(crate) fn next_script(&self) -> Option<Scripted> {
        lock(&self.scripts).pop_front()
    }

    /// The mock OAuth server's state.
    pub(crate) fn oauth(&self) -> MutexGuard<'_, crate::oauth::MockOAuth> {
        lock(&self.oauth)
    }

    /// The subscription plans of OAuth tokens.
    pub(crate) fn plans(&self) -> MutexGuard<'_, crate::plan::Plans> {
        lock(&self.plans)
    }

    /// A fresh `req_mock_<n>` id (n counts from 1 per server).
    pub(crate) fn next_request_id(&self) -> String {
        let n = self.request_counter.fetch_add(1, Ordering::Relaxed) + 1;
        format!("req_mock_{n}")
    }
}

static MESSAGE_COUNTER: AtomicU64 = AtomicU64::new(0);
static TOOL_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh `msg_mock_<n>` id (process-wide counter).
pub(crate) fn next_message_id() -> String {
    format!("msg_mock_{}", MESSAGE_COUNTER.fetch_add(1, Ordering::Relaxed) + 1)
}

/// A fresh `toolu_mock_<n>` id (process-wide counter).
pub(crate) fn next_tool_id() -> String {
    format!("toolu_mock_{}", TOOL_COUNTER.fetch_add(1, Ordering::Relaxed) + 1)
}
