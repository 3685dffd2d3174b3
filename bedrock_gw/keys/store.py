"""The key store: combines the sources, refreshes them, and publishes one ``KeyRing``.

Only digests are kept. Each source keeps its last good material when a refresh fails, so a
blip in AWS never locks clients out; keys of a secret's previous version are published until
their grace period ends. The store is *loaded* once every source has loaded at least once:
that is the readiness gate, so the daemon never reports ready with a partial key set.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bedrock_gw.auth import ApiKey, KeyRing
from bedrock_gw.keys.sources import KeyMaterial, KeySource, KeySourceError

__all__ = ["KeyStore", "KeyStoreStatus", "SourceStatus"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SourceStatus:
    description: str
    loaded: bool
    last_error: str | None
    consecutive_failures: int


@dataclass(frozen=True, slots=True)
class KeyStoreStatus:
    loaded: bool
    keys: int
    sources: tuple[SourceStatus, ...]

    @property
    def healthy(self) -> bool:
        return self.loaded and all(source.last_error is None for source in self.sources)


@dataclass(slots=True)
class _SourceState:
    source: KeySource
    material: KeyMaterial | None = None
    last_error: str | None = None
    failures: int = 0


class KeyStore:
    def __init__(
        self,
        sources: Sequence[KeySource],
        *,
        refresh_interval: float,
        on_change: Callable[[KeyRing], None],
        retry_initial: float = 1.0,
        retry_max: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._states = [_SourceState(source) for source in sources]
        self._refresh_interval = refresh_interval
        self._on_change = on_change
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._clock = clock
        self._lock = asyncio.Lock()
        self._loaded = asyncio.Event()
        self._keyring = KeyRing(())
        self._published: frozenset[tuple[str, bytes]] = frozenset()
        self._task: asyncio.Task[None] | None = None

    @property
    def keyring(self) -> KeyRing:
        return self._keyring

    @property
    def status(self) -> KeyStoreStatus:
        return KeyStoreStatus(
            loaded=self._loaded.is_set(),
            keys=len(self._keyring),
            sources=tuple(
                SourceStatus(
                    state.source.description,
                    state.material is not None,
                    state.last_error,
                    state.failures,
                )
                for state in self._states
            ),
        )

    async def start(self) -> None:
        """Begin loading in the background; ``wait_until_loaded`` tells when a key set exists."""
        if not self._states:
            logger.warning("no API keys are configured: every request to /v1 will get 401")
        self._task = asyncio.create_task(self._run(), name="api-key-refresh")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def wait_until_loaded(self) -> None:
        await self._loaded.wait()

    async def refresh(self) -> bool:
        """Load every source now (SIGHUP does this); True when all of them succeeded."""
        async with self._lock:
            results = await asyncio.gather(
                *(state.source.load() for state in self._states), return_exceptions=True
            )
            ok = True
            for state, result in zip(self._states, results, strict=True):
                if isinstance(result, BaseException):
                    if not isinstance(result, Exception):
                        raise result
                    ok = False
                    self._record_failure(state, result)
                else:
                    self._record_success(state, result)
            self._publish()
            if all(state.material is not None for state in self._states):
                self._loaded.set()
            return ok

    async def replace_sources(
        self, sources: Sequence[KeySource], *, refresh_interval: float | None = None
    ) -> None:
        """Load ``sources`` and, only if every one loads, serve them instead of the current ones.

        For a reload that changed ``[auth]``; raises ``KeySourceError`` (keeping everything as
        it was) when a new source fails, so a typo cannot lock every client out.
        """
        async with self._lock:
            states = [_SourceState(source) for source in sources]
            results = await asyncio.gather(
                *(state.source.load() for state in states), return_exceptions=True
            )
            problems = []
            for state, result in zip(states, results, strict=True):
                if isinstance(result, BaseException):
                    if not isinstance(result, Exception):
                        raise result
                    problems.append(f"{state.source.description}: {result}")
                else:
                    state.material = result
            if problems:
                raise KeySourceError("; ".join(problems))
            self._states = states
            if refresh_interval is not None:
                self._refresh_interval = refresh_interval
            self._publish()
            self._loaded.set()

    async def _run(self) -> None:
        delay = self._retry_initial
        while True:
            if await self.refresh():
                wait = self._refresh_interval
                delay = self._retry_initial
            else:
                wait = delay
                delay = min(delay * 2, self._retry_max)
            grace_end = self._next_grace_end()
            if grace_end is not None:
                # Wake when a previous version's grace ends, so its keys stop working on time.
                wait = min(wait, max(grace_end - self._clock(), 0.0) + 0.01)
            await asyncio.sleep(wait)

    def _next_grace_end(self) -> float | None:
        now = self._clock()
        ends = [
            state.material.previous_until
            for state in self._states
            if state.material is not None
            and state.material.previous
            and state.material.previous_until is not None
            and state.material.previous_until > now
        ]
        return min(ends, default=None)

    def _record_success(self, state: _SourceState, material: KeyMaterial) -> None:
        if state.failures:
            logger.info(
                "API keys: %s works again after %d failed attempts",
                state.source.description,
                state.failures,
            )
        old = state.material
        if old is not None and material.version != old.version and material.version:
            logger.info(
                "API keys: %s now serves version %s (was %s)%s",
                state.source.description,
                material.version,
                old.version,
                _grace_note(material),
            )
        state.material = material
        state.failures = 0
        state.last_error = None

    def _record_failure(self, state: _SourceState, error: Exception) -> None:
        state.failures += 1
        state.last_error = str(error) or type(error).__name__
        if state.failures > 1:  # once per failure streak, not once per retry
            return
        if state.material is None:
            logger.error(
                "API keys: loading %s failed: %s; retrying with backoff, and not ready "
                "until it succeeds",
                state.source.description,
                state.last_error,
            )
        else:
            logger.warning(
                "API keys: refreshing %s failed: %s; keeping its last good keys and retrying",
                state.source.description,
                state.last_error,
            )

    def _publish(self) -> None:
        now = self._clock()
        keys: list[ApiKey] = []
        for state in self._states:
            material = state.material
            if material is None:
                continue
            keys.extend(material.keys)
            if material.previous_until is not None and material.previous_until > now:
                keys.extend(material.previous)
        identity = frozenset((key.name, key.digest) for key in keys)
        if identity == self._published:
            return
        self._published = identity
        self._keyring = KeyRing(keys)
        self._on_change(self._keyring)
        logger.info(
            "API keys: %d accepted (%s)",
            len(keys),
            ", ".join(sorted({key.name for key in keys})) or "none",
        )


def _grace_note(material: KeyMaterial) -> str:
    if not material.previous or material.previous_until is None:
        return ""
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(material.previous_until))
    return f"; keys of the previous version stay valid until {until}"
