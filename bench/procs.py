"""The processes under test: the fake Bedrock and the gateway, each started as a child.

Both run from this checkout (``cwd`` and ``PYTHONPATH`` are the repository root), with the
same interpreter as the benchmark, AWS credentials the fake accepts, and no AWS configuration
from the machine leaking in.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "FAKE_ACCESS_KEY",
    "FAKE_SECRET",
    "REGION",
    "REPO_ROOT",
    "Child",
    "ChildFailed",
    "cpu_seconds",
    "raise_fd_limit",
    "rss_mb",
    "start_fake",
    "start_gateway",
    "uses_uvloop",
    "wait_until_serving",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
FAKE_ACCESS_KEY = "AKIDFAKE"
FAKE_SECRET = "fake-secret"  # the fake's built-in test credential, not a secret
REGION = "us-east-1"

_LISTENING = re.compile(r"listening on http://[^\s,]+:(\d+)")
_START_TIMEOUT = 30.0


class ChildFailed(RuntimeError):
    """A child process died or did not become ready; the message has its log's tail."""


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise ChildFailed(
                f"{self.name} exited with status {self.process.returncode}:\n{self.tail()}"
            )

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it has not ended within ``timeout`` seconds."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE (children inherit it); return the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def child_environ() -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        # The machine's AWS profile or a BEDROCK_GW_* override would change what is measured.
        if not key.startswith(("AWS_", "BEDROCK_GW_"))
    }
    env.update(
        {
            "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _spawn(name: str, args: list[str], log: Path) -> Child:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=REPO_ROOT,
            env=child_environ(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Child(name, process, log)


def start_fake(workdir: Path) -> tuple[Child, str]:
    """Start ``tests.fakes.bedrock`` on a free port; return it and its base URL."""
    port_file = workdir / "fake.port"
    child = _spawn(
        "fake Bedrock",
        [
            "-m",
            "tests.fakes.bedrock",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--port-file",
            str(port_file),
        ],
        workdir / "fake.log",
    )
    deadline = time.monotonic() + _START_TIMEOUT
    while not port_file.exists():
        child.check_alive()
        if time.monotonic() > deadline:
            child.stop()
            raise ChildFailed(f"the fake wrote no port within {_START_TIMEOUT:g}s")
        time.sleep(0.05)
    return child, f"http://127.0.0.1:{int(port_file.read_text())}"


def gateway_config(fake_url: str, api_key: str, max_connections: int) -> str:
    return "\n".join(
        [
            "[server]",
            'host = "127.0.0.1"',
            "port = 0",
            "shutdown_timeout = 2.0",
            "[aws]",
            f'region = "{REGION}"',
            f"runtime_endpoint = {json.dumps(fake_url)}",
            f"control_endpoint = {json.dumps(fake_url)}",
            f"max_connections = {max_connections}",
            "[auth]",
            f"api_keys = [{json.dumps(api_key)}]",
            "[logging]",
            'level = "INFO"',  # the "listening on" line tells us the port
            "access_log = false",
            "",
        ]
    )


def start_gateway(
    workdir: Path, fake_url: str, api_key: str, max_connections: int
) -> tuple[Child, str]:
    """Start ``python -m bedrock_gw`` on a free port; return it and its base URL."""
    config = workdir / "gateway.toml"
    config.write_text(gateway_config(fake_url, api_key, max_connections))
    child = _spawn("gateway", ["-m", "bedrock_gw", "--config", str(config)], workdir / "gw.log")
    deadline = time.monotonic() + _START_TIMEOUT
    while True:
        child.check_alive()
        found = _LISTENING.search(child.log.read_text(errors="replace"))
        if found:
            return child, f"http://127.0.0.1:{found.group(1)}"
        if time.monotonic() > deadline:
            child.stop()
            raise ChildFailed(f"the gateway did not listen within {_START_TIMEOUT:g}s")
        time.sleep(0.05)


def _get(url: str, headers: Mapping[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""


def wait_until_serving(gateway: Child, url: str, api_key: str, model: str) -> None:
    """Wait for ``/health`` to answer and ``/v1/models`` to list ``model``."""
    deadline = time.monotonic() + _START_TIMEOUT
    auth = {"Authorization": f"Bearer {api_key}"}
    while True:
        gateway.check_alive()
        status, _ = _get(f"{url}/health", {})
        if status == 200:
            status, body = _get(f"{url}/v1/models", auth)
            if status == 200 and any(m.get("id") == model for m in json.loads(body)["data"]):
                return
        if time.monotonic() > deadline:
            raise ChildFailed(f"the gateway was not serving {model} within {_START_TIMEOUT:g}s")
        time.sleep(0.1)


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MB (VmRSS from /proc, which reports kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ChildFailed(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` so far (fields 14 and 15 of /proc/<pid>/stat)."""
    # The command name (field 2) may hold spaces; the fields after its ")" are fixed.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def uses_uvloop(pid: int) -> bool:
    """Whether the process has uvloop's extension module mapped (the gateway imports it lazily)."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return "/uvloop/loop." in maps
