"""The official `openai` Python SDK against the real gateway's `/v1/chat/completions` and `/v1/models`, with the mock
Anthropic upstream behind it: the SDK's own parsers, stream accumulators and exception classes must all work."""

from __future__ import annotations

import json
import re

import openai
import pytest
from pydantic import BaseModel

from conftest import ACCOUNT_KEY

# An OpenAI name the gateway's built-in aliases map to a Claude model (protocol.md §5, issue #3 "Models").
MODEL = "gpt-4o"
MOCK_ANSWER = "Hello from the mock upstream."
SYSTEM_PROMPT = "You are a terse assistant."
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a location.",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string", "description": "City name"}},
            "required": ["location"],
        },
    },
}
# A 1×1 transparent PNG.
TINY_PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
CITY_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
    "additionalProperties": False,
}


def sdk(gw, api_key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=api_key or gw.client_key, max_retries=0, timeout=30.0)


def say_hi(client: openai.OpenAI, **kwargs):
    return client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "say hi"}], **kwargs)


def the_upstream_request(mock):
    """The one request the mock upstream received on `/v1/messages`, as JSON."""
    [req] = mock.requests_to("POST", "/v1/messages")
    return req


def system_text(body: dict) -> str:
    system = body.get("system")
    if isinstance(system, str):
        return system
    return "\n".join(block.get("text", "") for block in system or [])


def assert_upstream_used_account_key(req, gw) -> None:
    """The upstream call carries the account's key, in either header form, and never the gateway's key."""
    api_keys = req.header_all("x-api-key")
    bearers = req.header_all("authorization")
    assert api_keys == [ACCOUNT_KEY] or bearers == [f"Bearer {ACCOUNT_KEY}"], (
        f"upstream credentials: x-api-key={api_keys} authorization={bearers}"
    )
    leaked = [(n, v) for n, v in req.headers if gw.client_key in v]
    assert not leaked, f"the gateway key reached the upstream in {leaked}"


def collect_chunks(stream) -> list:
    chunks = list(stream)
    assert chunks, "the stream yielded no chunks"
    return chunks


# ---------------------------------------------------------------------------------------------------------------
# Plain chat
# ---------------------------------------------------------------------------------------------------------------


def test_chat_completion_returns_the_upstream_answer(gateway):
    completion = say_hi(sdk(gateway))

    assert completion.object == "chat.completion"
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert choice.message.content == MOCK_ANSWER
    assert not choice.message.tool_calls
    assert choice.finish_reason == "stop"
    usage = completion.usage
    assert usage is not None, "no usage in a non-streamed completion"
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_chat_completion_echoes_the_model_name_the_client_asked_for(gateway):
    completion = say_hi(sdk(gateway))

    assert completion.model == MODEL


def test_chat_request_reaches_upstream_as_an_anthropic_messages_request(gateway, mock):
    sdk(gateway).chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "say hi"}],
    )

    req = the_upstream_request(mock)
    body = req.json()
    assert body["model"].startswith("claude-"), f"{MODEL} was not mapped to a Claude model: {body['model']!r}"
    assert isinstance(body.get("max_tokens"), int) and body["max_tokens"] > 0, body.get("max_tokens")
    assert SYSTEM_PROMPT in system_text(body), f"system prompt not hoisted: system={body.get('system')!r}"
    assert [m["role"] for m in body["messages"]] == ["user"], body["messages"]
    user_content = body["messages"][0]["content"]
    user_text = user_content if isinstance(user_content, str) else "".join(b.get("text", "") for b in user_content)
    assert user_text == "say hi"
    assert not body.get("stream"), "a non-streamed chat request was streamed upstream"
    assert req.header("anthropic-version"), "the upstream request has no anthropic-version header"
    assert_upstream_used_account_key(req, gateway)


def test_max_completion_tokens_becomes_anthropic_max_tokens(gateway, mock):
    say_hi(sdk(gateway), max_completion_tokens=77)

    assert the_upstream_request(mock).json()["max_tokens"] == 77


# ---------------------------------------------------------------------------------------------------------------
# Streaming
# ---------------------------------------------------------------------------------------------------------------


def test_streaming_yields_role_first_then_the_text_then_stop(gateway, mock):
    chunks = collect_chunks(say_hi(sdk(gateway), stream=True))

    assert all(c.object == "chat.completion.chunk" for c in chunks), [c.object for c in chunks]
    assert chunks[0].choices and chunks[0].choices[0].delta.role == "assistant", chunks[0]
    text_deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(text_deltas) > 1, f"expected the answer in several deltas, got {text_deltas!r}"
    assert "".join(text_deltas) == MOCK_ANSWER
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason is not None]
    assert len(finishing) == 1, f"finish_reason set on {len(finishing)} chunks"
    assert chunks[-1] is finishing[0], "the finish_reason chunk is not the last one"
    assert finishing[0].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks), "usage sent although include_usage was not asked for"
    assert the_upstream_request(mock).json().get("stream") is True


def test_streaming_with_include_usage_ends_with_a_usage_chunk(gateway):
    chunks = collect_chunks(say_hi(sdk(gateway), stream=True, stream_options={"include_usage": True}))

    last = chunks[-1]
    assert last.choices == [], f"the usage chunk has choices: {last.choices!r}"
    assert last.usage is not None, "the last chunk carries no usage"
    assert last.usage.prompt_tokens > 0 and last.usage.completion_tokens > 0
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1]), "usage on a chunk other than the final usage chunk"
    assert chunks[-2].choices and chunks[-2].choices[0].finish_reason == "stop"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == MOCK_ANSWER


def test_stream_helper_accumulates_the_final_completion(gateway):
    with sdk(gateway).chat.completions.stream(
        model=MODEL, messages=[{"role": "user", "content": "say hi"}]
    ) as stream:
        deltas = [event.delta for event in stream if event.type == "content.delta"]
        final = stream.get_final_completion()

    assert "".join(deltas) == MOCK_ANSWER
    assert final.choices[0].message.content == MOCK_ANSWER
    assert final.choices[0].finish_reason == "stop"


def test_mid_stream_upstream_error_raises_an_api_error(gateway, mock):
    def event(name: str, data: dict) -> list[str]:
        return [name, json.dumps(data)]

    mock.enqueue(
        {
            "kind": "stream",
            "events": [
                event(
                    "message_start",
                    {
                        "type": "message_start",
                        "message": {
                            "id": "msg_midstream",
                            "type": "message",
                            "role": "assistant",
                            "content": [],
                            "model": "claude-sonnet-5",
                            "stop_reason": None,
                            "stop_sequence": None,
                            "usage": {"input_tokens": 5, "output_tokens": 1},
                        },
                    },
                ),
                event(
                    "content_block_start",
                    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                ),
                event(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Partial"}},
                ),
                event("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            ],
        }
    )

    received: list[str] = []
    with pytest.raises(openai.APIError) as excinfo:
        for chunk in say_hi(sdk(gateway), stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)

    assert "".join(received) == "Partial", "text before the error was not delivered"
    assert excinfo.value.message, "the mid-stream error has no message"


# ---------------------------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------------------------


def test_streamed_tool_call_is_reassembled_and_its_result_sent_back(gateway, mock):
    client = sdk(gateway)
    question = {"role": "user", "content": "What's the weather in Paris?"}

    with client.chat.completions.stream(model=MODEL, tools=[WEATHER_TOOL], messages=[question]) as stream:
        final = stream.get_final_completion()

    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls, f"no tool call reassembled: {choice.message!r}"
    [call] = choice.message.tool_calls
    assert call.type == "function"
    assert call.id, "the tool call has no id"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "mock"}

    mock.clear()
    second = client.chat.completions.create(
        model=MODEL,
        tools=[WEATHER_TOOL],
        messages=[
            question,
            {
                "role": "assistant",
                "content": choice.message.content,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.function.name, "arguments": call.function.arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call.id, "content": "18 °C and sunny"},
        ],
    )

    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "Tool result received: 18 °C and sunny"

    body = the_upstream_request(mock).json()
    assistant, user = body["messages"][-2], body["messages"][-1]
    [tool_use] = [b for b in assistant["content"] if b["type"] == "tool_use"]
    assert tool_use["name"] == "get_weather" and tool_use["input"] == {"location": "mock"}
    [tool_result] = [b for b in user["content"] if b["type"] == "tool_result"]
    assert user["role"] == "user"
    assert tool_result["tool_use_id"] == tool_use["id"]
    assert body["tools"][0]["name"] == "get_weather"
    assert body["tools"][0]["input_schema"] == WEATHER_TOOL["function"]["parameters"]


def test_streamed_tool_call_deltas_are_indexed_from_zero(gateway):
    # The mock answers with a text block (Anthropic index 0) and then the tool_use (index 1): the OpenAI tool-call
    # index must still start at 0 (LiteLLM bug #5231), with the id and name in the first delta of the call.
    stream = sdk(gateway).chat.completions.create(
        model=MODEL,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "What's the weather in Paris?"}],
        stream=True,
    )
    tool_deltas = [tc for c in collect_chunks(stream) if c.choices for tc in c.choices[0].delta.tool_calls or []]

    assert tool_deltas, "no tool_calls deltas in the stream"
    assert {tc.index for tc in tool_deltas} == {0}
    first = tool_deltas[0]
    assert first.id and first.function and first.function.name == "get_weather", first
    assert all(tc.id is None or tc.id == first.id for tc in tool_deltas[1:])
    arguments = "".join(tc.function.arguments or "" for tc in tool_deltas if tc.function)
    assert json.loads(arguments) == {"location": "mock"}


def test_non_streamed_tool_call_has_json_arguments(gateway):
    completion = sdk(gateway).chat.completions.create(
        model=MODEL, tools=[WEATHER_TOOL], messages=[{"role": "user", "content": "What's the weather in Paris?"}]
    )

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert call.id and call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "mock"}


# ---------------------------------------------------------------------------------------------------------------
# Images and structured output
# ---------------------------------------------------------------------------------------------------------------


def test_image_data_url_reaches_upstream_as_a_base64_image_block(gateway, mock):
    completion = sdk(gateway).chat.completions.create(
        model=MODEL,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{TINY_PNG_B64}"}},
                ],
            }
        ],
    )

    assert completion.choices[0].message.content == MOCK_ANSWER
    [message] = the_upstream_request(mock).json()["messages"]
    images = [b for b in message["content"] if b.get("type") == "image"]
    assert images == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": TINY_PNG_B64}}
    ], message["content"]
    texts = [b["text"] for b in message["content"] if b.get("type") == "text"]
    assert texts == ["What is in this picture?"]


def test_response_format_json_schema_returns_json_content(gateway, mock):
    completion = sdk(gateway).chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Where is the Eiffel Tower?"}],
        response_format={"type": "json_schema", "json_schema": {"name": "place", "schema": CITY_SCHEMA}},
    )

    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert not choice.message.tool_calls, "the response_format tool leaked as a tool call"
    data = json.loads(choice.message.content)
    assert isinstance(data, dict) and set(CITY_SCHEMA["required"]) <= data.keys(), data
    assert all(isinstance(data[k], str) for k in CITY_SCHEMA["required"])

    body = the_upstream_request(mock).json()
    assert any(t.get("input_schema") == CITY_SCHEMA for t in body.get("tools", [])), body.get("tools")


def test_streamed_response_format_json_schema_streams_json_content(gateway):
    chunks = collect_chunks(
        sdk(gateway).chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Where is the Eiffel Tower?"}],
            response_format={"type": "json_schema", "json_schema": {"name": "place", "schema": CITY_SCHEMA}},
            stream=True,
        )
    )

    assert not any(c.choices and c.choices[0].delta.tool_calls for c in chunks), "tool_calls deltas in the stream"
    data = json.loads("".join(c.choices[0].delta.content or "" for c in chunks if c.choices))
    assert set(CITY_SCHEMA["required"]) <= data.keys(), data
    assert chunks[-1].choices[0].finish_reason == "stop"


class Place(BaseModel):
    city: str
    country: str


def test_parse_with_a_pydantic_model_fills_parsed(gateway):
    completion = sdk(gateway).chat.completions.parse(
        model=MODEL, messages=[{"role": "user", "content": "Where is the Eiffel Tower?"}], response_format=Place
    )

    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Place), completion.choices[0].message
    assert parsed.city and parsed.country


def test_stream_helper_with_a_pydantic_model_fills_parsed(gateway):
    # The SDK's stream helper validates the accumulated content against the model when the content ends.
    with sdk(gateway).chat.completions.stream(
        model=MODEL, messages=[{"role": "user", "content": "Where is the Eiffel Tower?"}], response_format=Place
    ) as stream:
        final = stream.get_final_completion()

    parsed = final.choices[0].message.parsed
    assert isinstance(parsed, Place), final.choices[0].message
    assert parsed.city and parsed.country


# ---------------------------------------------------------------------------------------------------------------
# Errors as the SDK's own exception classes
# ---------------------------------------------------------------------------------------------------------------


def test_wrong_gateway_key_is_an_authentication_error(gateway, mock):
    with pytest.raises(openai.AuthenticationError) as excinfo:
        say_hi(sdk(gateway, api_key="sk-gw-not-a-real-key"))

    assert excinfo.value.status_code == 401
    assert excinfo.value.type == "authentication_error"
    assert excinfo.value.code == "invalid_api_key"
    assert excinfo.value.message
    assert mock.requests_to("POST", "/v1/messages") == [], "a request with a wrong gateway key reached the upstream"


def test_upstream_400_is_a_bad_request_error(gateway):
    # A client error is the request's fault, not the account's: the shared gateway stays usable.
    with pytest.raises(openai.BadRequestError) as excinfo:
        say_hi(sdk(gateway), extra_headers={"x-mock-status": "400"})

    assert excinfo.value.status_code == 400
    assert excinfo.value.type == "invalid_request_error"
    assert isinstance(excinfo.value.body, dict) and {"message", "type", "param", "code"} <= excinfo.value.body.keys()
    assert say_hi(sdk(gateway)).choices[0].message.content == MOCK_ANSWER


def test_upstream_400_on_a_streamed_request_is_a_bad_request_error(gateway):
    # The upstream fails before the first byte: the gateway can still answer with a real status (protocol.md §6).
    with pytest.raises(openai.BadRequestError) as excinfo:
        for _ in say_hi(sdk(gateway), stream=True, extra_headers={"x-mock-status": "400"}):
            pass

    assert excinfo.value.status_code == 400


def test_upstream_429_is_a_rate_limit_error(fresh_gateway):
    with pytest.raises(openai.RateLimitError) as excinfo:
        say_hi(sdk(fresh_gateway), extra_headers={"x-mock-status": "429"})

    assert excinfo.value.status_code == 429
    assert excinfo.value.type == "rate_limit_error"
    assert excinfo.value.code == "rate_limit_exceeded"


def test_n_greater_than_one_is_a_bad_request_error_naming_n(gateway, mock):
    with pytest.raises(openai.BadRequestError) as excinfo:
        say_hi(sdk(gateway), n=2)

    assert excinfo.value.status_code == 400
    assert excinfo.value.type == "invalid_request_error"
    assert re.search(r"\bn\b", excinfo.value.message), excinfo.value.message
    assert mock.requests_to("POST", "/v1/messages") == [], "a request the gateway rejects reached the upstream"


def test_invalid_tool_call_arguments_are_a_bad_request_error(gateway, mock):
    with pytest.raises(openai.BadRequestError) as excinfo:
        sdk(gateway).chat.completions.create(
            model=MODEL,
            tools=[WEATHER_TOOL],
            messages=[
                {"role": "user", "content": "What's the weather in Paris?"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{nope"}}
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            ],
        )

    assert excinfo.value.status_code == 400
    assert mock.requests_to("POST", "/v1/messages") == []


# ---------------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------------


def test_models_list_returns_claude_models(gateway):
    models = list(sdk(gateway).models.list())

    assert models, "no models listed"
    ids = [m.id for m in models]
    assert all(i.startswith("claude-") for i in ids), ids
    assert all(m.object == "model" for m in models), [m.object for m in models]
    assert all(isinstance(m.created, int) for m in models), [m.created for m in models]
    assert all(isinstance(m.owned_by, str) and m.owned_by for m in models), [m.owned_by for m in models]
