//! Golden-file tests over `tests/fixtures/openai/`:
//!
//! - `<name>.request.json` → `<name>.anthropic.json` (the upstream body) or `<name>.error.json`
//!   (`{"status": …, "body": <OpenAI error body>}`);
//! - `<name>.upstream.json` → `<name>.chat.json`;
//! - `<name>.upstream.sse` → `<name>.chunks.sse` (also fed one byte at a time, which must give the same frames).
//!
//! An optional `<name>.ctx.json` sets the response context (`requested_model`, `include_usage`, `json_tool`); the
//! id is `chatcmpl-golden` and `created` 1700000000. JSON is compared parsed. `UPDATE_GOLDEN=1` rewrites the
//! expectations instead of comparing: review the diff by hand before committing.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{
    ChunkConverter, ConvertOptions, ResponseContext, SseParser, anthropic_response_to_chat, chat_request_to_anthropic,
    default_aliases,
};

const SUFFIXES: [&str; 7] =
    [".request.json", ".anthropic.json", ".error.json", ".upstream.json", ".chat.json", ".upstream.sse", ".chunks.sse"];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openai")
}

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1")
}

/// Case names with the given input suffix, sorted.
fn cases(suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir())
        .expect("fixture directory")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix(suffix).map(str::to_owned))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no *{suffix} fixtures in {}", dir().display());
    names
}

fn read(name: &str) -> Option<String> {
    fs::read_to_string(dir().join(name)).ok()
}

fn parse(text: &str, what: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{what} is not JSON: {e}"))
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).expect("serialisable") + "\n"
}

fn context(name: &str) -> ResponseContext {
    let ctx = read(&format!("{name}.ctx.json")).map(|t| parse(&t, "ctx")).unwrap_or(Value::Null);
    ResponseContext {
        id: "chatcmpl-golden".into(),
        created: 1_700_000_000,
        requested_model: ctx.get("requested_model").and_then(Value::as_str).unwrap_or("gpt-4o").into(),
        include_usage: ctx.get("include_usage").and_then(Value::as_bool).unwrap_or(false),
        json_tool: ctx.get("json_tool").and_then(Value::as_str).map(str::to_owned),
    }
}

/// Compares `actual` with the expectation in `file` (or writes it when updating); a mismatch is recorded.
fn check(failures: &mut Vec<String>, case: &str, file: &str, actual: &Value) {
    let path = dir().join(file);
    if updating() {
        fs::write(&path, pretty(actual)).expect("write expectation");
        return;
    }
    match read(file) {
        None => failures.push(format!("{case}: missing {file}; actual:\n{}", pretty(actual))),
        Some(text) => {
            let expected = parse(&text, file);
            if &expected != actual {
                failures.push(format!(
                    "{case}: {file} differs\nexpected:\n{}actual:\n{}",
                    pretty(&expected),
                    pretty(actual)
                ));
            }
        }
    }
}

fn report(kind: &str, failures: Vec<String>) {
    assert!(failures.is_empty(), "{} {kind} golden case(s) failed:\n\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn golden_requests() {
    let aliases = default_aliases();
    let opts = ConvertOptions { default_max_tokens: 4096, aliases: &aliases };
    let mut failures = Vec::new();
    for case in cases(".request.json") {
        let input = read(&format!("{case}.request.json")).unwrap_or_default();
        match chat_request_to_anthropic(input.as_bytes(), &opts) {
            Ok(converted) => {
                let body: Value = serde_json::from_slice(&converted.body).expect("the converter writes JSON");
                check(&mut failures, &case, &format!("{case}.anthropic.json"), &body);
            }
            Err(e) => {
                let body: Value = serde_json::from_slice(&e.to_body()).expect("error bodies are JSON");
                let actual = serde_json::json!({"status": e.status(), "body": body});
                check(&mut failures, &case, &format!("{case}.error.json"), &actual);
            }
        }
    }
    report("request", failures);
}

#[test]
fn golden_responses() {
    let mut failures = Vec::new();
    for case in cases(".upstream.json") {
        let input = read(&format!("{case}.upstream.json")).unwrap_or_default();
        let actual = match anthropic_response_to_chat(input.as_bytes(), &context(&case)) {
            Ok(body) => serde_json::from_slice(&body).expect("the converter writes JSON"),
            Err(e) => serde_json::json!({"status": e.status(), "error": e.to_string()}),
        };
        check(&mut failures, &case, &format!("{case}.chat.json"), &actual);
    }
    report("response", failures);
}

/// Runs a stream through parser and converter, feeding `step` bytes at a time.
fn convert_stream(input: &[u8], ctx: ResponseContext, step: usize) -> String {
    let mut parser = SseParser::new();
    let mut converter = ChunkConverter::new(ctx);
    let mut out = String::new();
    for piece in input.chunks(step) {
        for event in parser.push(piece) {
            out.extend(converter.on_event(&event.event, &event.data));
        }
    }
    out.extend(converter.finish());
    out
}

/// Frames as JSON values (or the raw payload for `[DONE]`), for a comparison that ignores key order.
fn frames(sse: &str) -> Result<Value, String> {
    let mut out = Vec::new();
    for frame in sse.split_terminator("\n\n") {
        // SSE comments (the converted `ping`) are kept as themselves.
        if frame.starts_with(':') {
            out.push(Value::String(frame.to_owned()));
            continue;
        }
        let data = frame.strip_prefix("data: ").ok_or_else(|| format!("frame without 'data: ': {frame:?}"))?;
        out.push(serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.to_owned())));
    }
    Ok(Value::Array(out))
}

#[test]
fn golden_streams() {
    let mut failures = Vec::new();
    for case in cases(".upstream.sse") {
        let input = read(&format!("{case}.upstream.sse")).unwrap_or_default();
        let whole = convert_stream(input.as_bytes(), context(&case), usize::MAX);
        let bytewise = convert_stream(input.as_bytes(), context(&case), 1);
        if whole != bytewise {
            failures.push(format!("{case}: output depends on how the input is split"));
        }
        assert!(whole.ends_with("\n\n"), "{case}: output must end with a complete frame");
        let file = format!("{case}.chunks.sse");
        if updating() {
            fs::write(dir().join(&file), &whole).expect("write expectation");
            continue;
        }
        let Some(expected) = read(&file) else {
            failures.push(format!("{case}: missing {file}; actual:\n{whole}"));
            continue;
        };
        match (frames(&expected), frames(&whole)) {
            (Ok(e), Ok(a)) if e == a => {}
            (Ok(_), Ok(_)) => failures.push(format!("{case}: {file} differs\nexpected:\n{expected}actual:\n{whole}")),
            (e, a) => failures.push(format!("{case}: unreadable frames: expected {e:?}, actual {a:?}")),
        }
    }
    report("stream", failures);
}

/// Every file in the fixture directory belongs to a case kind, so a misnamed fixture cannot be silently skipped.
#[test]
fn golden_files_are_named_right() {
    let stray: Vec<String> = fs::read_dir(dir())
        .expect("fixture directory")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| !SUFFIXES.iter().chain([".ctx.json"].iter()).any(|s| f.ends_with(s)))
        .collect();
    assert!(stray.is_empty(), "unexpected files in the fixture directory: {stray:?}");
}

/// The Anthropic message a stream describes, accumulated the way the Anthropic SDK does.
fn accumulate(events: &[super::SseEvent]) -> Value {
    let mut blocks: Vec<Value> = Vec::new();
    let mut partial: Vec<String> = Vec::new();
    let mut stop_reason = Value::Null;
    let mut usage = serde_json::Map::new();
    for event in events {
        let Ok(data) = serde_json::from_str::<Value>(&event.data) else { continue };
        let index = data["index"].as_u64().and_then(|i| usize::try_from(i).ok()).unwrap_or(0);
        match data["type"].as_str().unwrap_or_default() {
            "message_start" => usage.extend(data["message"]["usage"].as_object().cloned().unwrap_or_default()),
            "content_block_start" => {
                blocks.resize(index + 1, Value::Null);
                partial.resize(index + 1, String::new());
                blocks[index] = data["content_block"].clone();
            }
            "content_block_delta" => {
                let delta = &data["delta"];
                let Some(block) = blocks.get_mut(index) else { continue };
                match delta["type"].as_str().unwrap_or_default() {
                    "text_delta" => {
                        block["text"] = Value::from(
                            block["text"].as_str().unwrap_or_default().to_owned()
                                + delta["text"].as_str().unwrap_or_default(),
                        )
                    }
                    "thinking_delta" => {
                        block["thinking"] = Value::from(
                            block["thinking"].as_str().unwrap_or_default().to_owned()
                                + delta["thinking"].as_str().unwrap_or_default(),
                        )
                    }
                    "input_json_delta" => partial[index].push_str(delta["partial_json"].as_str().unwrap_or_default()),
                    _ => {}
                }
            }
            "content_block_stop" => {
                if let (Some(block), Some(json)) = (blocks.get_mut(index), partial.get(index))
                    && !json.is_empty()
                {
                    block["input"] = serde_json::from_str(json).expect("fixture tool input is JSON");
                }
            }
            "message_delta" => {
                stop_reason = data["delta"]["stop_reason"].clone();
                usage.extend(data["usage"].as_object().cloned().unwrap_or_default());
            }
            "message_stop" => break,
            _ => {}
        }
    }
    serde_json::json!({"type": "message", "content": blocks, "stop_reason": stop_reason, "usage": usage})
}

/// What an OpenAI client reassembles from the chunks: the `message`, `finish_reason` and `usage` of a completion.
fn reassemble(sse: &str) -> Value {
    let mut content = String::new();
    let mut reasoning: Option<String> = None;
    let mut calls: Vec<Value> = Vec::new();
    let mut finish = Value::Null;
    let mut usage = Value::Null;
    for frame in sse.split_terminator("\n\n") {
        let Ok(chunk) = serde_json::from_str::<Value>(frame.trim_start_matches("data: ")) else { continue };
        if !chunk["usage"].is_null() {
            usage = chunk["usage"].clone();
        }
        let Some(choice) = chunk["choices"].get(0) else { continue };
        let delta = &choice["delta"];
        content.push_str(delta["content"].as_str().unwrap_or_default());
        if let Some(r) = delta["reasoning_content"].as_str() {
            reasoning.get_or_insert_with(String::new).push_str(r);
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let i = call["index"].as_u64().and_then(|i| usize::try_from(i).ok()).expect("tool call index");
            if i == calls.len() {
                calls.push(serde_json::json!({"id": call["id"], "type": "function", "function": {"name": call["function"]["name"], "arguments": ""}}));
            }
            let args = calls[i]["function"]["arguments"].as_str().unwrap_or_default().to_owned();
            calls[i]["function"]["arguments"] =
                Value::from(args + call["function"]["arguments"].as_str().unwrap_or_default());
        }
        if !choice["finish_reason"].is_null() {
            finish = choice["finish_reason"].clone();
        }
    }
    let mut message = serde_json::json!({"content": content, "reasoning_content": reasoning, "tool_calls": calls});
    normalise(&mut message);
    serde_json::json!({"message": message, "finish_reason": finish, "usage": usage})
}

/// Makes a message comparable: JSON text (tool arguments, a JSON answer) parsed, absent == null == "".
fn normalise(message: &mut Value) {
    let parse = |v: &Value| v.as_str().and_then(|s| serde_json::from_str::<Value>(s).ok()).unwrap_or_else(|| v.clone());
    if message["content"].is_null() {
        message["content"] = Value::from("");
    }
    message["content"] = parse(&message["content"]);
    if message["tool_calls"].is_null() {
        message["tool_calls"] = Value::Array(Vec::new());
    }
    for call in message["tool_calls"].as_array_mut().into_iter().flatten() {
        call["function"]["arguments"] = parse(&call["function"]["arguments"]);
    }
    if let Some(obj) = message.as_object_mut() {
        obj.retain(|k, _| matches!(k.as_str(), "content" | "reasoning_content" | "tool_calls"));
        obj.entry("reasoning_content").or_insert(Value::Null);
    }
}

/// A stream that ends normally must reassemble to what the non-streaming conversion gives for the same message.
#[test]
fn streams_agree_with_non_stream_conversion() {
    let mut failures = Vec::new();
    for case in cases(".upstream.sse") {
        let input = read(&format!("{case}.upstream.sse")).unwrap_or_default();
        let ctx = ResponseContext { include_usage: true, ..context(&case) };
        let output = convert_stream(input.as_bytes(), ctx.clone(), usize::MAX);
        if !output.ends_with("data: [DONE]\n\n") {
            continue;
        }
        let events = SseParser::new().push(input.as_bytes());
        let message = accumulate(&events);
        let body =
            anthropic_response_to_chat(message.to_string().as_bytes(), &ctx).expect("accumulated message converts");
        let chat: Value = serde_json::from_slice(&body).expect("JSON");
        let mut expected_message = chat["choices"][0]["message"].clone();
        normalise(&mut expected_message);
        let expected = serde_json::json!({"message": expected_message, "finish_reason": chat["choices"][0]["finish_reason"], "usage": chat["usage"]});
        let actual = reassemble(&output);
        if expected != actual {
            failures.push(format!("{case}:\nnon-stream: {expected}\nstream:     {actual}"));
        }
    }
    report("stream/non-stream agreement", failures);
}
