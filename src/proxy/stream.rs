//! A streamed (SSE) answer: held until its first event so that a failure up to then can still go to another
//! account, then forwarded in whole events as they arrive. A stream that breaks after that ends with a
//! well-formed `error` event: never inside a half-written event.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::http::HeaderMap;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::accounts::Observation;
use crate::transform::anthropic_error::error_event;
use crate::transform::sse::EventFramer;

/// The first SSE event (`message_start`) is small; a stream that sends this much without completing an event is
/// committed without its first event checked (still forwarded in whole events).
const MAX_FIRST_EVENT: usize = 256 * 1024;

type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, reqwest::Error>> + Send>>;

/// Whether a response's body is compressed (any `Content-Encoding` but `identity`).
pub(super) fn is_encoded(headers: &HeaderMap) -> bool {
    headers.get_all(http::header::CONTENT_ENCODING).iter().any(|v| {
        v.to_str()
            .map_or(true, |v| v.split(',').map(str::trim).any(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity")))
    })
}

/// A stream whose first event is in hand.
pub(super) struct Opened {
    /// The bytes that go out first: whole events, the first of them the stream's first event.
    head: VecDeque<Bytes>,
    framer: EventFramer,
    rest: ByteStream,
}

impl Opened {
    /// The head as one piece of bytes (to return as the body of a failed attempt).
    pub(super) fn head_bytes(&self) -> Bytes {
        match self.head.len() {
            1 => self.head[0].clone(),
            _ => Bytes::from(self.head.iter().flat_map(|b| b.iter().copied()).collect::<Vec<u8>>()),
        }
    }

    /// When the stream opened with an `event: error`, what it says about the account.
    pub(super) fn error_observation(&self) -> Option<Observation> {
        let first = self.head.iter().find(|b| b.iter().any(|&c| c != b'\n' && c != b'\r'))?;
        error_event_observation(first)
    }

    /// The stream as committed to the client.
    pub(super) fn into_stream(self) -> WholeEvents {
        WholeEvents { upstream: self.rest, framer: self.framer, queued: self.head, done: false }
    }
}

/// Reads until the stream's first complete event is in hand (or [`MAX_FIRST_EVENT`] bytes came without one).
/// `limit` bounds the bytes of one event held (`server.max_stream_event_bytes`).
pub(super) async fn first_event(response: reqwest::Response, limit: usize) -> Result<Opened, String> {
    let mut rest: ByteStream = Box::pin(response.bytes_stream());
    let mut framer = EventFramer::new(limit);
    let mut head = VecDeque::with_capacity(2);
    let mut read = 0usize;
    loop {
        match rest.next().await {
            Some(Ok(chunk)) => {
                read = read.saturating_add(chunk.len());
                let framed = framer.push(chunk);
                head.extend(framed.pieces.into_iter().flatten());
                if let Some(e) = framed.overflow {
                    return Err(e.to_string());
                }
                let has_event = head.iter().any(|b| b.iter().any(|&c| c != b'\n' && c != b'\r'));
                if has_event || read >= MAX_FIRST_EVENT {
                    return Ok(Opened { head, framer, rest });
                }
            }
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("the stream ended without any event".into()),
        }
    }
}

/// An `event: error` as the stream's first event: what it says about the account.
fn error_event_observation(first: &[u8]) -> Option<Observation> {
    let text = std::str::from_utf8(first).ok()?;
    let mut lines = text.lines().skip_while(|l| l.trim().is_empty()).take_while(|l| !l.trim().is_empty());
    let event: Vec<&str> = lines.by_ref().collect();
    if !event.iter().any(|l| l.trim_end() == "event: error") {
        return None;
    }
    let overloaded = event.iter().any(|l| l.starts_with("data:") && l.contains("overloaded_error"));
    Some(if overloaded { Observation::Overloaded } else { Observation::Failed })
}

/// The committed stream: whole events as they complete, each chunk passed on as itself or a slice of itself. A
/// transport failure, an event longer than the limit, or an end in the middle of an event drops the incomplete
/// event and ends the stream with an Anthropic `error` event (the client can no longer be switched to another
/// account). Dropping it (the client went away) drops the upstream response, which cancels the upstream call.
pub(super) struct WholeEvents {
    upstream: ByteStream,
    framer: EventFramer,
    queued: VecDeque<Bytes>,
    done: bool,
}

impl WholeEvents {
    fn fail(&mut self, message: String) {
        tracing::warn!("{message}");
        self.done = true;
        self.queued.push_back(error_event("api_error", &message));
    }
}

impl Stream for WholeEvents {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(bytes) = this.queued.pop_front() {
                return Poll::Ready(Some(Ok(bytes)));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match ready!(this.upstream.as_mut().poll_next(cx)) {
                Some(Ok(chunk)) => {
                    let framed = this.framer.push(chunk);
                    let [first, second] = framed.pieces;
                    if let Some(e) = framed.overflow {
                        this.queued.extend(first.into_iter().chain(second));
                        this.fail(format!("the upstream stream was cut off: {e}"));
                        continue;
                    }
                    match (first, second) {
                        // The common case: the chunk itself, without touching the queue.
                        (Some(first), None) => return Poll::Ready(Some(Ok(first))),
                        (first, second) => this.queued.extend(first.into_iter().chain(second)),
                    }
                }
                Some(Err(e)) => this.fail(format!("the upstream stream failed: {e}")),
                None if this.framer.mid_event() => {
                    this.fail("the upstream stream ended in the middle of an event".to_owned());
                }
                None => this.done = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_opening_error_event_is_recognised_with_any_line_endings() {
        let overloaded =
            b"event: error\r\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}\r\n\r\n";
        assert_eq!(error_event_observation(overloaded), Some(Observation::Overloaded));
        let api = b"\nevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\"}}\n\n";
        assert_eq!(error_event_observation(api), Some(Observation::Failed));
        assert_eq!(error_event_observation(b"event: message_start\ndata: {}\n\nevent: error\n\n"), None);
    }

    #[test]
    fn only_a_non_identity_content_encoding_counts_as_compressed() {
        let mut h = HeaderMap::new();
        assert!(!is_encoded(&h));
        h.insert(http::header::CONTENT_ENCODING, "identity".parse().unwrap());
        assert!(!is_encoded(&h));
        h.insert(http::header::CONTENT_ENCODING, "".parse().unwrap());
        assert!(!is_encoded(&h));
        h.insert(http::header::CONTENT_ENCODING, "gzip".parse().unwrap());
        assert!(is_encoded(&h));
    }
}
