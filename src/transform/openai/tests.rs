//! Unit tests: errors, detection, request metadata, key order, stream state, SSE parsing, models.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;

fn opts(aliases: &BTreeMap<String, String>) -> ConvertOptions<'_> {
    ConvertOptions { default_max_tokens: 4096, aliases }
}

fn convert(body: &Value) -> Result<ConvertedRequest, OpenAiError> {
    chat_request_to_anthropic(body.to_string().as_bytes(), &opts(&default_aliases()))
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("JSON")
}

fn ctx() -> ResponseContext {
    ResponseContext {
        id: "chatcmpl-1".into(),
        created: 1,
        requested_model: "gpt-4o".into(),
        include_usage: false,
        json_tool: None,
    }
}

// ----- errors ---------------------------------------------------------------------------------------------------

#[test]
fn error_body_status_table() {
    let cases = [
        (400, "invalid_request_error", Value::Null),
        (401, "authentication_error", json!("invalid_api_key")),
        (403, "permission_error", json!("insufficient_quota")),
        (404, "invalid_request_error", json!("model_not_found")),
        (413, "invalid_request_error", Value::Null),
        (429, "rate_limit_error", json!("rate_limit_exceeded")),
        (500, "server_error", json!("internal_server_error")),
        (529, "server_error", json!("internal_server_error")),
    ];
    for (status, kind, code) in cases {
        let body = json_of(&openai_error_body(status, "boom", Some("model")));
        assert_eq!(
            body,
            json!({"error": {"message": "boom", "type": kind, "param": "model", "code": code}}),
            "{status}"
        );
    }
}

#[test]
fn anthropic_errors_keep_the_upstream_message() {
    let upstream =
        br#"{"type":"error","error":{"type":"rate_limit_error","message":"Too many requests"},"request_id":"req_1"}"#;
    let body = json_of(&anthropic_error_to_openai(429, upstream));
    assert_eq!(
        body,
        json!({"error": {"message": "Too many requests", "type": "rate_limit_error", "param": null, "code": "rate_limit_exceeded"}})
    );

    let long = br#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#;
    let body = json_of(&anthropic_error_to_openai(400, long));
    assert_eq!(body["error"]["code"], "context_length_exceeded");
    assert_eq!(body["error"]["message"], "prompt is too long: 210000 tokens > 200000 maximum");

    let body = json_of(&anthropic_error_to_openai(502, b"<html>bad gateway</html>"));
    assert_eq!(body["error"]["message"], "The upstream returned HTTP 502: <html>bad gateway</html>");
    assert_eq!(body["error"]["type"], "server_error");

    let body = json_of(&anthropic_error_to_openai(503, b""));
    assert_eq!(body["error"]["message"], "The upstream returned HTTP 503.");

    let body = json_of(&anthropic_error_to_openai(529, br#"{"error":{"type":"overloaded_error"}}"#));
    assert_eq!(body["error"]["message"], "The upstream returned an error: overloaded_error.");
}

#[test]
fn conversion_errors_name_the_parameter() {
    let err = convert(&json!({"model": "gpt-4o", "n": 2, "messages": [{"role": "user", "content": "x"}]})).unwrap_err();
    assert_eq!((err.status(), err.param()), (400, Some("n")));

    let bad_name = json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "a.b"}}]});
    let err = convert(&bad_name).unwrap_err();
    assert_eq!(err.param(), Some("tools[0].function.name"));
    assert!(err.to_string().contains("^[a-zA-Z0-9_-]{1,64}$"), "{err}");
    let long_name = json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "a".repeat(65)}}]});
    assert_eq!(convert(&long_name).unwrap_err().param(), Some("tools[0].function.name"));

    let body = json_of(&err.to_body());
    assert_eq!(body["error"]["param"], "tools[0].function.name");
    assert_eq!(body["error"]["type"], "invalid_request_error");

    let err = chat_request_to_anthropic(b"", &opts(&default_aliases())).unwrap_err();
    assert!(matches!(err, OpenAiError::InvalidJson(_)));
    assert_eq!(err.param(), None);
    assert_eq!(OpenAiError::Upstream("x".into()).status(), 502);
}

// ----- detection ------------------------------------------------------------------------------------------------

#[test]
fn detects_openai_bodies_on_the_anthropic_route() {
    let base =
        || json!({"model": "claude-sonnet-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(detect_wrong_format(&base(), Format::Anthropic), None);
    let signals = [
        ("max_completion_tokens", json!(10)),
        ("n", json!(1)),
        ("response_format", json!({"type": "json_object"})),
        ("stream_options", json!({"include_usage": true})),
        ("tool_choice", json!("auto")),
        ("tools", json!([{"type": "function", "function": {"name": "f"}}])),
    ];
    for (key, value) in signals {
        let mut body = base();
        body[key] = value;
        let message = detect_wrong_format(&body, Format::Anthropic).unwrap_or_else(|| panic!("{key} not detected"));
        assert!(message.contains("/v1/chat/completions"), "{message}");
        assert!(message.contains(key), "{message}");
    }
    let tool_msg = json!({"model": "m", "messages": [{"role": "tool", "tool_call_id": "c", "content": "x"}]});
    assert!(detect_wrong_format(&tool_msg, Format::Anthropic).is_some());
    let calls = json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": []}]});
    assert!(detect_wrong_format(&calls, Format::Anthropic).is_some());
    let image = json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x"}}]}]});
    assert!(detect_wrong_format(&image, Format::Anthropic).is_some());
}

#[test]
fn claude_code_shapes_are_not_flagged() {
    // Claude Code sends role "system" messages, top-level system blocks, thinking, metadata and Anthropic tools.
    let body = json!({
        "model": "claude-opus-4-8", "max_tokens": 32000, "stream": true,
        "system": [{"type": "text", "text": "You are Claude Code."}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {"role": "system", "content": "mid-conversation"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]}
        ],
        "tools": [{"name": "Bash", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "auto"},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "metadata": {"user_id": "{}"}
    });
    assert_eq!(detect_wrong_format(&body, Format::Anthropic), None);
    let message = detect_wrong_format(&body, Format::OpenAi).expect("detected on the OpenAI route");
    assert!(message.contains("/v1/messages"), "{message}");
}

#[test]
fn detects_anthropic_bodies_on_the_openai_route() {
    let plain = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "top_k": 5,
        "thinking": {"type": "enabled", "budget_tokens": 1024}});
    assert_eq!(
        detect_wrong_format(&plain, Format::OpenAi),
        None,
        "top_k and thinking are sent by OpenAI-style clients"
    );
    for block in [
        json!({"type": "tool_result", "tool_use_id": "t", "content": "x"}),
        json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}),
        json!({"type": "document", "source": {"type": "url", "url": "https://x"}}),
        json!({"type": "thinking", "thinking": "x", "signature": "s"}),
    ] {
        let body = json!({"model": "m", "messages": [{"role": "user", "content": [block]}]});
        assert!(detect_wrong_format(&body, Format::OpenAi).is_some(), "{body}");
    }
    let tools = json!({"model": "m", "messages": [], "tools": [{"name": "f", "input_schema": {"type": "object"}}]});
    assert!(detect_wrong_format(&tools, Format::OpenAi).is_some());
    assert_eq!(detect_wrong_format(&json!([1, 2]), Format::OpenAi), None);
    assert_eq!(detect_wrong_format(&json!("x"), Format::Anthropic), None);
}

// ----- request metadata and fidelity ----------------------------------------------------------------------------

#[test]
fn converted_request_metadata() {
    let body = json!({"model": "gpt-4o-mini", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}});
    let converted = convert(&body).expect("converts");
    assert_eq!(converted.model, "claude-haiku-4-5-20251001");
    assert_eq!(converted.requested_model, "gpt-4o-mini");
    assert!(converted.stream && converted.include_usage);
    assert_eq!(converted.json_tool.as_deref(), Some("json_response"));
    assert_eq!(json_of(&converted.body)["model"], "claude-haiku-4-5-20251001");
    let ctx = converted.response_context("chatcmpl-9".into(), 5);
    assert_eq!(
        (ctx.requested_model.as_str(), ctx.include_usage, ctx.json_tool.as_deref()),
        ("gpt-4o-mini", true, Some("json_response"))
    );

    // include_usage means nothing without a stream.
    let body = json!({"model": "x", "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "hi"}]});
    let converted = convert(&body).expect("converts");
    assert!(!converted.stream && !converted.include_usage);
    assert_eq!(converted.model, "x", "unknown names pass through");
}

#[test]
fn custom_aliases_replace_the_defaults() {
    let aliases = BTreeMap::from([("fast".to_owned(), "claude-haiku-4-5-20251001".to_owned())]);
    let body = json!({"model": "fast", "messages": [{"role": "user", "content": "hi"}]}).to_string();
    let converted =
        chat_request_to_anthropic(body.as_bytes(), &ConvertOptions { default_max_tokens: 77, aliases: &aliases })
            .expect("converts");
    assert_eq!(converted.model, "claude-haiku-4-5-20251001");
    assert_eq!(json_of(&converted.body)["max_tokens"], 77);
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).to_string();
    let converted =
        chat_request_to_anthropic(body.as_bytes(), &ConvertOptions { default_max_tokens: 77, aliases: &aliases })
            .expect("converts");
    assert_eq!(converted.model, "gpt-4o");
}

/// Schema property order steers the order in which the model writes keys; it must survive the conversion, and the
/// model's key order must reach the client (both travel as raw JSON, not as a sorted `serde_json::Map`).
#[test]
fn schema_and_argument_key_order_is_kept() {
    let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema",
        "json_schema":{"name":"r","schema":{"type":"object","properties":{"reasoning":{"type":"string"},"answer":{"type":"string"}}}}}}"#;
    let converted = chat_request_to_anthropic(body.as_bytes(), &opts(&default_aliases())).expect("converts");
    let text = String::from_utf8(converted.body).expect("UTF-8");
    let (reasoning, answer) = (text.find("\"reasoning\""), text.find("\"answer\""));
    assert!(reasoning.is_some() && reasoning < answer, "{text}");

    let upstream = br#"{"type":"message","content":[{"type":"tool_use","id":"t","name":"json_response","input":{"zeta":1,"alpha":2}}],"stop_reason":"tool_use"}"#;
    let ctx = ResponseContext { json_tool: Some("json_response".into()), ..ctx() };
    let chat = json_of(&anthropic_response_to_chat(upstream, &ctx).expect("converts"));
    assert_eq!(chat["choices"][0]["message"]["content"], r#"{"zeta":1,"alpha":2}"#);
}

// ----- streams --------------------------------------------------------------------------------------------------

fn event(kind: &str, data: Value) -> (String, String) {
    (kind.to_owned(), data.to_string())
}

#[test]
fn stream_lifecycle() {
    let mut conv = ChunkConverter::new(ctx());
    assert!(!conv.is_done());
    let (k, d) = event("message_start", json!({"type": "message_start", "message": {"usage": {"input_tokens": 1}}}));
    assert_eq!(conv.on_event(&k, &d).len(), 1, "role chunk");
    assert!(conv.on_event("message_start", &d).is_empty(), "role chunk only once");
    assert_eq!(conv.on_event("ping", "{\"type\":\"ping\"}"), [": ping\n\n"], "a ping becomes an SSE comment");
    let frames = conv.on_event("message_stop", "{\"type\":\"message_stop\"}");
    assert_eq!(frames.last().map(String::as_str), Some("data: [DONE]\n\n"));
    assert!(conv.is_done());
    assert!(conv.finish().is_empty(), "[DONE] already sent");
    assert!(conv.finish().is_empty());
    assert!(conv.on_event("message_stop", "{}").is_empty());
    assert!(conv.on_event("ping", "{}").is_empty(), "nothing after the end, not even a ping");
}

#[test]
fn stream_error_ends_everything() {
    let mut conv = ChunkConverter::new(ctx());
    let frames =
        conv.on_event("error", r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#);
    assert_eq!(frames.len(), 1);
    let payload = frames[0].strip_prefix("data: ").and_then(|f| f.strip_suffix("\n\n")).expect("a frame");
    assert_eq!(json_of(payload.as_bytes())["error"]["message"], "Overloaded");
    assert!(conv.is_done());
    assert!(conv.finish().is_empty(), "nothing after an error frame");

    let mut conv = ChunkConverter::new(ctx());
    let frames = conv.finish();
    assert_eq!(frames.len(), 1);
    assert!(frames[0].contains("\"error\""));
    assert!(conv.is_done());
}

#[test]
fn stream_content_before_message_start_still_gets_a_role_chunk() {
    let mut conv = ChunkConverter::new(ctx());
    let frames = conv.on_event(
        "content_block_delta",
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}"#,
    );
    assert_eq!(frames.len(), 2);
    assert!(frames[0].contains("\"role\":\"assistant\""));
    assert!(frames[1].contains("\"content\":\"hi\""));
}

// ----- SSE ------------------------------------------------------------------------------------------------------

#[test]
fn sse_parser_basics() {
    let mut parser = SseParser::new();
    assert!(parser.push(b"event: ping\ndata: {\"type\"").is_empty());
    let events = parser.push(b":\"ping\"}\n\n: comment\n\ndata: a\ndata: b\n\nevent: x\r\ndata: y\r\n\r\n");
    assert_eq!(
        events,
        vec![
            SseEvent { event: "ping".into(), data: "{\"type\":\"ping\"}".into() },
            SseEvent { event: "message".into(), data: "a\nb".into() },
            SseEvent { event: "x".into(), data: "y".into() },
        ]
    );
    assert!(parser.push(b"event: cut\ndata: never finished").is_empty());
}

#[test]
fn sse_parser_with_a_limit_reports_an_event_that_outgrows_it() {
    let mut parser = SseParser::with_limit(64);
    assert_eq!(parser.push(b"event: a\ndata: 1\n\n").len(), 1);
    assert!(!parser.overflowed());
    let long = format!("event: b\ndata: {}", "x".repeat(100));
    assert!(parser.push(long.as_bytes()).is_empty());
    assert!(parser.overflowed(), "an incomplete event past the limit is not held");
}

// ----- models ---------------------------------------------------------------------------------------------------

#[test]
fn models_list_satisfies_both_shapes() {
    let upstream = json!({
        "data": [
            {"type": "model", "id": "claude-sonnet-5", "display_name": "Claude Sonnet 5", "created_at": "2026-02-01T00:00:00Z"},
            {"type": "model", "id": "claude-odd", "display_name": "Odd", "created_at": "not a date"}
        ],
        "has_more": false, "first_id": "claude-sonnet-5", "last_id": "claude-odd"
    });
    let body = json_of(&models_list_for_openai(upstream.to_string().as_bytes()).expect("converts"));
    assert_eq!(body["object"], "list");
    assert_eq!(body["has_more"], false);
    assert_eq!(body["first_id"], "claude-sonnet-5");
    let first = &body["data"][0];
    assert_eq!(
        (&first["object"], &first["created"], &first["owned_by"], &first["type"], &first["display_name"]),
        (&json!("model"), &json!(1_769_904_000), &json!("anthropic"), &json!("model"), &json!("Claude Sonnet 5"))
    );
    assert_eq!(body["data"][1]["created"], 0);
    assert!(models_list_for_openai(b"[]").is_err());
    assert!(models_list_for_openai(b"{\"data\":3}").is_err());
    assert_eq!(models_list_for_openai(b"nope").unwrap_err().status(), 502);
}

#[test]
fn default_aliases_are_documented_targets() {
    let aliases = default_aliases();
    assert_eq!(aliases.get("gpt-4o").map(String::as_str), Some("claude-sonnet-5"));
    assert_eq!(aliases.get("gpt-4o-mini").map(String::as_str), Some("claude-haiku-4-5-20251001"));
    assert_eq!(aliases.get("gpt-4.1").map(String::as_str), Some("claude-sonnet-5"));
    assert_eq!(aliases.get("o1").map(String::as_str), Some("claude-opus-4-8"));
    assert_eq!(aliases.get("o3").map(String::as_str), Some("claude-opus-4-8"));
    assert!(aliases.values().all(|v| v.starts_with("claude-")));
}
