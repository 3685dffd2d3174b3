"""A fake Bedrock on a real socket, the gateway in front of it, and the real openai SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import openai
import pytest

from bedrock_gw.config import Settings
from bedrock_gw.server import Gateway
from tests.fakes.bedrock import FakeBedrock

API_KEY = "test-key-0123456789"


@pytest.fixture
async def fake() -> AsyncIterator[FakeBedrock]:
    async with FakeBedrock() as bedrock:
        yield bedrock


def gateway_settings(bedrock_url: str, **sections: dict[str, Any]) -> Settings:
    data: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": 0, "shutdown_timeout": 2.0},
        "aws": {"runtime_endpoint": bedrock_url, "control_endpoint": bedrock_url},
        "auth": {"api_keys": [API_KEY]},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return Settings(**data)


GatewayFactory = Callable[..., Any]


@pytest.fixture
async def start_gateway(fake: FakeBedrock) -> AsyncIterator[GatewayFactory]:
    """Start a gateway with settings overridden per section; stopped at the end of the test."""
    started: list[Gateway] = []
    bedrock_url = fake.url  # kept, so a test may close the fake and still start a gateway

    async def start(**sections: dict[str, Any]) -> Gateway:
        gateway = Gateway(gateway_settings(bedrock_url, **sections))
        await gateway.start()
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        await gateway.stop()


@pytest.fixture
async def gateway(start_gateway: GatewayFactory) -> Gateway:
    gw: Gateway = await start_gateway()
    return gw


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0, timeout=20
    ) as sdk:
        yield sdk


@pytest.fixture(autouse=True)
async def _event_loop_watch(caplog: pytest.LogCaptureFixture) -> AsyncIterator[None]:
    """Run each integration test on a debug event loop and fail it if any callback blocked the
    loop for long: a blocking call on the hot path would show up here."""
    import asyncio
    import logging

    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    # Generous, because these machines are shared: only real blocking (a sync network call,
    # a subprocess wait) takes this long, not ordinary scheduling noise.
    loop.slow_callback_duration = 0.5
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        yield
    records = [*caplog.get_records("setup"), *caplog.get_records("call"), *caplog.records]
    slow = [r.getMessage() for r in records if r.name == "asyncio" and "took" in r.getMessage()]
    assert slow == [], f"the event loop was blocked: {slow}"
