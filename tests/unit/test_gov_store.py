"""The usage store (SQLite off the loop), its report, and the ``bedrock-gw usage`` command."""

from __future__ import annotations

import calendar
import sqlite3
import threading
from pathlib import Path

import pytest

from bedrock_gw.cli import main
from bedrock_gw.config import ConfigError, Settings
from bedrock_gw.governance.limits import Charge
from bedrock_gw.governance.report import format_report, parse_since
from bedrock_gw.governance.usage import EndUser, TokenUsage
from bedrock_gw.governance.usage_store import UsageStore, report, usage_database

NOON = float(calendar.timegm((2025, 5, 14, 12, 30, 0, 0, 0, 0)))
ANN = EndUser("u-1", "ann@example.org")


async def _store_with_usage(path: Path | None) -> UsageStore:
    store = UsageStore(path)
    await store.open(flush_interval=3600)
    store.add(NOON, key="kids", model="haiku", user=ANN, usage=TokenUsage(10, 5), cost=0.01)
    store.add(NOON + 60, key="kids", model="haiku", user=ANN, usage=TokenUsage(1, 1), cost=0.002)
    store.add(
        NOON, key="kids", model="sonnet", user=EndUser(), usage=TokenUsage(3, 2, 40), cost=0.5
    )
    store.add(NOON - 86400, key="owner", model="haiku", user=EndUser(), usage=TokenUsage(7), cost=0)
    return store


async def test_counts_survive_reopening(tmp_path: Path) -> None:
    """Counts written at close are there for the next daemon, summed per key."""
    path = tmp_path / "state" / "usage.sqlite3"
    store = await _store_with_usage(path)
    await store.close()
    again = UsageStore(path)
    await again.open(flush_interval=3600)
    try:
        totals = await again.totals_since(NOON - 3600)
        assert totals == {"kids": Charge(62, pytest.approx(0.512))}
        assert (await again.totals_since(0))["owner"] == Charge(7, 0.0)
    finally:
        await again.close()
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


async def test_sqlite_runs_on_the_store_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every SQLite call happens on the store's own thread, never on the event loop's."""
    threads: set[str] = set()
    original = UsageStore._write_blocking

    def spy(self: UsageStore, rows: list[tuple[object, ...]]) -> None:
        threads.add(threading.current_thread().name)
        original(self, rows)

    monkeypatch.setattr(UsageStore, "_write_blocking", spy)
    store = await _store_with_usage(tmp_path / "usage.sqlite3")
    await store.flush()
    await store.close()
    assert threads and all(name.startswith("bedrock-gw-usage") for name in threads)
    assert threading.current_thread().name not in threads


async def test_failed_write_keeps_counts_pending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails is retried with everything counted meanwhile; the error is reported."""
    store = await _store_with_usage(tmp_path / "usage.sqlite3")

    def broken(self: UsageStore, rows: list[tuple[object, ...]]) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    with monkeypatch.context() as patch:
        patch.setattr(UsageStore, "_write_blocking", broken)
        with pytest.raises(sqlite3.OperationalError):
            await store.flush()
    assert store.last_error == "disk I/O error"
    store.add(NOON, key="kids", model="haiku", user=ANN, usage=TokenUsage(100), cost=0)
    await store.flush()
    assert store.last_error is None
    assert (await store.totals_since(NOON - 3600))["kids"].tokens == 162
    await store.close()


async def test_unusable_directory_stops_the_start(tmp_path: Path) -> None:
    """A database that cannot be created is a configuration error."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cannot open"):
        await UsageStore(blocker / "usage.sqlite3").open(flush_interval=1)


def test_database_location() -> None:
    """[usage] directory, else $STATE_DIRECTORY (its first entry), else memory only."""
    default = Settings()
    assert usage_database(default, {}) is None
    assert usage_database(default, {"STATE_DIRECTORY": "/var/lib/a:/var/lib/b"}) == Path(
        "/var/lib/a/usage.sqlite3"
    )
    configured = Settings(usage={"directory": "/srv/gw"})
    assert usage_database(configured, {"STATE_DIRECTORY": "/x"}) == Path("/srv/gw/usage.sqlite3")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(None, calendar.timegm((2025, 5, 1, 0, 0, 0, 0, 0, 0)), id="default-month"),
        pytest.param("today", calendar.timegm((2025, 5, 14, 0, 0, 0, 0, 0, 0)), id="today"),
        pytest.param("24h", NOON - 86400, id="hours"),
        pytest.param("7d", NOON - 7 * 86400, id="days"),
        pytest.param("90m", NOON - 5400, id="minutes"),
        pytest.param("2025-05-02", calendar.timegm((2025, 5, 2, 0, 0, 0, 0, 0, 0)), id="date"),
        pytest.param(
            "2025-05-02T10:00+02:00", calendar.timegm((2025, 5, 2, 8, 0, 0, 0, 0, 0)), id="offset"
        ),
    ],
)
def test_parse_since(text: str | None, expected: float) -> None:
    """--since understands periods, durations and ISO dates (UTC unless told)."""
    assert parse_since(text, NOON) == expected


def test_parse_since_rejects_nonsense() -> None:
    """An unknown --since value says what is understood."""
    with pytest.raises(ValueError, match="ISO date"):
        parse_since("last tuesday", NOON)


async def test_report_groups_and_filters(tmp_path: Path) -> None:
    """Rows per key and model, user or day, from the hour of --since, for one key or all."""
    path = tmp_path / "usage.sqlite3"
    await (await _store_with_usage(path)).close()
    by_model = report(path, since=NOON - 3600, key=None, by="model")
    assert [(r.key, r.group, r.requests) for r in by_model] == [
        ("kids", "sonnet", 1),
        ("kids", "haiku", 2),
    ]
    assert by_model[1].usage == TokenUsage(11, 6)
    by_user = report(path, since=0, key="kids", by="user")
    assert {r.group for r in by_user} == {"ann@example.org", ""}
    by_day = report(path, since=0, key="owner", by="day")
    assert [(r.group, r.usage.input) for r in by_day] == [("2025-05-13", 7)]
    text = format_report(by_model, by="model", since=NOON)
    lines = text.splitlines()
    assert lines[0] == "Usage since 2025-05-14 12:00 UTC (hourly resolution)"
    assert lines[1].split()[:3] == ["KEY", "MODEL", "REQUESTS"]
    assert lines[-1].split() == ["TOTAL", "3", "14", "8", "40", "0", "0.5120"]


async def test_usage_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`bedrock-gw usage` prints the table from the configured directory."""
    await (await _store_with_usage(tmp_path / "usage.sqlite3")).close()
    config = tmp_path / "config.toml"
    config.write_text(f'[usage]\ndirectory = "{tmp_path}"\n')
    assert main(["usage", "--config", str(config), "--since", "2025-01-01", "--by", "day"]) == 0
    out = capsys.readouterr().out
    assert "owner" in out and "2025-05-13" in out and "TOTAL" in out
    assert main(["usage", "--database", str(tmp_path / "nope.sqlite3")]) == 1
    assert "no usage database" in capsys.readouterr().err
    assert main(["usage", "--database", str(tmp_path / "usage.sqlite3"), "--since", "x"]) == 2
