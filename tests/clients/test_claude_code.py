"""The real Claude Code CLI, headless (`claude -p`), against the real gateway and the mock Anthropic upstream.

The CLI comes from env CLAUDE_BIN (scripts/test.sh installs a pinned version), else `claude` on PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import ACCOUNT_KEY

MOCK_ANSWER = "Hello from the mock upstream."
CLI_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def claude_bin() -> str:
    path = os.environ.get("CLAUDE_BIN") or shutil.which("claude")
    if not path or not os.access(path, os.X_OK):
        pytest.fail("Claude Code CLI not found: set CLAUDE_BIN or put `claude` on PATH (scripts/test.sh installs it)")
    return path


def run_claude(claude_bin: str, base_url: str, api_key: str, *args: str) -> subprocess.CompletedProcess:
    """`claude -p …` in an empty environment, empty HOME and empty working directory (design.md §5)."""
    with tempfile.TemporaryDirectory(prefix="cc-home.") as home, tempfile.TemporaryDirectory(prefix="cc-cwd.") as cwd:
        env = {
            "PATH": f"{Path(claude_bin).parent}:/usr/bin:/bin",
            "HOME": home,
            "ANTHROPIC_BASE_URL": base_url,
            "ANTHROPIC_API_KEY": api_key,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_AUTOUPDATER": "1",
            "CLAUDE_CODE_MAX_RETRIES": "2",
            # The mock answers any request that offers tools with a call of the first tool; Claude Code always
            # offers its ~24 tools and would then run an endless agent loop. `x-mock-tools: none` asks the mock
            # for a plain text answer; the gateway forwards it like any other client header.
            "ANTHROPIC_CUSTOM_HEADERS": "x-mock-tools: none",
        }
        try:
            return subprocess.run(
                [claude_bin, *args],
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=CLI_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"claude {' '.join(args)} did not finish in {CLI_TIMEOUT_S}s\nstdout:\n{e.stdout}\nstderr:\n{e.stderr}")


def say_hi(claude_bin: str, base_url: str, api_key: str) -> dict:
    res = run_claude(claude_bin, base_url, api_key, "-p", "say hi", "--output-format", "json")
    assert res.returncode == 0, f"claude exited {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    try:
        return json.loads(res.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"claude printed no JSON document\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}")


def test_claude_code_headless_gets_the_upstream_answer_through_the_gateway(claude_bin, gateway, mock):
    result = say_hi(claude_bin, gateway.url, gateway.client_key)

    assert result.get("is_error") is False, result
    assert MOCK_ANSWER in result["result"], result


def test_claude_code_request_reaches_upstream_as_sent_with_the_account_key(claude_bin, gateway, mock):
    say_hi(claude_bin, gateway.url, gateway.client_key)

    posts = mock.requests_to("POST", "/v1/messages")
    streamed = [r for r in posts if r.query == "beta=true" and r.json().get("stream") is True]
    assert streamed, f"no streaming POST /v1/messages?beta=true upstream; saw {[(r.query, r.body[:80]) for r in posts]}"
    req = streamed[-1]

    betas = [b.strip() for v in req.header_all("anthropic-beta") for b in v.split(",")]
    assert "claude-code-20250219" in betas, betas
    assert req.header("x-claude-code-session-id"), "x-claude-code-session-id did not reach the upstream"
    assert req.header_all("x-api-key") == [ACCOUNT_KEY] or req.header_all("authorization") == [
        f"Bearer {ACCOUNT_KEY}"
    ], f"upstream credentials: x-api-key={req.header_all('x-api-key')} authorization={req.header_all('authorization')}"
    leaked = [(n, v) for r in mock.requests() for n, v in r.headers if gateway.client_key in v]
    assert not leaked, f"the gateway key reached the upstream in {leaked}"


def test_claude_code_request_is_forwarded_like_a_direct_call(claude_bin, gateway, mock):
    """What the upstream sees through the gateway matches what the same CLI sends it directly: the same betas in
    the same order (Claude Code's requests need them, protocol.md §7), the same API version, and the same body
    fields, unknown ones included."""
    say_hi(claude_bin, mock.url, ACCOUNT_KEY)
    [direct] = [r for r in mock.requests_to("POST", "/v1/messages") if r.json().get("stream") is True]
    mock.clear()
    say_hi(claude_bin, gateway.url, gateway.client_key)
    [proxied] = [r for r in mock.requests_to("POST", "/v1/messages") if r.json().get("stream") is True]

    assert proxied.header_all("anthropic-beta") == direct.header_all("anthropic-beta")
    assert proxied.header_all("anthropic-version") == direct.header_all("anthropic-version")
    assert proxied.query == direct.query
    direct_body, proxied_body = direct.json(), proxied.json()
    assert sorted(proxied_body) == sorted(direct_body)
    for key in ("model", "max_tokens", "tools", "thinking", "stream"):
        assert proxied_body.get(key) == direct_body.get(key), key
    assert len(proxied_body["system"]) == len(direct_body["system"])


def sse_events(*events: tuple[str, dict]) -> list[list[str]]:
    return [[name, json.dumps(data)] for name, data in events]


# The first events of an answer, for a stream the mock cuts before it ends.
BROKEN_STREAM_START = sse_events(
    (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_cut",
                "type": "message",
                "role": "assistant",
                "model": "claude-opus-4-8",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 5, "output_tokens": 1},
            },
        },
    ),
    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Half an ans"}},
    ),
)


def test_claude_code_recovers_when_the_upstream_stream_breaks_mid_answer(claude_bin, fresh_gateway, mock):
    # The connection dies after three events: the gateway must end the client's stream so the CLI retries.
    mock.enqueue({"kind": "stream", "events": BROKEN_STREAM_START, "cut_after": 3})

    result = say_hi(claude_bin, fresh_gateway.url, fresh_gateway.client_key)

    assert result.get("is_error") is False, result
    assert MOCK_ANSWER in result["result"], result
    assert len(mock.requests_to("POST", "/v1/messages")) >= 2, "the CLI did not retry the broken request"


def test_claude_code_gets_its_answer_after_one_upstream_529(claude_bin, fresh_gateway, mock):
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    mock.enqueue({"kind": "response", "status": 529, "body": json.dumps(overloaded)})

    result = say_hi(claude_bin, fresh_gateway.url, fresh_gateway.client_key)

    assert result.get("is_error") is False, result
    assert MOCK_ANSWER in result["result"], result
    assert len(mock.requests_to("POST", "/v1/messages")) == 2
