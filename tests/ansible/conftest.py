"""The Ansible role's tests: static checks of the role, and runs on real systemd hosts.

Tests marked ``ansible`` boot containers and run ansible-playbook against them; they take
minutes (tens of minutes for the ARM hosts under emulation), so they run only when asked for
with ``-m ansible`` (``bash .ci/ansible.sh`` does), and skip, saying why, on a machine that
cannot boot the containers or has no ansible-playbook.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ansible.hosts import ansible_playbook
from tests.system.container import missing_requirements

HERE = Path(__file__).parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "ansible: runs the Ansible role on real systemd hosts (its own CI stage)"
    )


def _why_not(config: pytest.Config) -> str | None:
    expression = config.getoption("markexpr") or ""
    if "ansible" not in expression or "not ansible" in expression:
        return "runs in its own CI stage: bash .ci/ansible.sh (or pytest -m ansible tests/ansible)"
    reason = missing_requirements()
    if reason is not None:
        return reason
    if ansible_playbook() is None:
        return "ansible-playbook is not installed (pip install 'ansible-core>=2.19,<2.20')"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the host tests, with the reason, unless they were asked for and can run."""
    reason = _why_not(config)
    if reason is None:
        return
    for item in items:
        if HERE in Path(item.fspath).parents and item.get_closest_marker("ansible"):
            item.add_marker(pytest.mark.skip(reason=reason))
