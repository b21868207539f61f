//! Format detection: is a body posted to one API's route clearly in the other API's format?
//!
//! Only signals that can never be valid on the route count, so a correct request is never refused:
//!
//! - On the Anthropic route (`/v1/messages`), OpenAI-only parameters (`max_completion_tokens`, `n`,
//!   `response_format`, `stream_options`, `logprobs`, `top_logprobs`, `presence_penalty`, `frequency_penalty`,
//!   `logit_bias`, `reasoning_effort`, `parallel_tool_calls`, `functions`, `function_call`), a string `tool_choice`,
//!   `tools` in the `{"type":"function","function":{…}}` shape, messages with role `tool`, `developer` or `function`,
//!   messages carrying `tool_calls` or `tool_call_id`, and content parts of type `image_url` or `input_audio`.
//!   Role `system` inside `messages` is *not* a signal: Claude Code sends it there (protocol.md §7).
//! - On the OpenAI route (`/v1/chat/completions`), Anthropic-only shapes: a top-level `system`, content blocks of
//!   type `tool_use`, `tool_result`, `thinking` or `redacted_thinking`, `image`/`document` blocks with a `source`,
//!   and `tools` with an `input_schema` but no `function`. (`top_k` and `thinking` are not signals: OpenAI-compatible
//!   clients of other gateways send them on this route.)

use serde_json::Value;

/// The two client APIs the gateway speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Anthropic Messages (`POST /v1/messages`).
    Anthropic,
    /// OpenAI Chat Completions (`POST /v1/chat/completions`).
    OpenAi,
}

/// Parameters that exist only in OpenAI Chat Completions.
const OPENAI_ONLY_KEYS: [&str; 13] = [
    "max_completion_tokens",
    "n",
    "response_format",
    "stream_options",
    "logprobs",
    "top_logprobs",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "reasoning_effort",
    "parallel_tool_calls",
    "functions",
    "function_call",
];

/// Given a body posted to `route`, says whether it is clearly in the other format: `Some(message)` naming what was
/// found and where to send the request, `None` when the body is fine or ambiguous (then normal validation applies).
pub fn detect_wrong_format(body: &Value, route: Format) -> Option<String> {
    let obj = body.as_object()?;
    match route {
        Format::Anthropic => openai_signal(obj).map(|found| {
            format!(
                "This looks like an OpenAI Chat Completions request ({found}), but it was sent to the Anthropic \
                 Messages endpoint /v1/messages. Send it to /v1/chat/completions instead (OpenAI SDKs: \
                 base_url ending in /v1)."
            )
        }),
        Format::OpenAi => anthropic_signal(obj).map(|found| sent_to_openai_route(&found)),
    }
}

/// The 400 message for an Anthropic body on the OpenAI route; `found` says what gave it away.
pub(super) fn sent_to_openai_route(found: &str) -> String {
    format!(
        "This looks like an Anthropic Messages request ({found}), but it was sent to the OpenAI Chat Completions \
         endpoint /v1/chat/completions. Send it to /v1/messages instead (Anthropic SDKs: base_url without /v1)."
    )
}

/// Whether a content part of type `kind` is an Anthropic content block.
pub(super) fn is_anthropic_block(kind: &str, has_source: bool) -> bool {
    match kind {
        "tool_use" | "tool_result" | "thinking" | "redacted_thinking" => true,
        "image" | "document" => has_source,
        _ => false,
    }
}

/// The top-level Anthropic signals (the request converter checks content blocks as it walks them).
pub(super) fn anthropic_top_level_signal(obj: &serde_json::Map<String, Value>) -> Option<String> {
    if obj.contains_key("system") {
        return Some("a top-level `system` field".into());
    }
    let position = array(obj.get("tools")).position(|t| t.get("input_schema").is_some() && t.get("function").is_none());
    position.map(|i| format!("`tools[{i}]` has an `input_schema`"))
}

fn openai_signal(obj: &serde_json::Map<String, Value>) -> Option<String> {
    if let Some(key) = OPENAI_ONLY_KEYS.iter().find(|k| obj.contains_key(**k)) {
        return Some(format!("`{key}` is an OpenAI parameter"));
    }
    if obj.get("tool_choice").is_some_and(Value::is_string) {
        return Some("`tool_choice` is a string".into());
    }
    if let Some(i) = array(obj.get("tools")).position(|t| {
        t.get("type").and_then(Value::as_str) == Some("function") && t.get("function").is_some_and(Value::is_object)
    }) {
        return Some(format!("`tools[{i}]` has the OpenAI function shape"));
    }
    for (i, msg) in array(obj.get("messages")).enumerate() {
        if let Some(role @ ("tool" | "developer" | "function")) = msg.get("role").and_then(Value::as_str) {
            return Some(format!("`messages[{i}]` has role '{role}'"));
        }
        for key in ["tool_calls", "tool_call_id"] {
            if msg.get(key).is_some() {
                return Some(format!("`messages[{i}]` has `{key}`"));
            }
        }
        for (j, part) in array(msg.get("content")).enumerate() {
            if let Some(kind @ ("image_url" | "input_audio")) = part.get("type").and_then(Value::as_str) {
                return Some(format!("`messages[{i}].content[{j}]` is an '{kind}' part"));
            }
        }
    }
    None
}

fn anthropic_signal(obj: &serde_json::Map<String, Value>) -> Option<String> {
    if let Some(found) = anthropic_top_level_signal(obj) {
        return Some(found);
    }
    for (i, msg) in array(obj.get("messages")).enumerate() {
        for (j, part) in array(msg.get("content")).enumerate() {
            let kind = part.get("type").and_then(Value::as_str).unwrap_or_default();
            if is_anthropic_block(kind, part.get("source").is_some()) {
                return Some(format!("`messages[{i}].content[{j}]` is a '{kind}' block"));
            }
        }
    }
    None
}

/// The elements of `value` if it is an array, else nothing.
fn array(value: Option<&Value>) -> std::slice::Iter<'_, Value> {
    match value {
        Some(Value::Array(items)) => items.iter(),
        _ => [].iter(),
    }
}
