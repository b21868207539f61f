use proptest::prelude::*;

use super::*;

/// A full stream in the shape of protocol.md §4 (and the mock upstream): `message_start` with the input side of
/// `usage`, a text block with deltas and a `ping` in between, `message_delta` with the cumulative usage and
/// `stop_reason`, `message_stop`.
const STREAM: &str = concat!(
    "event: message_start\n",
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",",
    "\"content\":[],\"model\":\"claude-sonnet-5-20260101\",\"stop_reason\":null,\"stop_sequence\":null,",
    "\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":1200,\"cache_read_input_tokens\":30000,",
    "\"cache_creation\":{\"ephemeral_5m_input_tokens\":200,\"ephemeral_1h_input_tokens\":1000},\"output_tokens\":1}}}\n\n",
    "event: content_block_start\n",
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: ping\n",
    "data: {\"type\": \"ping\"}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"! \\\"usage\\\": {}\"}}\n\n",
    "event: content_block_stop\n",
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: message_delta\n",
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},",
    "\"usage\":{\"output_tokens\":15}}\n\n",
    "event: message_stop\n",
    "data: {\"type\":\"message_stop\"}\n\n",
);

fn expected_stream() -> Seen {
    Seen {
        tokens: Tokens { input: 25, output: 15, cache_creation: 1200, cache_read: 30000, cache_creation_1h: 1000 },
        model: Some("claude-sonnet-5-20260101".into()),
        stop_reason: Some("end_turn".into()),
        error: None,
        complete: true,
    }
}

fn tap_all(mut tap: UsageTap, chunks: &[&[u8]]) -> Seen {
    for c in chunks {
        tap.feed(c);
    }
    tap.finish()
}

#[test]
fn stream_usage_comes_from_message_start_and_the_cumulative_message_delta() {
    assert_eq!(tap_all(UsageTap::sse(), &[STREAM.as_bytes()]), expected_stream());
}

#[test]
fn stream_split_inside_events_and_with_crlf_reads_the_same() {
    let crlf = STREAM.replace('\n', "\r\n");
    let bytes = crlf.as_bytes();
    // Split between \r and \n, inside the message_start JSON and inside a field name.
    let cuts = [1, 17, 60, 61, 200, 201, bytes.len() - 3];
    let mut chunks = Vec::new();
    let mut last = 0;
    for c in cuts {
        chunks.push(&bytes[last..c]);
        last = c;
    }
    chunks.push(&bytes[last..]);
    assert_eq!(tap_all(UsageTap::sse(), &chunks), expected_stream());
}

#[test]
fn message_delta_with_input_and_cache_fields_replaces_the_start_values() {
    let stream = concat!(
        "event: message_start\n",
        "data: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-opus-5\",\"usage\":{\"input_tokens\":10,",
        "\"cache_read_input_tokens\":5,\"output_tokens\":1}}}\n\n",
        "event: message_delta\n",
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"input_tokens\":12,",
        "\"cache_read_input_tokens\":7,\"output_tokens\":88,\"server_tool_use\":{\"web_search_requests\":1}}}\n\n",
    );
    let seen = tap_all(UsageTap::sse(), &[stream.as_bytes()]);
    assert_eq!(seen.tokens, Tokens { input: 12, output: 88, cache_creation: 0, cache_read: 7, cache_creation_1h: 0 });
    assert_eq!(seen.stop_reason.as_deref(), Some("tool_use"));
    assert!(!seen.complete, "no message_stop");
}

#[test]
fn cancelled_stream_reports_what_was_seen() {
    // The client went away after the first delta: input side known, output only the start's running count.
    let cut = STREAM.find("event: content_block_stop").unwrap();
    let mut tap = UsageTap::sse();
    tap.feed(&STREAM.as_bytes()[..cut]);
    let seen = tap.seen().clone();
    assert_eq!(
        seen.tokens,
        Tokens { input: 25, output: 1, cache_creation: 1200, cache_read: 30000, cache_creation_1h: 1000 }
    );
    assert_eq!(seen.model.as_deref(), Some("claude-sonnet-5-20260101"));
    assert_eq!(seen.stop_reason, None);
    assert!(!seen.complete);
    assert_eq!(tap.finish(), seen);
}

#[test]
fn error_event_mid_stream_is_named_and_keeps_the_counts() {
    let cut = STREAM.find("event: message_delta").unwrap();
    let stream = format!(
        "{}event: error\ndata: {{\"type\":\"error\",\"error\":{{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}}}\n\n",
        &STREAM[..cut]
    );
    let seen = tap_all(UsageTap::sse(), &[stream.as_bytes()]);
    assert_eq!(seen.error.as_deref(), Some("overloaded_error"));
    assert_eq!(seen.tokens.input, 25);
    assert!(!seen.complete);
}

#[test]
fn unknown_events_and_streams_without_event_lines_are_handled() {
    let stream = concat!(
        ": a comment\n\n",
        "event: brand_new_event\ndata: {\"type\":\"brand_new_event\",\"usage\":{\"output_tokens\":999}}\n\n",
        // No event: line at all: read by the data's type.
        "data: {\"type\":\"message_start\",\"message\":{\"model\":\"m\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"},\"usage\":{\"output_tokens\":4}}\n\n",
        "event: message_delta\ndata: not json\n\n",
    );
    let seen = tap_all(UsageTap::sse(), &[stream.as_bytes()]);
    assert_eq!(seen.tokens, Tokens { input: 3, output: 4, ..Tokens::default() });
    assert_eq!(seen.stop_reason.as_deref(), Some("max_tokens"));
}

#[test]
fn unterminated_last_event_is_not_counted() {
    // A stream cut mid-event (connection lost): the half event is dropped, as SSE clients do.
    let cut = STREAM.find("\"usage\":{\"output_tokens\":15}").unwrap();
    let seen = tap_all(UsageTap::sse(), &[&STREAM.as_bytes()[..cut]]);
    assert_eq!(seen.tokens.output, 1);
    assert_eq!(seen.stop_reason, None);
}

const BODY: &str = concat!(
    "{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-haiku-4-5-20251001\",",
    "\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"t\",\"input\":{\"usage\":{\"output_tokens\":7}}}],",
    "\"stop_reason\":\"tool_use\",\"stop_sequence\":null,",
    "\"usage\":{\"input_tokens\":2095,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":100,\"output_tokens\":503}}"
);

#[test]
fn json_body_usage_model_and_stop_reason() {
    let bytes = BODY.as_bytes();
    let seen = tap_all(UsageTap::json(), &[&bytes[..10], &bytes[10..]]);
    assert_eq!(
        seen.tokens,
        Tokens { input: 2095, output: 503, cache_creation: 0, cache_read: 100, cache_creation_1h: 0 }
    );
    assert_eq!(seen.model.as_deref(), Some("claude-haiku-4-5-20251001"));
    assert_eq!(seen.stop_reason.as_deref(), Some("tool_use"));
    assert!(seen.complete);
}

#[test]
fn json_error_body_names_the_error_and_has_no_tokens() {
    let body =
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"rate limit exceeded"},"request_id":"req_1"}"#;
    let seen = tap_all(UsageTap::json(), &[body.as_bytes()]);
    assert_eq!(seen.error.as_deref(), Some("rate_limit_error"));
    assert_eq!(seen.tokens, Tokens::default());
    // count_tokens answers {"input_tokens": N}: a count, not usage; nothing is recorded as used.
    let seen = tap_all(UsageTap::json(), &[br#"{"input_tokens":14}"#]);
    assert_eq!(seen.tokens, Tokens::default());
}

#[test]
fn json_body_larger_than_the_cap_reads_model_from_the_head_and_usage_from_the_tail() {
    let text = "x".repeat(3 * JSON_CAP);
    let body = BODY.replace("\"content\":[", &format!("\"content\":[{{\"type\":\"text\",\"text\":\"{text}\"}},"));
    let mut tap = UsageTap::json();
    for chunk in body.as_bytes().chunks(16 * 1024 + 3) {
        tap.feed(chunk);
    }
    let seen = tap.finish();
    assert_eq!(
        seen.tokens,
        Tokens { input: 2095, output: 503, cache_creation: 0, cache_read: 100, cache_creation_1h: 0 }
    );
    assert_eq!(seen.model.as_deref(), Some("claude-haiku-4-5-20251001"));
    assert_eq!(seen.stop_reason.as_deref(), Some("tool_use"));
}

#[test]
fn content_type_picks_the_tap() {
    assert!(UsageTap::for_content_type(Some("text/event-stream; charset=utf-8")).is_stream());
    assert!(!UsageTap::for_content_type(Some("application/json")).is_stream());
    assert!(!UsageTap::for_content_type(None).is_stream());
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn zlib(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn a_gzip_or_deflate_json_body_is_decoded_for_its_usage() {
    let plain = tap_all(UsageTap::json(), &[BODY.as_bytes()]);
    assert!(plain.complete);
    for (encoding, body) in
        [("gzip", gzip(BODY.as_bytes())), ("GZIP", gzip(BODY.as_bytes())), ("deflate", zlib(BODY.as_bytes()))]
    {
        let tap = UsageTap::for_response(Some("application/json"), Some(encoding));
        let (a, b) = body.split_at(body.len() / 3);
        assert_eq!(tap_all(tap, &[a, b]), plain, "{encoding}");
    }
    // identity is no encoding at all.
    let tap = UsageTap::for_response(Some("application/json"), Some("identity"));
    assert_eq!(tap_all(tap, &[BODY.as_bytes()]), plain);
}

#[test]
fn a_broken_or_unknown_encoding_counts_nothing_and_never_panics() {
    let mut broken = gzip(BODY.as_bytes());
    broken.truncate(broken.len() / 2);
    let tap = UsageTap::for_response(Some("application/json"), Some("gzip"));
    assert_eq!(tap_all(tap, &[&broken]), Seen::default(), "a cut gzip body");
    let tap = UsageTap::for_response(Some("application/json"), Some("gzip"));
    assert_eq!(tap_all(tap, &[b"not gzip at all", BODY.as_bytes()]), Seen::default());
    let tap = UsageTap::for_response(Some("application/json"), Some("br"));
    assert_eq!(tap_all(tap, &[BODY.as_bytes()]), Seen::default(), "brotli is not decoded");
}

#[test]
fn a_huge_gzip_body_stays_within_the_copys_bounds() {
    let text = "x".repeat(3 * JSON_CAP);
    let body = BODY.replace("\"content\":[", &format!("\"content\":[{{\"type\":\"text\",\"text\":\"{text}\"}},"));
    let compressed = gzip(body.as_bytes());
    assert!(compressed.len() < JSON_CAP / 10, "compresses well: {}", compressed.len());
    let mut tap = UsageTap::for_response(Some("application/json"), Some("gzip"));
    for chunk in compressed.chunks(4096) {
        tap.feed(chunk);
    }
    let seen = tap.finish();
    assert_eq!(seen.tokens.output, 503);
    assert_eq!(seen.model.as_deref(), Some("claude-haiku-4-5-20251001"));
}

fn chunked(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut last = 0;
    for c in cuts {
        out.push(bytes[last..c].to_vec());
        last = c;
    }
    out.push(bytes[last..].to_vec());
    out
}

proptest! {
    #[test]
    fn any_chunking_of_a_stream_gives_the_same_totals(cuts in proptest::collection::vec(0usize..4000, 0..40), crlf: bool) {
        let text = if crlf { STREAM.replace('\n', "\r\n") } else { STREAM.to_string() };
        let chunks = chunked(text.as_bytes(), &cuts);
        let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        prop_assert_eq!(tap_all(UsageTap::sse(), &refs), expected_stream());
    }

    #[test]
    fn any_chunking_of_a_json_body_gives_the_same_totals(cuts in proptest::collection::vec(0usize..600, 0..20)) {
        let chunks = chunked(BODY.as_bytes(), &cuts);
        let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        let whole = tap_all(UsageTap::json(), &[BODY.as_bytes()]);
        prop_assert_eq!(tap_all(UsageTap::json(), &refs), whole);
    }

    #[test]
    fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2000), cuts in proptest::collection::vec(0usize..2000, 0..10)) {
        let gzip = || UsageTap::for_response(Some("application/json"), Some("gzip"));
        let deflate = || UsageTap::for_response(Some("application/json"), Some("deflate"));
        for tap in [UsageTap::sse(), UsageTap::json(), gzip(), deflate()] {
            let chunks = chunked(&data, &cuts);
            let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
            let _ = tap_all(tap, &refs);
        }
    }

    #[test]
    fn mangled_streams_never_panic(cut in 0usize..1500, insert in "[a-z{}\":\\n\\r ]{0,40}") {
        let mut text = STREAM.to_string();
        let at = text.char_indices().map(|(i, _)| i).find(|i| *i >= cut.min(text.len())).unwrap_or(text.len());
        text.insert_str(at, &insert);
        let _ = tap_all(UsageTap::sse(), &[text.as_bytes()]);
        let _ = tap_all(UsageTap::json(), &[text.as_bytes()]);
    }
}
