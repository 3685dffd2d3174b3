"""Stand-ins for external programs, driven from tests."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

_SCRIPT = Path(__file__).with_name("signing_helper.py")


class SigningHelperStub:
    """An executable ``aws_signing_helper`` in ``directory`` that plays a plan of steps."""

    def __init__(self, directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.path = directory / "aws_signing_helper"
        self._plan = directory / "helper-plan.json"
        # exec: the helper's pid is the Python process, so killing it leaves nothing behind;
        # -S (no site-packages) makes each run start in ~30 ms instead of ~100 ms.
        self.path.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "{_SCRIPT}" "$@"\n')
        self.path.chmod(stat.S_IRWXU)
        monkeypatch.setenv("STUB_SIGNING_HELPER_PLAN", str(self._plan))
        self.plan([{"fail": "no plan given"}])

    def plan(self, steps: list[dict[str, Any]]) -> None:
        """Replace the plan; the call count restarts at zero."""
        self._plan.write_text(json.dumps({"steps": steps, "calls": []}))

    @property
    def calls(self) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = json.loads(self._plan.read_text())["calls"]
        return calls


def credentials_step(
    access_key_id: str, *, expires_in: float | None = 3600.0, delay: float = 0.0
) -> dict[str, Any]:
    """A plan step printing credentials whose secret and token derive from the key id."""
    step: dict[str, Any] = {
        "credentials": {
            "AccessKeyId": access_key_id,
            "SecretAccessKey": f"secret-of-{access_key_id}",
            "SessionToken": f"token-of-{access_key_id}",
        },
        "delay": delay,
    }
    if expires_in is not None:
        step["expires_in"] = expires_in
    return step


def fake_bedrock_credentials(*access_key_ids: str) -> dict[str, tuple[str, str | None]]:
    """What FakeBedrock must accept for credentials made by ``credentials_step``."""
    return {akid: (f"secret-of-{akid}", f"token-of-{akid}") for akid in access_key_ids}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def eventually(predicate: Callable[[], object], within: float = 5.0) -> None:
    """Wait until ``predicate()`` is true, polling; fail the test after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(0.005)
