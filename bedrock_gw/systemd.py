"""systemd without libsystemd: service notifications, the watchdog period, socket activation.

Notifications are datagrams to ``$NOTIFY_SOCKET`` (sd_notify(3)); the socket is non-blocking and
every send error is ignored, because a lost status line must never stall or kill the daemon.
Without ``NOTIFY_SOCKET`` (a terminal, a container) the ``NullNotifier`` does nothing, so the
same code runs everywhere. Only three places send: the start-up, the reload and the stop in
``bedrock_gw.server``, plus the watchdog task there.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping
from typing import NamedTuple, Protocol

__all__ = [
    "ListenSocket",
    "Notifier",
    "NullNotifier",
    "SdNotifier",
    "listen_fds",
    "notifier_from_env",
    "watchdog_interval",
]

logger = logging.getLogger(__name__)

# sd_listen_fds(3): passed sockets start at fd 3 (SD_LISTEN_FDS_START).
_LISTEN_FDS_START = 3


class Notifier(Protocol):
    """What the daemon tells its service manager."""

    def ready(self) -> None:
        """Start-up or reload finished: ``READY=1``."""

    def reloading(self) -> None:
        """A reload began: ``RELOADING=1`` with the ``MONOTONIC_USEC`` it began at."""

    def stopping(self) -> None:
        """A stop began: ``STOPPING=1``."""

    def watchdog(self) -> None:
        """The event loop is alive: ``WATCHDOG=1``."""

    def status(self, text: str) -> None:
        """A one-line state for ``systemctl status``: ``STATUS=...``."""


class NullNotifier:
    """No service manager listening: every notification is dropped."""

    def ready(self) -> None:
        pass

    def reloading(self) -> None:
        pass

    def stopping(self) -> None:
        pass

    def watchdog(self) -> None:
        pass

    def status(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


class SdNotifier:
    """Sends sd_notify datagrams to one socket path, or to an abstract socket given as '@name'."""

    def __init__(self, address: str) -> None:
        if not address.startswith(("/", "@")):
            raise ValueError(f"unsupported NOTIFY_SOCKET address {address!r}")
        # A leading '@' names a socket in the abstract namespace, which starts with a NUL byte.
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self._socket = socket.socket(
            socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
        )
        self._failing = False

    def ready(self) -> None:
        self._send("READY=1")

    def reloading(self) -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        # One datagram: systemd pairs the reload with the moment it began.
        self._send(f"RELOADING=1\nMONOTONIC_USEC={usec}")

    def stopping(self) -> None:
        self._send("STOPPING=1")

    def watchdog(self) -> None:
        self._send("WATCHDOG=1")

    def status(self, text: str) -> None:
        # A newline would start a new assignment: STATUS is one line by definition.
        self._send("STATUS=" + " ".join(text.split()))

    def close(self) -> None:
        self._socket.close()

    def _send(self, message: str) -> None:
        try:
            self._socket.sendto(message.encode(), self.address)
        except OSError as exc:
            # systemd went away, or its queue is full (EAGAIN): skip this one, say so once.
            if not self._failing:
                logger.warning("cannot notify the service manager: %s", exc)
            self._failing = True
        else:
            self._failing = False


def notifier_from_env(environ: Mapping[str, str]) -> SdNotifier | NullNotifier:
    """An ``SdNotifier`` for ``$NOTIFY_SOCKET``, or a ``NullNotifier`` when it is unset."""
    address = environ.get("NOTIFY_SOCKET", "")
    if not address:
        return NullNotifier()
    try:
        return SdNotifier(address)
    except (ValueError, OSError) as exc:
        # e.g. 'vsock:' addresses (systemd 254+ in VMs), which this adapter does not speak.
        logger.warning("not notifying the service manager: %s", exc)
        return NullNotifier()


def watchdog_interval(environ: Mapping[str, str]) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``WATCHDOG_USEC``), None when no watchdog.

    ``WATCHDOG_PID``, when set, names the process the watchdog is for; any other process (a
    child that inherited the environment) must not ping.
    """
    try:
        usec = int(environ.get("WATCHDOG_USEC", "0"))
        pid = int(environ.get("WATCHDOG_PID", str(os.getpid())))
    except ValueError:
        logger.warning("ignoring a malformed WATCHDOG_USEC/WATCHDOG_PID")
        return None
    if usec <= 0 or pid != os.getpid():
        return None
    return usec / 2 / 1_000_000


class ListenSocket(NamedTuple):
    """A listening socket passed by systemd, with its ``FileDescriptorName=``."""

    name: str
    sock: socket.socket


def listen_fds(environ: Mapping[str, str]) -> list[ListenSocket]:
    """The sockets passed by socket activation (``LISTEN_FDS``, from fd 3), as sd_listen_fds(3).

    They are taken only when ``LISTEN_PID`` is this process, and made close-on-exec so helper
    processes do not inherit them. Raises ``ValueError`` for a passed fd the daemon cannot
    serve on (not a listening stream socket).
    """
    try:
        pid = int(environ.get("LISTEN_PID", "0"))
        count = int(environ.get("LISTEN_FDS", "0"))
    except ValueError:
        logger.warning("ignoring a malformed LISTEN_PID/LISTEN_FDS")
        return []
    if pid != os.getpid() or count <= 0:
        return []
    names = environ.get("LISTEN_FDNAMES", "").split(":") if "LISTEN_FDNAMES" in environ else []
    sockets = []
    for index in range(count):
        fd = _LISTEN_FDS_START + index
        os.set_inheritable(fd, False)
        try:
            sock = socket.socket(fileno=fd)
        except OSError as exc:
            raise ValueError(f"fd {fd} from LISTEN_FDS is not a socket: {exc.strerror}") from exc
        if sock.type != socket.SOCK_STREAM or not sock.getsockopt(
            socket.SOL_SOCKET, socket.SO_ACCEPTCONN
        ):
            sock.detach()
            raise ValueError(
                f"fd {fd} from LISTEN_FDS is not a listening stream socket "
                "(use ListenStream= and Accept=no)"
            )
        name = names[index] if index < len(names) and names[index] else "unknown"
        sockets.append(ListenSocket(name, sock))
    return sockets
