//! The `messages` list → Anthropic `system` blocks and alternating user/assistant turns.

use serde_json::Value;
use serde_json::value::RawValue;

use super::anthropic_wire::{Block, Message, Role, ToolInput};
use super::content::{self, Allowed};
use super::error::OpenAiError;
use super::fields::{describe, take_raw_str, take_str};
use super::lazy::{self, Obj, Text};
use super::tools::{check_tool_name, sanitize_tool_id};

/// The converted conversation.
#[derive(Debug, Default)]
pub(super) struct Conversation<'a> {
    pub system: Vec<Block<'a>>,
    pub messages: Vec<Message<'a>>,
}

impl Conversation<'_> {
    /// Whether any turn holds `tool_use` or `tool_result` blocks (Anthropic then requires `tools`).
    pub fn has_tool_blocks(&self) -> bool {
        self.messages
            .iter()
            .flat_map(|m| &m.content)
            .any(|b| matches!(b, Block::ToolUse { .. } | Block::ToolResult { .. }))
    }

    /// Names of the tools called in the history, first call first, without repeats.
    pub fn called_tool_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for block in self.messages.iter().flat_map(|m| &m.content) {
            if let Block::ToolUse { name, .. } = block
                && !names.contains(name)
            {
                names.push(name.clone());
            }
        }
        names
    }

    /// Whether the last assistant turn calls tools. With thinking on, Anthropic requires that turn to start with the
    /// signed thinking block, which OpenAI clients never send back.
    pub fn last_assistant_calls_tools(&self) -> bool {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == Role::Assistant)
            .is_some_and(|m| m.content.iter().any(|b| matches!(b, Block::ToolUse { .. })))
    }
}

/// Tool calls of the last assistant message still waiting for their `tool` messages.
struct Pending {
    /// Index of the assistant message that made the calls.
    from: usize,
    /// The ids as the client sent them (matching is on the original ids, not the sanitised ones).
    ids: Vec<String>,
}

impl Pending {
    /// OpenAI's rule, kept so clients get the error OpenAI would give instead of Anthropic's: every call must be
    /// answered before the next user or assistant message.
    fn check_answered(&self) -> Result<(), OpenAiError> {
        if self.ids.is_empty() {
            return Ok(());
        }
        Err(OpenAiError::invalid(
            format!("messages[{}].tool_calls", self.from),
            format!(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each \
                 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
                self.ids.join(", ")
            ),
        ))
    }
}

/// Converts the whole list. See the module docs of `openai` for the rules.
pub(super) fn convert(list: Vec<Obj<'_>>) -> Result<Conversation<'_>, OpenAiError> {
    let mut conv = Conversation::default();
    let mut pending = Pending { from: 0, ids: Vec::new() };
    for (i, value) in list.into_iter().enumerate() {
        let mut msg = match value {
            Obj::Object(msg) => msg,
            Obj::Other(kind) => {
                return Err(OpenAiError::invalid(
                    format!("messages[{i}]"),
                    format!("expected an object, but got {kind} instead."),
                ));
            }
        };
        let path = || format!("messages[{i}]");
        let role = take_raw_str(&mut msg, "role", &path)?
            .ok_or_else(|| OpenAiError::missing(format!("messages[{i}].role")))?;
        match role.as_ref() {
            "system" | "developer" => {
                conv.system.extend(content::blocks(msg.take("content"), i, Allowed::System)?);
            }
            "user" => {
                pending.check_answered()?;
                push(&mut conv.messages, Role::User, content::blocks(msg.take("content"), i, Allowed::User)?);
            }
            "assistant" => {
                pending.check_answered()?;
                if msg.has("function_call") {
                    return Err(legacy_functions(format!("messages[{i}].function_call")));
                }
                let mut blocks = content::blocks(msg.take("content"), i, Allowed::Assistant)?;
                // Tool calls are small: read them as a `Value`.
                let calls = msg.take("tool_calls").and_then(|raw| serde_json::from_str(raw.get()).ok());
                let ids = tool_calls(calls, i, &mut blocks)?;
                pending = Pending { from: i, ids };
                push(&mut conv.messages, Role::Assistant, blocks);
            }
            "tool" => {
                let id = take_raw_str(&mut msg, "tool_call_id", &path)?
                    .ok_or_else(|| OpenAiError::missing(format!("messages[{i}].tool_call_id")))?;
                let Some(at) = pending.ids.iter().position(|p| *p == id) else {
                    return Err(OpenAiError::invalid(
                        format!("messages[{i}].tool_call_id"),
                        format!(
                            "messages with role 'tool' must be a response to a preceding message with 'tool_calls'; \
                             no pending tool call has the id '{id}'."
                        ),
                    ));
                };
                pending.ids.swap_remove(at);
                let content = content::tool_result(msg.take("content"), i)?;
                let block = Block::ToolResult { tool_use_id: sanitize_tool_id(&id), content };
                push(&mut conv.messages, Role::User, vec![block]);
            }
            "function" => return Err(legacy_functions(format!("messages[{i}].role"))),
            other => {
                return Err(OpenAiError::invalid(
                    format!("messages[{i}].role"),
                    format!(
                        "unknown value '{other}'; the supported values are 'system', 'developer', 'user', 'assistant' \
                         and 'tool'."
                    ),
                ));
            }
        }
    }
    pending.check_answered()?;
    finish_turns(&mut conv.messages);
    Ok(conv)
}

fn legacy_functions(param: String) -> OpenAiError {
    OpenAiError::unsupported(
        param,
        "the legacy function-calling format is not supported; use tools, tool_calls and role 'tool'.",
    )
}

/// Appends `messages[i].tool_calls` to `blocks` as `tool_use` blocks and returns the ids as sent.
fn tool_calls(calls: Option<Value>, i: usize, blocks: &mut Vec<Block<'_>>) -> Result<Vec<String>, OpenAiError> {
    let calls = match calls {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(calls)) => calls,
        Some(other) => {
            return Err(OpenAiError::invalid(
                format!("messages[{i}].tool_calls"),
                format!("expected an array, but got {} instead.", describe(&other)),
            ));
        }
    };
    let mut ids = Vec::with_capacity(calls.len());
    for (j, call) in calls.into_iter().enumerate() {
        let path = || format!("messages[{i}].tool_calls[{j}]");
        let Value::Object(mut call) = call else {
            return Err(OpenAiError::invalid(
                path(),
                format!("expected an object, but got {} instead.", describe(&call)),
            ));
        };
        let id = take_str(&mut call, "id", &path)?.ok_or_else(|| OpenAiError::missing(format!("{}.id", path())))?;
        if id.is_empty() {
            return Err(OpenAiError::invalid(format!("{}.id", path()), "the id must not be empty."));
        }
        if let Some(kind) = take_str(&mut call, "type", &path)?
            && kind != "function"
        {
            return Err(OpenAiError::unsupported(
                format!("{}.type", path()),
                format!("only 'function' tool calls are supported, not '{kind}'."),
            ));
        }
        let fpath = || format!("messages[{i}].tool_calls[{j}].function");
        let Some(Value::Object(mut function)) = call.remove("function") else {
            return Err(OpenAiError::missing(fpath()));
        };
        let name = take_str(&mut function, "name", &fpath)?
            .ok_or_else(|| OpenAiError::missing(format!("{}.name", fpath())))?;
        check_tool_name(&name, || format!("{}.name", fpath()))?;
        let arguments = take_str(&mut function, "arguments", &fpath)?.unwrap_or_default();
        let input = parse_arguments(&arguments)
            .map_err(|reason| OpenAiError::invalid(format!("{}.arguments", fpath()), reason))?;
        blocks.push(Block::ToolUse { id: sanitize_tool_id(&id), name, input });
        ids.push(id);
    }
    Ok(ids)
}

/// `function.arguments` (a JSON string) → the `tool_use` input object, kept verbatim. Empty arguments mean no
/// arguments, which stream accumulators produce for parameterless tools.
fn parse_arguments(arguments: &str) -> Result<ToolInput, String> {
    if arguments.trim().is_empty() {
        return Ok(ToolInput::Empty);
    }
    match serde_json::from_str::<Box<RawValue>>(arguments) {
        Ok(raw) if raw.get().starts_with('{') => Ok(ToolInput::Raw(raw)),
        Ok(raw) => Err(format!("the arguments must be a JSON object, but are {}.", lazy::describe_raw(&raw))),
        Err(e) => Err(format!("the arguments are not valid JSON ({e}).")),
    }
}

/// Appends a turn, merging it into the previous one when the role is the same (Anthropic requires alternation).
fn push<'a>(messages: &mut Vec<Message<'a>>, role: Role, blocks: Vec<Block<'a>>) {
    if blocks.is_empty() {
        return;
    }
    match messages.last_mut() {
        Some(last) if last.role == role => last.content.extend(blocks),
        _ => messages.push(Message { role, content: blocks }),
    }
}

/// Final touches Anthropic requires: tool results first within a user turn, and no trailing whitespace at the end of
/// a final assistant turn (a prefill).
fn finish_turns(messages: &mut Vec<Message<'_>>) {
    for message in messages.iter_mut().filter(|m| m.role == Role::User) {
        // Stable, so results keep their order and so does the rest.
        message.content.sort_by_key(|b| !matches!(b, Block::ToolResult { .. }));
    }
    let Some(last) = messages.last_mut() else { return };
    if last.role != Role::Assistant {
        return;
    }
    if let Some(Block::Text { text, .. }) = last.content.last_mut() {
        let trimmed = text.to_owned_string().trim_end().to_owned();
        if trimmed.is_empty() {
            last.content.pop();
        } else {
            *text = Text::Owned(trimmed);
        }
    }
    if last.content.is_empty() {
        messages.pop();
    }
}
