"""AWS credentials: where they come from, and a cache that refreshes them off the hot path.

A ``CredentialFetcher`` knows how to get one set of credentials (it may be slow: a subprocess, a
network call, botocore's chain in a thread). ``CredentialCache`` fetches once at start-up, then
refreshes in a background task ahead of expiry; requests only ever read ``current()``, which
never waits, so a slow or failing refresh never fails a request while the old set is valid.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from bedrock_gw.config import ConfigError
from bedrock_gw.errors import ServiceUnavailable

__all__ = [
    "AwsCredentials",
    "BotocoreChainFetcher",
    "CredentialCache",
    "CredentialFetcher",
    "CredentialSourceError",
    "CredentialStatus",
    "CredentialsUnavailable",
    "FetchFailed",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None
    """None for long-lived keys."""

    def seconds_left(self, now: datetime | None = None) -> float | None:
        if self.expires_at is None:
            return None
        return (self.expires_at - (now or datetime.now(UTC))).total_seconds()


class CredentialsUnavailable(ServiceUnavailable):
    default_code = "credentials_unavailable"


class CredentialSourceError(ConfigError):
    """The configured source cannot work at all (a missing file, no key id): fatal at start-up."""

    def __init__(self, problem: str) -> None:
        super().__init__("[aws] credentials", [problem])
        self.problem = problem


class FetchFailed(Exception):
    """One attempt to get credentials failed; the cache retries with backoff.

    The message is logged: it says what failed and why, and never holds a secret.
    """


class CredentialFetcher(Protocol):
    """One source of AWS credentials. ``fetch`` may take long but must not block the loop."""

    @property
    def description(self) -> str: ...

    async def fetch(self) -> AwsCredentials: ...

    async def close(self) -> None:
        """Release what the source holds (an HTTP session); called once, at shutdown."""


class BotocoreChainFetcher:
    """botocore's default chain (environment, shared files, SSO, IMDS...), run in a thread.

    botocore resolves and refreshes synchronously, so every call goes to ``executor``.
    """

    description = "botocore default chain"

    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        self._resolved: Any = None

    async def close(self) -> None:
        return None

    async def fetch(self) -> AwsCredentials:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._fetch_blocking)

    def _fetch_blocking(self) -> AwsCredentials:
        import botocore.session

        if self._resolved is None:
            self._resolved = botocore.session.get_session().get_credentials()
            if self._resolved is None:
                raise CredentialsUnavailable("no AWS credentials found in botocore's default chain")
        frozen = self._resolved.get_frozen_credentials()
        # RefreshableCredentials keeps its expiry privately; static credentials have none.
        expiry = getattr(self._resolved, "_expiry_time", None)
        return AwsCredentials(frozen.access_key, frozen.secret_key, frozen.token, expiry)


@dataclass(slots=True)
class CredentialStatus:
    source: str
    healthy: bool
    expires_at: datetime | None
    last_error: str | None
    consecutive_failures: int


class CredentialCache:
    """Holds the current credentials and refreshes them in the background ahead of expiry."""

    def __init__(
        self,
        fetcher: CredentialFetcher,
        *,
        refresh_margin: float,
        retry_initial: float = 1.0,
        retry_max: float = 60.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._fetcher = fetcher
        self._refresh_margin = refresh_margin
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._clock = clock
        self._current: AwsCredentials | None = None
        self._task: asyncio.Task[None] | None = None
        self._failures = 0
        self._last_error: str | None = None
        self._loaded = asyncio.Event()

    async def start(self) -> None:
        """Try to fetch the first set, then keep refreshing (or retrying) in the background.

        A failure here is logged, not raised: the daemon still serves ``/health`` and answers
        Bedrock calls with 503 until credentials arrive.
        """
        try:
            self._current = await self._fetcher.fetch()
        except Exception as exc:  # any failure of a source is retried, never fatal
            self._record_failure(exc)
        else:
            self._loaded.set()
            logger.info("AWS credentials loaded from %s", self._fetcher.description)
        self._task = asyncio.create_task(self._refresh_forever(), name="credential-refresh")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._fetcher.close()

    async def wait_until_loaded(self) -> None:
        """Return once a first set of credentials is in hand (the background task retries)."""
        await self._loaded.wait()

    def current(self) -> AwsCredentials:
        credentials = self._current
        if credentials is None:
            raise CredentialsUnavailable("AWS credentials are not loaded yet")
        left = credentials.seconds_left(self._clock())
        if left is not None and left <= 0:
            raise CredentialsUnavailable("AWS credentials expired and could not be refreshed")
        return credentials

    @property
    def status(self) -> CredentialStatus:
        return CredentialStatus(
            source=self._fetcher.description,
            healthy=self._failures == 0 and self._current is not None,
            expires_at=self._current.expires_at if self._current else None,
            last_error=self._last_error,
            consecutive_failures=self._failures,
        )

    def _seconds_until_refresh(self) -> float | None:
        if self._current is None:
            return 0.0
        left = self._current.seconds_left(self._clock())
        if left is None:
            return None
        # Credentials shorter-lived than the margin are refreshed at half their life instead.
        return max(left - self._refresh_margin, left / 2, 0.0)

    async def _refresh_forever(self) -> None:
        if self._current is None:  # the first attempt in start() failed: back off before retrying
            await asyncio.sleep(self._retry_initial)
        while True:
            wait = self._seconds_until_refresh()
            if wait is None:
                return
            if wait > 0:
                await asyncio.sleep(wait)
            await self._refresh_with_backoff()

    def _record_failure(self, exc: Exception) -> None:
        self._failures += 1
        self._last_error = (
            str(exc) if isinstance(exc, FetchFailed) else f"{type(exc).__name__}: {exc}"
        )
        if self._failures == 1:  # once per failure streak, not once per retry
            logger.warning(
                "getting AWS credentials from %s failed: %s; retrying with backoff",
                self._fetcher.description,
                self._last_error,
            )

    async def _refresh_with_backoff(self) -> None:
        delay = self._retry_initial
        while True:
            started = time.monotonic()
            try:
                fresh = await self._fetcher.fetch()
            except Exception as exc:  # any failure of a source is retried, never fatal
                self._record_failure(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)
                continue
            if self._failures:
                logger.info("AWS credentials obtained after %d failed attempts", self._failures)
            self._current = fresh
            self._loaded.set()
            self._failures = 0
            self._last_error = None
            logger.debug("AWS credentials refreshed in %.3fs", time.monotonic() - started)
            return
