//! `POST /v1/messages` and `POST /v1/messages/count_tokens`: validation and the default reply.

use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::errors::{ApiError, build_response};
use crate::reply::{Block, Reply};
use crate::sse::stream_response;

/// Reply text when nothing else applies.
pub const DEFAULT_TEXT: &str = "Hello from the mock upstream.";

/// How much of a `tool_result` is echoed back.
const TOOL_RESULT_ECHO_CHARS: usize = 200;

/// Input-token estimate: body bytes / 4, at least 1.
pub(crate) fn estimate_tokens(body: &[u8]) -> u64 {
    (body.len() as u64 / 4).max(1)
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// Parses and validates a Messages-shaped body; `max_tokens` is required only for `/v1/messages`.
fn parse(body: &[u8], need_max_tokens: bool) -> Result<Map<String, Value>, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(format!("There was an error parsing the body of your request: invalid JSON ({e})"))
    })?;
    let Value::Object(obj) = value else {
        return Err(ApiError::invalid("Input should be a valid dictionary"));
    };
    match obj.get("model") {
        None => return Err(ApiError::invalid("model: Field required")),
        Some(Value::String(_)) => {}
        Some(_) => return Err(ApiError::invalid("model: Input should be a valid string")),
    }
    match obj.get("messages") {
        None => return Err(ApiError::invalid("messages: Field required")),
        Some(Value::Array(msgs)) => {
            for (i, m) in msgs.iter().enumerate() {
                let Some(m) = m.as_object() else {
                    return Err(ApiError::invalid(format!("messages.{i}: Input should be a valid dictionary")));
                };
                if !m.get("role").is_some_and(Value::is_string) {
                    return Err(ApiError::invalid(format!("messages.{i}.role: Field required")));
                }
                if !m.contains_key("content") {
                    return Err(ApiError::invalid(format!("messages.{i}.content: Field required")));
                }
            }
        }
        Some(_) => return Err(ApiError::invalid("messages: Input should be a valid list")),
    }
    if need_max_tokens {
        match obj.get("max_tokens") {
            None => return Err(ApiError::invalid("max_tokens: Field required")),
            Some(v) if v.is_u64() || v.is_i64() => {
                if v.as_i64().is_some_and(|n| n < 1) {
                    return Err(ApiError::invalid("max_tokens: Input should be greater than or equal to 1"));
                }
            }
            Some(_) => return Err(ApiError::invalid("max_tokens: Input should be a valid integer")),
        }
    }
    if obj.get("stream").is_some_and(|s| !s.is_boolean() && !s.is_null()) {
        return Err(ApiError::invalid("stream: Input should be a valid boolean"));
    }
    if obj.get("tools").is_some_and(|t| !t.is_array() && !t.is_null()) {
        return Err(ApiError::invalid("tools: Input should be a valid list"));
    }
    let model = obj.get("model").and_then(Value::as_str).unwrap_or_default();
    if model.starts_with("mock-missing") {
        return Err(ApiError::new(404, format!("model: {model}")));
    }
    Ok(obj)
}

/// Text of a `tool_result` block's `content` (a string, or text blocks concatenated).
fn tool_result_text(block: &Value) -> String {
    match block.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("\n")
        }
        _ => String::new(),
    }
}

/// The first `tool_result` in the last user message, as text.
fn last_tool_result(messages: &[Value]) -> Option<String> {
    let last_user = messages.iter().rev().find(|m| m.get("role").and_then(Value::as_str) == Some("user"))?;
    let blocks = last_user.get("content")?.as_array()?;
    blocks.iter().find(|b| b.get("type").and_then(Value::as_str) == Some("tool_result")).map(tool_result_text)
}

/// `{}` unless the schema has required string properties, each of which becomes `"mock"`.
fn tool_input(tool: &Value) -> Value {
    let schema = tool.get("input_schema");
    let props = schema.and_then(|s| s.get("properties"));
    let required = schema.and_then(|s| s.get("required")).and_then(Value::as_array);
    let mut input = Map::new();
    for name in required.into_iter().flatten().filter_map(Value::as_str) {
        let ty = props.and_then(|p| p.get(name)).and_then(|p| p.get("type"));
        let is_string = match ty {
            Some(Value::String(t)) => t == "string",
            Some(Value::Array(ts)) => ts.iter().any(|t| t == "string"),
            _ => false,
        };
        if is_string {
            input.insert(name.to_string(), json!("mock"));
        }
    }
    Value::Object(input)
}

/// Builds the default reply for a validated request.
fn build_reply(req: &Map<String, Value>, headers: &HeaderMap, input_tokens: u64) -> Reply {
    let model = req.get("model").and_then(Value::as_str).unwrap_or_default();
    let messages = req.get("messages").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let mock_text = header_str(headers, "x-mock-text");
    let tool_result = last_tool_result(messages);
    let tools_off = header_str(headers, "x-mock-tools").is_some_and(|v| v == "none")
        || req.get("tool_choice").and_then(|c| c.get("type")).and_then(Value::as_str) == Some("none");
    let first_tool = req.get("tools").and_then(Value::as_array).and_then(|t| t.first()).filter(|_| !tools_off);
    if let (Some(tool), None) = (first_tool, &tool_result) {
        let name = tool.get("name").and_then(Value::as_str).unwrap_or("unknown_tool");
        let text = mock_text.unwrap_or_else(|| format!("I'll use the {name} tool."));
        let blocks = vec![Block::Text(text), Block::tool_use(name, tool_input(tool))];
        return Reply::new(model, blocks, "tool_use", input_tokens);
    }
    let text = match (mock_text, tool_result) {
        (Some(t), _) => t,
        (None, Some(result)) => {
            let echoed: String = result.chars().take(TOOL_RESULT_ECHO_CHARS).collect();
            format!("Tool result received: {echoed}")
        }
        (None, None) => DEFAULT_TEXT.to_string(),
    };
    Reply::new(model, vec![Block::Text(text)], "end_turn", input_tokens)
}

/// `POST /v1/messages`: the default reply, streamed when `stream: true`.
pub(crate) fn create(body: &[u8], headers: &HeaderMap, extra: Vec<(String, String)>, request_id: &str) -> Response {
    let req = match parse(body, true) {
        Ok(r) => r,
        Err(e) => return e.into_response(request_id),
    };
    let mut reply = build_reply(&req, headers, estimate_tokens(body));
    if let Some((creation, read)) = header_str(headers, "x-mock-cache-tokens").and_then(|v| {
        let (c, r) = v.split_once(',')?;
        Some((c.trim().parse().ok()?, r.trim().parse().ok()?))
    }) {
        reply.cache_creation = creation;
        reply.cache_read = read;
    }
    if req.get("stream").and_then(Value::as_bool) == Some(true) {
        let interval =
            header_str(headers, "x-mock-event-interval-ms").and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0);
        return stream_response(reply.to_events(), Duration::from_millis(interval), None, extra, request_id);
    }
    let body = reply.to_json().to_string();
    build_response(200, extra, body.into(), request_id, "application/json")
}

/// `POST /v1/messages/count_tokens`: `{"input_tokens": N}`.
pub(crate) fn count_tokens(body: &[u8], extra: Vec<(String, String)>, request_id: &str) -> Response {
    if let Err(e) = parse(body, false) {
        return e.into_response(request_id);
    }
    let body = json!({"input_tokens": estimate_tokens(body)}).to_string();
    build_response(200, extra, body.into(), request_id, "application/json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_field() {
        let e = parse(br#"{"model":"claude-x","messages":[]}"#, true).unwrap_err();
        assert_eq!(e.message, "max_tokens: Field required");
        let e = parse(br#"{"messages":[],"max_tokens":1}"#, true).unwrap_err();
        assert_eq!(e.message, "model: Field required");
        let e = parse(b"{nope", true).unwrap_err();
        assert_eq!((e.status, e.kind), (400, "invalid_request_error"));
        let e = parse(br#"{"model":"mock-missing-1","messages":[]}"#, false).unwrap_err();
        assert_eq!((e.status, e.kind), (404, "not_found_error"));
        assert!(parse(br#"{"model":"claude-x","messages":[]}"#, false).is_ok());
    }

    #[test]
    fn tool_input_fills_required_strings() {
        let tool = json!({"name":"t","input_schema":{"type":"object",
            "properties":{"a":{"type":"string"},"b":{"type":"integer"},"c":{"type":"string"}},
            "required":["a","b"]}});
        assert_eq!(tool_input(&tool), json!({"a":"mock"}));
        assert_eq!(tool_input(&json!({"name":"t"})), json!({}));
    }

    #[test]
    fn tool_result_is_echoed_truncated() {
        let long = "x".repeat(500);
        let req = json!({"model":"claude-x","max_tokens":5,"tools":[{"name":"t"}],"messages":[
            {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1",
              "content":[{"type":"text","text":long}]}]}]});
        let reply = build_reply(req.as_object().unwrap(), &HeaderMap::new(), 1);
        assert_eq!(reply.stop_reason, "end_turn");
        let Block::Text(t) = &reply.blocks[0] else { panic!("not text") };
        assert_eq!(t, &format!("Tool result received: {}", "x".repeat(200)));
    }
}
