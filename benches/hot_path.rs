//! Per-request parsing on the hot path: the routing read of Anthropic bodies (1 KB and a ~100 KB
//! Claude-Code-shaped body) and the OpenAI → Anthropic request conversion. Run: `cargo bench --bench hot_path`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use llm_gateway::transform::anthropic::inspect_messages_request;
use llm_gateway::transform::openai::{ConvertOptions, chat_request_to_anthropic, default_aliases};
use serde_json::json;

fn words(n: usize, seed: usize) -> String {
    const W: [&str; 12] = [
        "gateway", "stream", "token", "account", "routing", "cache", "model", "tool", "result", "system", "prompt",
        "session",
    ];
    (0..n).map(|i| W[(i * 7 + seed) % W.len()]).collect::<Vec<_>>().join(" ")
}

/// ~1 KB Anthropic request.
fn small_anthropic() -> Vec<u8> {
    json!({"model": "claude-sonnet-5", "max_tokens": 1024, "stream": true,
           "messages": [{"role": "user", "content": words(140, 1)}]})
    .to_string()
    .into_bytes()
}

/// ~100 KB request shaped like Claude Code's: 3 system blocks, 24 tools with schemas, ~20 turns with tool use.
fn claude_code_shaped() -> Vec<u8> {
    let system = json!([
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.332; cc_entrypoint=cli;"},
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": words(3000, 2)}
    ]);
    let tools: Vec<_> = (0..24)
        .map(|i| {
            json!({"name": format!("tool_{i}"), "description": words(60, i),
            "input_schema": {"type": "object", "properties": {
                "path": {"type": "string", "description": words(20, i + 1)},
                "limit": {"type": "integer"}, "flags": {"type": "array", "items": {"type": "string"}}},
            "required": ["path"]}})
        })
        .collect();
    let mut messages = Vec::new();
    for turn in 0..10 {
        messages.push(json!({"role": "user", "content": [{"type": "text", "text": words(150, turn)}]}));
        messages.push(json!({"role": "assistant", "content": [
            {"type": "text", "text": words(40, turn + 3)},
            {"type": "tool_use", "id": format!("toolu_{turn:04}"), "name": "tool_1", "input": {"path": "/src/main.rs"}}]}));
        messages.push(json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": format!("toolu_{turn:04}"), "content": words(400, turn + 5)}]}));
    }
    json!({"model": "claude-opus-4-8", "max_tokens": 32000, "stream": true, "system": system, "tools": tools,
           "messages": messages,
           "metadata": {"user_id": "{\"device_id\":\"d\",\"account_uuid\":\"\",\"session_id\":\"6b1e\"}"}})
    .to_string()
    .into_bytes()
}

/// ~1 KB OpenAI chat request.
fn small_openai() -> Vec<u8> {
    json!({"model": "gpt-4o", "stream": true, "messages": [
        {"role": "system", "content": words(30, 3)}, {"role": "user", "content": words(120, 4)}]})
    .to_string()
    .into_bytes()
}

fn parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("hot_path");
    for (name, body) in
        [("inspect_anthropic_1kb", small_anthropic()), ("inspect_anthropic_100kb", claude_code_shaped())]
    {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| b.iter(|| black_box(inspect_messages_request(black_box(&body)).is_ok())));
    }
    let aliases = default_aliases();
    let options = ConvertOptions { default_max_tokens: 4096, aliases: &aliases };
    let body = small_openai();
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("convert_openai_1kb", |b| {
        b.iter(|| black_box(chat_request_to_anthropic(black_box(&body), &options).map(|c| c.body.len())))
    });
    group.finish();
}

criterion_group!(benches, parsing);
criterion_main!(benches);
