"""The sd_notify adapter, the watchdog period and socket activation, against real sockets."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bedrock_gw.systemd import (
    NullNotifier,
    SdNotifier,
    listen_fds,
    notifier_from_env,
    watchdog_interval,
)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    """A datagram socket bound where systemd's NOTIFY_SOCKET would be."""
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield path, sock
    sock.close()


def test_each_notification_is_one_datagram(receiver: tuple[str, socket.socket]) -> None:
    """ready, stopping, watchdog and status send exactly systemd's assignments."""
    path, sock = receiver
    notifier = SdNotifier(path)
    notifier.ready()
    notifier.stopping()
    notifier.watchdog()
    notifier.status("Serving on http://127.0.0.1:8000; 3 models")
    notifier.close()
    received = [sock.recv(4096) for _ in range(4)]
    assert received == [
        b"READY=1",
        b"STOPPING=1",
        b"WATCHDOG=1",
        b"STATUS=Serving on http://127.0.0.1:8000; 3 models",
    ]


def test_reloading_carries_the_monotonic_time(receiver: tuple[str, socket.socket]) -> None:
    """RELOADING=1 and MONOTONIC_USEC (CLOCK_MONOTONIC, microseconds) arrive together."""
    path, sock = receiver
    notifier = SdNotifier(path)
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    notifier.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    notifier.close()
    first, second = sock.recv(4096).decode().split("\n")
    assert first == "RELOADING=1"
    name, _, value = second.partition("=")
    assert name == "MONOTONIC_USEC"
    assert before <= int(value) <= after


def test_status_stays_on_one_line(receiver: tuple[str, socket.socket]) -> None:
    """A newline in a status text cannot smuggle in another assignment such as READY=1."""
    path, sock = receiver
    notifier = SdNotifier(path)
    notifier.status("first line\nREADY=1")
    notifier.close()
    assert sock.recv(4096) == b"STATUS=first line READY=1"


def test_abstract_socket_address() -> None:
    """'@name' in NOTIFY_SOCKET reaches the socket of that name in the abstract namespace."""
    name = f"bedrock-gw-test-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        notifier = notifier_from_env({"NOTIFY_SOCKET": "@" + name})
        assert isinstance(notifier, SdNotifier)
        notifier.ready()
        notifier.close()
        assert sock.recv(4096) == b"READY=1"
    finally:
        sock.close()


def test_send_errors_are_ignored_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With nobody listening, notifications are dropped with a single warning, never raised."""
    notifier = SdNotifier(str(tmp_path / "gone"))
    with caplog.at_level(logging.WARNING, logger="bedrock_gw.systemd"):
        for _ in range(3):
            notifier.watchdog()
    notifier.close()
    assert len(caplog.records) == 1
    assert "cannot notify the service manager" in caplog.records[0].getMessage()


def test_a_full_queue_never_blocks(receiver: tuple[str, socket.socket]) -> None:
    """When systemd does not read (its queue is full), sending returns at once."""
    path, _sock = receiver
    notifier = SdNotifier(path)

    # Far more datagrams than the kernel queues for one unread socket (max_dgram_qlen).
    def flood() -> None:
        for _ in range(5000):
            notifier.watchdog()

    sender = threading.Thread(target=flood)
    sender.start()
    sender.join(timeout=10)
    blocked = sender.is_alive()
    notifier.close()
    assert not blocked


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param({}, NullNotifier, id="unset"),
        pytest.param({"NOTIFY_SOCKET": ""}, NullNotifier, id="empty"),
        pytest.param({"NOTIFY_SOCKET": "vsock:2:1234"}, NullNotifier, id="vsock-unsupported"),
        pytest.param({"NOTIFY_SOCKET": "/run/systemd/notify"}, SdNotifier, id="path"),
        pytest.param({"NOTIFY_SOCKET": "@abstract"}, SdNotifier, id="abstract"),
    ],
)
def test_notifier_from_env(environ: dict[str, str], expected: type) -> None:
    """Without a usable NOTIFY_SOCKET the daemon runs with notifications switched off."""
    notifier = notifier_from_env(environ)
    assert type(notifier) is expected
    notifier.close()


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param({}, None, id="no-watchdog"),
        pytest.param({"WATCHDOG_USEC": "0"}, None, id="zero"),
        pytest.param({"WATCHDOG_USEC": "soon"}, None, id="malformed"),
        pytest.param({"WATCHDOG_USEC": "30000000"}, 15.0, id="half-of-30s"),
        pytest.param({"WATCHDOG_USEC": "400000", "WATCHDOG_PID": "{pid}"}, 0.2, id="for-us"),
        pytest.param({"WATCHDOG_USEC": "400000", "WATCHDOG_PID": "1"}, None, id="for-another"),
    ],
)
def test_watchdog_interval(environ: dict[str, str], expected: float | None) -> None:
    """Pings every half WATCHDOG_USEC, and only in the process WATCHDOG_PID names."""
    env = {name: value.format(pid=os.getpid()) for name, value in environ.items()}
    assert watchdog_interval(env) == expected


# Socket activation hands over sockets from fd 3 with LISTEN_PID set to the receiving process,
# as systemd does; this launcher moves the fd and sets its own PID, then execs the check.
_LAUNCHER = """
import os, sys
fd, pid = int(sys.argv[1]), sys.argv[2]
os.dup2(fd, 3)
os.close(fd)
os.environ["LISTEN_PID"] = str(os.getpid()) if pid == "self" else pid
os.execv(sys.executable, [sys.executable, "-c", sys.argv[3]])
"""

_ACTIVATED = """
import json, os
from bedrock_gw.systemd import listen_fds
try:
    found = listen_fds(os.environ)
except ValueError as exc:
    print(json.dumps({"error": str(exc)}))
else:
    print(json.dumps({
        "sockets": [[s.name, s.sock.getsockname()[1], os.get_inheritable(s.sock.fileno())]
                    for s in found],
    }))
"""


def _run_activated(sock: socket.socket, *, names: str | None, pid: str = "self") -> Any:
    fd = sock.fileno()
    env = {key: value for key, value in os.environ.items() if not key.startswith("LISTEN_")}
    env["LISTEN_FDS"] = "1"
    if names is not None:
        env["LISTEN_FDNAMES"] = names
    result = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, str(fd), pid, _ACTIVATED],
        pass_fds=(fd,),
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(result.stdout)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.create_server(("127.0.0.1", 0))
    yield sock
    sock.close()


def test_listen_fds_takes_the_passed_socket(listener: socket.socket) -> None:
    """A listening socket at fd 3 is found with its name and made close-on-exec."""
    port = listener.getsockname()[1]
    assert _run_activated(listener, names="web") == {"sockets": [["web", port, False]]}


def test_listen_fds_without_names(listener: socket.socket) -> None:
    """Without LISTEN_FDNAMES a socket is named 'unknown', as sd_listen_fds_with_names does."""
    port = listener.getsockname()[1]
    assert _run_activated(listener, names=None) == {"sockets": [["unknown", port, False]]}


def test_listen_fds_for_another_process(listener: socket.socket) -> None:
    """Sockets meant for another PID (an inherited environment) are left alone."""
    assert _run_activated(listener, names="web", pid="1") == {"sockets": []}


def test_listen_fds_rejects_a_socket_that_does_not_listen() -> None:
    """A passed socket the daemon cannot accept on is a clear error, not a hang."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        result = _run_activated(sock, names="web")
    finally:
        sock.close()
    assert "not a listening stream socket" in result["error"]


def test_listen_fds_needs_listen_pid() -> None:
    """LISTEN_FDS alone (no LISTEN_PID) passes nothing, as sd_listen_fds(3) requires."""
    assert listen_fds({"LISTEN_FDS": "1"}) == []
