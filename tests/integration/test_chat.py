"""/v1/chat/completions, plain and streamed, through the openai SDK and the fake Bedrock."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import openai
import pytest

from bedrock_gw.server import Gateway
from tests.fakes.bedrock import FakeBedrock
from tests.fakes.behaviours import Reply, StreamEvents
from tests.integration.conftest import API_KEY, GatewayFactory

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
SONNET_PROFILE = "us.anthropic.claude-3-7-sonnet-20250219-v1:0"
APP_PROFILE = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123"


async def test_plain_chat(client: openai.AsyncOpenAI, fake: FakeBedrock) -> None:
    """A plain chat returns the model's reply, finish reason and usage in OpenAI's shape."""
    fake.enqueue(Reply(text="Hello there", input_tokens=7, output_tokens=2))
    completion = await client.chat.completions.create(
        model=HAIKU,
        messages=[{"role": "system", "content": "be nice"}, {"role": "user", "content": "hi"}],
        max_tokens=50,
        temperature=0.2,
    )
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == HAIKU
    assert completion.choices[0].message.content == "Hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (7, 2)
    (call,) = fake.requests_for("Converse")
    assert call.model_id == HAIKU
    assert call.access_key_id == "AKIDFAKE"
    assert call.body == {
        "messages": [{"role": "user", "content": [{"text": "hi"}]}],
        "system": [{"text": "be nice"}],
        "inferenceConfig": {"maxTokens": 50, "temperature": 0.2},
    }


@pytest.mark.parametrize(
    "model",
    [
        pytest.param(SONNET_PROFILE, id="system-profile"),
        pytest.param(APP_PROFILE, id="application-arn"),
    ],
)
async def test_profile_ids_reach_bedrock_signed(
    client: openai.AsyncOpenAI, fake: FakeBedrock, model: str
) -> None:
    """Profile ids and ARNs (with ':' and '/') are encoded and signed the way Bedrock verifies."""
    completion = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "ping"}]
    )
    assert completion.choices[0].message.content == "echo: ping"
    assert fake.requests_for("Converse")[-1].model_id == model


async def test_stream_chat(client: openai.AsyncOpenAI, fake: FakeBedrock) -> None:
    """A streamed chat sends the role first, then content deltas, then the finish reason."""
    stream = await client.chat.completions.create(
        model=HAIKU, messages=[{"role": "user", "content": "one two three"}], stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: one two three"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert all(c.usage is None for c in chunks)
    assert len({c.id for c in chunks}) == 1


async def test_stream_usage_when_asked(client: openai.AsyncOpenAI) -> None:
    """With stream_options.include_usage the last chunk has usage and no choices."""
    stream = await client.chat.completions.create(
        model=HAIKU,
        messages=[{"role": "user", "content": "a b"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3  # "echo: a b"
    assert chunks[-2].choices[0].finish_reason == "stop"


async def test_stream_events_relayed_as_they_arrive(
    start_gateway: GatewayFactory, fake: FakeBedrock
) -> None:
    """The first delta reaches the client while Bedrock is still streaming the rest."""
    fake.stream_chunk_delay = 0.3
    gateway = await start_gateway()
    async with openai.AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0
    ) as sdk:
        stream = await sdk.chat.completions.create(
            model=HAIKU, messages=[{"role": "user", "content": "w1 w2 w3 w4 w5"}], stream=True
        )
        active_when_first_text = None
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content and active_when_first_text is None:
                active_when_first_text = fake.active_streams
        assert active_when_first_text == 1
        assert fake.active_streams == 0


async def test_raw_sse_framing(gateway: Gateway) -> None:
    """The wire format is text/event-stream with data: lines and a final [DONE]."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{gateway.url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {API_KEY}"},
            json={"model": HAIKU, "messages": [{"role": "user", "content": "x"}], "stream": True},
        ) as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        body = (await response.read()).decode()
    events = [block for block in body.split("\n\n") if block]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"


async def test_non_streaming_model_still_streams(
    client: openai.AsyncOpenAI, fake: FakeBedrock
) -> None:
    """A model without ConverseStream support is served by one Converse call replayed as chunks."""
    model = fake.model("meta.llama3-8b-instruct-v1:0")
    assert model is not None
    model.streaming = False
    gateway_client = client
    stream = await gateway_client.chat.completions.create(
        model="meta.llama3-8b-instruct-v1:0",
        messages=[{"role": "user", "content": "hey"}],
        stream=True,
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "echo: hey"
    assert fake.requests_for("ConverseStream") == []
    assert len(fake.requests_for("Converse")) == 1


async def test_reasoning_returned(client: openai.AsyncOpenAI, fake: FakeBedrock) -> None:
    """Reasoning text from the model comes back as reasoning_content, streamed and plain."""
    fake.enqueue(
        Reply(text="42", reasoning="let me think"), Reply(text="42", reasoning="let me think")
    )
    completion = await client.chat.completions.create(
        model=HAIKU, messages=[{"role": "user", "content": "q"}]
    )
    message: Any = completion.choices[0].message
    assert (message.content, message.reasoning_content) == ("42", "let me think")
    stream = await client.chat.completions.create(
        model=HAIKU, messages=[{"role": "user", "content": "q"}], stream=True
    )
    reasoning = ""
    async for chunk in stream:
        if chunk.choices:
            reasoning += getattr(chunk.choices[0].delta, "reasoning_content", None) or ""
    assert reasoning == "let me think"


async def test_assistant_first_conversation(client: openai.AsyncOpenAI, fake: FakeBedrock) -> None:
    """A conversation opened by the assistant passes Bedrock's validation."""
    completion = await client.chat.completions.create(
        model=HAIKU,
        messages=[
            {"role": "assistant", "content": "How can I help?"},
            {"role": "user", "content": "tell me"},
        ],
    )
    assert completion.choices[0].message.content == "echo: tell me"


async def test_finish_reason_length(client: openai.AsyncOpenAI, fake: FakeBedrock) -> None:
    """Bedrock's max_tokens stop reaches the client as finish_reason length."""
    fake.enqueue(
        StreamEvents(
            events=[
                ("messageStart", {"role": "assistant"}),
                ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "cut"}}),
                ("contentBlockStop", {"contentBlockIndex": 0}),
                ("messageStop", {"stopReason": "max_tokens"}),
                (
                    "metadata",
                    {
                        "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
                        "metrics": {"latencyMs": 1},
                    },
                ),
            ]
        )
    )
    stream = await client.chat.completions.create(
        model=HAIKU, messages=[{"role": "user", "content": "q"}], stream=True
    )
    chunks = [c async for c in stream]
    assert chunks[-1].choices[0].finish_reason == "length"


async def test_client_disconnect_cancels_upstream(
    start_gateway: GatewayFactory, fake: FakeBedrock
) -> None:
    """A client that leaves mid-stream makes the gateway drop its Bedrock stream at once."""
    fake.stream_chunk_delay = 0.5
    gateway = await start_gateway()
    async with aiohttp.ClientSession() as http:
        response = await http.post(
            f"{gateway.url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {API_KEY}"},
            json={
                "model": HAIKU,
                "messages": [{"role": "user", "content": " ".join(["w"] * 40)}],
                "stream": True,
            },
        )
        assert response.status == 200
        await response.content.readline()
        response.close()  # drop the connection mid-stream
    await asyncio.wait_for(fake.stream_aborted.wait(), timeout=5)
    assert fake.aborted_streams == 1


async def test_access_log_has_tokens_not_prompts(
    client: openai.AsyncOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    """The access log names route, status, key name, model and tokens, never the prompt or key."""
    with caplog.at_level(logging.INFO, logger="bedrock_gw.access"):
        await client.chat.completions.create(
            model=HAIKU, messages=[{"role": "user", "content": "secret-prompt"}]
        )
        for _ in range(50):  # the line is written right after the response is sent
            if caplog.records:
                break
            await asyncio.sleep(0.01)
    (line,) = [r.getMessage() for r in caplog.records if r.name == "bedrock_gw.access"]
    assert '"POST /v1/chat/completions" 200' in line
    assert f"model={HAIKU}" in line
    assert "key=inline-1" in line
    assert "in=" in line and "out=" in line
    assert "secret-prompt" not in line and API_KEY not in line


@pytest.mark.parametrize("switch", [pytest.param(False, id="off"), pytest.param(True, id="on")])
async def test_body_logging_switch(
    start_gateway: GatewayFactory, caplog: pytest.LogCaptureFixture, switch: bool
) -> None:
    """Request bodies (prompts) are logged only when logging.log_bodies is on."""
    gateway = await start_gateway(logging={"log_bodies": switch})
    with caplog.at_level(logging.INFO, logger="bedrock_gw.bodies"):
        async with openai.AsyncOpenAI(
            base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0
        ) as sdk:
            await sdk.chat.completions.create(
                model=HAIKU, messages=[{"role": "user", "content": "my-private-prompt"}]
            )
    logged = any("my-private-prompt" in r.getMessage() for r in caplog.records)
    assert logged is switch
