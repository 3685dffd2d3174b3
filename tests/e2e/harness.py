"""Processes and HTTP for the end-to-end tests: the fake Bedrock, the gateway, Open WebUI.

Each service runs in its own process group with its output in a log file, so a test can show
the tail of every log when it fails and teardown can kill whatever the service started.
Every wait here is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


class ServiceError(RuntimeError):
    """A service did not start or answer in time; the message carries its log tail."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Service:
    """A subprocess in its own session, logging to a file."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        log_path: Path,
    ) -> None:
        self.name = name
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                argv,
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed as a whole
            )

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 80) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"----- {self.name} log tail ({self.log_path.name}) -----\n{tail}"

    def fail(self, why: str) -> ServiceError:
        return ServiceError(f"{self.name}: {why}\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL it if it is still there after ``timeout``."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=timeout)
        # Children that outlived the leader (workers, helpers) go too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=timeout)


def wait_until(
    service: Service, what: str, check: Callable[[], bool], timeout: float, interval: float = 0.2
) -> None:
    """Poll ``check`` until it is true; fail with the service's log if it dies or times out."""
    deadline = time.monotonic() + timeout
    while True:
        if not service.alive():
            raise service.fail(f"exited with {service.process.returncode} while {what}")
        with contextlib.suppress(OSError, ValueError):
            if check():
                return
        if time.monotonic() > deadline:
            raise service.fail(f"not done {what} after {timeout:g} s")
        time.sleep(interval)


# ----------------------------------------------------------------------------- HTTP


class HttpError(AssertionError):
    def __init__(self, method: str, url: str, status: int, body: str) -> None:
        super().__init__(f"{method} {url} -> HTTP {status}: {body[:2000]}")
        self.status = status
        self.body = body


def _request(
    method: str, url: str, payload: Any | None, token: str | None
) -> urllib.request.Request:
    headers = {"Accept": "application/json"}
    data = None
    if payload is not None:
        data = json.dumps(payload).encode()
        headers["Content-Type"] = "application/json"
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return urllib.request.Request(url, data=data, method=method, headers=headers)


def http_json(
    method: str,
    url: str,
    payload: Any | None = None,
    *,
    token: str | None = None,
    timeout: float = 30.0,
) -> Any:
    """One JSON request; raises HttpError (an AssertionError) on a non-2xx answer."""
    request = _request(method, url, payload, token)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        exc.close()
        raise HttpError(method, url, exc.code, text) from None
    return json.loads(body) if body else None


def http_sse(
    url: str, payload: Any, *, token: str | None = None, timeout: float = 30.0
) -> Iterator[Any]:
    """POST and yield each ``data:`` event of a server-sent event stream, parsed as JSON.

    Stops at ``data: [DONE]``; ``timeout`` bounds every read.
    """
    request = _request("POST", url, payload, token)
    request.add_header("Accept", "text/event-stream")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        exc.close()
        raise HttpError("POST", url, exc.code, text) from None
    with response:
        content_type = response.headers.get("Content-Type", "")
        if "text/event-stream" not in content_type:
            raise AssertionError(
                f"POST {url}: expected an event stream, got {content_type!r}: "
                f"{response.read(2000).decode(errors='replace')}"
            )
        for raw in response:
            line = raw.decode().strip()
            if not line.startswith("data:"):
                continue
            data = line.removeprefix("data:").strip()
            if data == "[DONE]":
                return
            yield json.loads(data)
