//! Token accounting from a response body as it passes, without holding the body back or keeping it.
//!
//! [`UsageTap`] is fed each chunk the client is sent, in order, and keeps only what usage needs:
//! - an Anthropic SSE stream (`text/event-stream`): `message_start.message` gives `model` and the input side of
//!   `usage`; each `message_delta` carries the *cumulative* `usage` (at least `output_tokens`) and `stop_reason`;
//!   an `error` event names the failure. Other events (`content_block_*`, `ping`, unknown ones) are skipped
//!   without being parsed. The OpenAI route converts the same upstream stream, so a tap on the upstream bytes
//!   covers it too.
//! - a JSON body (a Messages answer or an error): a copy of at most [`JSON_CAP`] bytes is parsed at the end. A
//!   larger body (rare: a very long non-streamed answer) keeps its first and last [`JSON_EDGE`] bytes, and
//!   `model` is read from the head, `usage` and `stop_reason` from the tail (Anthropic writes them last).
//!
//! - a gzip- or deflate-encoded JSON body (non-streamed answers keep the client's `Accept-Encoding`): decoded as
//!   it passes into the same bounded copy; the client still gets the upstream's bytes untouched.
//!
//! Pure and synchronous: no I/O, no panics on any input, and any chunking of the same bytes gives the same result.

use serde::Deserialize;

use super::record::Tokens;

/// Largest JSON body copied whole for parsing.
pub const JSON_CAP: usize = 1024 * 1024;
/// Bytes kept from each end of a JSON body larger than [`JSON_CAP`].
pub const JSON_EDGE: usize = 64 * 1024;
/// Largest SSE event the tap buffers; a larger one (only ever a content delta) is skipped.
const SSE_EVENT_CAP: usize = 1024 * 1024;

/// What a tap saw in a response body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// Token counts (the latest cumulative values).
    pub tokens: Tokens,
    /// The `model` the upstream answered with.
    pub model: Option<String>,
    /// `stop_reason`.
    pub stop_reason: Option<String>,
    /// `error.type` of an error event or error body (`overloaded_error`, …).
    pub error: Option<String>,
    /// A stream reached `message_stop`, or a JSON body parsed as a complete message.
    pub complete: bool,
}

/// Incremental usage reader for one response body. See the module docs.
#[derive(Debug)]
pub struct UsageTap {
    mode: Mode,
    seen: Seen,
}

#[derive(Debug)]
enum Mode {
    Sse(Box<sse_parse::SseParser>),
    Json(JsonCopy),
    /// A compressed JSON body, decoded into the copy. `None` once the encoding proved broken (nothing is counted).
    Gzip(Option<Box<flate2::write::MultiGzDecoder<JsonCopy>>>),
    Deflate(Option<Box<flate2::write::ZlibDecoder<JsonCopy>>>),
    /// An encoding the tap cannot read: the body passes uncounted.
    Opaque,
}

impl UsageTap {
    /// A tap for an SSE stream.
    pub fn sse() -> Self {
        Self { mode: Mode::Sse(Box::new(sse_parse::SseParser::new().max_buffer(SSE_EVENT_CAP))), seen: Seen::default() }
    }

    /// A tap for a JSON body.
    pub fn json() -> Self {
        Self { mode: Mode::Json(JsonCopy::default()), seen: Seen::default() }
    }

    /// The right tap for a response's `content-type`: SSE for `text/event-stream`, JSON otherwise.
    pub fn for_content_type(content_type: Option<&str>) -> Self {
        match content_type {
            Some(ct) if ct.trim_start().starts_with("text/event-stream") => Self::sse(),
            _ => Self::json(),
        }
    }

    /// The right tap for a response's `content-type` and `content-encoding`: a gzip or deflate JSON body is decoded
    /// as it passes; another encoding (or a compressed stream, which the gateway never asks for) is not read.
    pub fn for_response(content_type: Option<&str>, content_encoding: Option<&str>) -> Self {
        let encoding = content_encoding.map(str::trim).filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("identity"));
        let Some(encoding) = encoding else {
            return Self::for_content_type(content_type);
        };
        let plain = Self::for_content_type(content_type);
        let mode = match plain.mode {
            Mode::Json(copy) if encoding.eq_ignore_ascii_case("gzip") || encoding.eq_ignore_ascii_case("x-gzip") => {
                Mode::Gzip(Some(Box::new(flate2::write::MultiGzDecoder::new(copy))))
            }
            Mode::Json(copy) if encoding.eq_ignore_ascii_case("deflate") => {
                Mode::Deflate(Some(Box::new(flate2::write::ZlibDecoder::new(copy))))
            }
            _ => Mode::Opaque,
        };
        Self { mode, seen: Seen::default() }
    }

    /// Whether this tap reads an SSE stream.
    pub fn is_stream(&self) -> bool {
        matches!(self.mode, Mode::Sse(_))
    }

    /// Reads the next chunk of the body.
    pub fn feed(&mut self, chunk: &[u8]) {
        match &mut self.mode {
            Mode::Sse(parser) => {
                parser.feed(chunk);
                while let Some(event) = parser.next_event() {
                    apply_event(&mut self.seen, &event.event, &event.data);
                }
            }
            Mode::Json(copy) => copy.push(chunk),
            Mode::Gzip(decoder) => {
                if decoder.as_mut().is_some_and(|d| std::io::Write::write_all(d.as_mut(), chunk).is_err()) {
                    *decoder = None;
                }
            }
            Mode::Deflate(decoder) => {
                if decoder.as_mut().is_some_and(|d| std::io::Write::write_all(d.as_mut(), chunk).is_err()) {
                    *decoder = None;
                }
            }
            Mode::Opaque => {}
        }
    }

    /// What has been seen so far, without ending the tap: for a stream the client cancelled, this is what it used
    /// as far as anyone knows. For a JSON body it is empty until [`finish`](Self::finish).
    pub fn seen(&self) -> &Seen {
        &self.seen
    }

    /// Ends the body and returns what was seen. A JSON body is parsed here.
    pub fn finish(mut self) -> Seen {
        match &mut self.mode {
            Mode::Sse(parser) => {
                // An event without its closing blank line is incomplete; the parser drops it, as a client would.
                parser.finish();
                while let Some(event) = parser.next_event() {
                    apply_event(&mut self.seen, &event.event, &event.data);
                }
            }
            Mode::Json(copy) => copy.parse_into(&mut self.seen),
            Mode::Gzip(decoder) => {
                if let Some(mut copy) = decoder.take().and_then(|d| d.finish().ok()) {
                    copy.parse_into(&mut self.seen);
                }
            }
            Mode::Deflate(decoder) => {
                if let Some(mut copy) = decoder.take().and_then(|d| d.finish().ok()) {
                    copy.parse_into(&mut self.seen);
                }
            }
            Mode::Opaque => {}
        }
        self.seen
    }
}

/// The `usage` object (every field optional: `message_delta` often has only `output_tokens`).
#[derive(Debug, Default, Deserialize)]
struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation: Option<WireCacheCreation>,
}

#[derive(Debug, Default, Deserialize)]
struct WireCacheCreation {
    ephemeral_1h_input_tokens: Option<u64>,
}

impl WireUsage {
    /// Counts are cumulative: a field present replaces the earlier value, an absent one keeps it.
    fn apply(&self, tokens: &mut Tokens) {
        let set = |slot: &mut u64, v: Option<u64>| {
            if let Some(v) = v {
                *slot = v;
            }
        };
        set(&mut tokens.input, self.input_tokens);
        set(&mut tokens.output, self.output_tokens);
        set(&mut tokens.cache_creation, self.cache_creation_input_tokens);
        set(&mut tokens.cache_read, self.cache_read_input_tokens);
        set(&mut tokens.cache_creation_1h, self.cache_creation.as_ref().and_then(|c| c.ephemeral_1h_input_tokens));
    }
}

#[derive(Debug, Default, Deserialize)]
struct WireMessage {
    model: Option<String>,
    usage: Option<WireUsage>,
}

#[derive(Debug, Default, Deserialize)]
struct WireDelta {
    stop_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct WireError {
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// One SSE event's data, or a whole JSON body: the union of the fields usage reads.
#[derive(Debug, Default, Deserialize)]
struct WireEvent {
    #[serde(rename = "type")]
    kind: Option<String>,
    message: Option<WireMessage>,
    delta: Option<WireDelta>,
    usage: Option<WireUsage>,
    error: Option<WireError>,
    // A JSON Messages body has these at the top level.
    model: Option<String>,
    stop_reason: Option<String>,
}

/// The event types usage reads; every other one is skipped unparsed.
fn wanted(name: &str) -> bool {
    matches!(name, "message_start" | "message_delta" | "message_stop" | "error")
}

fn apply_event(seen: &mut Seen, name: &str, data: &str) {
    // The `event:` line names the type; a stream without one ("message") is read by its data's `type` instead,
    // which costs a parse only for such streams.
    if name != "message" && !wanted(name) {
        return;
    }
    let Ok(event) = serde_json::from_str::<WireEvent>(data) else {
        return;
    };
    let kind = if name == "message" { event.kind.as_deref().unwrap_or("") } else { name };
    match kind {
        "message_start" => {
            if let Some(message) = event.message {
                if message.model.is_some() {
                    seen.model = message.model;
                }
                if let Some(usage) = message.usage {
                    usage.apply(&mut seen.tokens);
                }
            }
        }
        "message_delta" => {
            if let Some(usage) = event.usage {
                usage.apply(&mut seen.tokens);
            }
            if let Some(reason) = event.delta.and_then(|d| d.stop_reason) {
                seen.stop_reason = Some(reason);
            }
        }
        "message_stop" => seen.complete = true,
        "error" => seen.error = Some(event.error.and_then(|e| e.kind).unwrap_or_else(|| "error".into())),
        _ => {}
    }
}

/// A bounded copy of a JSON body: whole up to [`JSON_CAP`], else its head and a rolling tail.
#[derive(Debug, Default)]
struct JsonCopy {
    buf: Vec<u8>,
    /// Set once the body outgrew [`JSON_CAP`]: `buf` then holds only the head.
    tail: Option<Tail>,
}

#[derive(Debug, Default)]
struct Tail {
    ring: Vec<u8>,
    /// Where the next byte goes once the ring is full.
    pos: usize,
}

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        let bytes = &bytes[bytes.len().saturating_sub(JSON_EDGE)..];
        for &b in bytes {
            if self.ring.len() < JSON_EDGE {
                self.ring.push(b);
            } else {
                self.ring[self.pos] = b;
                self.pos = (self.pos + 1) % JSON_EDGE;
            }
        }
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut out = self.ring;
        out.rotate_left(self.pos);
        out
    }
}

/// The decoders write the decoded body into the copy (bounded like an uncompressed one).
impl std::io::Write for JsonCopy {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl JsonCopy {
    fn push(&mut self, chunk: &[u8]) {
        if let Some(tail) = &mut self.tail {
            tail.push(chunk);
            return;
        }
        if self.buf.len() + chunk.len() <= JSON_CAP {
            self.buf.extend_from_slice(chunk);
            return;
        }
        // Outgrown: keep the head, move the rest into the tail.
        let mut tail = Tail::default();
        tail.push(&self.buf[JSON_EDGE.min(self.buf.len())..]);
        tail.push(chunk);
        self.buf.truncate(JSON_EDGE);
        self.buf.shrink_to_fit();
        self.tail = Some(tail);
    }

    fn parse_into(&mut self, seen: &mut Seen) {
        let head = std::mem::take(&mut self.buf);
        match self.tail.take() {
            None => {
                let Ok(body) = serde_json::from_slice::<WireEvent>(&head) else {
                    return;
                };
                if body.kind.as_deref() == Some("error") {
                    seen.error = Some(body.error.and_then(|e| e.kind).unwrap_or_else(|| "error".into()));
                    return;
                }
                seen.model = body.model;
                seen.stop_reason = body.stop_reason;
                if let Some(usage) = body.usage {
                    usage.apply(&mut seen.tokens);
                    seen.complete = true;
                }
            }
            Some(tail) => {
                let tail = tail.into_bytes();
                seen.model = value_after_key::<String>(&head, b"\"model\":", Pick::First);
                seen.stop_reason = value_after_key::<String>(&tail, b"\"stop_reason\":", Pick::Last);
                if let Some(usage) = value_after_key::<WireUsage>(&tail, b"\"usage\":", Pick::Last) {
                    usage.apply(&mut seen.tokens);
                    seen.complete = true;
                }
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Pick {
    First,
    Last,
}

/// The JSON value after `key` (e.g. `"usage":`) in a fragment of a document. Inside a JSON string a quote is always
/// escaped, so the raw bytes `"usage":` only occur as a key; the top-level `usage` is the last one in an Anthropic
/// message (nested tool inputs come before it), the top-level `model` the first.
fn value_after_key<T: for<'de> Deserialize<'de>>(bytes: &[u8], key: &[u8], pick: Pick) -> Option<T> {
    let mut positions = bytes.windows(key.len()).enumerate().filter(|(_, w)| *w == key).map(|(i, _)| i);
    let at = match pick {
        Pick::First => positions.next()?,
        Pick::Last => positions.next_back()?,
    };
    let rest = &bytes[at + key.len()..];
    let mut de = serde_json::Deserializer::from_slice(rest);
    T::deserialize(&mut de).ok()
}

#[cfg(test)]
#[path = "tap_tests.rs"]
mod tests;
