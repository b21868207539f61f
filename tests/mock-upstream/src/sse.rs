//! Server-sent events: the wire format and a body that sends each event as its own chunk.

use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;

use crate::errors::build_response;
use crate::reply::{Block, Reply};
use crate::state::StreamEnd;

/// Pause between the last event of a cut stream and the cut, so that event reaches the client.
const CUT_FLUSH_DELAY: Duration = Duration::from_millis(25);

/// `event: NAME\ndata: DATA\n\n`.
pub(crate) fn format_event(name: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// The full default event sequence of a text reply from `model` whose text arrives in
/// `text_chunks` (one `text_delta` per chunk), ending with `stop_reason: end_turn` and
/// `message_stop`. `input_tokens` is 10, `output_tokens` the word count.
pub fn message_stream_events(model: &str, text_chunks: &[&str]) -> Vec<(String, String)> {
    let reply = Reply::new(model, vec![Block::Text(text_chunks.concat())], "end_turn", 10);
    let mut events = reply.to_events();
    // Replace the default ~3-way split with exactly the caller's chunks.
    let first_delta = events.iter().position(|(n, _)| n == "content_block_delta");
    events.retain(|(n, _)| n != "content_block_delta");
    if let Some(at) = first_delta {
        let deltas = text_chunks.iter().map(|c| {
            let data = serde_json::json!({
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": c},
            });
            ("content_block_delta".to_string(), data.to_string())
        });
        events.splice(at..at, deltas);
    }
    events
}

/// A `200 text/event-stream` response that writes `events` one chunk each, `interval` apart
/// (the first right after the headers). With `cut_after = Some(n)`, the body fails after `n`
/// events, so the server drops the connection without terminating the chunked body.
pub(crate) fn stream_response(
    events: Vec<(String, String)>,
    interval: Duration,
    cut_after: Option<usize>,
    headers: Vec<(String, String)>,
    request_id: &str,
) -> Response {
    struct St {
        events: std::vec::IntoIter<(String, String)>,
        sent: usize,
        interval: Duration,
        cut_after: Option<usize>,
        done: bool,
    }
    let st = St { events: events.into_iter(), sent: 0, interval, cut_after, done: false };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        if st.done {
            return None;
        }
        if st.cut_after.is_some_and(|n| st.sent >= n) {
            st.done = true;
            // Let hyper flush what was sent before the connection is dropped.
            tokio::time::sleep(CUT_FLUSH_DELAY).await;
            let err = std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "mock: stream cut");
            return Some((Err(err), st));
        }
        let (name, data) = st.events.next()?;
        if st.sent > 0 && !st.interval.is_zero() {
            tokio::time::sleep(st.interval).await;
        }
        st.sent += 1;
        Some((Ok::<Bytes, std::io::Error>(format_event(&name, &data)), st))
    });
    let mut headers = headers;
    headers.push(("cache-control".into(), "no-cache".into()));
    build_response(200, headers, Body::from_stream(stream), request_id, "text/event-stream")
}

/// A `200 text/event-stream` response whose body is `chunks` as given (see [`crate::Scripted::Chunks`]).
pub(crate) fn chunks_response(chunks: Vec<String>, interval: Duration, end: StreamEnd, request_id: &str) -> Response {
    struct St {
        chunks: std::vec::IntoIter<String>,
        sent: usize,
        interval: Duration,
        end: StreamEnd,
    }
    let st = St { chunks: chunks.into_iter(), sent: 0, interval, end };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        let Some(chunk) = st.chunks.next() else {
            return match st.end {
                StreamEnd::Close => None,
                StreamEnd::Hang => std::future::pending().await,
                StreamEnd::Cut => {
                    st.end = StreamEnd::Close;
                    tokio::time::sleep(CUT_FLUSH_DELAY).await;
                    let err = std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "mock: stream cut");
                    Some((Err(err), st))
                }
            };
        };
        if st.sent > 0 && !st.interval.is_zero() {
            tokio::time::sleep(st.interval).await;
        }
        st.sent += 1;
        Some((Ok::<Bytes, std::io::Error>(Bytes::from(chunk)), st))
    });
    let headers = vec![("cache-control".into(), "no-cache".into())];
    build_response(200, headers, Body::from_stream(stream), request_id, "text/event-stream")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_uses_given_chunks() {
        let ev = message_stream_events("claude-x", &["Hel", "lo"]);
        let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert!(ev[3].1.contains("\"Hel\"") && ev[4].1.contains("\"lo\""));
    }
}
