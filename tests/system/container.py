"""A Debian container with systemd as its PID 1, booted with systemd-nspawn for the tests.

The root filesystem is built once by ``build-rootfs.sh`` and cached under ``.work/system`` in
the repository; each boot lays a throw-away tmpfs over it (``--volatile=overlay``), so every
session starts from the same pristine image. Commands run inside through ``nsenter`` (machined
is not available here, so ``machinectl`` and ``systemd-run -M`` are not either).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import random
import shutil
import signal
import subprocess
import tarfile
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["Container", "missing_requirements", "rootfs"]

HERE = Path(__file__).resolve().parent
CACHE = HERE.parents[1] / ".work" / "system"
_BUILD_SCRIPT = HERE / "build-rootfs.sh"
# What commands inside see: nothing from the host's environment (pip settings, proxies...).
_CLEAN_ENV = (
    "env",
    "-i",
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG=C.UTF-8",
    "SYSTEMD_PAGER=cat",
    "SYSTEMD_COLORS=0",
)


def missing_requirements() -> str | None:
    """Why the system tests cannot run on this machine, or None when they can."""
    if os.geteuid() != 0:
        return "booting a systemd container needs root"
    for tool in ("systemd-nspawn", "debootstrap", "nsenter", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install systemd-container debootstrap)"
    return None


def rootfs(suite: str = "bookworm", arch: str | None = None) -> Path:
    """The cached root filesystem, built on first use (about a minute and a half; a foreign
    ``arch`` such as arm64 or armhf is built under qemu-user and takes several minutes)."""
    digest = hashlib.sha256(_BUILD_SCRIPT.read_bytes()).hexdigest()[:12]
    name = f"rootfs-{suite}-{digest}" if arch is None else f"rootfs-{suite}-{arch}-{digest}"
    path = CACHE / name
    if not (path / ".complete").exists():
        argv = ["bash", str(_BUILD_SCRIPT), str(path), suite] + ([arch] if arch else [])
        subprocess.run(argv, check=True, timeout=3600)
    return path


class Container:
    """One booted container with its own network: a veth pair with a /30 on each end."""

    def __init__(self, root: Path, log: Path) -> None:
        self.root = root
        self.log = log
        self.name = f"bgw{os.getpid() % 100000:05d}{random.randrange(16**3):03x}"[:12]
        self.host_ip, self.ip = _free_subnet()
        self._nspawn: subprocess.Popen[bytes] | None = None
        self.leader = 0

    # ------------------------------------------------------------------ lifecycle

    def boot(self, timeout: float = 120) -> None:
        with self.log.open("wb") as out:
            self._nspawn = subprocess.Popen(
                [
                    "systemd-nspawn",
                    f"--directory={self.root}",
                    "--volatile=overlay",
                    "--boot",
                    # No machined on this host: stay in our own cgroup, register nowhere.
                    "--register=no",
                    "--keep-unit",
                    "--network-veth",
                    f"--machine={self.name}",
                    "--console=read-only",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        self.leader = self._wait_for_leader(deadline)
        self._configure_network()
        while True:
            state = self.run("systemctl", "is-system-running", check=False).stdout.strip()
            if state in ("running", "degraded"):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the container did not finish booting ({state})")
            time.sleep(0.2)

    def poweroff(self, timeout: float = 60) -> None:
        if self._nspawn is None:
            return
        # nspawn turns SIGTERM into an orderly shutdown of the container's systemd.
        self._nspawn.send_signal(signal.SIGTERM)
        try:
            self._nspawn.wait(timeout)
        except subprocess.TimeoutExpired:
            self._nspawn.kill()
            self._nspawn.wait(timeout)
        self._nspawn = None

    # ------------------------------------------------------------------ inside

    def run(
        self,
        *argv: str,
        input: str | bytes | None = None,
        check: bool = True,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the container (all its namespaces), as root."""
        data = input.encode() if isinstance(input, str) else input
        result = subprocess.run(
            ["nsenter", f"--target={self.leader}", "--all", *_CLEAN_ENV, *argv],
            input=data,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        completed = subprocess.CompletedProcess(
            result.args,
            result.returncode,
            result.stdout.decode(errors="replace"),
            result.stderr.decode(errors="replace"),
        )
        if check and completed.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {completed.returncode}:\n"
                f"{completed.stdout}{completed.stderr}"
            )
        return completed

    def write(self, path: str, text: str, mode: str = "0644") -> None:
        self.run(
            "sh",
            "-c",
            'mkdir -p "$(dirname "$1")" && cat > "$1" && chmod "$2" "$1"',
            "write",
            path,
            mode,
            input=text,
        )

    def copy_in(self, files: Sequence[Path], directory: str) -> None:
        """Copy host files into ``directory`` inside, as one tar stream."""
        archive = self.log.with_suffix(".tar")
        with tarfile.open(archive, "w") as tar:
            for path in files:
                tar.add(path, arcname=path.name)
        self.run(
            "sh",
            "-c",
            f"mkdir -p {directory} && tar -C {directory} -xf -",
            input=archive.read_bytes(),
        )
        archive.unlink()

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        """``systemctl show`` properties of ``unit``, as a dict."""
        output = self.run("systemctl", "show", unit, *(f"--property={p}" for p in properties))
        pairs = (line.partition("=") for line in output.stdout.splitlines())
        return {name: value for name, _, value in pairs}

    # ------------------------------------------------------------------ helpers

    def _wait_for_leader(self, deadline: float) -> int:
        # The container's PID 1 is the child of nspawn whose innermost PID is 1.
        assert self._nspawn is not None
        while time.monotonic() < deadline:
            if self._nspawn.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited early; see {self.log}")
            for pid in _children(self._nspawn.pid):
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                nspid = [line for line in status.splitlines() if line.startswith("NSpid:")]
                if nspid and nspid[0].split()[-1] == "1" and len(nspid[0].split()) > 2:
                    return pid
            time.sleep(0.05)
        raise TimeoutError("the container's init did not start")

    def _configure_network(self) -> None:
        host_if = f"ve-{self.name}"[:15]
        deadline = time.monotonic() + 30
        while not Path(f"/sys/class/net/{host_if}").exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {host_if} interface")
            time.sleep(0.05)
        subprocess.run(["ip", "addr", "add", f"{self.host_ip}/30", "dev", host_if], check=True)
        subprocess.run(["ip", "link", "set", host_if, "up"], check=True)
        subprocess.run(
            [
                "nsenter",
                f"--target={self.leader}",
                "--net",
                "sh",
                "-c",
                f"ip addr add {self.ip}/30 dev host0 && ip link set host0 up",
            ],
            check=True,
        )


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _free_subnet() -> tuple[str, str]:
    """A /30 in 10.213.0.0/16 that no interface of this host uses yet: (host end, container)."""
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True)
    for _ in range(100):
        network = ipaddress.ip_network(
            f"10.213.{random.randrange(256)}.{4 * random.randrange(64)}/30"
        )
        host, container = (str(address) for address in network.hosts())
        if f" {host}/" not in used.stdout and f" {container}/" not in used.stdout:
            return host, container
    raise RuntimeError("no free /30 in 10.213.0.0/16")
