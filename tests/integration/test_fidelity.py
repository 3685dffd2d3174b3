"""Tools, images, reasoning round trips, structured output and aliases end to end: the openai
SDK -> gateway -> fake Bedrock, whose validation rejects what real Bedrock rejects."""

from __future__ import annotations

import base64
import json
from typing import Any

import openai
import pytest

from tests.fakes.bedrock import FakeBedrock
from tests.fakes.behaviours import Reply, ToolUse
from tests.integration.conftest import API_KEY, GatewayFactory

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
SONNET_37 = "us.anthropic.claude-3-7-sonnet-20250219-v1:0"
LLAMA = "meta.llama3-8b-instruct-v1:0"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDRtiny").decode()
WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


async def test_tool_call_round_trip_plain(client: openai.AsyncOpenAI, fake: FakeBedrock) -> None:
    """A plain tool call comes back as tool_calls; sending its result back passes Bedrock's
    matching rules and reaches the model as toolResult."""
    fake.enqueue(Reply(text="", tool_uses=[ToolUse("weather", {"city": "Oslo"}, "tu_1")]))
    first = await client.chat.completions.create(
        model=HAIKU, messages=[{"role": "user", "content": "weather in Oslo?"}], tools=[WEATHER]
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == (
        "tu_1",
        "weather",
        {"city": "Oslo"},
    )
    second = await client.chat.completions.create(
        model=HAIKU,
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "weather in Oslo?"},
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": "tu_1", "content": "sunny, 20C"},
        ],
    )
    assert second.choices[0].finish_reason == "stop"
    sent = fake.requests_for("Converse")[-1].body
    assert sent["messages"][2]["content"][0]["toolResult"]["toolUseId"] == "tu_1"


async def test_parallel_tool_calls_streamed(client: openai.AsyncOpenAI, fake: FakeBedrock) -> None:
    """Streamed parallel calls are joined by index into complete calls, text before them kept."""
    fake.enqueue(
        Reply(
            text="Checking both.",
            tool_uses=[
                ToolUse("weather", {"city": "Oslo"}, "a"),
                ToolUse("weather", {"city": "Rome"}, "b"),
            ],
        )
    )
    stream = await client.chat.completions.create(
        model=HAIKU,
        messages=[{"role": "user", "content": "Oslo and Rome?"}],
        tools=[WEATHER],
        stream=True,
    )
    text = ""
    calls: dict[int, dict[str, str]] = {}
    finish = None
    async for chunk in stream:
        delta = chunk.choices[0].delta
        text += delta.content or ""
        for tc in delta.tool_calls or []:
            entry = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] += tc.id or ""
            entry["name"] += (tc.function.name if tc.function else None) or ""
            entry["arguments"] += (tc.function.arguments if tc.function else None) or ""
        finish = chunk.choices[0].finish_reason or finish
    assert text == "Checking both."
    assert finish == "tool_calls"
    assert sorted(calls) == [0, 1]
    assert [(calls[i]["id"], json.loads(calls[i]["arguments"])["city"]) for i in (0, 1)] == [
        ("a", "Oslo"),
        ("b", "Rome"),
    ]


async def test_tool_history_without_tools(client: openai.AsyncOpenAI, fake: FakeBedrock) -> None:
    """A history with tool turns and no tools in the request still passes Bedrock's checks."""
    completion = await client.chat.completions.create(
        model=HAIKU,
        messages=[
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "x1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "x1", "content": "rain"},
            {"role": "user", "content": "thanks"},
        ],
    )
    assert completion.choices[0].finish_reason == "stop"
    body = fake.requests_for("Converse")[-1].body
    assert "toolConfig" in body
    assert body["messages"][-1]["content"] == [
        {"toolResult": {"toolUseId": "x1", "content": [{"text": "rain"}]}},
        {"text": "thanks"},
    ]


async def test_image_reaches_bedrock_as_bytes(
    client: openai.AsyncOpenAI, fake: FakeBedrock
) -> None:
    """An image data URL arrives at Bedrock as an image block with the same bytes."""
    await client.chat.completions.create(
        model=HAIKU,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                ],
            }
        ],
    )
    block = fake.requests_for("Converse")[-1].body["messages"][0]["content"][1]
    assert block["image"]["format"] == "png"
    assert base64.b64decode(block["image"]["source"]["bytes"]) == base64.b64decode(PNG)


async def test_image_refused_for_text_only_model(
    client: openai.AsyncOpenAI, fake: FakeBedrock
) -> None:
    """A model whose input modalities lack images gets a 400 before any Bedrock call."""
    with pytest.raises(openai.BadRequestError, match="does not accept images"):
        await client.chat.completions.create(
            model=LLAMA,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
                    ],
                }
            ],
        )
    assert fake.requests_for("Converse") == []


async def test_thinking_with_tools_across_turns(
    client: openai.AsyncOpenAI, fake: FakeBedrock
) -> None:
    """Reasoning comes back with reasoning_details; replaying them lets thinking plus tool use
    continue on the next turn with the signed block in front of the tool use."""
    fake.enqueue(
        Reply(
            text="",
            reasoning="I need the weather tool",
            tool_uses=[ToolUse("weather", {"city": "Oslo"}, "w1")],
        )
    )
    stream = await client.chat.completions.create(
        model=SONNET_37,
        messages=[{"role": "user", "content": "Oslo?"}],
        tools=[WEATHER],
        reasoning_effort="low",
        stream=True,
    )
    reasoning = ""
    details: list[dict[str, Any]] = []
    async for chunk in stream:
        delta: Any = chunk.choices[0].delta
        reasoning += getattr(delta, "reasoning_content", None) or ""
        details.extend(getattr(delta, "reasoning_details", None) or [])
    assert reasoning == "I need the weather tool"
    assert details and details[0]["signature"] == "fake-signature"
    sent = fake.requests_for("ConverseStream")[-1].body
    assert sent["additionalModelRequestFields"]["thinking"]["type"] == "enabled"
    await client.chat.completions.create(
        model=SONNET_37,
        reasoning_effort="low",
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "Oslo?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "w1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                    }
                ],
                "reasoning_details": details,  # type: ignore[typeddict-unknown-key]
            },
            {"role": "tool", "tool_call_id": "w1", "content": "sunny"},
        ],
    )
    replayed = fake.requests_for("Converse")[-1].body["messages"][1]["content"]
    assert replayed[0] == {
        "reasoningContent": {
            "reasoningText": {"text": "I need the weather tool", "signature": "fake-signature"}
        }
    }
    assert "toolUse" in replayed[1]


async def test_json_schema_response(client: openai.AsyncOpenAI, fake: FakeBedrock) -> None:
    """response_format json_schema returns content that parses as JSON matching the schema."""
    fake.enqueue(Reply(tool_uses=[ToolUse("json_response", {"name": "Ada", "age": 36})]))
    completion = await client.chat.completions.create(
        model=HAIKU,
        messages=[{"role": "user", "content": "a person"}],
        response_format={
            "type": "json_schema",
            "json_schema": {
                "name": "person",
                "schema": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                    "required": ["name", "age"],
                },
            },
        },
    )
    assert json.loads(completion.choices[0].message.content or "") == {"name": "Ada", "age": 36}
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.tool_calls is None


async def test_alias_listed_and_resolved(start_gateway: GatewayFactory, fake: FakeBedrock) -> None:
    """A configured alias is listed and served by its target, answering under the alias."""
    gateway = await start_gateway(models={"aliases": {"gpt-4o": HAIKU}})
    async with openai.AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0
    ) as sdk:
        ids = {m.id async for m in sdk.models.list()}
        assert "gpt-4o" in ids
        completion = await sdk.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
    assert completion.model == "gpt-4o"
    assert fake.requests_for("Converse")[-1].model_id == HAIKU


async def test_ignored_parameters_accepted(client: openai.AsyncOpenAI, fake: FakeBedrock) -> None:
    """Open WebUI's extra sampling parameters are accepted and never forwarded to Bedrock."""
    await client.chat.completions.create(
        model=HAIKU,
        messages=[{"role": "user", "content": "x"}],
        frequency_penalty=0.5,
        presence_penalty=0.5,
        seed=4,
        logit_bias={"1": 1},
        user="u",
        extra_body={"min_p": 0.1},
    )
    body = fake.requests_for("Converse")[-1].body
    assert "additionalModelRequestFields" not in body and "inferenceConfig" not in body


@pytest.fixture
async def image_server() -> Any:
    """A local web server with one PNG and one HTML page."""
    from aiohttp import web

    async def png(request: web.Request) -> web.Response:
        return web.Response(body=base64.b64decode(PNG), content_type="image/png")

    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html></html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/cat.png", png)
    app.router.add_get("/page", html)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


def _image_message(url: str) -> list[Any]:
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "see"},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        }
    ]


async def test_remote_images_off_by_default(client: openai.AsyncOpenAI, image_server: str) -> None:
    """Without chat.fetch_remote_images the gateway refuses to fetch URLs for clients."""
    with pytest.raises(openai.BadRequestError, match="remote image URLs are disabled"):
        await client.chat.completions.create(
            model=HAIKU, messages=_image_message(f"{image_server}/cat.png")
        )


async def test_remote_images_fetched_when_enabled(
    start_gateway: GatewayFactory, fake: FakeBedrock, image_server: str
) -> None:
    """With fetching on, a remote image reaches Bedrock as bytes; a non-image URL is a 400."""
    gateway = await start_gateway(chat={"fetch_remote_images": True})
    async with openai.AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0
    ) as sdk:
        await sdk.chat.completions.create(
            model=HAIKU, messages=_image_message(f"{image_server}/cat.png")
        )
        block = fake.requests_for("Converse")[-1].body["messages"][0]["content"][1]
        assert base64.b64decode(block["image"]["source"]["bytes"]) == base64.b64decode(PNG)
        with pytest.raises(openai.BadRequestError, match="not an image"):
            await sdk.chat.completions.create(
                model=HAIKU, messages=_image_message(f"{image_server}/page")
            )
