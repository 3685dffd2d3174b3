"""The network boundary: connections from outside ``server.allow_cidrs`` are closed unread.

The check runs when a connection is made, in the protocol aiohttp creates for it, before any
byte of HTTP is read: a refused client gets a reset, not a response. With TLS on, asyncio only
hands the connection over after the handshake, so a refused client completes a handshake first
and is then reset, still before it can send a request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from bedrock_gw.config import Network

__all__ = ["GuardedAppRunner", "address_allowed", "peer_host"]

logger = logging.getLogger(__name__)

Admit = Callable[[str | None], bool]
"""Given a peer's address (None for a Unix socket), whether it may connect."""

# Refusals are logged at WARNING once per address (up to this many remembered), then at DEBUG,
# so a scan of the port cannot flood the journal.
_REMEMBERED = 1024


def address_allowed(host: str | None, networks: Iterable[Network]) -> bool:
    """Whether ``host`` is in one of ``networks``; a Unix socket (None, "") always is."""
    if not host:
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])  # drop an IPv6 zone ("%eth0")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack socket shows IPv4 peers as ::ffff:a.b.c.d
    return any(address in network for network in networks)


def peer_host(peername: Any) -> str | None:
    """The address of ``transport.get_extra_info("peername")``: a tuple for TCP, else None."""
    if isinstance(peername, tuple) and peername and isinstance(peername[0], str):
        return peername[0]
    return None


class GuardedAppRunner(web.AppRunner):
    """An ``AppRunner`` whose connections pass ``admit`` before aiohttp reads from them."""

    def __init__(self, app: web.Application, *, admit: Admit, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._admit = admit

    async def _make_server(self) -> web.Server:
        # BaseRunner's hook for building the protocol factory that every site listens with.
        return _GuardedServer(await super()._make_server(), _RefusalLog(self._admit))


class _RefusalLog:
    def __init__(self, admit: Admit) -> None:
        self._admit = admit
        self._seen: OrderedDict[str, None] = OrderedDict()

    def __call__(self, host: str | None) -> bool:
        if self._admit(host):
            return True
        if host in self._seen:
            logger.debug("refused a connection from %s (not in server.allow_cidrs)", host)
        else:
            logger.warning("refused a connection from %s: not in server.allow_cidrs", host)
            if host is not None:
                self._seen[host] = None
                if len(self._seen) > _REMEMBERED:
                    self._seen.popitem(last=False)
        return False


class _GuardedServer(web.Server):
    """The server aiohttp built, with the same settings, making guarded protocols."""

    def __init__(self, built: web.Server, admit: Admit) -> None:
        super().__init__(
            built.request_handler,
            request_factory=built.request_factory,
            handler_cancellation=built.handler_cancellation,
            loop=asyncio.get_running_loop(),
            # The handler arguments (timeouts, size limits, access log) as aiohttp gathered
            # them; aiohttp keeps them in this attribute for the protocols it creates.
            **built._kwargs,
        )
        self._admit = admit

    def __call__(self) -> RequestHandler:
        return _GuardedHandler(self, self._admit, loop=self._loop, **self._kwargs)


class _GuardedHandler(RequestHandler):
    def __init__(self, manager: web.Server, admit: Admit, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._admit = admit
        self._refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._admit(peer_host(transport.get_extra_info("peername"))):
            self._refused = True
            assert isinstance(transport, asyncio.Transport)  # a stream server's transport
            transport.abort()  # a reset: nothing is read, nothing is answered
            return
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._refused:
            return
        super().connection_lost(exc)
