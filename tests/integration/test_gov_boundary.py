"""The network boundary: allow_cidrs from a second loopback address, header size, idle connections.

Linux routes all of 127.0.0.0/8 to the loopback interface, so a client bound to 127.0.0.2 is a
second host as far as the gateway can tell.
"""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import pytest

from bedrock_gw.reload import apply_settings
from bedrock_gw.server import Gateway
from bedrock_gw.web.state import METRICS
from tests.fakes.bedrock import FakeBedrock
from tests.integration.conftest import GatewayFactory, gateway_settings

OTHER_HOST = "127.0.0.2"


async def _health(gateway: Gateway, source: str) -> int:
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.get(f"{gateway.url}/health") as response,
    ):
        return response.status


async def _raw_exchange(gateway: Gateway, source: str) -> bytes:
    """Send a request over a plain socket from ``source``; whatever comes back."""
    port = int(gateway.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    received = b""
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
        with contextlib.suppress(ConnectionResetError):
            await writer.drain()
            received = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionResetError):
            await writer.wait_closed()
    return received


async def test_a_host_outside_allow_cidrs_gets_no_answer(
    start_gateway: GatewayFactory, fake: FakeBedrock
) -> None:
    """A connection from outside allow_cidrs is reset without a byte of HTTP; inside is served;
    a reload that widens the list lets the other host in."""
    gateway = await start_gateway(server={"allow_cidrs": ["127.0.0.1/32"]})
    assert await _raw_exchange(gateway, OTHER_HOST) == b""
    with pytest.raises(aiohttp.ClientConnectionError):
        await _health(gateway, OTHER_HOST)
    assert await _health(gateway, "127.0.0.1") == 200
    assert (await _raw_exchange(gateway, "127.0.0.1")).startswith(b"HTTP/1.1 200")
    refused = gateway.app[METRICS].registry.get_sample_value("bedrock_gw_connections_refused_total")
    assert refused is not None and refused >= 2  # aiohttp retries a reset GET once

    await apply_settings(
        gateway.app, gateway_settings(fake.url, server={"allow_cidrs": ["127.0.0.0/8"]})
    )
    assert await _health(gateway, OTHER_HOST) == 200


async def test_default_allows_the_loopback_range(gateway: Gateway) -> None:
    """With the default list (loopback and private LAN ranges) both addresses are served."""
    assert await _health(gateway, OTHER_HOST) == 200


async def test_header_size_limit(start_gateway: GatewayFactory) -> None:
    """A header over server.max_header_bytes gets 400; one under it is served."""
    gateway = await start_gateway(server={"max_header_bytes": 4096})
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gateway.url}/health", headers={"X-Big": "a" * 3000}) as response:
            assert response.status == 200
        async with http.get(f"{gateway.url}/health", headers={"X-Big": "a" * 5000}) as response:
            assert response.status == 400


async def test_idle_connections_are_closed(start_gateway: GatewayFactory) -> None:
    """A keep-alive connection left idle past server.idle_timeout is closed by the gateway."""
    gateway = await start_gateway(server={"idle_timeout": 0.2})
    port = int(gateway.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: gw\r\n\r\n")
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        length = int(
            next(
                line.split(b":", 1)[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
        )
        await reader.readexactly(length)
        # Nothing more is sent; the gateway ends the idle connection on its own.
        assert await asyncio.wait_for(reader.read(), 10) == b""
    finally:
        writer.close()
        with contextlib.suppress(ConnectionResetError):
            await writer.wait_closed()
