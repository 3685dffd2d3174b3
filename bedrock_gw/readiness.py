"""Readiness gates: what must be true before the daemon tells systemd it is ready.

Resources register a gate when they open (credentials loaded, API keys resolved); the server
waits for every gate after binding its socket and before ``READY=1``, reporting what it is still
waiting for as the service status.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["Gate", "ReadinessGates"]


@dataclass(frozen=True, slots=True)
class Gate:
    description: str
    """Shown while waiting, e.g. "resolving API keys from SSM"."""
    wait: Callable[[], Awaitable[None]]


class ReadinessGates:
    def __init__(self) -> None:
        self._gates: list[Gate] = []

    def add(self, description: str, wait: Callable[[], Awaitable[None]]) -> None:
        self._gates.append(Gate(description, wait))

    @property
    def gates(self) -> tuple[Gate, ...]:
        return tuple(self._gates)

    async def wait_all(self, on_waiting: Callable[[str], None] | None = None) -> None:
        """Wait for every gate in order, calling ``on_waiting`` with each one still pending."""
        for gate in self._gates:
            task = asyncio.ensure_future(gate.wait())
            if not task.done() and on_waiting is not None:
                on_waiting(gate.description)
            await task
