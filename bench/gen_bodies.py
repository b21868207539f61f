#!/usr/bin/env python3
"""Writes the benchmark's request bodies into a directory (default bench/results/bodies).

Everything is generated from a fixed seed, so every run sends the same bytes:

  anthropic-1k.json          ~1 KB Anthropic Messages request (non-streaming)
  anthropic-1k-stream.json   the same with "stream": true
  anthropic-100k.json        ~100 KB Claude-Code-shaped request: 3 system blocks (cache_control on the last),
                             24 tools with JSON-schema input_schema, ~20 turns with tool_use / tool_result,
                             metadata.user_id in Claude Code's JSON form
  openai-1k.json             ~1 KB OpenAI chat-completions request (non-streaming)
  openai-1k-stream.json      the same with "stream": true

Usage: python3 bench/gen_bodies.py [OUT_DIR]
"""

import json
import os
import random
import sys

MODEL = "claude-sonnet-4-5"
# A fixed vocabulary of code-ish words; text is drawn from it with a seeded PRNG.
WORDS = (
    "the a to of and in is for on that with file function return value error test build config request "
    "response stream token account session header body parse route upstream client server proxy cache "
    "latency memory thread async await future buffer bytes string vector map option result struct enum "
    "trait impl module crate import export class method field type schema json yaml path directory line "
    "change update remove add fix check run command output input read write open close list find search"
).split()


def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def sentence_block(rng: random.Random, target_bytes: int) -> str:
    parts, size = [], 0
    while size < target_bytes:
        s = words(rng, rng.randint(6, 16)).capitalize() + "."
        parts.append(s)
        size += len(s) + 1
    return " ".join(parts)[:target_bytes]


def dumps(obj) -> bytes:
    # Compact, like the SDKs send it.
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def user_id() -> str:
    return json.dumps(
        {
            "device_id": "5f0c" * 16,
            "account_uuid": "",
            "session_id": "b3f1c0de-0000-4000-8000-00000000be7c",
        },
        separators=(",", ":"),
    )


def anthropic_small(rng: random.Random, stream: bool) -> dict:
    body = {
        "model": MODEL,
        "max_tokens": 1024,
        "stream": stream,
        "metadata": {"user_id": user_id()},
        "system": "You are a concise assistant for a benchmark.",
        "messages": [{"role": "user", "content": ""}],
    }
    base = len(dumps(body))
    body["messages"][0]["content"] = sentence_block(rng, 1024 - base)
    return body


def tool_schema(rng: random.Random, i: int) -> dict:
    props = {}
    for j in range(rng.randint(3, 7)):
        name = f"{rng.choice(WORDS)}_{j}"
        kind = rng.choice(["string", "integer", "boolean", "array", "object"])
        prop = {"type": kind, "description": sentence_block(rng, rng.randint(120, 360))}
        if kind == "array":
            prop["items"] = {"type": "string"}
        if kind == "object":
            prop["properties"] = {"path": {"type": "string"}, "limit": {"type": "integer", "minimum": 1}}
            prop["additionalProperties"] = False
        if kind == "string" and rng.random() < 0.3:
            prop["enum"] = [rng.choice(WORDS) for _ in range(4)]
        props[name] = prop
    return {
        "name": f"Tool{i:02d}_{rng.choice(WORDS).capitalize()}",
        "description": sentence_block(rng, rng.randint(500, 1500)),
        "input_schema": {
            "type": "object",
            "properties": props,
            "required": sorted(props)[:2],
            "additionalProperties": False,
            "$schema": "http://json-schema.org/draft-07/schema#",
        },
    }


def anthropic_large(rng: random.Random, target: int = 100 * 1024) -> dict:
    system = [
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
        {"type": "text", "text": sentence_block(rng, 6000)},
        {"type": "text", "text": sentence_block(rng, 6000), "cache_control": {"type": "ephemeral"}},
    ]
    tools = [tool_schema(rng, i) for i in range(24)]
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "<system-reminder>" + sentence_block(rng, 1500) + "</system-reminder>"},
                {"type": "text", "text": sentence_block(rng, 300)},
            ],
        }
    ]
    turn = 0
    # ~20 turns: assistant tool_use, user tool_result; the last user turn carries cache_control.
    while turn < 19:
        tool = rng.choice(tools)
        tid = f"toolu_{rng.getrandbits(96):024x}"
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": sentence_block(rng, rng.randint(80, 400))},
                    {
                        "type": "tool_use",
                        "id": tid,
                        "name": tool["name"],
                        "input": {"path": "/src/" + rng.choice(WORDS) + ".rs", "pattern": words(rng, 3)},
                    },
                ],
            }
        )
        messages.append(
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": tid, "content": sentence_block(rng, 1500)}],
            }
        )
        turn += 2 if turn < 18 else 1
    body = {
        "model": MODEL,
        "max_tokens": 32000,
        "stream": False,
        "metadata": {"user_id": user_id()},
        "system": system,
        "tools": tools,
        "messages": messages,
    }
    # Pad the last tool_result so the body lands on the target size.
    size = len(dumps(body))
    last = messages[-1]["content"][0]
    if size < target:
        last["content"] += " " + sentence_block(rng, target - size - 1)
    last["cache_control"] = {"type": "ephemeral"}
    return body


def openai_small(rng: random.Random, stream: bool) -> dict:
    body = {
        "model": MODEL,
        "max_tokens": 1024,
        "stream": stream,
        "messages": [
            {"role": "system", "content": "You are a concise assistant for a benchmark."},
            {"role": "user", "content": ""},
        ],
    }
    base = len(dumps(body))
    body["messages"][1]["content"] = sentence_block(rng, 1024 - base)
    return body


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "results", "bodies")
    os.makedirs(out, exist_ok=True)
    bodies = {
        "anthropic-1k.json": anthropic_small(random.Random(1), False),
        "anthropic-1k-stream.json": anthropic_small(random.Random(1), True),
        "anthropic-100k.json": anthropic_large(random.Random(2)),
        "openai-1k.json": openai_small(random.Random(3), False),
        "openai-1k-stream.json": openai_small(random.Random(3), True),
    }
    for name, body in bodies.items():
        data = dumps(body)
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    big = bodies["anthropic-100k.json"]
    print(
        f"bodies in {out}: "
        + ", ".join(f"{n} {len(dumps(b))} B" for n, b in bodies.items())
        + f"; 100k: {len(big['system'])} system blocks, {len(big['tools'])} tools, {len(big['messages'])} turns"
    )


if __name__ == "__main__":
    main()
