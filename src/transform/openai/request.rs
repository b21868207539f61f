//! `POST /v1/chat/completions` body → Anthropic Messages body: the top-level parameters. Messages, content parts and
//! tools have their own files.

use serde_json::{Map, Value, json};

use super::anthropic_wire::{Block, MessagesRequest, Metadata, ToolChoice, ToolChoiceKind};
use super::detect;
use super::error::OpenAiError;
use super::fields::{describe, opt_bool, opt_f64, opt_positive_int, take_str};
use super::lazy::{self, ObjList};
use super::messages;
use super::tools::{self, ClientChoice, ResponseFormat};
use super::{ConvertOptions, ConvertedRequest};

/// Budgets for `reasoning_effort` (LiteLLM's constants; Anthropic's minimum budget is 1024).
const EFFORT_BUDGETS: [(&str, u64); 3] = [("low", 1024), ("medium", 2048), ("high", 4096)];

/// The system instruction for `response_format: json_object` (Claude has no JSON mode).
const JSON_OBJECT_INSTRUCTION: &str =
    "Respond with a single valid JSON object and nothing else: no prose before or after it, no Markdown code fences.";

/// Converts an OpenAI Chat Completions request body to an Anthropic Messages request body.
///
/// Rejects, with a 400 naming the parameter: malformed JSON, a body in Anthropic's format (the
/// [`super::detect_wrong_format`] rules for [`super::Format::OpenAi`]), missing `model`/`messages`, wrong types, and the
/// unsupported parameters listed in the module docs. Never panics, whatever the input.
///
/// Message text is copied into the upstream body as the client wrote it (same JSON string literal), so the cost is
/// close to one pass over the body.
pub fn chat_request_to_anthropic(body: &[u8], opts: &ConvertOptions<'_>) -> Result<ConvertedRequest, OpenAiError> {
    let body =
        std::str::from_utf8(body).map_err(|e| OpenAiError::InvalidJson(format!("the body is not UTF-8: {e}")))?;
    let lazy_root = match lazy::parse_root(body) {
        Ok(Ok(root)) => root,
        Ok(Err(kind)) => return Err(OpenAiError::InvalidJson(format!("expected a JSON object, but got {kind}."))),
        Err(e) => return Err(OpenAiError::InvalidJson(e.to_string())),
    };
    let mut rest = lazy_root.rest;
    let raw_tools = rest.take("tools");
    let raw_response_format = rest.take("response_format");
    // Everything but `messages`, `tools` and `response_format` is small: read it as `Value`s.
    let mut root: Map<String, Value> = rest
        .into_entries()
        .map(|(key, raw)| (key.into_owned(), serde_json::from_str(raw.get()).unwrap_or(Value::Null)))
        .collect();
    if let Some(found) = detect::anthropic_top_level_signal(&root) {
        return Err(OpenAiError::WrongFormat(detect::sent_to_openai_route(&found)));
    }
    reject_unsupported(&root)?;
    let top = || String::new();

    let requested_model =
        take_str(&mut root, "model", &top)?.filter(|m| !m.is_empty()).ok_or_else(|| OpenAiError::missing("model"))?;
    let model = opts.aliases.get(&requested_model).cloned().unwrap_or_else(|| requested_model.clone());
    let stream = opt_bool(&root, "stream")?.unwrap_or(false);
    let include_usage = stream && include_usage(&root)?;

    let messages = match lazy_root.messages {
        Some(ObjList::List(list)) if !list.is_empty() => list,
        Some(ObjList::List(_)) => {
            return Err(OpenAiError::invalid("messages", "expected a non-empty array of messages."));
        }
        None | Some(ObjList::Other("null")) => return Err(OpenAiError::missing("messages")),
        Some(ObjList::Other(kind)) => {
            return Err(OpenAiError::invalid("messages", format!("expected an array, but got {kind} instead.")));
        }
    };
    let mut conv = messages::convert(messages)?;
    if conv.messages.is_empty() {
        return Err(OpenAiError::invalid(
            "messages",
            "at least one user or assistant message with content is required.",
        ));
    }

    let mut max_tokens = match opt_positive_int(&root, "max_completion_tokens")? {
        Some(n) => n,
        None => opt_positive_int(&root, "max_tokens")?.unwrap_or(u64::from(opts.default_max_tokens)),
    };

    let mut tools = tools::convert_tools(raw_tools)?;
    let client_has_tools = !tools.is_empty();
    let client_choice = tools::parse_tool_choice(root.get("tool_choice"))?;
    let parallel = opt_bool(&root, "parallel_tool_calls")?.unwrap_or(true);
    let response_format = tools::parse_response_format(raw_response_format)?;

    let mut temperature = opt_f64(&root, "temperature")?.map(|t| t.clamp(0.0, 1.0));
    // Newer models reject temperature and top_p together; temperature is the one clients set on purpose.
    let top_p_given = opt_f64(&root, "top_p")?.map(|p| p.clamp(0.0, 1.0));
    let mut top_p = if temperature.is_some() { None } else { top_p_given };
    let stop_sequences = stop_sequences(root.remove("stop"))?;
    let metadata =
        take_str(&mut root, "user", &top)?.filter(|u| forwardable_user_id(u)).map(|user_id| Metadata { user_id });

    let mut thinking = thinking(&mut root)?;
    if thinking.is_some() && conv.last_assistant_calls_tools() {
        thinking = None;
    }
    let thinking_on = thinking.as_ref().is_some_and(|t| t.get("type").and_then(Value::as_str) != Some("disabled"));

    // tool_choice as the client asked, given its tools.
    let mut choice = match (&client_choice, client_has_tools) {
        (None, _) => None,
        (Some(ClientChoice::Required | ClientChoice::Named(_)), false) => {
            return Err(OpenAiError::invalid(
                "tool_choice",
                "'tool_choice' is only allowed when 'tools' are specified.",
            ));
        }
        // auto/none without tools mean nothing to Anthropic.
        (Some(_), false) => None,
        (Some(ClientChoice::None), true) => Some(ToolChoice::of(ToolChoiceKind::None)),
        (Some(ClientChoice::Auto), true) => Some(ToolChoice::of(ToolChoiceKind::Auto)),
        (Some(ClientChoice::Required), true) => Some(ToolChoice::of(ToolChoiceKind::Any)),
        (Some(ClientChoice::Named(name)), true) => {
            Some(ToolChoice { kind: ToolChoiceKind::Tool, name: Some(name.clone()), disable_parallel_tool_use: None })
        }
    };
    if !client_has_tools && conv.has_tool_blocks() {
        tools = tools::history_tools(conv.called_tool_names());
        choice = Some(ToolChoice::of(ToolChoiceKind::None));
    }

    let mut json_tool = None;
    match response_format {
        ResponseFormat::Text => {}
        ResponseFormat::JsonObject => conv.system.push(Block::text(JSON_OBJECT_INSTRUCTION.into())),
        ResponseFormat::JsonSchema { name, description, schema } => {
            let tool = tools::json_tool(&tools, name, description, schema);
            let forced = ToolChoice {
                kind: ToolChoiceKind::Tool,
                name: Some(tool.name.clone()),
                disable_parallel_tool_use: None,
            };
            choice = match (&client_choice, client_has_tools) {
                (_, false) | (Some(ClientChoice::None), true) => Some(forced),
                // The model may still use the client's tools, but must end with one tool or the other.
                (None | Some(ClientChoice::Auto | ClientChoice::Required), true) => {
                    Some(ToolChoice::of(ToolChoiceKind::Any))
                }
                (Some(ClientChoice::Named(_)), true) => choice,
            };
            if thinking_on {
                conv.system.push(Block::text(format!(
                    "Give your final answer by calling the `{}` tool; its input must match the tool's schema.",
                    tool.name
                )));
            }
            json_tool = Some(tool.name.clone());
            tools.push(tool);
        }
    }

    if thinking_on {
        // Anthropic rejects sampling changes and forced tool use together with thinking.
        temperature = None;
        top_p = None;
        if let Some(c) = choice.as_mut().filter(|c| matches!(c.kind, ToolChoiceKind::Any | ToolChoiceKind::Tool)) {
            c.kind = ToolChoiceKind::Auto;
            c.name = None;
        }
        let budget = thinking.as_ref().and_then(|t| t.get("budget_tokens")).and_then(Value::as_u64);
        if let Some(budget) = budget.filter(|b| max_tokens <= *b) {
            max_tokens = budget.saturating_add(max_tokens);
        }
    }
    if !parallel && !tools.is_empty() && choice.as_ref().is_none_or(|c| c.kind != ToolChoiceKind::None) {
        choice.get_or_insert_with(|| ToolChoice::of(ToolChoiceKind::Auto)).disable_parallel_tool_use = Some(true);
    }

    let request = MessagesRequest {
        model: model.clone(),
        max_tokens,
        system: conv.system,
        messages: conv.messages,
        tools,
        tool_choice: choice,
        stop_sequences,
        temperature,
        top_p,
        thinking,
        metadata,
        stream,
    };
    // The upstream body is about as long as the client's; sizing it once saves a chain of reallocations.
    let mut out = Vec::with_capacity(body.len().saturating_add(1024));
    serde_json::to_writer(&mut out, &request).map_err(|e| OpenAiError::invalid("messages", e.to_string()))?;
    Ok(ConvertedRequest { body: out, model, requested_model, stream, include_usage, json_tool })
}

/// Parameters whose meaning Claude cannot honour: a clear 400 beats a silently different answer.
fn reject_unsupported(root: &Map<String, Value>) -> Result<(), OpenAiError> {
    let present = |key: &str| root.get(key).is_some_and(|v| !v.is_null());
    if let Some(n) = root.get("n").filter(|v| !v.is_null()) {
        match n.as_u64() {
            Some(1) => {}
            Some(n) if n > 1 => {
                return Err(OpenAiError::unsupported(
                    "n",
                    "Claude returns one choice per request; send separate requests instead.",
                ));
            }
            _ => return Err(OpenAiError::invalid("n", "expected an integer of at least 1.")),
        }
    }
    if root.get("logprobs").is_some_and(|v| v.as_bool() == Some(true)) {
        return Err(OpenAiError::unsupported("logprobs", "Claude does not return log probabilities."));
    }
    if root.get("top_logprobs").is_some_and(|v| !v.is_null() && v.as_u64() != Some(0)) {
        return Err(OpenAiError::unsupported("top_logprobs", "Claude does not return log probabilities."));
    }
    if present("audio") {
        return Err(OpenAiError::unsupported("audio", "Claude does not produce audio."));
    }
    if root.get("modalities").and_then(Value::as_array).is_some_and(|m| m.iter().any(|v| v.as_str() == Some("audio"))) {
        return Err(OpenAiError::unsupported("modalities", "Claude does not produce audio."));
    }
    for legacy in ["functions", "function_call"] {
        if present(legacy) {
            return Err(OpenAiError::unsupported(
                legacy,
                "the legacy function-calling format is not supported; use tools and tool_choice.",
            ));
        }
    }
    if present("web_search_options") {
        return Err(OpenAiError::unsupported(
            "web_search_options",
            "web search is not available through this endpoint.",
        ));
    }
    Ok(())
}

/// The `thinking` to send: a client's own `thinking` object as is, else one derived from `reasoning_effort`.
fn thinking(root: &mut Map<String, Value>) -> Result<Option<Value>, OpenAiError> {
    match root.remove("thinking") {
        None | Some(Value::Null) => {}
        Some(obj @ Value::Object(_)) => return Ok(Some(obj)),
        Some(other) => {
            return Err(OpenAiError::invalid(
                "thinking",
                format!("expected an object, but got {} instead.", describe(&other)),
            ));
        }
    }
    let effort = match root.get("reasoning_effort") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(effort)) => effort.as_str(),
        Some(other) => {
            return Err(OpenAiError::invalid(
                "reasoning_effort",
                format!("expected a string, but got {} instead.", describe(other)),
            ));
        }
    };
    if matches!(effort, "none" | "minimal") {
        return Ok(None);
    }
    match EFFORT_BUDGETS.iter().find(|(name, _)| *name == effort) {
        Some((_, budget)) => Ok(Some(json!({"type": "enabled", "budget_tokens": budget}))),
        None => Err(OpenAiError::invalid(
            "reasoning_effort",
            format!(
                "unknown value '{effort}'; the supported values are 'none', 'minimal', 'low', 'medium' and 'high'."
            ),
        )),
    }
}

fn include_usage(root: &Map<String, Value>) -> Result<bool, OpenAiError> {
    match root.get("stream_options") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Object(opts)) => match opts.get("include_usage") {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(OpenAiError::invalid(
                "stream_options.include_usage",
                format!("expected a boolean, but got {} instead.", describe(other)),
            )),
        },
        Some(other) => Err(OpenAiError::invalid(
            "stream_options",
            format!("expected an object, but got {} instead.", describe(other)),
        )),
    }
}

/// `stop` (a string or a list of strings) → `stop_sequences`, dropping whitespace-only entries, which Anthropic
/// rejects.
fn stop_sequences(value: Option<Value>) -> Result<Vec<String>, OpenAiError> {
    let list = match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![Value::String(s)],
        Some(Value::Array(list)) => list,
        Some(other) => {
            return Err(OpenAiError::invalid(
                "stop",
                format!("expected a string or an array of strings, but got {} instead.", describe(&other)),
            ));
        }
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.into_iter().enumerate() {
        match item {
            Value::String(s) if s.trim().is_empty() => {}
            Value::String(s) => out.push(s),
            other => {
                return Err(OpenAiError::invalid(
                    format!("stop[{i}]"),
                    format!("expected a string, but got {} instead.", describe(&other)),
                ));
            }
        }
    }
    Ok(out)
}

/// Anthropic asks for an opaque user id and no personal data, so e-mail addresses and phone numbers stay here.
fn forwardable_user_id(user: &str) -> bool {
    let user = user.trim();
    if user.is_empty() {
        return false;
    }
    let email = user.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    let digits = user.bytes().filter(u8::is_ascii_digit).count();
    let phone = (7..=15).contains(&digits) && user.bytes().all(|b| b.is_ascii_digit() || b" +-().".contains(&b));
    !email && !phone
}
