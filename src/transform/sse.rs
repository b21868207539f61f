//! Server-sent-event framing for streams passed through byte for byte: where each event ends, found incrementally,
//! and a framer that lets a stream out only in whole events.
//!
//! The gateway never re-serialises an Anthropic stream; it only needs to know where events end, so that it can
//! hold a stream until its first event (failover), and so that an `error` event it adds after a broken upstream
//! never lands inside a half-written event. Both cost one `memchr` pass over each new chunk: the scanner keeps
//! its state between chunks and never looks at a byte twice.
//!
//! An event ends at a blank line (WHATWG "interpreting an event stream"): two line endings in a row, each of which
//! may be LF, CRLF or a lone CR (`\n\n`, `\r\n\r\n` and mixes). Blank lines with no event before them end
//! nothing.

use bytes::{Buf, Bytes, BytesMut};

/// Finds event ends in a byte stream fed in arbitrary chunks.
#[derive(Debug, Clone, Default)]
pub struct EventScanner {
    /// The current line has bytes besides its line ending.
    line_has_content: bool,
    /// The current event has at least one non-empty line.
    event_has_content: bool,
    /// The last byte was a CR: an LF right after it is the same line ending.
    after_cr: bool,
}

/// Event ends found in one chunk: offsets just past the first and the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ends {
    /// Just past the first event end in the chunk.
    pub first: usize,
    /// Just past the last event end in the chunk.
    pub last: usize,
}

impl EventScanner {
    /// A scanner at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Scans the next chunk of the stream; returns the event ends in it, if any. An event ending in CRLF ends after
    /// the LF when both are in this chunk, and after the CR when the chunk ends between them (the LF then begins
    /// the next chunk, which a client's parser joins to the CR as one line ending).
    pub fn scan(&mut self, chunk: &[u8]) -> Option<Ends> {
        let mut ends: Option<Ends> = None;
        // Bytes before `pos` are classified.
        let mut pos = 0;
        for i in memchr::memchr2_iter(b'\n', b'\r', chunk) {
            if i > pos {
                self.line_has_content = true;
                self.after_cr = false;
            }
            pos = i + 1;
            let byte = chunk[i];
            if byte == b'\n' && self.after_cr {
                self.after_cr = false;
                continue;
            }
            self.after_cr = byte == b'\r';
            if self.line_has_content {
                self.line_has_content = false;
                self.event_has_content = true;
            } else if self.event_has_content {
                self.event_has_content = false;
                let end = if byte == b'\r' && chunk.get(pos) == Some(&b'\n') { pos + 1 } else { pos };
                ends = Some(Ends { first: ends.map_or(end, |e| e.first), last: end });
            }
        }
        if pos < chunk.len() {
            self.line_has_content = true;
            self.after_cr = false;
        }
        ends
    }

    /// Whether the bytes after the last event end hold part of an event (not just blank lines).
    pub fn mid_event(&self) -> bool {
        self.line_has_content || self.event_has_content
    }
}

/// An event that had to be held longer than the limit (see [`EventFramer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an upstream stream event is larger than {limit} bytes (server.max_stream_event_bytes)")]
pub struct EventTooLarge {
    /// The limit, in bytes.
    pub limit: usize,
}

/// What one chunk lets out: up to two pieces of whole events, in order, and whether an event outgrew the limit
/// (the stream must then end: nothing more is let out).
#[derive(Debug, Default)]
pub struct Framed {
    /// Whole events (or blank lines), to be written in this order.
    pub pieces: [Option<Bytes>; 2],
    /// Set when an incomplete event would have to be held beyond the limit.
    pub overflow: Option<EventTooLarge>,
}

/// Lets a stream out in whole events: a chunk is passed on up to its last event end and the rest is held until its
/// event completes (normally in the next read). Complete events are never copied or held back: the common chunk
/// (whole events only) goes out as the same `Bytes`; a chunk that ends mid-event goes out as a slice of itself,
/// and only the incomplete tail is copied. At most `limit` bytes of one incomplete event are held.
#[derive(Debug)]
pub struct EventFramer {
    scanner: EventScanner,
    tail: BytesMut,
    limit: usize,
    failed: bool,
}

impl EventFramer {
    /// A framer at the start of a stream, holding at most `limit` bytes of one incomplete event.
    pub fn new(limit: usize) -> Self {
        Self { scanner: EventScanner::new(), tail: BytesMut::new(), limit, failed: false }
    }

    /// Takes the next chunk; returns what can go out now.
    pub fn push(&mut self, mut chunk: Bytes) -> Framed {
        let mut out = Framed::default();
        if self.failed {
            return out;
        }
        let ends = self.scanner.scan(&chunk);
        // Where the part of this chunk that may go out ends: all of it when nothing after the last end is part
        // of an event (blank lines only), else the last event end.
        let cut = if self.scanner.mid_event() { ends.map_or(0, |e| e.last) } else { chunk.len() };
        if cut > 0 {
            if self.tail.is_empty() {
                out.pieces[0] = Some(if cut == chunk.len() { std::mem::take(&mut chunk) } else { chunk.split_to(cut) });
            } else {
                // The held event ends at the first end in this chunk.
                let first = ends.map_or(cut, |e| e.first);
                if self.tail.len() + first > self.limit {
                    return self.overflow(out);
                }
                self.tail.extend_from_slice(&chunk[..first]);
                out.pieces[0] = Some(self.tail.split().freeze());
                if cut > first {
                    out.pieces[1] = Some(chunk.slice(first..cut));
                }
                chunk.advance(cut);
            }
        }
        if !chunk.is_empty() {
            if self.tail.len() + chunk.len() > self.limit {
                return self.overflow(out);
            }
            self.tail.extend_from_slice(&chunk);
        }
        out
    }

    /// Whether the stream, if it ended now, would end in the middle of an event (whose bytes are then dropped).
    pub fn mid_event(&self) -> bool {
        !self.failed && self.scanner.mid_event()
    }

    fn overflow(&mut self, mut out: Framed) -> Framed {
        self.failed = true;
        self.tail = BytesMut::new();
        out.overflow = Some(EventTooLarge { limit: self.limit });
        out
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ends_of(chunks: &[&[u8]]) -> Vec<usize> {
        let mut scanner = EventScanner::new();
        let mut offset = 0;
        let mut out = Vec::new();
        for chunk in chunks {
            let mut rest = *chunk;
            let mut base = offset;
            // Every end in the chunk, not only the first and last: scan the remainder after each end again
            // with a copy of the state.
            while let Some(e) = scanner.clone().scan(rest) {
                scanner.scan(&rest[..e.first]);
                out.push(base + e.first);
                base += e.first;
                rest = &rest[e.first..];
            }
            scanner.scan(rest);
            offset += chunk.len();
        }
        out
    }

    /// Feeds `chunks` through a framer; returns what went out and whether the end is mid-event.
    fn frame(chunks: &[&[u8]], limit: usize) -> (Vec<Bytes>, bool, bool) {
        let mut framer = EventFramer::new(limit);
        let mut out = Vec::new();
        let mut overflow = false;
        for chunk in chunks {
            let framed = framer.push(Bytes::copy_from_slice(chunk));
            out.extend(framed.pieces.into_iter().flatten());
            overflow |= framed.overflow.is_some();
        }
        (out, framer.mid_event(), overflow)
    }

    #[test]
    fn lf_crlf_cr_and_mixed_blank_lines_end_events() {
        assert_eq!(ends_of(&[b"event: a\ndata: 1\n\nevent: b\ndata: 2\n\n"]), [18, 36]);
        assert_eq!(ends_of(&[b"data: 1\r\n\r\ndata: 2\r\n\r\n"]), [11, 22]);
        assert_eq!(ends_of(&[b"data: 1\r\rdata: 2\n\r\ndata: 3\r\n\n"]), [9, 19, 29]);
        assert_eq!(ends_of(&[b"\n\n\r\n: ping\n\n"]), [12], "blank lines before an event end nothing");
        assert_eq!(ends_of(&[b"data: 1\n", b"\n"]), [9], "the blank line in the next chunk");
        assert_eq!(ends_of(&[b"data: 1\r", b"\n\r", b"\n"]), [10], "CRLF split at every byte");
        assert!(ends_of(&[b"data: {\"a\":1}", b"\n", b"data: 2"]).is_empty());
    }

    #[test]
    fn a_whole_event_chunk_goes_out_as_the_same_bytes() {
        let chunk = Bytes::from_static(b"event: ping\ndata: {\"type\":\"ping\"}\n\n");
        let mut framer = EventFramer::new(1024);
        let framed = framer.push(chunk.clone());
        let piece = framed.pieces[0].clone().unwrap();
        assert_eq!(piece.as_ptr(), chunk.as_ptr(), "no copy");
        assert_eq!(piece.len(), chunk.len());
        assert!(framed.pieces[1].is_none() && framed.overflow.is_none() && !framer.mid_event());
    }

    #[test]
    fn a_chunk_cut_mid_event_goes_out_up_to_the_last_event_end() {
        let (out, mid, _) =
            frame(&[b"event: a\ndata: 1\n\nevent: b\nda", b"ta: 2\n\nevent: c\n", b"data: 3\n\n"], 1024);
        assert_eq!(out[0], &b"event: a\ndata: 1\n\n"[..]);
        assert_eq!(out[1], &b"event: b\ndata: 2\n\n"[..]);
        assert_eq!(out[2], &b"event: c\ndata: 3\n\n"[..]);
        assert_eq!(out.len(), 3);
        assert!(!mid);
        let (out, mid, _) = frame(&[b"event: a\ndata: 1\n\nevent: b\ndata: {\"x\":"], 1024);
        assert_eq!(out, [&b"event: a\ndata: 1\n\n"[..]]);
        assert!(mid, "the stream would end mid-event");
    }

    #[test]
    fn an_event_held_beyond_the_limit_overflows_but_complete_ones_before_it_go_out() {
        let (out, _, overflow) = frame(&[b"data: 1\n\ndata: 0123456789"], 8);
        assert_eq!(out, [&b"data: 1\n\n"[..]]);
        assert!(overflow);
        let (out, _, overflow) = frame(&[b"data: 01", b"23456789\n\n"], 12);
        assert!(out.is_empty() && overflow, "the held event would grow past the limit when completed");
        let (out, _, overflow) = frame(&[b"data: 0123456789\n\n"], 4);
        assert_eq!(out.len(), 1, "an event complete within one chunk is never held, whatever its size");
        assert!(!overflow);
    }

    const TOKENS: &[&[u8]] =
        &[b"event: x", b"data: {\"a\":1}", b"\n", b"\r", b"\r\n", b": ping", b"a", b"\n\n", b"\r\n\r\n"];

    fn stream_bytes() -> impl Strategy<Value = Vec<u8>> {
        let token = prop::sample::select(TOKENS);
        prop::collection::vec(token, 0..40).prop_map(|t| t.concat())
    }

    fn chunked(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut out = Vec::new();
        let mut at = 0;
        for c in cuts.into_iter().chain([bytes.len()]) {
            out.push(bytes[at..c].to_vec());
            at = c;
        }
        out
    }

    /// A CRLF split by a chunk edge ends the event after the CR; in one piece, after the LF.
    fn normalise(bytes: &[u8], ends: Vec<usize>) -> Vec<usize> {
        ends.into_iter()
            .map(|e| if bytes[e - 1] == b'\r' && bytes.get(e) == Some(&b'\n') { e + 1 } else { e })
            .collect()
    }

    proptest! {
        #[test]
        fn any_chunking_finds_the_same_event_ends_as_one_scan(
            bytes in stream_bytes(),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            let whole = ends_of(&[&bytes]);
            let chunks = chunked(&bytes, &cuts);
            let parts: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
            prop_assert_eq!(normalise(&bytes, ends_of(&parts)), whole);
        }

        #[test]
        fn the_framer_lets_out_whole_events_in_order_and_holds_only_a_tail(
            bytes in stream_bytes(),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            let chunks = chunked(&bytes, &cuts);
            let parts: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
            let (out, mid, overflow) = frame(&parts, usize::MAX);
            prop_assert!(!overflow);
            let sent = out.concat();
            prop_assert!(bytes.starts_with(&sent), "the output is a prefix of the input, in order");
            let mut check = EventScanner::new();
            check.scan(&sent);
            prop_assert!(!check.mid_event(), "what went out ends on an event boundary");
            // Nothing complete is held: the held tail has no event end of its own.
            let tail = &bytes[sent.len()..];
            prop_assert!(ends_of(&[tail]).is_empty(), "a held tail never holds a complete event");
            prop_assert_eq!(mid, { let mut s = EventScanner::new(); s.scan(&bytes); s.mid_event() });
        }
    }
}
