//! Anthropic Messages stream → OpenAI `chat.completion.chunk` stream, one event at a time.

use std::collections::HashMap;

use super::ResponseContext;
use super::anthropic_wire::{AnthropicUsage, StreamEvent};
use super::error::{error_frame, status_of_anthropic_type};
use super::lazy;
use super::openai_wire::{Chunk, ChunkChoice, Delta, FunctionDelta, ToolCallDelta, finish_reason};

/// An open content block: what it turned into and whether any of its input went out yet.
#[derive(Debug, Clone, Copy)]
struct OpenBlock {
    kind: BlockKind,
    /// For tool calls and the json tool: whether a non-empty piece of input was sent. A call whose input never
    /// arrived (a tool without parameters) gets `{}` at its end, as OpenAI sends: `""` is not JSON to the client.
    sent_input: bool,
}

/// What a content block of the upstream stream turned into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Text,
    Thinking,
    /// A tool call with its OpenAI index (counted from 0 per call, not the Anthropic block index).
    Tool(u32),
    /// The `response_format: json_schema` tool: its input is streamed as `content`.
    JsonTool,
    /// Redacted thinking, server tools and future block types: not shown.
    Other,
}

/// What an upstream `ping` becomes: an SSE comment, ignored by clients but bytes on the wire.
const PING: &str = ": ping\n\n";

/// Events whose data must be JSON; an unreadable one means a broken upstream, not a new event type.
const KNOWN_EVENTS: [&str; 7] = [
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "error",
];

/// Streaming state machine: one upstream SSE event in, zero or more complete OpenAI SSE frames (`data: …\n\n`) out.
///
/// Nothing is buffered beyond the current event: text, thinking and tool-argument deltas go out as they come. The
/// frames are, in order: a role chunk on `message_start`; `content` / `reasoning_content` / `tool_calls` deltas (each
/// tool call first with id, type, name and empty arguments, then argument pieces, indexed from 0 per call); on
/// `message_stop` a chunk with an empty delta and the `finish_reason`, the usage chunk (`"choices": []`) when
/// `include_usage` is set, and `data: [DONE]`. With `include_usage` every other chunk has `"usage": null`. A `ping`
/// becomes the SSE comment `: ping` (OpenAI has no ping; clients ignore comments, and the bytes keep idle-timeout
/// watchdogs such as Claude Code's 300 s one from firing during a long silence). Unknown events are ignored. An
/// upstream `error` event becomes one `data: {"error":{…}}` frame and nothing follows.
#[derive(Debug)]
pub struct ChunkConverter {
    ctx: ResponseContext,
    started: bool,
    done: bool,
    blocks: HashMap<u64, OpenBlock>,
    next_tool_index: u32,
    /// Whether a real tool call (not the json tool) was streamed.
    called_tools: bool,
    /// Whether the json tool was called.
    json_answer: bool,
    /// With `response_format: json_schema`, text is held until it is clear whether the json tool answers (then
    /// the text is dropped, as in the non-streamed answer) or not (then it is the answer). The one place this
    /// converter holds anything back; plain chats stream text as it arrives.
    held_text: String,
    stop_reason: Option<String>,
    usage: AnthropicUsage,
}

impl ChunkConverter {
    /// A converter for one response.
    pub fn new(ctx: ResponseContext) -> Self {
        Self {
            ctx,
            started: false,
            done: false,
            blocks: HashMap::new(),
            next_tool_index: 0,
            called_tools: false,
            json_answer: false,
            held_text: String::new(),
            stop_reason: None,
            usage: AnthropicUsage::default(),
        }
    }

    /// Whether the stream is over for the client: `[DONE]` or an error frame was emitted. Later input is ignored.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Converts one upstream event (its `event:` name and `data:` payload). Returns the frames to write, in order.
    pub fn on_event(&mut self, event: &str, data: &str) -> Vec<String> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        if event == "ping" {
            out.push(PING.to_owned());
            return out;
        }
        let parsed: StreamEvent<'_> = match serde_json::from_str(data) {
            Ok(parsed) => parsed,
            Err(_) if KNOWN_EVENTS.contains(&event) => {
                self.fail(&mut out, 502, "The upstream sent an unreadable stream event.");
                return out;
            }
            Err(_) => return out,
        };
        // Without an `event:` line the SSE name is "message"; the payload's own type then tells.
        let kind =
            if event.is_empty() || event == "message" { parsed.kind.as_deref().unwrap_or_default() } else { event };
        match kind {
            "message_start" => {
                if let Some(usage) = parsed.message.as_ref().and_then(|m| m.usage.as_ref()) {
                    self.usage.update(usage);
                }
                self.start(&mut out);
            }
            "content_block_start" => self.block_start(&mut out, parsed),
            "content_block_delta" => self.block_delta(&mut out, parsed),
            "content_block_stop" => self.block_stop(&mut out, parsed.index),
            "message_delta" => {
                if let Some(reason) = parsed.delta.and_then(|d| d.stop_reason) {
                    self.stop_reason = Some(reason);
                }
                if let Some(usage) = parsed.usage.as_ref() {
                    self.usage.update(usage);
                }
            }
            "message_stop" => self.stop(&mut out),
            "error" => {
                let error = parsed.error.unwrap_or_default();
                let status = status_of_anthropic_type(error.kind.as_deref().unwrap_or_default());
                let message =
                    error.message.as_deref().filter(|m| !m.is_empty()).unwrap_or("The upstream reported an error.");
                self.fail(&mut out, status, message);
            }
            // Unknown events are ignored, as Anthropic asks.
            _ => {}
        }
        out
    }

    /// The stream broke for a reason of the gateway's or the transport's (not an upstream `error` event): ends it
    /// with an error frame with `status` and `message`, unless it is already over.
    pub fn fail_with(&mut self, status: u16, message: &str) -> Vec<String> {
        let mut out = Vec::new();
        if !self.done {
            self.fail(&mut out, status, message);
        }
        out
    }

    /// The upstream body ended. Returns nothing after a normal end (`[DONE]` already went out with `message_stop`)
    /// or an error frame; if the stream stopped before `message_stop`, an error frame so the client does not take a
    /// cut answer for a complete one.
    pub fn finish(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.done {
            self.fail(&mut out, 502, "The upstream stream ended before the response was complete.");
        }
        out
    }

    fn start(&mut self, out: &mut Vec<String>) {
        if !self.started {
            self.started = true;
            out.push(self.chunk(Delta { role: Some("assistant"), content: Some(""), ..Delta::default() }, None));
        }
    }

    fn block_start(&mut self, out: &mut Vec<String>, event: StreamEvent<'_>) {
        self.start(out);
        let Some(block) = event.content_block else { return };
        let index = event.index.unwrap_or_default();
        let kind = match block.kind.as_deref() {
            Some("text") => BlockKind::Text,
            Some("thinking") => BlockKind::Thinking,
            Some("tool_use") if block.name.as_deref().is_some_and(|n| self.ctx.json_tool.as_deref() == Some(n)) => {
                BlockKind::JsonTool
            }
            Some("tool_use") => {
                let tool_index = self.next_tool_index;
                self.next_tool_index = self.next_tool_index.saturating_add(1);
                BlockKind::Tool(tool_index)
            }
            _ => BlockKind::Other,
        };
        // Start blocks normally carry empty text and `input: {}`; anything already there is sent at once.
        let input = block.input.map(|i| lazy::compact(i.get())).filter(|i| i.starts_with('{') && i.as_ref() != "{}");
        self.blocks.insert(index, OpenBlock { kind, sent_input: input.is_some() });
        match kind {
            BlockKind::Text => {
                if let Some(text) = block.text.as_deref().filter(|t| !t.is_empty()) {
                    self.text(out, text);
                }
            }
            BlockKind::Thinking => {
                if let Some(thinking) = block.thinking.as_deref().filter(|t| !t.is_empty()) {
                    out.push(self.chunk(Delta { reasoning_content: Some(thinking), ..Delta::default() }, None));
                }
            }
            BlockKind::Tool(tool_index) => {
                self.called_tools = true;
                let call = ToolCallDelta {
                    index: tool_index,
                    id: Some(block.id.as_deref().unwrap_or_default()),
                    kind: Some("function"),
                    function: FunctionDelta {
                        name: Some(block.name.as_deref().unwrap_or_default()),
                        arguments: input.as_deref().unwrap_or_default(),
                    },
                };
                out.push(self.chunk(Delta { tool_calls: Some([call]), ..Delta::default() }, None));
            }
            BlockKind::JsonTool => {
                self.json_answer = true;
                self.held_text.clear();
                if let Some(input) = input {
                    out.push(self.content(&input));
                }
            }
            BlockKind::Other => {}
        }
    }

    fn block_delta(&mut self, out: &mut Vec<String>, event: StreamEvent<'_>) {
        self.start(out);
        let Some(delta) = event.delta else { return };
        match delta.kind.as_deref() {
            Some("text_delta") => {
                if let Some(text) = delta.text.as_deref().filter(|t| !t.is_empty()) {
                    self.text(out, text);
                }
            }
            Some("thinking_delta") => {
                if let Some(thinking) = delta.thinking.as_deref().filter(|t| !t.is_empty()) {
                    out.push(self.chunk(Delta { reasoning_content: Some(thinking), ..Delta::default() }, None));
                }
            }
            Some("input_json_delta") => {
                let Some(partial) = delta.partial_json.as_deref().filter(|p| !p.is_empty()) else { return };
                // A block never started has no call to attach the piece to.
                let Some(block) = event.index.and_then(|i| self.blocks.get_mut(&i)) else { return };
                let kind = block.kind;
                if matches!(kind, BlockKind::Tool(_) | BlockKind::JsonTool) {
                    block.sent_input = true;
                }
                match kind {
                    BlockKind::Tool(index) => {
                        let call = ToolCallDelta {
                            index,
                            id: None,
                            kind: None,
                            function: FunctionDelta { name: None, arguments: partial },
                        };
                        out.push(self.chunk(Delta { tool_calls: Some([call]), ..Delta::default() }, None));
                    }
                    BlockKind::JsonTool => out.push(self.content(partial)),
                    // Server tools: not shown.
                    _ => {}
                }
            }
            // signature_delta, citations_delta and future kinds have no OpenAI counterpart.
            _ => {}
        }
    }

    fn block_stop(&mut self, out: &mut Vec<String>, index: Option<u64>) {
        let Some(block) = index.and_then(|i| self.blocks.remove(&i)) else { return };
        if block.sent_input {
            return;
        }
        match block.kind {
            BlockKind::Tool(index) => {
                let call = ToolCallDelta {
                    index,
                    id: None,
                    kind: None,
                    function: FunctionDelta { name: None, arguments: "{}" },
                };
                out.push(self.chunk(Delta { tool_calls: Some([call]), ..Delta::default() }, None));
            }
            BlockKind::JsonTool => out.push(self.content("{}")),
            _ => {}
        }
    }

    fn stop(&mut self, out: &mut Vec<String>) {
        self.start(out);
        if !self.json_answer && !self.held_text.is_empty() {
            let held = std::mem::take(&mut self.held_text);
            out.push(self.content(&held));
        }
        let stop_reason = self.stop_reason.as_deref();
        let finish = if self.json_answer && !self.called_tools && stop_reason == Some("tool_use") {
            "stop"
        } else {
            finish_reason(stop_reason)
        };
        out.push(self.chunk(Delta::default(), Some(finish)));
        if self.ctx.include_usage {
            let chunk = Chunk {
                id: &self.ctx.id,
                object: "chat.completion.chunk",
                created: self.ctx.created,
                model: &self.ctx.requested_model,
                choices: Vec::new(),
                usage: Some(Some(self.usage.to_openai())),
            };
            out.push(frame(&chunk));
        }
        out.push("data: [DONE]\n\n".to_owned());
        self.done = true;
    }

    fn fail(&mut self, out: &mut Vec<String>, status: u16, message: &str) {
        out.push(error_frame(status, message));
        self.done = true;
    }

    fn text(&mut self, out: &mut Vec<String>, text: &str) {
        if self.ctx.json_tool.is_some() && !self.json_answer {
            self.held_text.push_str(text);
        } else if !self.json_answer || self.ctx.json_tool.is_none() {
            out.push(self.content(text));
        }
    }

    fn content(&self, text: &str) -> String {
        self.chunk(Delta { content: Some(text), ..Delta::default() }, None)
    }

    fn chunk(&self, delta: Delta<'_>, finish_reason: Option<&'static str>) -> String {
        let chunk = Chunk {
            id: &self.ctx.id,
            object: "chat.completion.chunk",
            created: self.ctx.created,
            model: &self.ctx.requested_model,
            choices: vec![ChunkChoice { index: 0, delta, logprobs: None, finish_reason }],
            usage: if self.ctx.include_usage { Some(None) } else { None },
        };
        frame(&chunk)
    }
}

fn frame(chunk: &Chunk<'_>) -> String {
    // Serialising these borrowed structs cannot fail; the fallback only keeps this panic-free.
    let json = serde_json::to_string(chunk).unwrap_or_default();
    format!("data: {json}\n\n")
}
