"""systemd/bedrock-gw.service on a real systemd: start, reload, stop, watchdog, hardening.

The tests run in order against one container and one installed daemon; each leaves the
service running with the base configuration for the next.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.system.container import Container

pytestmark = pytest.mark.system

REPO = Path(__file__).resolve().parents[2]
UNIT = "bedrock-gw.service"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
KEY_ONE = "system-key-one-0123456789"
KEY_TWO = "system-key-two-0123456789"
CREDENTIAL_KEY = "system-key-from-credential-0123456789"
ALLOW_CREDENTIALS = "/etc/bedrock-gw/credentials-available"

# A credential_process that fails until the test allows it: it holds the readiness gate.
CREDENTIAL_PROCESS = f"""\
import json, os, sys
if not os.path.exists({ALLOW_CREDENTIALS!r}):
    sys.exit("credentials are not available yet")
print(json.dumps({{"Version": 1, "AccessKeyId": "AKIDFAKE", "SecretAccessKey": "fake-secret"}}))
"""


def config_toml(fake_url: str, keys: list[str], extra: str = "") -> str:
    return (
        '[server]\nhost = "0.0.0.0"\nport = 8000\nshutdown_timeout = 10.0\n'
        f'[aws]\nruntime_endpoint = "{fake_url}"\ncontrol_endpoint = "{fake_url}"\n'
        f"[auth]\napi_keys = {json.dumps(keys)}\n{extra}"
    )


def wait_until(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.1)


def http_status(url: str, key: str | None = KEY_ONE, timeout: float = 5) -> int:
    request = urllib.request.Request(url)
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0  # not listening (yet)


def fake_control(fake_url: str, path: str, payload: Any = None) -> Any:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(f"{fake_url}/_fake/{path}", data=data, method="POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


class Host:
    """The container seen as a host running bedrock-gw.service."""

    def __init__(self, machine: Container, fake_url: str) -> None:
        self.machine = machine
        self.fake_url = fake_url
        self.base = f"http://{machine.ip}:8000"

    def systemctl(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.machine.run("systemctl", *argv, check=check)

    def state(self) -> dict[str, str]:
        return self.machine.show(
            UNIT, "ActiveState", "SubState", "StatusText", "MainPID", "NRestarts", "Result"
        )

    def journal(self, *argv: str) -> str:
        return self.machine.run("journalctl", "--unit", UNIT, "--no-pager", *argv).stdout

    def configure(self, keys: list[str], extra: str = "") -> None:
        self.machine.write(
            "/etc/bedrock-gw/config.toml", config_toml(self.fake_url, keys, extra), "0644"
        )

    def models(self, key: str = KEY_ONE) -> int:
        return http_status(f"{self.base}/v1/models", key)

    def ensure_serving(self) -> None:
        """Base config, credentials available, service active and answering."""
        self.configure([KEY_ONE])
        self.machine.run("touch", ALLOW_CREDENTIALS)
        # Starts a stopped unit; a running one re-reads the base configuration.
        self.systemctl("reload-or-restart", UNIT)
        wait_until(lambda: self.models() == 200, "the service answers with KEY_ONE")


@pytest.fixture(scope="module")
def host(container: Container, fake_bedrock: str) -> Iterator[Host]:
    """The daemon installed with the repository's unit, configuration and secrets in /etc."""
    machine = container
    unit = (REPO / "systemd" / UNIT).read_text()
    machine.write(f"/etc/systemd/system/{UNIT}", unit)
    machine.write("/etc/bedrock-gw/credentials.py", CREDENTIAL_PROCESS)
    machine.write(
        "/etc/bedrock-gw/aws-config",
        "[default]\ncredential_process = /usr/bin/python3 /etc/bedrock-gw/credentials.py\n",
    )
    machine.write(
        "/etc/bedrock-gw/environment",
        "AWS_CONFIG_FILE=/etc/bedrock-gw/aws-config\nAWS_DEFAULT_REGION=us-east-1\n"
        "AWS_EC2_METADATA_DISABLED=true\n",
        "0600",
    )
    # Readable by root alone: only LoadCredential= lets the service's dynamic user see it.
    machine.write("/etc/bedrock-gw/api-keys", f"from-credential {CREDENTIAL_KEY}\n", "0600")
    host = Host(machine, fake_bedrock)
    host.configure([KEY_ONE])
    machine.run("systemctl", "daemon-reload")
    yield host
    print(host.journal("--lines=300"))  # shown by pytest when a test of the module failed


def test_unit_passes_systemd_analyze_verify(host: Host) -> None:
    """The installed unit has no errors or warnings for the systemd that runs it."""
    result = host.machine.run("systemd-analyze", "verify", UNIT, check=False)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_start_is_active_only_once_ready(host: Host) -> None:
    """`systemctl start` stays 'activating' while a readiness gate holds, though the port is
    bound; it turns 'active' once the gate passes, with the summary as status."""
    host.machine.run("rm", "-f", ALLOW_CREDENTIALS)
    host.systemctl("start", "--no-block", UNIT)
    wait_until(
        lambda: host.state()["StatusText"].startswith("Waiting: loading AWS credentials"),
        "the daemon waits for credentials",
    )
    assert http_status(f"{host.base}/health", key=None) == 200  # bound while waiting
    time.sleep(1.5)
    assert host.state()["ActiveState"] == "activating"

    host.machine.run("touch", ALLOW_CREDENTIALS)
    wait_until(lambda: host.state()["ActiveState"] == "active", "the unit is active")
    assert host.state()["StatusText"].startswith("Serving on http://0.0.0.0:8000; ")
    wait_until(lambda: host.models() == 200, "models are served")


def test_hardened_unit_really_runs_the_daemon(host: Host) -> None:
    """Under every hardening directive (MemoryDenyWriteExecute included) the daemon serves, as
    an unprivileged dynamic user, and reads its API keys from a LoadCredential= secret."""
    host.ensure_serving()
    pid = host.state()["MainPID"]
    status = host.machine.run("cat", f"/proc/{pid}/status").stdout
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["Uid"].split()[0] != "0"
    assert fields["CapEff"].strip() == "0000000000000000"
    assert fields["NoNewPrivs"].strip() == "1"
    assert fields["Seccomp"].strip() == "2"
    settings = host.machine.show(
        UNIT, "MemoryDenyWriteExecute", "DynamicUser", "ProtectSystem", "PrivateDevices"
    )
    assert settings == {
        "MemoryDenyWriteExecute": "yes",
        "DynamicUser": "yes",
        "ProtectSystem": "strict",
        "PrivateDevices": "yes",
    }
    assert host.models(CREDENTIAL_KEY) == 200


def test_reload_applies_a_new_key(host: Host) -> None:
    """`systemctl reload`: the new inline key works, the old one stops, the credential file's
    key stays, and the process is the same."""
    host.ensure_serving()
    before = host.state()
    host.configure([KEY_TWO])
    host.systemctl("reload", UNIT)
    wait_until(lambda: host.models(KEY_TWO) == 200, "the new key is accepted")
    assert host.models(KEY_ONE) == 401
    assert host.models(CREDENTIAL_KEY) == 200  # keys from the credential file stay
    after = host.state()
    assert (after["MainPID"], after["NRestarts"], after["ActiveState"]) == (
        before["MainPID"],
        before["NRestarts"],
        "active",
    )
    assert "configuration reloaded from /etc/bedrock-gw/config.toml" in host.journal()


def test_invalid_reload_keeps_serving_and_logs_an_error(host: Host) -> None:
    """A broken file on reload is refused at priority 'err'; the running config serves on."""
    host.ensure_serving()
    host.configure([KEY_TWO], extra="bogus_key = 1\n")
    host.systemctl("reload", UNIT)
    wait_until(lambda: "last reload rejected" in host.state()["StatusText"], "the rejection shows")
    assert host.models(KEY_ONE) == 200
    assert host.models(KEY_TWO) == 401
    errors = host.journal("--priority=err")
    assert "configuration reload rejected, still serving the previous one" in errors
    assert "auth.bogus_key: unknown key" in errors
    # Priorities come from our "<N>" prefixes: informational lines stay out of -p err.
    assert "configuration reloaded" not in errors
    assert host.state()["ActiveState"] == "active"


def test_stop_lets_a_stream_finish(host: Host) -> None:
    """`systemctl stop` during a slow stream: the stream completes, then the unit stops
    cleanly (exit 0, result 'success')."""
    host.ensure_serving()
    events: list[list[Any]] = [["messageStart", {"role": "assistant"}]]
    events += [
        ["contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": f"w{n} "}}]
        for n in range(8)
    ]
    events += [
        ["contentBlockStop", {"contentBlockIndex": 0}],
        ["messageStop", {"stopReason": "end_turn"}],
    ]
    fake_control(
        host.fake_url, "enqueue", {"kind": "stream_events", "events": events, "delay": 0.3}
    )
    body = {"model": HAIKU, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    request = urllib.request.Request(
        f"{host.base}/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {KEY_ONE}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.readline().startswith(b"data: ")
        stop = subprocess.Popen(
            [
                "nsenter",
                f"--target={host.machine.leader}",
                "--all",
                "systemctl",
                "stop",
                UNIT,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        lines = [line.decode().strip() for line in response]
    assert stop.wait(timeout=60) == 0
    data = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    state = host.machine.show(UNIT, "ActiveState", "Result", "ExecMainStatus")
    assert state == {"ActiveState": "inactive", "Result": "success", "ExecMainStatus": "0"}
    journal = host.journal()
    assert "stopping: 1 requests in flight" in journal
    assert "bedrock_gw.server: stopped" in journal


def test_watchdog_restarts_a_stuck_daemon(host: Host) -> None:
    """The daemon pings systemd's watchdog; when it stops (a frozen process), systemd restarts
    it."""
    host.machine.write(
        f"/etc/systemd/system/{UNIT}.d/watchdog.conf", "[Service]\nWatchdogSec=2s\nRestartSec=1s\n"
    )
    host.systemctl("daemon-reload")
    try:
        host.systemctl("restart", UNIT)
        host.ensure_serving()
        first = host.machine.show(UNIT, "WatchdogTimestampMonotonic")
        time.sleep(2.5)
        second = host.machine.show(UNIT, "WatchdogTimestampMonotonic")
        assert int(second["WatchdogTimestampMonotonic"]) > int(first["WatchdogTimestampMonotonic"])

        before = host.state()
        host.machine.run("kill", "-STOP", before["MainPID"])
        wait_until(
            lambda: int(host.state()["NRestarts"]) > int(before["NRestarts"]),
            "systemd restarts the frozen daemon",
        )
        wait_until(lambda: host.models() == 200, "the restarted daemon serves")
        assert "Watchdog timeout" in host.journal()
    finally:
        host.machine.run("rm", "-rf", f"/etc/systemd/system/{UNIT}.d")
        host.systemctl("daemon-reload")
        host.systemctl("restart", UNIT)


def test_socket_activation_on_a_privileged_port(host: Host) -> None:
    """With bedrock-gw.socket on port 80 the daemon serves there, holding no capability."""
    host.systemctl("stop", UNIT)
    socket_unit = (REPO / "systemd" / "bedrock-gw.socket").read_text()
    host.machine.write("/etc/systemd/system/bedrock-gw.socket", socket_unit)
    host.machine.write(
        "/etc/systemd/system/bedrock-gw.socket.d/port.conf",
        "[Socket]\nListenStream=\nListenStream=0.0.0.0:80\n",
    )
    host.systemctl("daemon-reload")
    try:
        host.systemctl("start", "bedrock-gw.socket")
        # The first connection starts the service; it is answered once the daemon is ready.
        assert http_status(f"http://{host.machine.ip}/v1/models", timeout=30) == 200
        state = host.state()
        assert state["ActiveState"] == "active"
        assert re.match(r"Serving on http://0\.0\.0\.0:80; ", state["StatusText"])
        status = host.machine.run("cat", f"/proc/{state['MainPID']}/status").stdout
        assert re.search(r"^CapEff:\s+0+$", status, re.MULTILINE)
        assert "socket activation: serving on 1 sockets from systemd (http)" in host.journal()
    finally:
        host.systemctl("stop", "bedrock-gw.socket", UNIT)
        host.machine.run(
            "rm",
            "-rf",
            "/etc/systemd/system/bedrock-gw.socket",
            "/etc/systemd/system/bedrock-gw.socket.d",
        )
        host.systemctl("daemon-reload")
