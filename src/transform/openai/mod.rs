//! OpenAI Chat Completions ↔ Anthropic Messages, both directions. Pure code: no I/O, no accounts, no credentials,
//! no async.
//!
//! The HTTP layer calls, for `POST /v1/chat/completions`:
//! 1. [`chat_request_to_anthropic`] on the client's body (it also rejects an Anthropic-shaped body, see
//!    [`detect_wrong_format`]) and sends [`ConvertedRequest::body`] to the upstream `/v1/messages`;
//! 2. for a plain answer, [`anthropic_response_to_chat`]; for a stream, [`SseParser`] on the upstream bytes and
//!    [`ChunkConverter`] on each event, writing every returned frame as it comes, then [`ChunkConverter::finish`]
//!    when the upstream body ends;
//! 3. for an upstream error status, [`anthropic_error_to_openai`]; for its own rejections, [`openai_error_body`] (or
//!    [`OpenAiError::to_body`]).
//!
//! `GET /v1/models` for OpenAI-style callers goes through [`models_list_for_openai`], whose body satisfies both SDKs'
//! list shapes.
//!
//! # Documented choices
//!
//! **Models.** [`default_aliases`] maps common OpenAI model names to Claude models (exact, case-sensitive names;
//! the config can replace the table). Unknown names pass through unchanged. Responses always echo the name the client
//! asked for.
//!
//! **System prompts.** `system` and `developer` messages, wherever they appear, become top-level `system` text blocks
//! in order (one block per text part, `cache_control` kept); the gateway's own instructions (for `response_format`)
//! come last.
//!
//! **Turns.** Consecutive same-role turns are merged; `tool` messages become `tool_result` blocks of one user turn,
//! with tool results placed before any other block of that turn (Anthropic requires it). Empty or whitespace-only text
//! is dropped and turns left empty disappear. A final assistant turn (prefill) loses trailing whitespace, which
//! Anthropic rejects. Tool-call ids are kept, with characters outside `[a-zA-Z0-9_-]` replaced by `_`, identically in
//! `tool_use` and `tool_result`. As OpenAI itself does, an assistant `tool_calls` message must be followed by `tool`
//! messages answering every id, and a `tool` message must answer a pending call; otherwise a 400 names the ids.
//! Tool-call history sent without `tools` (accepted by OpenAI, rejected by Anthropic) gets the called tools declared
//! with an open schema and `tool_choice: none`, so the model cannot call them.
//!
//! **Parameters.**
//! - `max_completion_tokens` wins over `max_tokens`; without either, [`ConvertOptions::default_max_tokens`].
//! - `temperature` is clamped to `[0, 1]`; `top_p` to `[0, 1]`. When both are given only `temperature` is sent,
//!   because newer Claude models reject the pair and temperature is the one clients set on purpose.
//! - `stop` (string or list) → `stop_sequences`, whitespace-only entries dropped.
//! - `user` → `metadata.user_id`, unless it looks like an e-mail address or a phone number (Anthropic asks for an
//!   opaque id), in which case it is not forwarded.
//! - `reasoning_effort` `low`/`medium`/`high` → `thinking` with budget 1024/2048/4096 (`minimal`/`none` → no
//!   thinking). `max_tokens` is raised to budget + requested when it would not exceed the budget. With thinking,
//!   `temperature`/`top_p` are dropped and a forced `tool_choice` becomes `auto`. A `thinking` object (LiteLLM's
//!   extension) is passed through as is and wins over `reasoning_effort`. Thinking is turned off when the last
//!   assistant turn holds tool calls: OpenAI clients cannot replay the signed thinking block Anthropic requires there.
//! - `response_format` `json_object` adds a system instruction to answer with one JSON object; `json_schema` adds a
//!   tool (`json_response`, suffixed with `_` until unique) whose `input_schema` is the schema, forced through
//!   `tool_choice` (or `any` when the client has its own tools; `auto` plus an instruction when thinking). Its input
//!   comes back as the message `content` with `finish_reason: "stop"` ([`ConvertedRequest::json_tool`]). A plain
//!   answer then carries only the tool's JSON; a stream has already sent any text the model wrote before calling
//!   the tool, which only happens when the tool could not be forced (thinking on).
//! - `parallel_tool_calls: false` → `tool_choice.disable_parallel_tool_use: true`.
//! - Rejected with a 400: `n` > 1, `logprobs: true`, `top_logprobs` > 0, audio output (`audio`, `modalities` with
//!   audio), `input_audio` parts, `file_id` files, legacy `functions`/`function_call`/role `function`,
//!   `web_search_options`, non-function tools.
//! - Ignored: `presence_penalty`, `frequency_penalty`, `seed`, `logit_bias`, `store`, `metadata` (OpenAI's stored
//!   completions), `service_tier`, `prediction`, `prompt_cache_key`, `safety_identifier`, `verbosity`, tools' `strict`,
//!   `json_schema.strict`, image `detail`, message `name`, and any unknown field.
//!
//! **Responses.** Text blocks are concatenated into `content` (null when there are only tool calls); `thinking` →
//! `reasoning_content`; `tool_use` → `tool_calls`; server tools and redacted thinking are not shown. `finish_reason`:
//! `end_turn`/`stop_sequence` → `stop`, `max_tokens` and `model_context_window_exceeded` → `length` (both mean the
//! answer was cut), `tool_use` → `tool_calls`, `refusal` → `content_filter`, anything else → `stop`. Usage:
//! `prompt_tokens` = input + cache writes + cache reads, `prompt_tokens_details.cached_tokens` = cache reads.
//!
//! **Streams.** See [`ChunkConverter`]. `data: [DONE]` is written as soon as `message_stop` arrives, so
//! [`ChunkConverter::finish`] only has something to say when the upstream stopped early. A tool call whose input
//! never arrives (a tool without parameters) gets `"{}"` as its arguments when its block ends, as OpenAI sends them.
//!
//! **Cost.** Requests are read lazily (`lazy.rs`): message text and tool schemas are copied to the upstream body as
//! the client's JSON string literals, never unescaped and re-escaped, so converting a 100 KB request costs about one
//! UTF-8 check plus one JSON scan of it. Schemas and tool arguments travel as raw JSON in both directions, so their
//! key order is kept: schema property order steers the order in which the model writes its answer.
//!
//! **Wrong format.** A body in the other API's format gets a 400 saying what was detected and where to send it, not
//! a silent conversion: the client's SDK expects a response in the format of the route it called, so converting
//! would only move the failure. Rules in [`detect_wrong_format`].

mod anthropic_wire;
mod content;
mod detect;
mod error;
mod fields;
mod lazy;
mod messages;
mod models;
mod openai_wire;
mod request;
mod response;
mod sse;
mod stream;
mod tools;

#[cfg(test)]
mod golden;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod strategies;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

pub use detect::{Format, detect_wrong_format};
pub use error::{OpenAiError, anthropic_error_to_openai, openai_error_body};
pub use models::{default_aliases, models_list_for_openai};
pub use request::chat_request_to_anthropic;
pub use response::anthropic_response_to_chat;
pub use sse::{SseEvent, SseParser};
pub use stream::ChunkConverter;

/// Settings of the request conversion that come from the gateway's config.
#[derive(Debug, Clone, Copy)]
pub struct ConvertOptions<'a> {
    /// `max_tokens` to send when the client gives neither `max_tokens` nor `max_completion_tokens` (Anthropic
    /// requires one).
    pub default_max_tokens: u32,
    /// Client model name → Anthropic model; names not in the map pass through. See [`default_aliases`].
    pub aliases: &'a BTreeMap<String, String>,
}

/// An OpenAI Chat Completions request converted to an Anthropic Messages request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertedRequest {
    /// The Anthropic Messages JSON to send upstream.
    pub body: Vec<u8>,
    /// The Anthropic model after aliasing (also in `body`); what routing should use.
    pub model: String,
    /// The model the client asked for, echoed back in responses.
    pub requested_model: String,
    /// Whether the client asked for a stream (`body` then has `"stream": true`).
    pub stream: bool,
    /// `stream_options.include_usage` (false when not streaming).
    pub include_usage: bool,
    /// Name of the tool added for `response_format: json_schema`; its input is returned as the message `content`.
    pub json_tool: Option<String>,
}

impl ConvertedRequest {
    /// The [`ResponseContext`] for this request's answer, given the response id and creation time the caller chose.
    pub fn response_context(&self, id: String, created: i64) -> ResponseContext {
        ResponseContext {
            id,
            created,
            requested_model: self.requested_model.clone(),
            include_usage: self.include_usage,
            json_tool: self.json_tool.clone(),
        }
    }
}

/// What the response conversion needs to know about the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseContext {
    /// The response id, `chatcmpl-…`, chosen by the caller (the same for every chunk of a stream).
    pub id: String,
    /// Unix seconds, chosen by the caller.
    pub created: i64,
    /// The model name the client asked for; responses carry it instead of the Claude model's.
    pub requested_model: String,
    /// Whether to end a stream with a usage chunk (and put `"usage": null` on every other chunk).
    pub include_usage: bool,
    /// See [`ConvertedRequest::json_tool`].
    pub json_tool: Option<String>,
}
