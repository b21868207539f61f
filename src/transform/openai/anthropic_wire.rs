//! Serde types of the Anthropic wire format: requests (written) and responses and stream events (read). The OpenAI
//! side is in `openai_wire.rs`.
//!
//! OpenAI requests are read lazily instead (see `lazy.rs`): walking the tree by hand lets every error name the exact
//! parameter (`messages[3].content[1].image_url.url`), which serde's derive cannot do, and copies text verbatim.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::lazy::Text;
use super::openai_wire::{PromptTokensDetails, Usage};

// ---------------------------------------------------------------------------------------------------------------
// Anthropic Messages request (written)

/// The request sent upstream; field order mirrors Anthropic's docs so bodies are easy to read in logs and fixtures.
#[derive(Debug, Serialize)]
pub(super) struct MessagesRequest<'a> {
    pub model: String,
    pub max_tokens: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<Block<'a>>,
    pub messages: Vec<Message<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Role {
    User,
    Assistant,
}

#[derive(Debug, Serialize)]
pub(super) struct Message<'a> {
    pub role: Role,
    pub content: Vec<Block<'a>>,
}

/// A content block. `cache_control` is passed through from the client's part when it has one.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Block<'a> {
    Text {
        text: Text<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    Image {
        source: Source<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    Document {
        source: Source<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    ToolUse {
        id: String,
        name: String,
        input: ToolInput,
    },
    ToolResult {
        tool_use_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        content: Option<ToolResultContent<'a>>,
    },
}

impl Block<'_> {
    /// A text block the gateway wrote itself.
    pub fn text(text: String) -> Self {
        Self::Text { text: Text::Owned(text), cache_control: None }
    }
}

/// A `tool_use` input: the client's arguments JSON verbatim (key order kept), or `{}` when it sent none.
#[derive(Debug)]
pub(super) enum ToolInput {
    Raw(Box<RawValue>),
    Empty,
}

impl Serialize for ToolInput {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        match self {
            ToolInput::Raw(raw) => raw.serialize(serializer),
            ToolInput::Empty => serializer.serialize_map(Some(0))?.end(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(super) enum ToolResultContent<'a> {
    Text(Text<'a>),
    Blocks(Vec<Block<'a>>),
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Source<'a> {
    Base64 { media_type: String, data: Cow<'a, str> },
    Url { url: Cow<'a, str> },
    Text { media_type: &'static str, data: String },
}

#[derive(Debug, Serialize)]
pub(super) struct Tool<'a> {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub input_schema: Schema<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<Value>,
}

/// A tool's `input_schema`: the client's JSON copied verbatim, or one the gateway built or had to complete.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(super) enum Schema<'a> {
    Raw(&'a RawValue),
    Value(Value),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct ToolChoice {
    #[serde(rename = "type")]
    pub kind: ToolChoiceKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_parallel_tool_use: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum ToolChoiceKind {
    Auto,
    Any,
    Tool,
    None,
}

impl ToolChoice {
    pub fn of(kind: ToolChoiceKind) -> Self {
        Self { kind, name: None, disable_parallel_tool_use: None }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct Metadata {
    pub user_id: String,
}

// ---------------------------------------------------------------------------------------------------------------
// Anthropic Messages response and stream events (read). Lenient: unknown fields and block types are ignored.

#[derive(Debug, Deserialize)]
pub(super) struct AnthropicMessage<'a> {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default, borrow)]
    pub content: Vec<ResponseBlock<'a>>,
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub usage: Option<AnthropicUsage>,
}

/// A content block of a response. Flat and raw so that any block type, known or future, reads without error; the
/// converter interprets the fields by `type`.
#[derive(Debug, Deserialize)]
pub(super) struct ResponseBlock<'a> {
    #[serde(rename = "type", default, borrow)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub text: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub thinking: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub name: Option<&'a RawValue>,
    /// Kept raw: it becomes the call's `arguments` text with the model's key order.
    #[serde(default, borrow)]
    pub input: Option<&'a RawValue>,
}

/// Token counts; every field may be absent or null. `message_delta` counts are cumulative, so later values replace
/// earlier ones.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub(super) struct AnthropicUsage {
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
}

impl AnthropicUsage {
    /// Overwrites the counts `later` carries.
    pub fn update(&mut self, later: &AnthropicUsage) {
        let fields = [
            (&mut self.input_tokens, later.input_tokens),
            (&mut self.output_tokens, later.output_tokens),
            (&mut self.cache_creation_input_tokens, later.cache_creation_input_tokens),
            (&mut self.cache_read_input_tokens, later.cache_read_input_tokens),
        ];
        for (mine, theirs) in fields {
            if theirs.is_some() {
                *mine = theirs;
            }
        }
    }

    /// OpenAI usage: prompt = input + cache writes + cache reads (Anthropic's `input_tokens` counts only what
    /// follows the last cache breakpoint).
    pub fn to_openai(self) -> Usage {
        let cached = self.cache_read_input_tokens.unwrap_or(0);
        let prompt = self
            .input_tokens
            .unwrap_or(0)
            .saturating_add(self.cache_creation_input_tokens.unwrap_or(0))
            .saturating_add(cached);
        let completion = self.output_tokens.unwrap_or(0);
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt.saturating_add(completion),
            prompt_tokens_details: PromptTokensDetails { cached_tokens: cached },
        }
    }
}

/// One stream event's data, all event types in one flat struct so the payload is parsed exactly once.
#[derive(Debug, Default, Deserialize)]
pub(super) struct StreamEvent<'a> {
    #[serde(rename = "type", default, borrow)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(default)]
    pub index: Option<u64>,
    #[serde(default)]
    pub message: Option<StreamMessage>,
    #[serde(default, borrow)]
    pub content_block: Option<StreamBlock<'a>>,
    #[serde(default, borrow)]
    pub delta: Option<StreamDelta<'a>>,
    #[serde(default)]
    pub usage: Option<AnthropicUsage>,
    #[serde(default, borrow)]
    pub error: Option<StreamError<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct StreamMessage {
    #[serde(default)]
    pub usage: Option<AnthropicUsage>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct StreamBlock<'a> {
    #[serde(rename = "type", default, borrow)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub input: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub thinking: Option<Cow<'a, str>>,
}

/// `content_block_delta.delta` and `message_delta.delta` share this struct.
#[derive(Debug, Default, Deserialize)]
pub(super) struct StreamDelta<'a> {
    #[serde(rename = "type", default, borrow)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub thinking: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub partial_json: Option<Cow<'a, str>>,
    #[serde(default)]
    pub stop_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct StreamError<'a> {
    #[serde(rename = "type", default, borrow)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub message: Option<Cow<'a, str>>,
}
