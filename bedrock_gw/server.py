"""Running the daemon: bind, wait until ready, serve, reload, and stop in a fixed order.

Its life as systemd sees it (``Type=notify``; every step also works with no systemd at all):

- start: bind the listening socket (or take the ones systemd passed), wait for the readiness
  gates while ``STATUS=`` says what for, then ``READY=1`` and a one-line summary;
- running: ``WATCHDOG=1`` from the event loop at half of ``WATCHDOG_USEC``, and the summary
  refreshed as requests are served;
- SIGHUP: ``RELOADING=1``, the config file is read again and applied (``bedrock_gw.reload``),
  then ``READY=1``;
- SIGTERM or SIGINT: ``STOPPING=1``, then the graceful stop of ``Gateway.stop``; exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import weakref
from collections.abc import Callable, Coroutine, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from bedrock_gw.app import create_app
from bedrock_gw.config import ConfigError, Settings
from bedrock_gw.errors import ServiceUnavailable
from bedrock_gw.logs import ACCESS_LOGGER
from bedrock_gw.reload import RELOAD_HOOKS, Reloader, ReloadRejected
from bedrock_gw.systemd import listen_fds, notifier_from_env, watchdog_interval
from bedrock_gw.tls import TlsContext
from bedrock_gw.web.access_log import AccessLogger
from bedrock_gw.web.boundary import GuardedAppRunner, address_allowed
from bedrock_gw.web.sse import EventStream
from bedrock_gw.web.state import CATALOG, LIVE, METRICS, READINESS, STREAMS, LiveConfig

__all__ = ["Gateway", "Traffic", "run", "serve"]

logger = logging.getLogger(__name__)

# After the grace period: how long open streams get to take their error event, and what is
# still running gets before it is cancelled.
_LAST_MOMENT = 1.0
# How often the summary status is brought up to date (sent only when it changed).
_STATUS_INTERVAL = 5.0
_LISTEN_VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


class Traffic:
    """Requests in flight and served: the stop waits for the first, the status shows the second."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.served = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.in_flight += 1
        self._idle.clear()
        try:
            return await handler(request)
        finally:
            self.in_flight -= 1
            self.served += 1
            if not self.in_flight:
                self._idle.set()

    async def wait_idle(self, within: float) -> bool:
        """True once nothing is in flight; False if ``within`` seconds pass first."""
        try:
            await asyncio.wait_for(self._idle.wait(), within)
        except TimeoutError:
            return False
        return True


class Gateway:
    """The app bound to its sockets; ``start`` then ``stop``, used by the daemon and the tests."""

    def __init__(
        self,
        settings: Settings,
        *,
        environ: Mapping[str, str] | None = None,
        sockets: Sequence[socket.socket] = (),
    ) -> None:
        self.settings = settings
        self.app = create_app(settings, environ=environ)
        self.traffic = Traffic()
        # Outermost, so it sees every request from its first byte to its last.
        self.app.middlewares.insert(0, self.traffic.middleware)
        self._sockets = tuple(sockets)
        self._tls: TlsContext | None = None
        self._runner = GuardedAppRunner(
            self.app,
            admit=self._admit,  # server.allow_cidrs, checked before a connection is read
            handler_cancellation=True,  # a client that leaves cancels its upstream call
            access_log_class=AccessLogger,
            # Always attached: logging.access_log switches it by level, so a reload can.
            access_log=logging.getLogger(ACCESS_LOGGER),
            # Used by cleanup() only once the grace period in stop() is over.
            shutdown_timeout=_LAST_MOMENT,
        )
        self._started = False
        self.app[RELOAD_HOOKS].add("reloading the TLS certificate", self._reload_tls)

    async def start(self) -> None:
        """Bind: the configured address, or the sockets systemd passed (socket activation)."""
        if self.settings.tls.enabled:
            # Raises ConfigError for files that cannot be used: no start.
            self._tls = TlsContext(self.settings.tls)
        try:
            await self._runner.setup()
        except BaseException:
            # Close what the resources opened before the one that failed.
            await self._runner.cleanup()
            raise
        self._started = True
        ssl_context = self._tls.context if self._tls is not None else None
        if self._sockets:
            for sock in self._sockets:
                await web.SockSite(
                    self._runner, sock, ssl_context=ssl_context, backlog=1024
                ).start()
        else:
            server = self.settings.server
            site = web.TCPSite(
                self._runner,
                server.host,
                server.port,
                ssl_context=ssl_context,
                reuse_address=True,
                backlog=1024,
            )
            await site.start()
        logger.info("listening on %s", ", ".join(self.urls))

    def _admit(self, host: str | None) -> bool:
        if address_allowed(host, self.app[LIVE].settings.server.allow_cidrs):
            return True
        self.app[METRICS].refused_connections.inc()
        return False

    async def _reload_tls(self, candidate: LiveConfig) -> LiveConfig:
        # SIGHUP re-reads the certificate and key (renewed in place, or at new paths); a pair
        # that does not load rejects the reload. Switching TLS on or off needs a restart.
        tls = candidate.settings.tls
        if (self._tls is None) != (not tls.enabled):
            running = self._tls.settings if self._tls is not None else self.settings.tls
            logger.warning(
                "tls: switching HTTPS %s needs a restart; kept as it was",
                "on" if tls.enabled else "off",
            )
            settings = candidate.settings.model_copy(update={"tls": running})
            return LiveConfig(settings, candidate.keyring)
        if self._tls is not None:
            await self._tls.reload(tls)
        return candidate

    async def wait_ready(self, on_waiting: Callable[[str], None] | None = None) -> None:
        """Return once every readiness gate passed (credentials loaded, API keys resolved...)."""
        await self.app[READINESS].wait_all(on_waiting)

    @property
    def urls(self) -> list[str]:
        scheme = "https" if self._tls is not None else "http"
        return [_url(address, scheme) for address in self._runner.addresses]

    @property
    def url(self) -> str:
        return self.urls[0]

    async def stop(self) -> None:
        """Stop gracefully; the grace period is ``server.shutdown_timeout`` as now in effect."""
        if not self._started:
            return
        self._started = False
        grace = self.app[LIVE].settings.server.shutdown_timeout
        # 1. Stop accepting: close the listening sockets, so new connections are refused.
        for site in list(self._runner.sites):
            await site.stop()
        # 2. Close idle keep-alive connections now and busy ones after their response, so no
        #    new request starts on a connection that is already open.
        if self._runner.server is not None:
            self._runner.server.pre_shutdown()
        # 3. Let in-flight requests and streams finish, for up to the grace period.
        if self.traffic.in_flight:
            logger.info(
                "stopping: %d requests in flight, waiting up to %gs",
                self.traffic.in_flight,
                grace,
            )
        if not await self.traffic.wait_idle(grace):
            # 4. End the streams still open with an error event, so clients see why they stop.
            await self._stop_streams()
        # 5. Give what is still running a last moment, cancel it, then close the catalogue, the
        #    HTTP session, the credential cache and the thread pool (cleanup_ctx in reverse).
        await self._runner.cleanup()

    async def _stop_streams(self) -> None:
        live: weakref.WeakSet[EventStream] = self.app[STREAMS]
        streams = tuple(live)
        logger.warning(
            "grace period over: ending %d open streams, cancelling %d other requests",
            len(streams),
            max(self.traffic.in_flight - len(streams), 0),
        )
        if not streams:
            return
        error = ServiceUnavailable("the gateway is shutting down", code="shutting_down")
        # Concurrently and bounded: a client that stopped reading must not hold up the stop.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(stream.stop(error) for stream in streams)), _LAST_MOMENT
            )


def _url(address: Any, scheme: str) -> str:
    if isinstance(address, str | bytes):  # AF_UNIX: a path, or an abstract name
        return f"unix:{address!r}" if isinstance(address, bytes) else f"unix:{address}"
    host, port = address[0], address[1]
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


class _Daemon:
    """One run of the daemon under a service manager (or none): signals, notifications."""

    def __init__(
        self, settings: Settings, config_path: Path | None, environ: MutableMapping[str, str]
    ) -> None:
        self._notifier = notifier_from_env(environ)
        self._watchdog_interval = watchdog_interval(environ)
        sockets = listen_fds(environ)
        # Helpers the daemon runs (a credential process) must not think the sockets are theirs.
        for name in _LISTEN_VARIABLES:
            environ.pop(name, None)
        if sockets:
            logger.info(
                "socket activation: serving on %d sockets from systemd (%s); "
                "server.host and server.port are not used",
                len(sockets),
                ", ".join(s.name for s in sockets),
            )
        self._gateway = Gateway(settings, environ=environ, sockets=[s.sock for s in sockets])
        self._reloader = Reloader(self._gateway.app, config_path)
        self._stop_requested = asyncio.Event()
        self._ready = asyncio.Event()
        self._reloading = asyncio.Lock()
        self._last_reload_failed = False
        self._last_status = ""
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stop_requested.set)
        loop.add_signal_handler(signal.SIGHUP, self._request_reload)
        watchdog = None
        if self._watchdog_interval is not None:
            watchdog = asyncio.create_task(self._watchdog(self._watchdog_interval))
        try:
            return await self._start_and_serve()
        finally:
            await self._stop()
            # The watchdog pings on until the very end: a long graceful stop is not a hang.
            if watchdog is not None:
                watchdog.cancel()
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(signum)
            self._notifier.close()

    async def _start_and_serve(self) -> int:
        try:
            await self._gateway.start()
        except ConfigError as exc:  # a resource found its settings unusable
            logger.error("cannot start: %s", exc)
            return 1
        except OSError as exc:
            server = self._gateway.settings.server
            logger.error("cannot listen on %s port %d: %s", server.host, server.port, exc)
            return 1
        gates = asyncio.create_task(self._gateway.wait_ready(self._waiting_for))
        stop = asyncio.create_task(self._stop_requested.wait())
        await asyncio.wait({gates, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not gates.done():  # asked to stop while still starting
            gates.cancel()
            await asyncio.gather(gates, return_exceptions=True)
            return 0
        if gates.exception() is not None:
            logger.error("start-up failed: %s", gates.exception())
            return 1
        self._notifier.ready()
        self._ready.set()
        self._status(self._summary())
        logger.info("ready: %s", self._last_status)
        if self._gateway.app[CATALOG].status.last_success is None:
            # The first listing most likely failed for want of credentials, now in hand:
            # list again at once rather than at the end of the catalogue's backoff.
            self._spawn(self._list_models())
        self._spawn(self._refresh_status())
        await self._stop_requested.wait()
        return 0

    async def _stop(self) -> None:
        # Tell systemd first, so `systemctl status` shows the stop while it runs.
        self._notifier.stopping()
        self._status(f"Stopping: {self._gateway.traffic.in_flight} requests in flight")
        # A pending reload or status refresh has nothing left to do.
        for task in tuple(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._reloader.close()
        # Then the graceful stop itself, step by step in Gateway.stop.
        await self._gateway.stop()
        logger.info("stopped")

    def _request_reload(self) -> None:
        if not self._stop_requested.is_set():
            self._spawn(self._reload())

    async def _reload(self) -> None:
        # Asked for during start-up: done once ready, which is when systemd expects it.
        await self._ready.wait()
        async with self._reloading:
            self._notifier.reloading()
            self._status(f"Reloading the configuration from {self._reloader.source}")
            try:
                await self._reloader.reload()
            except ReloadRejected:  # logged by the reloader; the old configuration serves on
                self._last_reload_failed = True
            else:
                self._last_reload_failed = False
            self._notifier.ready()
            self._status(self._summary())

    async def _list_models(self) -> None:
        try:
            await self._gateway.app[CATALOG].refresh()
        except Exception as exc:  # the catalogue goes on retrying by itself
            logger.debug("listing models once ready failed: %s", exc)

    async def _watchdog(self, interval: float) -> None:
        # Sent from the event loop itself: if the loop wedges, the pings stop and systemd
        # restarts the daemon (WatchdogSec=).
        while True:
            self._notifier.watchdog()
            await asyncio.sleep(interval)

    async def _refresh_status(self) -> None:
        while True:
            await asyncio.sleep(_STATUS_INTERVAL)
            if not self._reloading.locked():
                summary = self._summary()
                if summary != self._last_status:
                    self._status(summary)

    def _waiting_for(self, what: str) -> None:
        logger.info("waiting for %s", what)
        self._status(f"Waiting: {what}")

    def _status(self, text: str) -> None:
        self._last_status = text
        self._notifier.status(text)

    def _summary(self) -> str:
        catalog = self._gateway.app[CATALOG].status
        if catalog.last_success is not None:
            models = f"{catalog.models} models"
        elif catalog.last_error is not None:
            models = "model list unavailable (retrying)"
        else:
            models = "model list not fetched yet"
        served = self._gateway.traffic.served
        text = f"Serving on {', '.join(self._gateway.urls)}; {models}; {served} requests served"
        if self._last_reload_failed:
            text += "; last reload rejected (see the log)"
        return text

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def serve(
    settings: Settings,
    *,
    config_path: Path | None = None,
    environ: MutableMapping[str, str] | None = None,
) -> int:
    """Run until SIGTERM or SIGINT; the exit status (0 after a graceful stop)."""
    try:
        daemon = _Daemon(settings, config_path, os.environ if environ is None else environ)
    except ValueError as exc:  # sockets passed by systemd that cannot be served on
        logger.error("cannot start: %s", exc)
        return 1
    return await daemon.run()


def run(settings: Settings, config_path: Path | None = None) -> int:
    try:
        import uvloop
    except ImportError:  # no wheel for this platform: plain asyncio works, just slower
        return asyncio.run(serve(settings, config_path=config_path))
    code: int = uvloop.run(serve(settings, config_path=config_path))
    return code
