"""/v1/models through the openai SDK, against the fake Bedrock's listings."""

from __future__ import annotations

import aiohttp
import openai
import pytest

from bedrock_gw.server import Gateway
from tests.fakes.bedrock import FakeBedrock
from tests.integration.conftest import API_KEY, GatewayFactory

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
SONNET_37 = "anthropic.claude-3-7-sonnet-20250219-v1:0"
APP_PROFILE = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123"


async def test_lists_callable_models(client: openai.AsyncOpenAI) -> None:
    """Base ids usable on demand, system profile ids and application profile ARNs are listed;
    a profile-only base id is not."""
    ids = {model.id async for model in client.models.list()}
    assert {
        HAIKU,
        f"us.{SONNET_37}",
        f"eu.{SONNET_37}",
        APP_PROFILE,
        "amazon.titan-embed-text-v2:0",
    } <= ids
    assert SONNET_37 not in ids


async def test_listing_follows_pagination(client: openai.AsyncOpenAI, fake: FakeBedrock) -> None:
    """Inference profiles spread over several pages are all fetched."""
    await client.models.list()
    pages = fake.requests_for("ListInferenceProfiles")
    assert any(r.query.get("nextToken") for r in pages)


async def test_retrieve_by_arn(client: openai.AsyncOpenAI) -> None:
    """A model id containing '/' and ':' can be retrieved."""
    model = await client.models.retrieve(APP_PROFILE)
    assert (model.id, model.owned_by) == (APP_PROFILE, "anthropic")


async def test_unknown_model_is_404(client: openai.AsyncOpenAI) -> None:
    """Retrieving an unknown model gives OpenAI's model_not_found."""
    with pytest.raises(openai.NotFoundError) as caught:
        await client.models.retrieve("gpt-4o")
    assert caught.value.code == "model_not_found"


async def test_filters_choose_what_is_shown(start_gateway: GatewayFactory) -> None:
    """allow/deny globs decide which models are listed and callable."""
    gateway = await start_gateway(
        models={"allow": ["us.*", "amazon.*"], "deny": ["*titan-embed-text-v1*"]}
    )
    async with openai.AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0
    ) as sdk:
        ids = {model.id async for model in sdk.models.list()}
        assert ids and all(i.startswith(("us.", "amazon.")) for i in ids)
        assert "amazon.titan-embed-text-v1" not in ids
        with pytest.raises(openai.NotFoundError):
            await sdk.chat.completions.create(
                model=HAIKU, messages=[{"role": "user", "content": "x"}]
            )


async def test_list_is_cached(client: openai.AsyncOpenAI, fake: FakeBedrock) -> None:
    """Listing twice calls Bedrock's listing APIs only once (the background refresh's fill)."""
    await client.models.list()
    await client.models.list()
    assert len(fake.requests_for("ListFoundationModels")) == 1


async def test_api_v1_prefix_and_health(gateway: Gateway) -> None:
    """Routes also answer under /api/v1, and /health needs no key and calls no AWS."""
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{gateway.url}/api/v1/models", headers={"Authorization": f"Bearer {API_KEY}"}
        ) as r:
            assert r.status == 200
            assert (await r.json())["object"] == "list"
        async with http.get(f"{gateway.url}/health") as r:
            body = await r.json()
            assert r.status == 200
            assert body["status"] == "ok"
            assert body["credentials"]["healthy"] is True


async def test_listing_failure_keeps_serving_health(
    fake: FakeBedrock, start_gateway: GatewayFactory
) -> None:
    """When Bedrock's listing fails, /v1/models answers 503 and /health says degraded."""
    await fake.close()
    gateway = await start_gateway()
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{gateway.url}/v1/models", headers={"Authorization": f"Bearer {API_KEY}"}
        ) as r:
            assert r.status == 503
            assert (await r.json())["error"]["code"] == "model_list_unavailable"
        async with http.get(f"{gateway.url}/health") as r:
            assert (await r.json())["degraded"] == ["models"]


async def test_background_refresh_and_last_good_list(
    start_gateway: GatewayFactory, fake: FakeBedrock
) -> None:
    """The list is refreshed on its interval without any request waiting on it, and a failed
    refresh keeps the last good list."""
    import asyncio
    import dataclasses

    gateway = await start_gateway(models={"refresh_interval": 0.2})
    async with openai.AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0
    ) as sdk:
        before = {model.id async for model in sdk.models.list()}
        template = fake.model(HAIKU)
        assert template is not None
        fake.catalogue.models.append(
            dataclasses.replace(template, model_id="anthropic.new-model-v1:0")
        )
        for _ in range(100):
            ids = {model.id async for model in sdk.models.list()}
            if "anthropic.new-model-v1:0" in ids:
                break
            await asyncio.sleep(0.05)
        assert ids == before | {"anthropic.new-model-v1:0"}
        listings = len(fake.requests_for("ListFoundationModels"))
        await fake.close()  # every refresh from now on fails
        await asyncio.sleep(0.5)
        assert {model.id async for model in sdk.models.list()} == ids
    assert listings >= 2
