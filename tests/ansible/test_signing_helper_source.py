"""The role's choice of aws_signing_helper per architecture, run by ansible-playbook on the
controller (no host, no download: the tests have no internet)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.ansible.hosts import REPO, ansible_playbook

pytestmark = pytest.mark.ansible

PLAYBOOK = Path(__file__).parent / "playbooks" / "signing-helper-source.yml"
RELEASES = "https://rolesanywhere.amazonaws.com/releases/1.5.0"


def resolve(*extra: str) -> subprocess.CompletedProcess[str]:
    playbook = ansible_playbook()
    assert playbook is not None
    env = {
        **os.environ,
        "ANSIBLE_ROLES_PATH": str(REPO / "ansible" / "roles"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
    }
    return subprocess.run(
        [playbook, str(PLAYBOOK), *extra],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip


def choice(result: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(r"CHOICE url=(\S*) checksum=(\S*)\"", result.stdout)
    assert found, result.stdout
    return found.group(1), found.group(2)


@pytest.mark.parametrize(
    ("arch", "path"),
    [("x86_64", "X86_64/Linux"), ("aarch64", "Aarch64/Linux")],
    ids=["x86_64", "aarch64"],
)
def test_each_architecture_gets_aws_build_with_checksum(arch: str, path: str) -> None:
    """x86_64 and aarch64 hosts download AWS's build for their architecture, checked by the
    SHA-256 AWS publishes."""
    url, checksum = choice(resolve("-e", f"_bedrock_gw_arch={arch}"))
    assert url == f"{RELEASES}/{path}/aws_signing_helper"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", checksum)


def test_armv7l_is_refused_with_the_alternative() -> None:
    """AWS builds no armv7l helper: the role stops and names roles-anywhere-inprocess."""
    result = resolve("-e", "_bedrock_gw_arch=armv7l")
    assert result.returncode != 0
    assert "roles-anywhere-inprocess" in result.stdout


def test_a_given_helper_needs_no_download() -> None:
    """With bedrock_gw_signing_helper_src set, any architecture passes and nothing is
    downloaded."""
    url, checksum = choice(
        resolve("-e", "_bedrock_gw_arch=armv7l", "-e", "bedrock_gw_signing_helper_src=/bin/true")
    )
    assert (url, checksum) == ("", "")
