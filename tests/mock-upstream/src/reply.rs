//! A model reply, and its two wire forms: the `message` JSON and the SSE event sequence.

use serde_json::{Value, json};

use crate::state::{next_message_id, next_tool_id};

/// One content block of a reply.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Block {
    /// `{"type":"text","text":…}`
    Text(String),
    /// `{"type":"tool_use","id":…,"name":…,"input":…}`
    ToolUse { id: String, name: String, input: Value },
}

impl Block {
    /// A `tool_use` block with a fresh `toolu_mock_<n>` id.
    pub fn tool_use(name: &str, input: Value) -> Self {
        Block::ToolUse { id: next_tool_id(), name: name.to_string(), input }
    }

    fn to_json(&self) -> Value {
        match self {
            Block::Text(t) => json!({"type": "text", "text": t}),
            Block::ToolUse { id, name, input } => {
                json!({"type": "tool_use", "id": id, "name": name, "input": input})
            }
        }
    }

    /// The empty block of `content_block_start`.
    fn start_json(&self) -> Value {
        match self {
            Block::Text(_) => json!({"type": "text", "text": ""}),
            Block::ToolUse { id, name, .. } => {
                json!({"type": "tool_use", "id": id, "name": name, "input": {}})
            }
        }
    }

    /// The `content_block_delta` deltas: text in ~3 chunks; tool input as `""` then 2 pieces.
    fn deltas(&self) -> Vec<Value> {
        match self {
            Block::Text(t) => split_text(t).into_iter().map(|c| json!({"type": "text_delta", "text": c})).collect(),
            Block::ToolUse { input, .. } => {
                let s = input.to_string();
                let mut mid = s.len() / 2;
                while !s.is_char_boundary(mid) {
                    mid += 1;
                }
                [&s[..0], &s[..mid], &s[mid..]]
                    .into_iter()
                    .map(|p| json!({"type": "input_json_delta", "partial_json": p}))
                    .collect()
            }
        }
    }

    fn output_tokens(&self) -> u64 {
        match self {
            Block::Text(t) => t.split_whitespace().count() as u64,
            Block::ToolUse { input, .. } => (input.to_string().len() as u64 / 4).max(1),
        }
    }
}

/// Splits `text` at word boundaries into about 3 chunks that concatenate back to `text`.
/// Always returns at least one chunk (possibly empty).
pub(crate) fn split_text(text: &str) -> Vec<String> {
    let words: Vec<&str> = text.split_inclusive(char::is_whitespace).collect();
    let n = words.len();
    if n <= 1 {
        return vec![text.to_string()];
    }
    let parts = n.min(3);
    (0..parts).map(|k| words[n * k / parts..n * (k + 1) / parts].concat()).filter(|c| !c.is_empty()).collect()
}

/// A complete assistant message.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub id: String,
    pub model: String,
    pub blocks: Vec<Block>,
    pub stop_reason: &'static str,
    pub input_tokens: u64,
    /// Prompt-cache tokens reported in `usage` (`x-mock-cache-tokens: CREATION,READ`).
    pub cache_creation: u64,
    pub cache_read: u64,
}

impl Reply {
    /// A reply with a fresh `msg_mock_<n>` id.
    pub fn new(model: &str, blocks: Vec<Block>, stop_reason: &'static str, input_tokens: u64) -> Self {
        Reply {
            id: next_message_id(),
            model: model.to_string(),
            blocks,
            stop_reason,
            input_tokens,
            cache_creation: 0,
            cache_read: 0,
        }
    }

    /// Word count of the text plus a rough count for tool inputs; at least 1.
    pub fn output_tokens(&self) -> u64 {
        self.blocks.iter().map(Block::output_tokens).sum::<u64>().max(1)
    }

    fn usage(&self, output_tokens: u64) -> Value {
        json!({
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation,
            "cache_read_input_tokens": self.cache_read,
            "output_tokens": output_tokens,
        })
    }

    /// The non-streaming `message` object.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": self.blocks.iter().map(Block::to_json).collect::<Vec<_>>(),
            "stop_reason": self.stop_reason,
            "stop_sequence": null,
            "usage": self.usage(self.output_tokens()),
        })
    }

    /// The streaming events (protocol.md §4): `message_start`, `ping`, per block
    /// `content_block_start` / `content_block_delta`… / `content_block_stop`, `message_delta`,
    /// `message_stop`. Each item is `(event name, data JSON)`.
    pub fn to_events(&self) -> Vec<(String, String)> {
        let mut ev: Vec<(&str, Value)> = vec![
            (
                "message_start",
                json!({"type": "message_start", "message": {
                    "id": self.id,
                    "type": "message",
                    "role": "assistant",
                    "model": self.model,
                    "content": [],
                    "stop_reason": null,
                    "stop_sequence": null,
                    "usage": self.usage(1),
                }}),
            ),
            ("ping", json!({"type": "ping"})),
        ];
        for (index, block) in self.blocks.iter().enumerate() {
            ev.push((
                "content_block_start",
                json!({"type": "content_block_start", "index": index, "content_block": block.start_json()}),
            ));
            for delta in block.deltas() {
                ev.push((
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": index, "delta": delta}),
                ));
            }
            ev.push(("content_block_stop", json!({"type": "content_block_stop", "index": index})));
        }
        ev.push((
            "message_delta",
            json!({
                "type": "message_delta",
                "delta": {"stop_reason": self.stop_reason, "stop_sequence": null},
                "usage": {"output_tokens": self.output_tokens()},
            }),
        ));
        ev.push(("message_stop", json!({"type": "message_stop"})));
        ev.into_iter().map(|(name, data)| (name.to_string(), data.to_string())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_text_round_trips() {
        for t in ["", "one", "Hello from the mock upstream.", "a b", "  x  y z w v  ", "héllo wörld ünï"] {
            let chunks = split_text(t);
            assert!(!chunks.is_empty() && chunks.len() <= 3, "{t:?} -> {chunks:?}");
            assert_eq!(chunks.concat(), t);
        }
        assert_eq!(split_text("Hello from the mock upstream.").len(), 3);
    }

    #[test]
    fn tool_deltas_concatenate_to_input() {
        let b = Block::tool_use("f", json!({"city": "mock", "q": "ü"}));
        let parts: Vec<String> = b.deltas().iter().map(|d| d["partial_json"].as_str().unwrap().to_string()).collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], "");
        let v: Value = serde_json::from_str(&parts.concat()).unwrap();
        assert_eq!(v, json!({"city": "mock", "q": "ü"}));
    }
}
