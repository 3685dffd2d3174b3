"""``GET /metrics`` as Prometheus reads it, its own access setting, and ``/health``."""

from __future__ import annotations

from typing import Any

import aiohttp
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bedrock_gw.server import Gateway
from tests.fakes.bedrock import FakeBedrock
from tests.fakes.behaviours import Error, Reply
from tests.fakes.catalogue import HAIKU
from tests.integration.conftest import API_KEY, GatewayFactory

USER = [{"role": "user", "content": "hi"}]
KEY_NAME = "inline-1"


async def _scrape(gateway: Gateway, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{gateway.url}/metrics", headers=headers or {}) as response,
    ):
        return response.status, response.headers.get("Content-Type", ""), await response.text()


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample, parsed by prometheus_client's own parser."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def test_metrics_are_off_by_default(gateway: Gateway) -> None:
    """Without metrics.access, /metrics does not exist."""
    status, _, body = await _scrape(gateway)
    assert status == 404
    assert "metrics.access" in body


async def test_metrics_after_traffic(start_gateway: GatewayFactory, fake: FakeBedrock) -> None:
    """Requests, tokens, first-token latency, upstream errors and daemon state, by key and model."""
    gateway = await start_gateway(metrics={"access": "lan"})
    fake.enqueue(
        Reply(text="one", input_tokens=4, output_tokens=1),
        Reply(text="two", input_tokens=6, output_tokens=2),
        Error(429, "ThrottlingException", "Too many requests"),
    )
    ann = {"X-OpenWebUI-User-Email": "ann@example.org"}
    async with openai.AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0, default_headers=ann
    ) as sdk:
        await sdk.chat.completions.create(model=HAIKU, messages=USER)
        stream = await sdk.chat.completions.create(model=HAIKU, messages=USER, stream=True)
        async for _ in stream:
            pass
        with pytest.raises(openai.RateLimitError):
            await sdk.chat.completions.create(model=HAIKU, messages=USER)
        with pytest.raises(openai.NotFoundError):
            await sdk.chat.completions.create(model="no-such-model-" + "x" * 20, messages=USER)
    async with openai.AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key="wrong", max_retries=0
    ) as stranger:
        with pytest.raises(openai.AuthenticationError):
            await stranger.models.list()

    status, content_type, text = await _scrape(gateway)
    assert status == 200
    assert content_type.startswith("text/plain; version=0.0.4")
    samples = _samples(text)
    chat = "/v1/chat/completions"
    requests = "bedrock_gw_requests_total"
    assert _value(samples, requests, route=chat, status="200", model=HAIKU, key=KEY_NAME) == 2
    assert _value(samples, requests, route=chat, status="429", model=HAIKU, key=KEY_NAME) == 1
    # A model name that was not admitted never becomes a label.
    assert _value(samples, requests, route=chat, status="404", model="", key=KEY_NAME) == 1
    assert _value(samples, requests, route="/v1/models", status="401", model="", key="") == 1
    assert _value(samples, "bedrock_gw_upstream_errors_total", code="ThrottlingException") == 1
    tokens = "bedrock_gw_tokens_total"
    assert _value(samples, tokens, key=KEY_NAME, model=HAIKU, kind="input") == 10
    assert _value(samples, tokens, key=KEY_NAME, model=HAIKU, kind="output") == 3
    user = "bedrock_gw_user_tokens_total"
    assert _value(samples, user, key=KEY_NAME, user="ann@example.org", kind="input") == 10
    first_token = "bedrock_gw_time_to_first_token_seconds_count"
    assert _value(samples, first_token, route=chat, model=HAIKU) == 1
    latency = "bedrock_gw_request_duration_seconds_count"
    assert _value(samples, latency, route=chat) == 4
    assert _value(samples, "bedrock_gw_streams_in_flight", api="openai") == 0
    assert _value(samples, "bedrock_gw_credentials_healthy", source="botocore default chain") == 1
    assert _value(samples, "bedrock_gw_api_keys") == 1
    assert (
        _value(samples, "bedrock_gw_key_source_healthy", source="inline keys (auth.api_keys)") == 1
    )
    assert (_value(samples, "bedrock_gw_models_offered") or 0) > 0
    assert _value(samples, "bedrock_gw_models_refresh_healthy") == 1
    assert _value(samples, "bedrock_gw_usage_store_healthy") == 1


async def test_metrics_token(start_gateway: GatewayFactory) -> None:
    """With access = "token", only the metrics token opens /metrics (not an API key)."""
    gateway = await start_gateway(metrics={"access": "token", "token": "scrape-me"})
    assert (await _scrape(gateway))[0] == 401
    assert (await _scrape(gateway, {"Authorization": f"Bearer {API_KEY}"}))[0] == 401
    status, _, text = await _scrape(gateway, {"Authorization": "Bearer scrape-me"})
    assert status == 200
    assert "bedrock_gw_requests_total" in text


async def test_health_needs_no_key_and_tells_about_usage(gateway: Gateway) -> None:
    """/health stays open and says whether usage is persisted."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{gateway.url}/health") as response,
    ):
        body = await response.json()
    assert response.status == 200
    assert body["usage"] == {"persistent": False, "last_error": None}
    assert body["models"]["stale"] is False
