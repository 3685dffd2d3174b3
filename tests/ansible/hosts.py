"""Real systemd hosts for the role: booted containers reached over ssh, and ansible-playbook.

A host is a :class:`tests.system.container.Container` (systemd-nspawn, systemd as PID 1, its
own veth network) whose sshd lets root in with a key made for the session. Foreign
architectures (arm64, armhf) boot the same way under qemu-user through binfmt_misc.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.system.container import CACHE, Container, rootfs

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = REPO / "ansible" / "site.yml"
WORK = REPO / ".work" / "ansible"
UNIT = "bedrock-gw.service"
# Debian architecture of the root filesystem -> `uname -m` inside it.
MACHINES = {"amd64": "x86_64", "arm64": "aarch64", "armhf": "armv7l"}
_RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)

CONTAINER_ROOT_HOME = "/" + "root"


def ansible_playbook() -> str | None:
    """The ansible-playbook to use: $ANSIBLE_PLAYBOOK_BIN, beside python, or on PATH."""
    named = os.environ.get("ANSIBLE_PLAYBOOK_BIN")
    if named:
        return named
    beside = Path(sys.executable).parent / "ansible-playbook"
    return str(beside) if beside.exists() else shutil.which("ansible-playbook")


def missing_foreign_support(arch: str) -> str | None:
    """Why a container of Debian architecture ``arch`` cannot boot here, or None."""
    if arch == "amd64":
        return None
    qemu = {"arm64": "qemu-aarch64", "armhf": "qemu-arm"}[arch]
    if not Path(f"/proc/sys/fs/binfmt_misc/{qemu}").exists():
        return f"binfmt_misc has no {qemu} (apt-get install qemu-user-static binfmt-support)"
    return None


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.2)


def http(url: str, key: str | None = None, timeout: float = 10) -> tuple[int, Any]:
    """GET ``url``: (status, decoded JSON body or None); status 0 when nothing answers."""
    request = urllib.request.Request(url)
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None
    except (OSError, ValueError):
        return 0, None


@dataclass
class Run:
    """One ansible-playbook run: its exit status, output and the recap of the host."""

    returncode: int
    output: str
    seconds: float

    @property
    def recap(self) -> dict[str, int]:
        found = list(_RECAP.finditer(self.output))
        assert found, f"no PLAY RECAP in the output:\n{self.output[-3000:]}"
        return {k: int(v) for k, v in found[-1].groupdict().items() if k != "host"}

    def handlers(self) -> list[str]:
        return re.findall(r"^RUNNING HANDLER \[bedrock_gw : (.+?)\]", self.output, re.MULTILINE)

    def changed_tasks(self) -> list[str]:
        tasks, current = [], ""
        for line in self.output.splitlines():
            if line.startswith(("TASK [", "RUNNING HANDLER [")):
                current = line
            elif line.startswith("changed:"):
                tasks.append(current)
        return tasks


class Host:
    """A booted container that Ansible manages over ssh, as root."""

    def __init__(self, machine: Container, arch: str, workdir: Path) -> None:
        self.machine = machine
        self.arch = arch
        self.workdir = workdir
        self.key = workdir / "id_ed25519"
        self.base = f"http://{machine.ip}:8000"

    def open_ssh(self) -> None:
        if not self.key.exists():
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)], check=True
            )
        public = self.key.with_suffix(".pub").read_text()
        # Inside the container: root's home there, not this machine's.
        self.machine.write(f"{CONTAINER_ROOT_HOME}/.ssh/authorized_keys", public, "0600")
        # The hostname resolves without DNS (there is none): fact gathering asks for it.
        self.machine.write(
            "/etc/hosts", "127.0.0.1\tlocalhost bedrock-gw-test\n::1\tlocalhost ip6-localhost\n"
        )
        wait_until(self._ssh_answers, "sshd in the container lets root in", timeout=120)

    def _ssh_answers(self) -> bool:
        return (
            subprocess.run(
                [*self.ssh_argv(), "true"], capture_output=True, timeout=60, check=False
            ).returncode
            == 0
        )

    def ssh_argv(self) -> list[str]:
        return ["ssh", *self._ssh_options(), f"root@{self.machine.ip}"]

    def _ssh_options(self) -> list[str]:
        return [
            "-i",
            str(self.key),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=20",
            "-o",
            "BatchMode=yes",
        ]

    def inventory(self, variables: Mapping[str, Any]) -> Path:
        """An inventory (JSON is YAML) with this host in group bedrock_gw."""
        host_vars = {
            "ansible_host": self.machine.ip,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(self.key),
            "ansible_ssh_common_args": " ".join(self._ssh_options()[2:]),
            "ansible_python_interpreter": "/usr/bin/python3",
            **variables,
        }
        # A checkout to build from other than this one (a clean export while the tree is being
        # edited, say); the role's default is the checkout it sits in.
        source = os.environ.get("ROLE_TEST_SOURCE_DIR")
        if source:
            host_vars.setdefault("bedrock_gw_source_dir", source)
        path = self.workdir / "inventory.json"
        body = {"bedrock_gw": {"hosts": {f"test-{self.arch}": host_vars}}}
        path.write_text(json.dumps(body, indent=2))
        return path

    def play(self, variables: Mapping[str, Any], *, timeout: float = 1800) -> Run:
        """Run ansible/site.yml against this host with ``variables`` as host variables."""
        playbook = ansible_playbook()
        assert playbook is not None
        inventory = self.inventory(variables)
        env = {
            **os.environ,
            "ANSIBLE_CONFIG": str(REPO / "ansible" / "ansible.cfg"),
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_LOCAL_TEMP": str(self.workdir / "ansible-tmp"),
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
        }
        started = time.monotonic()
        result = subprocess.run(
            [playbook, "-i", str(inventory), str(PLAYBOOK)],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
            cwd=REPO / "ansible",
        )
        run = Run(result.returncode, result.stdout + result.stderr, time.monotonic() - started)
        log = self.workdir / f"play-{int(time.time() * 1000)}.log"
        log.write_text(run.output)
        print(f"ansible-playbook on {self.arch}: rc={run.returncode} in {run.seconds:.0f}s ({log})")
        return run

    # ------------------------------------------------------------------ inside the host

    def show(self, *properties: str) -> dict[str, str]:
        return self.machine.show(UNIT, *properties)

    def journal(self) -> str:
        return self.machine.run("journalctl", "--unit", UNIT, "--no-pager").stdout

    def exists(self, path: str) -> bool:
        return self.machine.run("test", "-e", path, check=False).returncode == 0

    def stat(self, path: str) -> str:
        """``mode owner:group`` of ``path`` inside."""
        return self.machine.run("stat", "--format=%a %U:%G", path).stdout.strip()


def wheelhouse(arch: str, python: str = "3.11") -> Path:
    """Wheels of bedrock-gw and its dependencies for ``arch`` (a uname -m), cached in .work."""
    directory = WORK / f"wheelhouse-{arch}-py{python}"
    extra: list[str] = []
    if arch == "armv7l":
        # PyPI has no armv7l cffi: build it once inside the armhf root filesystem.
        built = WORK / "built-wheels-armv7l"
        subprocess.run(
            [
                "bash",
                str(Path(__file__).parent / "build-cffi-wheel.sh"),
                str(rootfs("bookworm", "armhf")),
                str(built),
            ],
            check=True,
            timeout=3600,
        )
        extra = ["--find-links", str(built)]
    subprocess.run(
        [
            sys.executable,
            str(REPO / "ansible" / "wheelhouse.py"),
            "--arch",
            arch,
            "--python",
            python,
            "--glibc",
            "2.36",
            *extra,
            str(directory),
        ],
        check=True,
        timeout=1800,
    )
    return directory


@contextmanager
def booted(arch: str, workdir: Path) -> Iterator[Host]:
    """A container of Debian architecture ``arch``, booted and reachable over ssh."""
    root = rootfs("bookworm", None if arch == "amd64" else arch)
    machine = Container(root, workdir / "console.log")
    try:
        machine.boot(timeout=600)
        host = Host(machine, arch, workdir)
        host.open_ssh()
        yield host
    finally:
        machine.poweroff()


@contextmanager
def fake_bedrock(host_ip: str, workdir: Path) -> Iterator[str]:
    """The fake Bedrock on this side of the veth pair; yields its URL."""
    port_file = workdir / "fake-bedrock.port"
    with (workdir / "fake-bedrock.log").open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.fakes.bedrock",
                "--host",
                host_ip,
                "--port",
                "0",
                "--port-file",
                str(port_file),
            ],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(port_file.exists, "the fake Bedrock listens", timeout=30)
        yield f"http://{host_ip}:{port_file.read_text().strip()}"
    finally:
        process.terminate()
        process.wait(timeout=10)


__all__ = ["CACHE", "MACHINES", "Host", "Run", "booted", "fake_bedrock", "http", "wheelhouse"]
