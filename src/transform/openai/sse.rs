//! Incremental parser for the upstream's server-sent events.
//!
//! A thin wrapper over the `sse-parse` crate: a sans-IO (push) WHATWG "interpreting an event stream" parser with
//! `#![forbid(unsafe_code)]`, conformance vectors, chunk-boundary-invariance and no-panic property tests and a fuzz
//! target, whose dependencies (`memchr`, `futures-core`, `pin-project-lite`) the gateway already has. The better-known
//! `eventsource-stream` and `sse-stream` only expose async `Stream` adapters, and the converter must be driven one
//! chunk at a time from synchronous code. The wrapper keeps the crate out of the public API, so it can be swapped
//! without touching callers.

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field; `message` when the event had none.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Feed it the upstream body in arbitrary chunks, get back whole events. Line endings may be LF, CR or CRLF; invalid
/// UTF-8 becomes U+FFFD; a block without a closing blank line is never emitted. Chunk boundaries never change the
/// result.
#[derive(Debug, Clone, Default)]
pub struct SseParser {
    inner: sse_parse::SseParser,
}

impl SseParser {
    /// A parser at the start of a stream, holding any amount of one event.
    pub fn new() -> Self {
        Self::default()
    }

    /// A parser that holds at most about `limit` bytes of one event (plus one chunk); a longer event is dropped
    /// and [`Self::overflowed`] turns true (the stream is then broken for the caller).
    pub fn with_limit(limit: usize) -> Self {
        Self { inner: sse_parse::SseParser::new().max_buffer(limit) }
    }

    /// Adds `bytes` and returns the events they complete, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.inner.feed(bytes);
        let mut events = Vec::new();
        while let Some(event) = self.inner.next_event() {
            events.push(SseEvent { event: event.event, data: event.data });
        }
        events
    }

    /// Whether an event longer than the limit was dropped.
    pub fn overflowed(&self) -> bool {
        self.inner.overflows() > 0
    }
}
