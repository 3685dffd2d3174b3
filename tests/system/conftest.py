"""A systemd host for the unit: the container, the daemon installed in it, a fake Bedrock.

The container has no internet, so the project goes in as a wheel with a wheelhouse of its
dependencies built here (``pip wheel``), installed the way the Ansible role does it: a venv in
/opt/bedrock-gw/venv. The fake Bedrock runs on this side of the veth pair.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.container import CACHE, Container, missing_requirements, rootfs

REPO = Path(__file__).resolve().parents[2]
VENV = "/opt/bedrock-gw/venv"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip every system test, with the reason, where no container can be booted."""
    reason = missing_requirements()
    if reason is None:
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    """The project's wheel and every dependency's, for an offline install."""
    directory = CACHE / "wheels"
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("bedrock_gw-*.whl"):
        old.unlink()
    # Dependencies already in the directory are reused; the project wheel is always rebuilt.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--disable-pip-version-check",
            "--wheel-dir",
            str(directory),
            "--find-links",
            str(directory),
            str(REPO),
        ],
        check=True,
        timeout=900,
    )
    return directory


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> Iterator[Container]:
    """A booted Debian with systemd, the daemon installed in its venv and nothing started."""
    log = tmp_path_factory.mktemp("container") / "console.log"
    machine = Container(rootfs(), log)
    try:
        machine.boot()
        machine.copy_in(sorted(wheelhouse.glob("*.whl")), "/var/tmp/wheels")
        machine.run("python3", "-m", "venv", VENV)
        machine.run(
            f"{VENV}/bin/pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-index",
            "--find-links=/var/tmp/wheels",
            "bedrock-gw",
            timeout=600,
        )
        yield machine
    finally:
        machine.poweroff()


@pytest.fixture(scope="module")
def fake_bedrock(container: Container, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The fake Bedrock on the host's end of the veth pair, as the daemon inside reaches it."""
    port_file = tmp_path_factory.mktemp("fake-bedrock") / "port"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.bedrock",
            "--host",
            container.host_ip,
            "--port",
            "0",
            "--port-file",
            str(port_file),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists():
            assert process.poll() is None, "the fake Bedrock exited"
            assert time.monotonic() < deadline, "the fake Bedrock did not start"
            time.sleep(0.05)
        yield f"http://{container.host_ip}:{port_file.read_text().strip()}"
    finally:
        process.terminate()
        process.wait(timeout=10)
