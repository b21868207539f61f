//! Property tests: no input makes any converter panic, stream output keeps its framing rules, and the SSE parser
//! is independent of chunk boundaries.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::Value;

use super::strategies::{chat_request, check_anthropic_request, json_value, sse_event, valid_request, word};
use super::*;

fn response_ctx(include_usage: bool, json_tool: bool) -> ResponseContext {
    ResponseContext {
        id: "chatcmpl-p".into(),
        created: 0,
        requested_model: "gpt-4o".into(),
        include_usage,
        json_tool: json_tool.then(|| "json_response".to_owned()),
    }
}

/// Cuts `bytes` at the given (unsorted, possibly out-of-range) points.
fn split<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut pieces = Vec::new();
    let mut from = 0;
    for at in points {
        pieces.push(&bytes[from..at]);
        from = at;
    }
    pieces.push(&bytes[from..]);
    pieces
}

/// The framing rules every stream must keep, whatever the input.
fn check_frames(frames: &[String]) -> Result<(), TestCaseError> {
    for (i, frame) in frames.iter().enumerate() {
        if frame == ": ping\n\n" {
            prop_assert!(i + 1 < frames.len(), "a stream never ends with a ping");
            continue;
        }
        let payload = frame.strip_prefix("data: ").and_then(|f| f.strip_suffix("\n\n"));
        prop_assert!(payload.is_some(), "bad frame {frame:?}");
        let payload = payload.unwrap_or_default();
        let last = i + 1 == frames.len();
        if payload == "[DONE]" {
            prop_assert!(last, "[DONE] must be the last frame");
            continue;
        }
        let value: Value = serde_json::from_str(payload).map_err(|e| TestCaseError::fail(format!("{e}: {payload}")))?;
        if value.get("error").is_some() {
            prop_assert!(last, "an error frame must be the last frame");
        } else {
            prop_assert_eq!(&value["object"], "chat.completion.chunk");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), status in 100u16..600) {
        let aliases = default_aliases();
        let _ = chat_request_to_anthropic(&bytes, &ConvertOptions { default_max_tokens: 1, aliases: &aliases });
        let _ = anthropic_response_to_chat(&bytes, &response_ctx(true, true));
        let _ = anthropic_error_to_openai(status, &bytes);
        let _ = models_list_for_openai(&bytes);
        let _ = SseParser::new().push(&bytes);
        let _ = openai_error_body(status, &String::from_utf8_lossy(&bytes), None);
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value(), status in 100u16..600) {
        let bytes = value.to_string().into_bytes();
        let aliases = BTreeMap::new();
        let _ = chat_request_to_anthropic(&bytes, &ConvertOptions { default_max_tokens: 4096, aliases: &aliases });
        let _ = anthropic_response_to_chat(&bytes, &response_ctx(false, true));
        let _ = anthropic_error_to_openai(status, &bytes);
        let _ = models_list_for_openai(&bytes);
        let _ = detect_wrong_format(&value, Format::Anthropic);
        let _ = detect_wrong_format(&value, Format::OpenAi);
    }

    #[test]
    fn random_chat_requests_convert_or_fail_cleanly(request in chat_request()) {
        let aliases = default_aliases();
        match chat_request_to_anthropic(request.to_string().as_bytes(), &ConvertOptions { default_max_tokens: 4096, aliases: &aliases }) {
            Ok(converted) => {
                let body: Value = serde_json::from_slice(&converted.body).map_err(|e| TestCaseError::fail(e.to_string()))?;
                check_anthropic_request(&body)?;
            }
            Err(e) => {
                prop_assert_eq!(e.status(), 400);
                let body: Value = serde_json::from_slice(&e.to_body()).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(body["error"]["message"].is_string());
            }
        }
    }

    #[test]
    fn well_formed_requests_meet_anthropic_rules(request in valid_request()) {
        let aliases = default_aliases();
        let result = chat_request_to_anthropic(request.to_string().as_bytes(), &ConvertOptions { default_max_tokens: 4096, aliases: &aliases });
        match result {
            Ok(converted) => {
                let body: Value = serde_json::from_slice(&converted.body).map_err(|e| TestCaseError::fail(e.to_string()))?;
                check_anthropic_request(&body)?;
            }
            // Conversations whose every message is blank are the only expected rejection, besides a forced
            // tool_choice without tools.
            Err(e) => prop_assert!(
                matches!(e.param(), Some("messages" | "tool_choice")),
                "unexpected error {e} for {request}"
            ),
        }
    }

    #[test]
    fn anthropic_responses_never_panic(content in proptest::collection::vec(json_value(), 0..5), stop in word(), usage in json_value()) {
        let body = serde_json::json!({"type": "message", "content": content, "stop_reason": stop, "usage": usage});
        let _ = anthropic_response_to_chat(body.to_string().as_bytes(), &response_ctx(false, true));
    }

    #[test]
    fn streams_never_panic_and_keep_framing(
        events in proptest::collection::vec(sse_event(), 0..24),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
        include_usage in any::<bool>(),
        json_tool in any::<bool>(),
    ) {
        let mut wire = String::new();
        for (name, data) in &events {
            wire.push_str(&format!("event: {name}\ndata: {data}\n\n"));
        }
        let mut parser = SseParser::new();
        let mut converter = ChunkConverter::new(response_ctx(include_usage, json_tool));
        let mut frames = Vec::new();
        for piece in split(wire.as_bytes(), &cuts) {
            for event in parser.push(piece) {
                let was_done = converter.is_done();
                let out = converter.on_event(&event.event, &event.data);
                prop_assert!(!was_done || out.is_empty(), "output after the end");
                frames.extend(out);
            }
        }
        frames.extend(converter.finish());
        prop_assert!(converter.is_done());
        prop_assert!(converter.finish().is_empty());
        check_frames(&frames)?;
    }

    #[test]
    fn sse_parser_ignores_chunk_boundaries(
        bytes in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..400),
            proptest::collection::vec(sse_event(), 0..8).prop_map(|events| events
                .into_iter()
                .map(|(name, data)| format!("event: {name}\r\ndata: {data}\ndata:\r:c\n\n"))
                .collect::<String>()
                .into_bytes()),
        ],
        cuts in proptest::collection::vec(any::<usize>(), 0..32),
    ) {
        let whole = SseParser::new().push(&bytes);
        let mut parser = SseParser::new();
        let pieces: Vec<SseEvent> = split(&bytes, &cuts).into_iter().flat_map(|piece| parser.push(piece)).collect();
        prop_assert_eq!(whole, pieces);
    }
}
