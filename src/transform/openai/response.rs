//! Anthropic Messages response → OpenAI `chat.completion`.

use std::borrow::Cow;

use serde_json::value::RawValue;

use super::ResponseContext;
use super::anthropic_wire::AnthropicMessage;
use super::error::OpenAiError;
use super::lazy;
use super::openai_wire::{AssistantMessage, ChatCompletion, Choice, FunctionCall, ToolCall, finish_reason};

/// Converts a successful (2xx) Anthropic Messages response body to a `chat.completion` body.
///
/// Text blocks are concatenated into `content`; thinking into `reasoning_content`; `tool_use` blocks become
/// `tool_calls` (arguments = the input as JSON text). The `json_tool` of `ctx` is not a tool call: its input becomes
/// `content` (replacing any text) and, if it was the only call, `finish_reason` is `stop`. The response carries
/// `ctx.requested_model`, not the Claude model. A body that is not a Messages response is an [`OpenAiError::Upstream`]
/// (502); for error statuses use [`super::anthropic_error_to_openai`] instead.
pub fn anthropic_response_to_chat(body: &[u8], ctx: &ResponseContext) -> Result<Vec<u8>, OpenAiError> {
    let message: AnthropicMessage = serde_json::from_slice(body).map_err(|e| OpenAiError::Upstream(e.to_string()))?;
    if message.kind.as_deref().is_some_and(|k| k != "message") {
        return Err(OpenAiError::Upstream(format!(
            "expected a message, got type '{}'",
            message.kind.unwrap_or_default()
        )));
    }

    let mut text = String::new();
    let mut reasoning: Option<String> = None;
    let mut tool_calls = Vec::new();
    let mut json_answer: Option<String> = None;
    for block in message.content {
        match block.kind.as_deref() {
            Some("text") => text.push_str(&string(block.text)),
            Some("thinking") => reasoning.get_or_insert_with(String::new).push_str(&string(block.thinking)),
            Some("tool_use") => {
                let name = string(block.name).into_owned();
                let arguments = match block.input {
                    Some(input) if !lazy::is_null(input) => lazy::compact(input.get()).into_owned(),
                    _ => "{}".to_owned(),
                };
                if ctx.json_tool.as_deref() == Some(name.as_str()) {
                    json_answer.get_or_insert_with(String::new).push_str(&arguments);
                } else {
                    let id = string(block.id).into_owned();
                    tool_calls.push(ToolCall { id, kind: "function", function: FunctionCall { name, arguments } });
                }
            }
            // Redacted thinking, server tools and their results, future block types: not shown.
            _ => {}
        }
    }

    let json_only = json_answer.is_some() && tool_calls.is_empty();
    let content = match json_answer {
        Some(json) => Some(json),
        // Null only when the answer is tool calls and nothing else, as OpenAI does.
        None if !text.is_empty() || tool_calls.is_empty() => Some(text),
        None => None,
    };
    let stop_reason = message.stop_reason.as_deref();
    let finish = if json_only && stop_reason == Some("tool_use") { "stop" } else { finish_reason(stop_reason) };

    let completion = ChatCompletion {
        id: &ctx.id,
        object: "chat.completion",
        created: ctx.created,
        model: &ctx.requested_model,
        choices: [Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content,
                refusal: None,
                reasoning_content: reasoning,
                tool_calls,
            },
            logprobs: None,
            finish_reason: finish,
        }],
        usage: message.usage.unwrap_or_default().to_openai(),
    };
    serde_json::to_vec(&completion).map_err(|e| OpenAiError::Upstream(e.to_string()))
}

/// The string a raw field holds; empty when absent or not a string.
fn string(raw: Option<&RawValue>) -> Cow<'_, str> {
    raw.and_then(lazy::as_str).unwrap_or_default()
}
