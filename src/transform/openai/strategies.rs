//! Proptest generators for the property tests, and the invariants every converted request must meet.

use proptest::prelude::*;
use serde_json::{Map, Value};

/// Keys and strings the converters look at, so random documents reach deep into the code instead of failing at the
/// first type check.
const WORDS: &[&str] = &[
    "model",
    "messages",
    "role",
    "content",
    "type",
    "text",
    "user",
    "assistant",
    "system",
    "developer",
    "tool",
    "function",
    "tool_calls",
    "tool_call_id",
    "id",
    "name",
    "arguments",
    "parameters",
    "tools",
    "tool_choice",
    "auto",
    "required",
    "none",
    "image_url",
    "url",
    "file",
    "file_data",
    "filename",
    "refusal",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "temperature",
    "top_p",
    "user",
    "n",
    "stream",
    "stream_options",
    "include_usage",
    "response_format",
    "json_object",
    "json_schema",
    "schema",
    "reasoning_effort",
    "low",
    "high",
    "thinking",
    "budget_tokens",
    "parallel_tool_calls",
    "logprobs",
    "cache_control",
    "object",
    "input",
    "index",
    "delta",
    "text_delta",
    "input_json_delta",
    "partial_json",
    "thinking_delta",
    "stop_reason",
    "tool_use",
    "end_turn",
    "usage",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "content_block",
    "message",
    "error",
    "json_response",
    "data",
    "created_at",
    "data:image/png;base64,AAAA",
    "data:application/pdf;base64,AAAA",
    "data:text/plain;base64,aGk=",
    "data:text/plain;base64,@@",
    "https://x/y",
    "data:",
    "data:,",
    "{}",
    "{\"a\":1}",
    "[1]",
    "",
    " ",
    "call:1",
    "2025-01-01T00:00:00Z",
];

pub(super) fn word() -> impl Strategy<Value = String> {
    prop_oneof![3 => proptest::sample::select(WORDS).prop_map(str::to_owned), 1 => any::<String>()]
}

pub(super) fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        (0u64..5000).prop_map(Value::from),
        word().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((word(), inner), 0..8)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// A chat request with plausible structure and random details.
pub(super) fn chat_request() -> impl Strategy<Value = Value> {
    let part = (proptest::sample::select(&["text", "image_url", "file", "refusal", "input_audio", "x"][..]), json_value(), word())
        .prop_map(|(kind, payload, text)| {
            serde_json::json!({"type": kind, "text": text, "image_url": {"url": payload.clone()}, "file": {"file_data": payload}})
        });
    let content = prop_oneof![
        word().prop_map(Value::String),
        proptest::collection::vec(part, 0..4).prop_map(Value::Array),
        json_value()
    ];
    let call = (word(), word(), word()).prop_map(|(id, name, args)| {
        serde_json::json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}})
    });
    let message = (
        proptest::sample::select(&["system", "developer", "user", "assistant", "tool", "function", "bot"][..]),
        content,
        proptest::option::of(proptest::collection::vec(call, 0..3)),
        word(),
    )
        .prop_map(|(role, content, calls, id)| {
            let mut m = serde_json::json!({"role": role, "content": content, "tool_call_id": id});
            if let Some(calls) = calls {
                m["tool_calls"] = Value::Array(calls);
            }
            m
        });
    (
        word(),
        proptest::collection::vec(message, 0..8),
        proptest::collection::vec((proptest::sample::select(WORDS), json_value()), 0..6),
    )
        .prop_map(|(model, messages, extra)| {
            let mut obj = Map::new();
            for (k, v) in extra {
                obj.insert(k.to_owned(), v);
            }
            obj.insert("model".into(), Value::String(model));
            obj.insert("messages".into(), Value::Array(messages));
            Value::Object(obj)
        })
}

/// One step of a well-formed conversation: a system/developer/user message, or an assistant message with its tool
/// calls followed by one tool message per call.
pub(super) fn conversation_step() -> impl Strategy<Value = Vec<Value>> {
    let image = prop_oneof![
        Just("https://example.com/a.png".to_owned()),
        Just("data:image/png;base64,iVBORw0KGgo=".to_owned()),
        Just("data:image/jpg;base64,/9j/4AAQ".to_owned()),
    ];
    let part = prop_oneof![
        word().prop_map(|t| serde_json::json!({"type": "text", "text": t})),
        image.prop_map(|u| serde_json::json!({"type": "image_url", "image_url": {"url": u}})),
    ];
    let text_part = word().prop_map(|t| serde_json::json!({"type": "text", "text": t}));
    let user_content =
        prop_oneof![word().prop_map(Value::String), proptest::collection::vec(part, 0..3).prop_map(Value::Array)];
    let text_content =
        prop_oneof![word().prop_map(Value::String), proptest::collection::vec(text_part, 0..3).prop_map(Value::Array)];
    let call = (
        word(),
        proptest::sample::select(&["get_weather", "f", "g-1"][..]),
        proptest::sample::select(&["", " ", "{}", "{\"a\":[1,{\"b\":null}]}"][..]),
    );
    prop_oneof![
        (proptest::sample::select(&["system", "developer", "user"][..]), user_content.clone()).prop_map(|(role, content)| {
            let content = if role == "user" { content } else { Value::String(content.to_string()) };
            vec![serde_json::json!({"role": role, "content": content})]
        }),
        (prop_oneof![Just(Value::Null), text_content], proptest::collection::vec(call, 0..3), user_content).prop_map(|(content, calls, result)| {
            let mut step = Vec::new();
            let calls: Vec<Value> = calls
                .into_iter()
                .enumerate()
                .map(|(i, (id, name, args))| serde_json::json!({"id": format!("{id}{i}"), "type": "function", "function": {"name": name, "arguments": args}}))
                .collect();
            let mut assistant = serde_json::json!({"role": "assistant", "content": content});
            if !calls.is_empty() {
                assistant["tool_calls"] = Value::Array(calls.clone());
            }
            step.push(assistant);
            for call in calls.iter().rev() {
                step.push(serde_json::json!({"role": "tool", "tool_call_id": call["id"], "content": result}));
            }
            step
        }),
    ]
}

/// A request that is valid most of the time, with random optional parameters.
pub(super) fn valid_request() -> impl Strategy<Value = Value> {
    let tools = serde_json::json!([
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
        {"type": "function", "function": {"name": "f"}},
    ]);
    let options = (
        proptest::option::of(0.0f64..2.5),
        proptest::option::of(0.0f64..1.0),
        proptest::option::of(1u64..20_000),
        proptest::option::of(proptest::sample::select(&["low", "medium", "high", "none"][..])),
        proptest::option::of(proptest::sample::select(&["text", "json_object", "json_schema"][..])),
        proptest::option::of(proptest::sample::select(&["auto", "none", "required", "named"][..])),
        any::<bool>(),
        proptest::option::of(any::<bool>()),
        proptest::option::of(proptest::collection::vec(word(), 0..3)),
    );
    (proptest::collection::vec(conversation_step(), 1..6), options, word()).prop_map(move |(steps, options, user)| {
        let (temperature, top_p, max_tokens, effort, format, choice, with_tools, parallel, stop) = options;
        let mut req = serde_json::json!({"model": "gpt-4o", "messages": steps.concat(), "user": user});
        let set = |req: &mut Value, key: &str, value: Option<Value>| {
            if let Some(v) = value {
                req[key] = v;
            }
        };
        set(&mut req, "temperature", temperature.map(Value::from));
        set(&mut req, "top_p", top_p.map(Value::from));
        set(&mut req, "max_completion_tokens", max_tokens.map(Value::from));
        set(&mut req, "reasoning_effort", effort.map(Value::from));
        set(&mut req, "parallel_tool_calls", parallel.map(Value::from));
        set(&mut req, "stop", stop.map(|s| s.into_iter().map(Value::String).collect()));
        set(&mut req, "tools", with_tools.then(|| tools.clone()));
        set(
            &mut req,
            "response_format",
            format.map(|f| serde_json::json!({"type": f, "json_schema": {"name": "r", "schema": {"type": "object"}}})),
        );
        set(
            &mut req,
            "tool_choice",
            choice.map(|c| match c {
                "named" => serde_json::json!({"type": "function", "function": {"name": "f"}}),
                other => Value::from(other),
            }),
        );
        req
    })
}

/// Invariants of every successful conversion: what Anthropic requires of a Messages request.
pub(super) fn check_anthropic_request(body: &Value) -> Result<(), TestCaseError> {
    prop_assert!(body["max_tokens"].as_u64().is_some_and(|n| n >= 1));
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    prop_assert!(!messages.is_empty());
    for pair in messages.windows(2) {
        prop_assert_ne!(&pair[0]["role"], &pair[1]["role"], "roles alternate");
    }
    let mut pending: Vec<Value> = Vec::new();
    for message in &messages {
        let blocks = message["content"].as_array().cloned().unwrap_or_default();
        prop_assert!(!blocks.is_empty(), "no empty turns");
        let results: Vec<Value> =
            blocks.iter().filter(|b| b["type"] == "tool_result").map(|b| b["tool_use_id"].clone()).collect();
        // Every call is answered in the very next turn, results first.
        let mut expected = std::mem::take(&mut pending);
        let mut got = results.clone();
        expected.sort_by_key(Value::to_string);
        got.sort_by_key(Value::to_string);
        prop_assert_eq!(expected, got, "tool_use ids must be answered in the next turn");
        prop_assert!(blocks.iter().take(results.len()).all(|b| b["type"] == "tool_result"), "tool results come first");
        for block in &blocks {
            match block["type"].as_str() {
                Some("text") => {
                    prop_assert!(block["text"].as_str().is_some_and(|t| !t.trim().is_empty()), "blank text")
                }
                Some("tool_use") => {
                    let id = block["id"].as_str().unwrap_or_default();
                    prop_assert!(
                        !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                    );
                    prop_assert!(block["input"].is_object());
                    pending.push(block["id"].clone());
                }
                _ => {}
            }
        }
    }
    prop_assert!(pending.is_empty(), "unanswered tool calls");
    if let Some(thinking) = body.get("thinking").filter(|t| t["type"] == "enabled") {
        prop_assert!(body.get("temperature").is_none() && body.get("top_p").is_none());
        prop_assert!(!matches!(body["tool_choice"]["type"].as_str(), Some("any" | "tool")));
        prop_assert!(body["max_tokens"].as_u64() > thinking["budget_tokens"].as_u64());
    }
    if body.get("thinking").is_some_and(|t| t["type"] == "enabled") {
        let last_assistant = messages.iter().rev().find(|m| m["role"] == "assistant");
        let calls = last_assistant
            .and_then(|m| m["content"].as_array())
            .is_some_and(|c| c.iter().any(|b| b["type"] == "tool_use"));
        prop_assert!(!calls, "thinking with a tool loop the client cannot replay");
    }
    prop_assert!(!(body.get("temperature").is_some() && body.get("top_p").is_some()), "never both");
    if let Some(t) = body.get("temperature").and_then(Value::as_f64) {
        prop_assert!((0.0..=1.0).contains(&t));
    }
    let has_tool_blocks =
        messages.iter().filter_map(|m| m["content"].as_array()).flatten().any(|b| b["type"] == "tool_use");
    prop_assert!(
        !has_tool_blocks || body["tools"].as_array().is_some_and(|t| !t.is_empty()),
        "tool history needs tools"
    );
    Ok(())
}

const EVENTS: &[&str] = &[
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "error",
    "ping",
    "message",
    "",
    "weird",
];

/// One upstream event: a name and a payload that is either structured like Anthropic's or random.
pub(super) fn sse_event() -> impl Strategy<Value = (String, String)> {
    let block = (proptest::sample::select(&["text", "thinking", "tool_use", "server_tool_use", "x"][..]), word(), json_value())
        .prop_map(|(kind, name, input)| serde_json::json!({"type": kind, "id": "toolu_1", "name": name, "input": input, "text": "", "thinking": ""}));
    let delta = (proptest::sample::select(&["text_delta", "thinking_delta", "input_json_delta", "signature_delta", "x"][..]), word())
        .prop_map(|(kind, s)| serde_json::json!({"type": kind, "text": s, "thinking": s, "partial_json": s, "stop_reason": s}));
    let structured = (proptest::sample::select(EVENTS), 0u64..4, block, delta, json_value()).prop_map(|(kind, index, block, delta, usage)| {
        serde_json::json!({"type": kind, "index": index, "content_block": block, "delta": delta,
            "usage": usage, "message": {"usage": {"input_tokens": 3}}, "error": {"type": "overloaded_error", "message": "m"}})
        .to_string()
    });
    let data = prop_oneof![3 => structured, 1 => json_value().prop_map(|v| v.to_string()), 1 => any::<String>()];
    (proptest::sample::select(EVENTS).prop_map(str::to_owned), data)
}
