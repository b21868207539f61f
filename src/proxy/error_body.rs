//! An upstream error answer read to judge it and, when no account is left to try, returned to the client.
//!
//! The body is read up to [`MAX_ERROR_BODY`]. A body read in full goes back unchanged (its bytes and
//! `Content-Encoding`), with a `Content-Length` that hyper sets from the bytes. A body cut short (larger than the
//! limit, or the upstream failed while sending it) is never sent truncated: the client gets the upstream's status
//! and headers with an Anthropic error JSON in its place that keeps the upstream's error type and quotes the start
//! of its message when it is readable.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use super::stream::is_encoded;
use crate::transform::anthropic_error::cut_error_body;
use crate::upstream::response_headers_for_client;

/// Error bodies read to classify a failure are small; never read more than this.
pub(super) const MAX_ERROR_BODY: usize = 64 * 1024;

/// An upstream error answer as it goes back to the client.
#[derive(Debug)]
pub(super) struct ErrorAnswer {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    /// The upstream's body, or the replacement for one cut short.
    pub(super) body: Bytes,
}

impl ErrorAnswer {
    /// An answer with a body already in hand; `headers` are the upstream's, minus hop-by-hop ones.
    pub(super) fn new(status: StatusCode, mut headers: HeaderMap, body: Bytes) -> Self {
        // hyper sets the length of what is actually sent.
        headers.remove(http::header::CONTENT_LENGTH);
        Self { status, headers, body }
    }

    /// Reads `response`'s body (at most `cap` bytes) into an answer for the client.
    pub(super) async fn read(response: reqwest::Response, cap: usize) -> Self {
        let status = response.status();
        let mut headers = response_headers_for_client(response.headers());
        let mut body = BytesMut::new();
        let mut stream = response.bytes_stream();
        let cut = loop {
            match stream.next().await {
                Some(Ok(chunk)) if body.len() + chunk.len() > cap => {
                    body.extend_from_slice(&chunk[..cap - body.len()]);
                    break Some(format!(
                        "The upstream answered {} with an error body larger than the gateway reads ({cap} bytes)",
                        status.as_u16()
                    ));
                }
                Some(Ok(chunk)) => body.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    break Some(format!(
                        "The upstream answered {} but its error body could not be read in full ({e})",
                        status.as_u16()
                    ));
                }
                None => break None,
            }
        };
        let Some(why) = cut else {
            return Self::new(status, headers, body.freeze());
        };
        tracing::warn!("{why}; the client gets an error JSON in its place");
        let start = (!is_encoded(&headers)).then_some(&body[..]);
        let request_id = headers.get("request-id").and_then(|v| v.to_str().ok());
        let replacement = cut_error_body(status.as_u16(), start, &why, request_id);
        headers.remove(http::header::CONTENT_ENCODING);
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Self::new(status, headers, Bytes::from(replacement))
    }
}
