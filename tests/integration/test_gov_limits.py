"""Keys as tenants: models, rates and budgets under concurrent load; usage that survives restarts.

Concurrency is made deterministic with ``Held`` answers: the fake keeps admitted requests in
flight until the test releases them, so what the gateway admits beside them is exactly known.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from bedrock_gw.governance.usage_store import report
from bedrock_gw.server import Gateway
from bedrock_gw.web.state import GOVERNOR, METRICS
from tests.fakes.bedrock import FakeBedrock
from tests.fakes.behaviours import Held, Reply
from tests.fakes.catalogue import HAIKU, LLAMA3_8B, TITAN_EMBED_V2
from tests.integration.conftest import API_KEY, GatewayFactory
from tests.stubs import eventually

KEY_NAME = "inline-1"  # the name of the first inline key
USER = [{"role": "user", "content": "hi"}]


async def _chat(
    http: aiohttp.ClientSession, url: str, *, headers: dict[str, str] | None = None, **body: Any
) -> tuple[int, dict[str, str], dict[str, Any]]:
    payload = {"model": HAIKU, "messages": USER, **body}
    async with http.post(
        f"{url}/v1/chat/completions",
        json=payload,
        headers={"Authorization": f"Bearer {API_KEY}", **(headers or {})},
    ) as response:
        return response.status, dict(response.headers), await response.json()


async def _stream_text(http: aiohttp.ClientSession, url: str) -> str:
    async with http.post(
        f"{url}/v1/chat/completions",
        json={"model": HAIKU, "messages": USER, "stream": True},
        headers={"Authorization": f"Bearer {API_KEY}"},
    ) as response:
        assert response.status == 200
        return await response.text()


def _sample(gateway: Gateway, name: str, **labels: str) -> float | None:
    return gateway.app[METRICS].registry.get_sample_value(name, {"key": KEY_NAME, **labels})


async def test_a_request_in_flight_keeps_others_from_overshooting(
    start_gateway: GatewayFactory, fake: FakeBedrock
) -> None:
    """Ten requests arriving beside one in flight are all refused; the budget is crossed by at
    most the one request that started alone."""
    gateway = await start_gateway(limits={"default": {"daily_tokens": 100}})
    release = asyncio.Event()
    fake.enqueue(Held(release, Reply(text="ok", input_tokens=30, output_tokens=30)))
    async with aiohttp.ClientSession() as http:
        first = asyncio.create_task(_chat(http, gateway.url))
        await eventually(lambda: fake.requests_for("Converse"))
        crowd = await asyncio.gather(*(_chat(http, gateway.url) for _ in range(10)))
        assert [status for status, _, _ in crowd] == [429] * 10
        _, headers, body = crowd[0]
        assert body["error"]["type"] == "rate_limit_error"
        assert "in flight" in body["error"]["message"]
        assert "daily_tokens" in body["error"]["message"]
        assert headers["Retry-After"] == "1"
        release.set()
        assert (await first)[0] == 200
        # 60 of 100 used: one more may start alone, and crosses the budget...
        fake.enqueue(Reply(text="ok", input_tokens=30, output_tokens=30))
        assert (await _chat(http, gateway.url))[0] == 200
        # ...after which the key is refused until the day ends.
        status, headers, body = await _chat(http, gateway.url)
    assert status == 429
    assert body["error"]["code"] == "insufficient_quota"
    assert "daily_tokens" in body["error"]["message"]
    assert 0 < int(headers["Retry-After"]) <= 86400
    assert len(fake.requests_for("Converse")) == 2
    today, _ = gateway.app[GOVERNOR].used(KEY_NAME)
    assert today.tokens == 120


async def test_concurrent_requests_fill_a_rate_limit_exactly(
    start_gateway: GatewayFactory, fake: FakeBedrock
) -> None:
    """Under a token rate limit, as many concurrent requests start as their reservations fit."""
    gateway = await start_gateway(limits={"default": {"tokens_per_minute": 3500}})
    release = asyncio.Event()
    # Each request reserves its max_tokens (1000) plus a few prompt tokens: three fit in 3500.
    fake.enqueue(
        *(Held(release, Reply(text="ok", input_tokens=1, output_tokens=1)) for _ in range(8))
    )
    async with aiohttp.ClientSession() as http:
        tasks = [asyncio.create_task(_chat(http, gateway.url, max_tokens=1000)) for _ in range(8)]
        await eventually(lambda: sum(task.done() for task in tasks) == 5)
        await eventually(lambda: len(fake.requests_for("Converse")) == 3)
        release.set()
        results = await asyncio.gather(*tasks)
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200] * 3 + [429] * 5
    refused = [body for status, _, body in results if status == 429]
    assert all("tokens_per_minute" in body["error"]["message"] for body in refused)
    refusals = _sample(gateway, "bedrock_gw_limit_refusals_total", limit="tokens_per_minute")
    assert refusals == 5


async def test_requests_per_minute(start_gateway: GatewayFactory, fake: FakeBedrock) -> None:
    """The third request in a minute under a limit of two is a 429 naming the limit."""
    gateway = await start_gateway(limits={"keys": {KEY_NAME: {"requests_per_minute": 2}}})
    async with aiohttp.ClientSession() as http:
        assert (await _chat(http, gateway.url))[0] == 200
        assert (await _chat(http, gateway.url))[0] == 200
        status, headers, body = await _chat(http, gateway.url)
    assert status == 429
    assert body["error"]["code"] == "rate_limit_exceeded"
    assert (
        f"the key '{KEY_NAME}' reached its limit of 2 requests per minute"
        in (body["error"]["message"])
    )
    assert 1 <= int(headers["Retry-After"]) <= 60


async def test_a_stream_that_crosses_a_budget_finishes(
    start_gateway: GatewayFactory, fake: FakeBedrock
) -> None:
    """Streamed tokens count while they arrive; the stream ends normally; the next is refused."""
    gateway = await start_gateway(limits={"default": {"daily_tokens": 20}})
    release = asyncio.Event()
    reply = Reply(text="word " * 40, input_tokens=5, output_tokens=40)
    fake.enqueue(Held(release, reply, after_events=4))
    async with openai.AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0
    ) as sdk:
        stream = await sdk.chat.completions.create(model=HAIKU, messages=USER, stream=True)
        chunks = aiter(stream)
        text = ""
        while not text:
            chunk = await anext(chunks)
            text += chunk.choices[0].delta.content or ""
        # Bedrock has not reported usage yet; what streamed is already counted.
        today, _ = gateway.app[GOVERNOR].used(KEY_NAME)
        assert today.tokens > 0
        release.set()
        finish = None
        async for chunk in chunks:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        assert text == "word " * 40
        assert finish == "stop"
        assert gateway.app[GOVERNOR].used(KEY_NAME)[0].tokens == 45  # Bedrock's own count
        with pytest.raises(openai.RateLimitError) as caught:
            await sdk.chat.completions.create(model=HAIKU, messages=USER)
    assert caught.value.code == "insufficient_quota"


async def test_models_a_key_may_not_use(start_gateway: GatewayFactory, fake: FakeBedrock) -> None:
    """A key limited to some models sees only those and is refused the others."""
    gateway = await start_gateway(limits={"default": {"models": ["*llama*"]}})
    async with openai.AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0
    ) as sdk:
        listed = [model.id async for model in sdk.models.list()]
        assert listed == [LLAMA3_8B]
        with pytest.raises(openai.NotFoundError):
            await sdk.models.retrieve(HAIKU)
        with pytest.raises(openai.PermissionDeniedError) as caught:
            await sdk.chat.completions.create(model=HAIKU, messages=USER)
        assert caught.value.code == "model_not_allowed"
        assert "may not use the model" in caught.value.message
        await sdk.chat.completions.create(model=LLAMA3_8B, messages=USER)
    assert [call.model_id for call in fake.requests_for("Converse")] == [LLAMA3_8B]


async def test_usage_and_budgets_survive_a_restart(
    start_gateway: GatewayFactory, fake: FakeBedrock, tmp_path: Path
) -> None:
    """Usage per key, model and Open WebUI user is written to disk, and a budget spent before a
    restart stays spent after it."""
    sections: dict[str, Any] = {
        "usage": {
            "directory": str(tmp_path),
            "prices": {
                "*haiku*": {"input": 2.0, "output": 4.0},
                "*titan*": {"input": 1.0, "output": 0},
            },
        },
        "limits": {"default": {"daily_cost": 0.00015}},
    }
    gateway = await start_gateway(**sections)
    ann = {"X-OpenWebUI-User-Id": "u-1", "X-OpenWebUI-User-Email": "ann@example.org"}
    async with aiohttp.ClientSession() as http:
        fake.enqueue(Reply(text="a", input_tokens=10, output_tokens=20))  # $0.0001
        assert (await _chat(http, gateway.url, headers=ann))[0] == 200
        fake.enqueue(Reply(text="b", input_tokens=10, output_tokens=20))
        assert (await _chat(http, gateway.url))[0] == 200
        assert (await _chat(http, gateway.url))[0] == 429
    await gateway.stop()
    rows = report(tmp_path / "usage.sqlite3", since=0, key=None, by="user")
    assert {(row.group, row.requests, row.usage.input, row.usage.output) for row in rows} == {
        ("ann@example.org", 1, 10, 20),
        ("", 1, 10, 20),
    }
    assert sum(row.cost for row in rows) == pytest.approx(0.0002)

    again = await start_gateway(**sections)
    async with aiohttp.ClientSession() as http:
        status, _, body = await _chat(http, again.url)
        assert status == 429
        assert "daily_cost" in body["error"]["message"]
        async with http.post(
            f"{again.url}/v1/embeddings",
            json={"model": TITAN_EMBED_V2, "input": "embed me"},
            headers={"Authorization": f"Bearer {API_KEY}"},
        ) as response:
            assert response.status == 429  # the budget covers every model of the key
    assert len(fake.requests_for("Converse")) == 2


async def test_embeddings_are_accounted(start_gateway: GatewayFactory, fake: FakeBedrock) -> None:
    """Embedding input tokens count for the key and its model."""
    gateway = await start_gateway()
    async with openai.AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0
    ) as sdk:
        result = await sdk.embeddings.create(model=TITAN_EMBED_V2, input=["one two", "three"])
    today, _ = gateway.app[GOVERNOR].used(KEY_NAME)
    assert today.tokens == result.usage.prompt_tokens > 0
    tokens = _sample(gateway, "bedrock_gw_tokens_total", model=TITAN_EMBED_V2, kind="input")
    assert tokens == result.usage.prompt_tokens


async def test_stream_cap(start_gateway: GatewayFactory, fake: FakeBedrock) -> None:
    """Over server.max_streams a streaming request gets 429; plain requests still pass."""
    gateway = await start_gateway(server={"max_streams": 1})
    release = asyncio.Event()
    fake.enqueue(Held(release, after_events=2))

    def streams() -> float | None:
        return gateway.app[METRICS].registry.get_sample_value(
            "bedrock_gw_streams_in_flight", {"api": "openai"}
        )

    async with aiohttp.ClientSession() as http:
        held = asyncio.create_task(_stream_text(http, gateway.url))
        await eventually(lambda: streams() == 1)
        async with http.post(
            f"{gateway.url}/v1/chat/completions",
            json={"model": HAIKU, "messages": USER, "stream": True},
            headers={"Authorization": f"Bearer {API_KEY}"},
        ) as response:
            assert response.status == 429
            assert "server.max_streams" in (await response.json())["error"]["message"]
        assert (await _chat(http, gateway.url))[0] == 200
        release.set()
        assert (await held).endswith("data: [DONE]\n\n")
    assert streams() == 0
