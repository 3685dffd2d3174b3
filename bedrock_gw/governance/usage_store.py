"""Usage counters in SQLite: hourly sums per key, model and end user, kept across restarts.

Requests add to counters in memory (on the event loop, no I/O); a background task writes the
sums every ``flush_interval`` seconds, and once more at stop. Every SQLite call runs on one
dedicated thread that owns the connection, so nothing blocks the loop. The file is in WAL
mode: ``bedrock-gw usage`` can read it while the daemon writes.

A crash loses at most the last ``flush_interval`` seconds of counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from bedrock_gw.config import ConfigError, Settings
from bedrock_gw.governance.limits import Charge
from bedrock_gw.governance.usage import EndUser, TokenUsage

__all__ = ["DATABASE_NAME", "GroupBy", "ReportRow", "UsageStore", "report", "usage_database"]

logger = logging.getLogger(__name__)

DATABASE_NAME = "usage.sqlite3"
_HOUR = 3600
_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    hour INTEGER NOT NULL,            -- Unix time of the start of the UTC hour
    key TEXT NOT NULL,                -- API key name
    model TEXT NOT NULL,              -- as the client named it
    user_id TEXT NOT NULL,            -- X-OpenWebUI-User-Id, '' when not sent
    user_email TEXT NOT NULL,         -- X-OpenWebUI-User-Email, '' when not sent
    requests INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cache_read_tokens INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    cost REAL NOT NULL,               -- US dollars, from [usage] prices at the time
    PRIMARY KEY (hour, key, model, user_id, user_email)
) WITHOUT ROWID
"""
_UPSERT = """
INSERT INTO usage VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (hour, key, model, user_id, user_email) DO UPDATE SET
    requests = requests + excluded.requests,
    input_tokens = input_tokens + excluded.input_tokens,
    output_tokens = output_tokens + excluded.output_tokens,
    cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
    cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
    cost = cost + excluded.cost
"""
_TOKENS = "input_tokens + output_tokens + cache_read_tokens + cache_write_tokens"

T = TypeVar("T")


def usage_database(settings: Settings, environ: Mapping[str, str]) -> Path | None:
    """Where usage is kept: ``usage.directory``, else systemd's ``$STATE_DIRECTORY``, else
    nowhere (memory only)."""
    directory = settings.usage.directory
    if directory is None and environ.get("STATE_DIRECTORY"):
        # systemd lists one path per StateDirectory= entry, separated by colons.
        directory = Path(environ["STATE_DIRECTORY"].split(":", 1)[0])
    return directory / DATABASE_NAME if directory is not None else None


_Bucket = tuple[int, str, str, str, str]


@dataclass(slots=True)
class _Sums:
    requests: int = 0
    usage: TokenUsage = field(default_factory=TokenUsage)
    cost: float = 0.0


class UsageStore:
    """The counters of one daemon; ``path`` None keeps them in memory only."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bedrock-gw-usage")
        self._connection: sqlite3.Connection | None = None
        self._pending: dict[_Bucket, _Sums] = {}
        self._task: asyncio.Task[None] | None = None
        self.last_error: str | None = None
        """Why the last write failed; None once one succeeds."""

    async def open(self, flush_interval: float) -> None:
        """Open (creating) the database, then write pending counts every ``flush_interval``."""
        try:
            await self._run(self._open_blocking)
        except (OSError, sqlite3.Error) as exc:
            self._executor.shutdown(wait=False)
            raise ConfigError("[usage] directory", [f"cannot open {self.path}: {exc}"]) from exc
        self._task = asyncio.create_task(self._flush_forever(flush_interval), name="usage-flush")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        with contextlib.suppress(sqlite3.Error):
            await self.flush()
        with contextlib.suppress(sqlite3.Error):
            await self._run(self._close_blocking)
        # Its last job is done: nothing is left to wait for, and joining would block the loop.
        self._executor.shutdown(wait=False)

    def add(
        self,
        when: float,
        *,
        key: str,
        model: str,
        user: EndUser,
        usage: TokenUsage,
        cost: float,
        requests: int = 1,
    ) -> None:
        """Count one request's usage; written at the next flush."""
        bucket = (int(when) - int(when) % _HOUR, key, model, user.id, user.email)
        sums = self._pending.setdefault(bucket, _Sums())
        sums.requests += requests
        sums.usage += usage
        sums.cost += cost

    async def flush(self) -> None:
        """Write what was counted since the last flush; on failure it stays pending."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        rows = [
            (
                *bucket,
                s.requests,
                s.usage.input,
                s.usage.output,
                s.usage.cache_read,
                s.usage.cache_write,
                s.cost,
            )
            for bucket, s in pending.items()
        ]
        try:
            await self._run(self._write_blocking, rows)
        except sqlite3.Error as exc:
            # Put the counts back (merged with what arrived meanwhile) for the next attempt.
            for bucket, sums in pending.items():
                again = self._pending.setdefault(bucket, _Sums())
                again.requests += sums.requests
                again.usage += sums.usage
                again.cost += sums.cost
            if self.last_error is None:
                logger.warning("writing usage to %s failed: %s; will retry", self.path, exc)
            self.last_error = str(exc)
            raise
        if self.last_error is not None:
            logger.info("writing usage to %s works again", self.path)
        self.last_error = None

    async def totals_since(self, since: float) -> dict[str, Charge]:
        """Tokens and cost per key name from the hour of ``since`` on (written counts only)."""
        rows = await self._run(
            self._query_blocking,
            f"SELECT key, SUM({_TOKENS}), SUM(cost) FROM usage WHERE hour >= ? GROUP BY key",  # noqa: S608
            (int(since) - int(since) % _HOUR,),
        )
        return {key: Charge(int(tokens or 0), float(cost or 0.0)) for key, tokens, cost in rows}

    async def _flush_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(sqlite3.Error):  # logged in flush; retried next time
                await self.flush()

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function, *args)

    # Everything below runs on the store's own thread.

    def _open_blocking(self) -> None:
        if self.path is None:
            self._connection = sqlite3.connect(":memory:")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._connection = sqlite3.connect(self.path, timeout=10)
            self._connection.execute("PRAGMA journal_mode=WAL")
            # WAL with NORMAL: a power cut may lose the last flush, never corrupt the file.
            self._connection.execute("PRAGMA synchronous=NORMAL")
        self._connection.execute(_SCHEMA)
        self._connection.commit()

    def _write_blocking(self, rows: list[tuple[Any, ...]]) -> None:
        assert self._connection is not None
        with self._connection:
            self._connection.executemany(_UPSERT, rows)

    def _query_blocking(self, sql: str, parameters: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        assert self._connection is not None
        return self._connection.execute(sql, parameters).fetchall()

    def _close_blocking(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


@dataclass(frozen=True, slots=True)
class ReportRow:
    key: str
    group: str
    """The model, end user or UTC day, by what the report is grouped by."""
    requests: int
    usage: TokenUsage
    cost: float


GroupBy = Literal["model", "user", "day"]
_GROUP_COLUMNS: dict[GroupBy, str] = {
    "model": "model",
    "user": "CASE WHEN user_email != '' THEN user_email ELSE user_id END",
    "day": "strftime('%Y-%m-%d', hour, 'unixepoch')",
}


def report(path: Path, *, since: float, key: str | None, by: GroupBy) -> list[ReportRow]:
    """Sums per key and model (or user, or day) from the hour that holds ``since`` on.

    Blocking: for the ``bedrock-gw usage`` command, never for the daemon's loop.
    """
    group = _GROUP_COLUMNS[by]
    # Only fixed column expressions are interpolated; values go in as parameters.
    where = "hour >= ?" + (" AND key = ?" if key is not None else "")
    sql = (
        f"SELECT key, {group}, SUM(requests), SUM(input_tokens), SUM(output_tokens), "  # noqa: S608
        "SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(cost) FROM usage "
        f"WHERE {where} GROUP BY key, {group} ORDER BY key, SUM(cost) DESC, 2"
    )
    parameters: tuple[Any, ...] = (int(since) - int(since) % _HOUR,)
    if key is not None:
        parameters += (key,)
    with _read_only(path) as connection:
        rows = connection.execute(sql, parameters).fetchall()
    return [
        ReportRow(
            key=row[0],
            group=row[1],
            requests=int(row[2]),
            usage=TokenUsage(int(row[3]), int(row[4]), int(row[5]), int(row[6])),
            cost=float(row[7]),
        )
        for row in rows
    ]


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    if not path.exists():
        raise FileNotFoundError(f"no usage database at {path}")
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    try:
        yield connection
    finally:
        connection.close()
