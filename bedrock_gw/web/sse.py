"""Server-sent events for OpenAI streams: ``data: {json}`` messages, keep-alive comments,
an error event for failures after the stream began, and ``data: [DONE]`` only on success."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from bedrock_gw.errors import GatewayError

__all__ = ["EventStream"]

_DONE = b"data: [DONE]\n\n"
_KEEPALIVE = b": keep-alive\n\n"


def _encode(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"


class EventStream:
    """One SSE response. Create it only once the first upstream event is in hand, so that
    errors before that point can still be sent as ordinary HTTP errors."""

    def __init__(self, request: web.Request, *, keepalive: float) -> None:
        self._request = request
        self._keepalive = keepalive
        self._last_write = time.monotonic()
        self._pinger: asyncio.Task[None] | None = None
        self._task: asyncio.Task[Any] | None = None
        self.stopped_by_server = False
        self.response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                # Reverse proxies (nginx) must not buffer a stream.
                "X-Accel-Buffering": "no",
            },
        )

    async def open(self) -> None:
        self._task = asyncio.current_task()
        await self.response.prepare(self._request)
        if self._keepalive > 0:
            self._pinger = asyncio.create_task(self._ping(), name="sse-keepalive")

    async def send(self, objects: Iterable[Any]) -> None:
        data = b"".join(_encode(obj) for obj in objects)
        if data:
            await self._write(data)

    async def send_error(self, error: GatewayError) -> None:
        await self._write(_encode(error.to_openai()))

    async def send_done(self) -> None:
        """``data: [DONE]`` and the end of the response, in one write."""
        await self._stop_pinger()
        await self.response.write_eof(_DONE)

    async def close(self) -> None:
        await self._stop_pinger()
        with contextlib.suppress(ConnectionResetError):
            await self.response.write_eof()  # a no-op after send_done

    async def _stop_pinger(self) -> None:
        if self._pinger is not None:
            self._pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pinger
            self._pinger = None

    async def stop(self, error: GatewayError) -> None:
        """End the stream from outside (shutdown): tell the client why, then cancel its handler."""
        self.stopped_by_server = True
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await self.send_error(error)
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def _write(self, data: bytes) -> None:
        self._last_write = time.monotonic()
        await self.response.write(data)

    async def _ping(self) -> None:
        # Proxies and some clients drop connections that stay silent while a model thinks.
        while True:
            await asyncio.sleep(self._keepalive - (time.monotonic() - self._last_write))
            if time.monotonic() - self._last_write >= self._keepalive:
                try:
                    await self._write(_KEEPALIVE)
                except (ConnectionResetError, RuntimeError):
                    return
