"""The daemon as systemd runs it: a real process, a real NOTIFY_SOCKET, real signals.

Each test starts ``python -m bedrock_gw --config FILE`` against the fake Bedrock (also a separate
process) and reads what the daemon tells its service manager from a datagram socket the test
binds, exactly as systemd would. Timings are checked loosely: the machine may be busy.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parents[2]
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
KEY_ONE = "lifecycle-key-one-0123456789"
KEY_TWO = "lifecycle-key-two-0123456789"
# Variables a developer's shell (or a CI runner under systemd) may carry that would change
# what the daemon under test does.
_SERVICE_VARIABLES = (
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "JOURNAL_STREAM",
)


# ----------------------------------------------------------------------------- the fake Bedrock


@pytest.fixture(scope="module")
def fake_bedrock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The fake Bedrock as its own process, for every daemon of this module."""
    port_file = tmp_path_factory.mktemp("fake-bedrock") / "port"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.bedrock", "--port", "0", "--port-file", str(port_file)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists():
            assert process.poll() is None, "the fake Bedrock exited"
            assert time.monotonic() < deadline, "the fake Bedrock did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port_file.read_text().strip()}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def fake_control(url: str, path: str, payload: Any = None) -> Any:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(f"{url}/_fake/{path}", data=data, method="POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


@pytest.fixture
def fake(fake_bedrock: str) -> str:
    fake_control(fake_bedrock, "reset")
    return fake_bedrock


def slow_stream(chunks: int, delay: float) -> dict[str, Any]:
    """A ConverseStream reply of ``chunks`` text pieces, ``delay`` seconds apart."""
    events: list[list[Any]] = [["messageStart", {"role": "assistant"}]]
    events += [
        ["contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": f"w{n} "}}]
        for n in range(chunks)
    ]
    events += [
        ["contentBlockStop", {"contentBlockIndex": 0}],
        ["messageStop", {"stopReason": "end_turn"}],
        [
            "metadata",
            {
                "usage": {"inputTokens": 3, "outputTokens": chunks, "totalTokens": chunks + 3},
                "metrics": {"latencyMs": 5},
            },
        ],
    ]
    return {"kind": "stream_events", "events": events, "delay": delay}


# ----------------------------------------------------------------------------- NOTIFY_SOCKET


@dataclass(frozen=True)
class Notification:
    at: float
    """``time.monotonic()`` when it arrived."""
    text: str


class NotifySocket:
    """The service manager's end of NOTIFY_SOCKET: every datagram, in order of arrival."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.received: list[Notification] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.setblocking(False)
        self._arrived = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> NotifySocket:
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._reader is not None
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
        self._sock.close()

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await loop.sock_recv(self._sock, 4096)
            self.received.append(Notification(time.monotonic(), data.decode()))
            self._arrived.set()

    def texts(self, *, watchdog: bool = False) -> list[str]:
        return [n.text for n in self.received if watchdog or n.text != "WATCHDOG=1"]

    async def wait_for(
        self, match: str | Callable[[str], bool], *, after: int = 0, within: float = 30
    ) -> int:
        """The index of the first notification from ``after`` on that is ``match`` (or passes
        it); waits up to ``within`` seconds for it to arrive."""
        test = match if callable(match) else match.__eq__
        async with asyncio.timeout(within):
            while True:
                for index in range(after, len(self.received)):
                    if test(self.received[index].text):
                        return index
                self._arrived.clear()
                await self._arrived.wait()


# ----------------------------------------------------------------------------- the daemon


def write_config(path: Path, fake_url: str, port: int, **sections: dict[str, Any]) -> None:
    config: dict[str, dict[str, Any]] = {
        "server": {"host": "127.0.0.1", "port": port, "shutdown_timeout": 10.0},
        "aws": {"runtime_endpoint": fake_url, "control_endpoint": fake_url},
        "auth": {"api_keys": [KEY_ONE]},
    }
    for name, values in sections.items():
        config[name] = {**config.get(name, {}), **values}
    lines = []
    for name, values in config.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n")


_LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


class Daemon:
    """One ``python -m bedrock_gw`` process; its stderr goes to a file the test can read."""

    def __init__(self, process: asyncio.subprocess.Process, log: Path) -> None:
        self.process = process
        self.log = log
        self.port = 0
        self.url = ""

    async def bound(self) -> None:
        """Learn the port the daemon bound (port 0 in its config: no race for a free port)."""
        async with asyncio.timeout(30):
            while not (
                found := re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.output())
            ):
                assert self.process.returncode is None, self.output()
                await asyncio.sleep(0.05)
        self.port = int(found.group(1))
        self.url = f"http://127.0.0.1:{self.port}"

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    async def exit_code(self, within: float = 30) -> int:
        return await asyncio.wait_for(self.process.wait(), within)

    def output(self) -> str:
        return self.log.read_text()


@dataclass
class Launcher:
    tmp_path: Path
    fake_url: str
    started: list[Daemon]

    @property
    def config(self) -> Path:
        return self.tmp_path / "config.toml"

    def environ(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _SERVICE_VARIABLES}
        env["PYTHONPATH"] = str(ROOT)
        env.update(extra)
        return env

    async def start(
        self,
        *,
        notify: NotifySocket | None,
        env: dict[str, str] | None = None,
        argv_prefix: tuple[str, ...] = (),
        pass_fds: tuple[int, ...] = (),
        wait_bound: bool = True,
        **sections: dict[str, Any],
    ) -> Daemon:
        if not self.config.exists() or sections:
            write_config(self.config, self.fake_url, 0, **sections)
        environ = self.environ() if env is None else env
        if notify is not None:
            environ["NOTIFY_SOCKET"] = str(notify.path)
        log = self.tmp_path / f"daemon-{len(self.started)}.log"
        with log.open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                *argv_prefix,
                sys.executable,
                "-m",
                "bedrock_gw",
                "--config",
                str(self.config),
                cwd=ROOT,
                env=environ,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                pass_fds=pass_fds,
            )
        daemon = Daemon(process, log)
        self.started.append(daemon)
        if wait_bound:
            await daemon.bound()
        return daemon


@pytest.fixture
async def launcher(tmp_path: Path, fake: str) -> AsyncIterator[Launcher]:
    """Starts daemons; any still running at the end is killed (and the test already failed)."""
    launched = Launcher(tmp_path, fake, [])
    yield launched
    for daemon in launched.started:
        if daemon.process.returncode is None:
            daemon.process.kill()
            await daemon.process.wait()


@pytest.fixture
async def notify(tmp_path: Path) -> AsyncIterator[NotifySocket]:
    async with NotifySocket(tmp_path / "notify.sock") as sock:
        yield sock


async def get_status(url: str, path: str, key: str | None = KEY_ONE) -> int:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with aiohttp.ClientSession() as http, http.get(f"{url}{path}", headers=headers) as resp:
        await resp.read()
        return resp.status


async def eventually(
    probe: Callable[[], Awaitable[int]], expected: int, within: float = 30
) -> None:
    """Poll ``probe`` until it returns ``expected`` (a service coming up takes a moment)."""
    async with asyncio.timeout(within):
        while await probe() != expected:  # noqa: ASYNC110 - polling another process
            await asyncio.sleep(0.1)


def serving_status(port: int) -> Callable[[str], bool]:
    pattern = re.compile(
        rf"STATUS=Serving on http://127\.0\.0\.1:{port}; "
        r"(\d+ models|model list not fetched yet); \d+ requests served"
    )
    return lambda text: pattern.fullmatch(text) is not None


# ----------------------------------------------------------------------------- start-up


async def test_start_notifications_in_order(launcher: Launcher, notify: NotifySocket) -> None:
    """Start-up says what it waits for, then READY=1, then a summary of what it serves."""
    daemon = await launcher.start(notify=notify)
    await notify.wait_for(serving_status(daemon.port))
    texts = notify.texts()
    assert texts[:3] == [
        "STATUS=Waiting: loading AWS credentials (botocore default chain)",
        "STATUS=Waiting: loading API keys",
        "READY=1",
    ]
    assert serving_status(daemon.port)(texts[3])
    daemon.signal(signal.SIGTERM)
    assert await daemon.exit_code() == 0


async def test_ready_only_once_bound_and_gates_passed(
    launcher: Launcher, notify: NotifySocket, tmp_path: Path
) -> None:
    """While credentials are missing the port already accepts, but READY=1 waits for them."""
    allow = tmp_path / "credentials-available"
    helper = tmp_path / "credential-process.py"
    helper.write_text(
        "import json, pathlib, sys\n"
        f"if not pathlib.Path({str(allow)!r}).exists():\n"
        "    sys.exit('not yet')\n"
        'print(json.dumps({"Version": 1, "AccessKeyId": "AKIDFAKE",'
        ' "SecretAccessKey": "fake-secret"}))\n'
    )
    aws_config = tmp_path / "aws-config"
    aws_config.write_text(f"[default]\ncredential_process = {sys.executable} {helper}\n")
    env = launcher.environ(AWS_CONFIG_FILE=str(aws_config))
    del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    daemon = await launcher.start(notify=notify, env=env)

    await notify.wait_for("STATUS=Waiting: loading AWS credentials (botocore default chain)")
    # Bound before waiting: connections are accepted while the gate holds READY back.
    assert await get_status(daemon.url, "/health", key=None) == 200
    await asyncio.sleep(1.5)  # the daemon retries its credential source meanwhile
    assert "READY=1" not in notify.texts()

    allow.touch()
    await notify.wait_for("READY=1")
    # Keys and credentials are in hand: a wrong key is refused, the right one is served
    # (once the model list, fetched again now that credentials exist, has arrived).
    assert await get_status(daemon.url, "/v1/models", KEY_TWO) == 401
    await eventually(lambda: get_status(daemon.url, "/v1/models"), 200)
    daemon.signal(signal.SIGTERM)
    assert await daemon.exit_code() == 0


async def test_runs_without_a_service_manager(launcher: Launcher) -> None:
    """No NOTIFY_SOCKET: the same daemon serves and stops cleanly, notifying nobody."""
    daemon = await launcher.start(notify=None)
    async with asyncio.timeout(30):
        while "ready: Serving on" not in daemon.output():  # noqa: ASYNC110 - another process
            await asyncio.sleep(0.05)
    assert await get_status(daemon.url, "/v1/models") == 200
    assert await get_status(daemon.url, "/v1/models") == 200
    daemon.signal(signal.SIGTERM)
    assert await daemon.exit_code() == 0


async def test_port_in_use_fails_the_start(launcher: Launcher, notify: NotifySocket) -> None:
    """A port that cannot be bound ends the start with exit status 1 and a clear log line,
    never with READY=1 (so Restart=on-failure tries again)."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        daemon = await launcher.start(notify=notify, wait_bound=False, server={"port": port})
        assert await daemon.exit_code() == 1
    assert "READY=1" not in notify.texts()
    assert f"cannot listen on 127.0.0.1 port {port}: " in daemon.output()
    assert "Traceback" not in daemon.output()


async def test_watchdog_pings_at_half_the_interval(
    launcher: Launcher, notify: NotifySocket
) -> None:
    """With WATCHDOG_USEC set, WATCHDOG=1 comes regularly at about half that period."""
    env = launcher.environ(WATCHDOG_USEC="400000")  # 0.4 s: a ping every 0.2 s
    daemon = await launcher.start(notify=notify, env=env)
    ready = await notify.wait_for("READY=1")
    await asyncio.sleep(2.0)
    pings = [n.at for n in notify.received[ready:] if n.text == "WATCHDOG=1"]
    daemon.signal(signal.SIGTERM)
    assert await daemon.exit_code() == 0
    assert len(pings) >= 4
    gaps = [later - earlier for earlier, later in itertools.pairwise(pings)]
    # About 0.2 s apart; a loaded machine stretches gaps, so only the median is checked.
    assert 0.1 < statistics.median(gaps) < 0.4


async def test_no_watchdog_pings_for_another_pid(launcher: Launcher, notify: NotifySocket) -> None:
    """WATCHDOG_PID naming another process means this one must not ping."""
    env = launcher.environ(WATCHDOG_USEC="200000", WATCHDOG_PID="1")
    daemon = await launcher.start(notify=notify, env=env)
    await notify.wait_for("READY=1")
    await asyncio.sleep(0.5)
    daemon.signal(signal.SIGTERM)
    assert await daemon.exit_code() == 0
    assert "WATCHDOG=1" not in notify.texts(watchdog=True)


# ----------------------------------------------------------------------------- reload


async def test_reload_applies_a_new_key(launcher: Launcher, notify: NotifySocket) -> None:
    """SIGHUP: RELOADING=1 with MONOTONIC_USEC, the new key works, the old one not, READY=1."""
    daemon = await launcher.start(notify=notify)
    ready = await notify.wait_for("READY=1")
    assert await get_status(daemon.url, "/v1/models", KEY_ONE) == 200

    write_config(launcher.config, launcher.fake_url, 0, auth={"api_keys": [KEY_TWO]})
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    daemon.signal(signal.SIGHUP)
    reloading = await notify.wait_for(lambda t: t.startswith("RELOADING=1"), after=ready + 1)
    done = await notify.wait_for("READY=1", after=reloading)
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000

    match = re.fullmatch(r"RELOADING=1\nMONOTONIC_USEC=(\d+)", notify.received[reloading].text)
    assert match is not None
    assert before <= int(match.group(1)) <= after
    between = notify.texts()[reloading + 1 : done]
    assert all(text.startswith("STATUS=Reloading") for text in between)
    assert await get_status(daemon.url, "/v1/models", KEY_TWO) == 200
    assert await get_status(daemon.url, "/v1/models", KEY_ONE) == 401
    assert "configuration reloaded from" in daemon.output()
    daemon.signal(signal.SIGTERM)
    assert await daemon.exit_code() == 0


async def test_reload_keeps_keys_from_other_sources(
    launcher: Launcher, notify: NotifySocket, tmp_path: Path
) -> None:
    """Changing the inline keys on reload leaves the keys of a key file working."""
    key_file = tmp_path / "api-keys"
    key_file.write_text("from-file lifecycle-file-key-0123456789\n")
    daemon = await launcher.start(notify=notify, auth={"key_file": str(key_file)})
    ready = await notify.wait_for("READY=1")
    write_config(
        launcher.config,
        launcher.fake_url,
        0,
        auth={"api_keys": [KEY_TWO], "key_file": str(key_file)},
    )
    daemon.signal(signal.SIGHUP)
    await notify.wait_for("READY=1", after=ready + 1)
    assert await get_status(daemon.url, "/v1/models", "lifecycle-file-key-0123456789") == 200
    assert await get_status(daemon.url, "/v1/models", KEY_TWO) == 200
    assert await get_status(daemon.url, "/v1/models", KEY_ONE) == 401
    daemon.signal(signal.SIGTERM)
    assert await daemon.exit_code() == 0


async def test_invalid_config_on_reload_keeps_the_old_one(
    launcher: Launcher, notify: NotifySocket
) -> None:
    """A broken file is rejected with a clear log line; the old key serves on."""
    daemon = await launcher.start(notify=notify)
    ready = await notify.wait_for("READY=1")
    launcher.config.write_text(
        launcher.config.read_text().replace(KEY_ONE, KEY_TWO) + "[server]\nprot = 1\n"
    )
    daemon.signal(signal.SIGHUP)
    reloading = await notify.wait_for(lambda t: t.startswith("RELOADING=1"), after=ready + 1)
    await notify.wait_for("READY=1", after=reloading)
    await notify.wait_for(lambda t: "last reload rejected" in t, after=reloading)

    assert await get_status(daemon.url, "/v1/models", KEY_ONE) == 200
    assert await get_status(daemon.url, "/v1/models", KEY_TWO) == 401
    rejected = [line for line in daemon.output().splitlines() if "reload rejected" in line]
    assert len(rejected) == 1
    assert "still serving the previous one" in rejected[0]
    assert str(launcher.config) in rejected[0]
    daemon.signal(signal.SIGTERM)
    assert await daemon.exit_code() == 0


async def test_reload_reports_what_needs_a_restart(
    launcher: Launcher, notify: NotifySocket
) -> None:
    """A new listen port is logged as waiting for a restart, and the old port keeps serving."""
    daemon = await launcher.start(notify=notify)
    ready = await notify.wait_for("READY=1")
    write_config(launcher.config, launcher.fake_url, 8)
    daemon.signal(signal.SIGHUP)
    reloading = await notify.wait_for(lambda t: t.startswith("RELOADING=1"), after=ready + 1)
    await notify.wait_for("READY=1", after=reloading)
    assert await get_status(daemon.url, "/v1/models") == 200
    assert "kept at the running value until a restart: server.port" in daemon.output()
    daemon.signal(signal.SIGTERM)
    assert await daemon.exit_code() == 0


# ----------------------------------------------------------------------------- stop


async def read_events(response: aiohttp.ClientResponse) -> list[str]:
    events = []
    async for line in response.content:
        if line.startswith(b"data: "):
            events.append(line[6:].decode().strip())
    return events


async def refused(port: int, within: float = 10) -> None:
    """Return once connecting to ``port`` is refused (the listener closed)."""
    async with asyncio.timeout(within):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return
            writer.close()
            await writer.wait_closed()
            await asyncio.sleep(0.05)


async def test_sigterm_stops_and_exits_zero(launcher: Launcher, notify: NotifySocket) -> None:
    """SIGTERM: STOPPING=1 first, the port closes, exit status 0."""
    daemon = await launcher.start(notify=notify)
    ready = await notify.wait_for("READY=1")
    daemon.signal(signal.SIGTERM)
    assert await daemon.exit_code() == 0
    after_ready = notify.texts()[ready + 1 :]
    stopping = after_ready.index("STOPPING=1")
    assert all(t.startswith("STATUS=") for t in after_ready[:stopping])
    assert "READY=1" not in after_ready
    await refused(daemon.port)


async def test_in_flight_stream_completes_during_stop(
    launcher: Launcher, notify: NotifySocket
) -> None:
    """A stream under way when SIGTERM arrives runs to [DONE]; new connections are refused."""
    fake_control(launcher.fake_url, "enqueue", slow_stream(chunks=10, delay=0.25))
    daemon = await launcher.start(notify=notify)
    await notify.wait_for("READY=1")
    body = {"model": HAIKU, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{daemon.url}/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {KEY_ONE}"},
        ) as response,
    ):
        assert response.status == 200
        first = await response.content.readline()
        assert first.startswith(b"data: ")
        daemon.signal(signal.SIGTERM)
        await notify.wait_for("STOPPING=1")
        await refused(daemon.port)  # while the stream is still under way
        rest = await read_events(response)
    assert rest[-1] == "[DONE]"
    text = "".join(
        choice["delta"].get("content") or ""
        for event in rest[:-1]
        for choice in json.loads(event)["choices"]
    )
    assert text.split() == [f"w{n}" for n in range(10)]
    assert await daemon.exit_code() == 0


async def test_stream_longer_than_the_grace_period_ends_with_an_error(
    launcher: Launcher, notify: NotifySocket
) -> None:
    """After server.shutdown_timeout an open stream gets an error event (no [DONE]), exit 0."""
    fake_control(launcher.fake_url, "enqueue", slow_stream(chunks=40, delay=0.5))
    daemon = await launcher.start(notify=notify, server={"shutdown_timeout": 1.0})
    await notify.wait_for("READY=1")
    body = {"model": HAIKU, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{daemon.url}/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {KEY_ONE}"},
        ) as response,
    ):
        await response.content.readline()
        signalled = time.monotonic()
        daemon.signal(signal.SIGTERM)
        events = await read_events(response)
    assert await daemon.exit_code() == 0
    # The grace period, a moment for the error event, and slack for a slow machine.
    assert time.monotonic() - signalled < 10
    assert "[DONE]" not in events
    error = json.loads(events[-1])["error"]
    assert (error["code"], error["message"]) == ("shutting_down", "the gateway is shutting down")


# ----------------------------------------------------------------------------- socket activation

# As systemd does it: the socket at fd 3, LISTEN_PID naming the process that receives it. This
# launcher moves the fd, sets its own PID (exec keeps it), then becomes the daemon.
_ACTIVATE = (
    "import os, sys; fd = int(sys.argv[1]); os.dup2(fd, 3); os.close(fd); "
    "os.environ['LISTEN_PID'] = str(os.getpid()); os.execv(sys.executable, sys.argv[2:])"
)


async def test_socket_activation(launcher: Launcher, notify: NotifySocket) -> None:
    """With LISTEN_FDS the daemon serves on the passed socket and binds nothing of its own."""
    with socket.create_server(("127.0.0.1", 0)) as passed:
        port = passed.getsockname()[1]
        env = launcher.environ(LISTEN_FDS="1", LISTEN_FDNAMES="http")
        daemon = await launcher.start(
            notify=notify,
            env=env,
            argv_prefix=(sys.executable, "-c", _ACTIVATE, str(passed.fileno())),
            pass_fds=(passed.fileno(),),
        )
    # The configured port is 0: had the daemon bound it, it would listen on another port too.
    assert daemon.port == port
    await notify.wait_for(serving_status(port))  # one URL, the passed socket's
    assert await get_status(daemon.url, "/v1/models") == 200
    assert "socket activation: serving on 1 sockets from systemd (http)" in daemon.output()
    daemon.signal(signal.SIGTERM)
    assert await daemon.exit_code() == 0
