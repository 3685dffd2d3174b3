"""Running the daemon: bind, serve, and shut down in a fixed order.

Shutdown order (SIGTERM or SIGINT):
1. stop accepting new connections;
2. let in-flight requests and streams run on for up to ``server.shutdown_timeout`` seconds;
3. end the streams still open with an error event, so clients see why they stopped;
4. cancel whatever is left, then close the catalogue, the HTTP session, the credential cache
   and the thread pool (``cleanup_ctx`` in reverse).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import weakref
from collections.abc import Mapping

from aiohttp import web

from bedrock_gw.app import create_app
from bedrock_gw.config import Settings
from bedrock_gw.errors import ServiceUnavailable
from bedrock_gw.web.access_log import AccessLogger
from bedrock_gw.web.sse import EventStream
from bedrock_gw.web.state import STREAMS

__all__ = ["Gateway", "run"]

logger = logging.getLogger(__name__)

# Seconds kept back from the grace period to deliver the final error event to open streams.
_STREAM_STOP_MARGIN = 1.0


class Gateway:
    """The app bound to its socket; ``start`` then ``stop``, used by the daemon and the tests."""

    def __init__(self, settings: Settings, *, environ: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.app = create_app(settings, environ=environ)
        self.app.on_shutdown.append(self._stop_streams_after_grace)
        self._runner = web.AppRunner(
            self.app,
            handler_cancellation=True,  # a client that leaves cancels its upstream call
            access_log_class=AccessLogger,
            access_log=logging.getLogger("bedrock_gw.access")
            if settings.logging.access_log
            else None,
            shutdown_timeout=settings.server.shutdown_timeout,
        )
        self._site: web.TCPSite | None = None
        self._stream_stopper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._runner.setup()
        server = self.settings.server
        self._site = web.TCPSite(
            self._runner, server.host, server.port, reuse_address=True, backlog=1024
        )
        await self._site.start()
        logger.info("listening on %s", ", ".join(self.urls))

    @property
    def urls(self) -> list[str]:
        urls = []
        for address in self._runner.addresses:
            host, port = address[0], address[1]
            urls.append(f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}")
        return urls

    @property
    def url(self) -> str:
        return self.urls[0]

    async def stop(self) -> None:
        # AppRunner.cleanup stops the listener, runs on_shutdown, waits up to shutdown_timeout
        # for handlers, cancels the rest, then runs cleanup_ctx in reverse.
        try:
            await self._runner.cleanup()
        finally:
            if self._stream_stopper is not None:
                self._stream_stopper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._stream_stopper

    async def _stop_streams_after_grace(self, app: web.Application) -> None:
        async def stop_later() -> None:
            grace = max(self.settings.server.shutdown_timeout - _STREAM_STOP_MARGIN, 0.0)
            await asyncio.sleep(grace)
            live: weakref.WeakSet[EventStream] = app[STREAMS]
            for stream in tuple(live):
                await stream.stop(ServiceUnavailable("the gateway is shutting down"))

        # Runs alongside the runner's wait for in-flight handlers; cancelled once they are done.
        self._stream_stopper = asyncio.create_task(stop_later(), name="stop-streams")


async def serve(settings: Settings) -> None:
    gateway = Gateway(settings)
    await gateway.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
        logger.info(
            "stopping: finishing in-flight requests (up to %gs)", settings.server.shutdown_timeout
        )
    finally:
        await gateway.stop()
    logger.info("stopped")


def run(settings: Settings) -> int:
    try:
        import uvloop
    except ImportError:  # no wheel for this platform: plain asyncio works, just slower
        asyncio.run(serve(settings))
    else:
        uvloop.run(serve(settings))
    return 0
