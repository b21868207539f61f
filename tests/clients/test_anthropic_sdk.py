"""The official `anthropic` Python SDK against the real gateway, with the mock Anthropic upstream behind it."""

from __future__ import annotations

import anthropic
import pytest

from conftest import ACCOUNT_KEY

MODEL = "claude-sonnet-5"
MOCK_ANSWER = "Hello from the mock upstream."
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a location.",
    "input_schema": {
        "type": "object",
        "properties": {"location": {"type": "string", "description": "City name"}},
        "required": ["location"],
    },
}


def sdk(gw, api_key: str | None = None) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=api_key or gw.client_key, max_retries=0, timeout=30.0)


def say_hi(client: anthropic.Anthropic, **kwargs):
    return client.messages.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "say hi"}], **kwargs
    )


def text_of(message) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def assert_upstream_used_account_key(req, gw) -> None:
    """The upstream call carries the account's key, in either header form, and never the gateway's key."""
    api_keys = req.header_all("x-api-key")
    bearers = req.header_all("authorization")
    assert api_keys == [ACCOUNT_KEY] or bearers == [f"Bearer {ACCOUNT_KEY}"], (
        f"upstream credentials: x-api-key={api_keys} authorization={bearers}"
    )
    leaked = [(n, v) for n, v in req.headers if gw.client_key in v]
    assert not leaked, f"the gateway key reached the upstream in {leaked}"


def test_messages_create_returns_the_upstream_answer(gateway):
    message = say_hi(sdk(gateway))

    assert text_of(message) == MOCK_ANSWER
    assert message.role == "assistant"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0


def test_upstream_gets_the_account_key_never_the_gateway_key(gateway, mock):
    say_hi(sdk(gateway))

    [req] = mock.requests_to("POST", "/v1/messages")
    assert_upstream_used_account_key(req, gateway)
    assert req.json()["model"] == MODEL


def test_client_anthropic_beta_header_arrives_unchanged(gateway, mock):
    betas = "interleaved-thinking-2025-05-14,context-management-2025-06-27"

    say_hi(sdk(gateway), extra_headers={"anthropic-beta": betas})

    [req] = mock.requests_to("POST", "/v1/messages")
    assert req.header_all("anthropic-beta") == [betas]


def test_streaming_yields_text_deltas_and_a_final_end_turn_message(gateway):
    with sdk(gateway).messages.stream(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "say hi"}]
    ) as stream:
        deltas = list(stream.text_stream)
        final = stream.get_final_message()

    assert len(deltas) > 1, f"expected the answer in several deltas, got {deltas!r}"
    assert "".join(deltas) == MOCK_ANSWER
    assert text_of(final) == MOCK_ANSWER
    assert final.stop_reason == "end_turn"


def test_streaming_request_reaches_upstream_as_a_stream(gateway, mock):
    with sdk(gateway).messages.stream(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "say hi"}]
    ) as stream:
        stream.until_done()

    [req] = mock.requests_to("POST", "/v1/messages")
    assert req.json()["stream"] is True
    assert_upstream_used_account_key(req, gateway)


def test_tool_use_round_trip(gateway):
    client = sdk(gateway)
    question = {"role": "user", "content": "What's the weather in Paris?"}

    first = client.messages.create(model=MODEL, max_tokens=256, tools=[WEATHER_TOOL], messages=[question])

    assert first.stop_reason == "tool_use"
    [tool_use] = [b for b in first.content if b.type == "tool_use"]
    assert tool_use.name == "get_weather"
    assert isinstance(tool_use.input.get("location"), str)

    second = client.messages.create(
        model=MODEL,
        max_tokens=256,
        tools=[WEATHER_TOOL],
        messages=[
            question,
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "18 °C and sunny"}],
            },
        ],
    )

    assert second.stop_reason == "end_turn"
    assert text_of(second).startswith("Tool result received: ")


def test_streamed_tool_use_arrives_as_a_parsed_tool_call(gateway):
    with sdk(gateway).messages.stream(
        model=MODEL,
        max_tokens=256,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "What's the weather in Paris?"}],
    ) as stream:
        final = stream.get_final_message()

    assert final.stop_reason == "tool_use"
    [tool_use] = [b for b in final.content if b.type == "tool_use"]
    assert tool_use.name == "get_weather"
    assert isinstance(tool_use.input.get("location"), str)


def test_count_tokens_returns_a_positive_count(gateway):
    result = sdk(gateway).messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "say hi"}])

    assert isinstance(result.input_tokens, int)
    assert result.input_tokens > 0


def test_models_list_returns_claude_models(gateway):
    ids = [model.id for model in sdk(gateway).models.list()]

    assert ids, "no models listed"
    assert all(i.startswith("claude-") for i in ids), ids


def test_wrong_gateway_key_is_an_authentication_error(gateway, mock):
    with pytest.raises(anthropic.AuthenticationError):
        say_hi(sdk(gateway, api_key="sk-gw-not-a-real-key"))

    assert mock.requests_to("POST", "/v1/messages") == [], "a request with a wrong gateway key reached the upstream"


def test_upstream_400_is_a_bad_request_error(gateway):
    # A client error is the request's fault, not the account's: the shared gateway stays usable.
    with pytest.raises(anthropic.BadRequestError) as excinfo:
        say_hi(sdk(gateway), extra_headers={"x-mock-status": "400"})

    assert excinfo.value.status_code == 400
    assert text_of(say_hi(sdk(gateway))) == MOCK_ANSWER


def test_upstream_429_is_a_rate_limit_error(fresh_gateway):
    with pytest.raises(anthropic.RateLimitError) as excinfo:
        say_hi(sdk(fresh_gateway), extra_headers={"x-mock-status": "429"})

    assert excinfo.value.status_code == 429


def test_upstream_529_is_an_overloaded_error(fresh_gateway):
    # anthropic 2.x maps 529 to OverloadedError (a subclass of InternalServerError).
    with pytest.raises(anthropic.OverloadedError) as excinfo:
        say_hi(sdk(fresh_gateway), extra_headers={"x-mock-status": "529"})

    assert excinfo.value.status_code == 529
