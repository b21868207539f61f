//! gzip response bodies, as Anthropic's API sends them to clients that accept gzip.
//!
//! JSON bodies are compressed whole (with a `content-length`); event streams chunk by chunk with a sync flush
//! after each, so every event can be decoded as soon as it arrives (what a real server does for SSE). The request
//! header `x-mock-encoding: gzip` forces gzip whatever `accept-encoding` says (an upstream that ignores a request
//! for `identity`); `x-mock-encoding: identity` turns it off.

use std::io::Write;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use futures_util::StreamExt;

/// Whether the client's headers let (or make) the mock answer in gzip.
pub(crate) fn wants_gzip(headers: &HeaderMap) -> bool {
    if let Some(forced) = headers.get("x-mock-encoding").and_then(|v| v.to_str().ok()) {
        return forced.trim().eq_ignore_ascii_case("gzip");
    }
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        },
    )
}

/// Compresses `response`'s body with gzip unless it already has a `content-encoding` or no body.
pub(crate) async fn gzip_response(response: Response) -> Response {
    if response.headers().contains_key(header::CONTENT_ENCODING) {
        return response;
    }
    let streaming = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let (mut parts, body) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    parts.headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    let body = if streaming {
        gzip_stream(body)
    } else {
        match axum::body::to_bytes(body, usize::MAX).await {
            Ok(bytes) => Body::from(gzip(&bytes)),
            Err(e) => Body::from_stream(futures_util::stream::once(async move { Err::<Bytes, _>(e) })),
        }
    };
    Response::from_parts(parts, body)
}

/// `bytes` as one complete gzip member.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// Decodes a gzip body (all members); an error for anything that is not complete, valid gzip.
pub fn gunzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(bytes), &mut out)?;
    Ok(out)
}

/// Each chunk of `body` compressed and flushed at once; the gzip trailer after the last. A body that fails (a cut
/// stream) fails here too, without a trailer.
fn gzip_stream(body: Body) -> Body {
    struct St {
        input: axum::body::BodyDataStream,
        encoder: Option<GzEncoder<Vec<u8>>>,
    }
    let st = St { input: body.into_data_stream(), encoder: Some(GzEncoder::new(Vec::new(), Compression::fast())) };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        let encoder = st.encoder.as_mut()?;
        match st.input.next().await {
            Some(Ok(chunk)) => {
                let written = encoder.write_all(&chunk).and_then(|()| encoder.flush());
                let out = std::mem::take(encoder.get_mut());
                Some((written.map(|()| Bytes::from(out)), st))
            }
            Some(Err(e)) => {
                st.encoder = None;
                Some((Err(std::io::Error::other(e)), st))
            }
            None => {
                let encoder = st.encoder.take()?;
                Some((encoder.finish().map(Bytes::from), st))
            }
        }
    });
    Body::from_stream(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding_decides_unless_forced() {
        let mut h = HeaderMap::new();
        assert!(!wants_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip, deflate"));
        assert!(wants_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        assert!(!wants_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("br, gzip;q=0"));
        assert!(!wants_gzip(&h));
        h.insert("x-mock-encoding", HeaderValue::from_static("gzip"));
        assert!(wants_gzip(&h));
    }

    #[test]
    fn gzip_round_trips() {
        assert_eq!(gunzip(&gzip(b"{\"a\":1}")).unwrap(), b"{\"a\":1}");
        assert!(gunzip(b"not gzip").is_err());
    }
}
