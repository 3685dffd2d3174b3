"""Log lines for journald and for a terminal, and levels a reload can change."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest

from bedrock_gw.config import LoggingSettings
from bedrock_gw.logs import ACCESS_LOGGER, apply_levels, configure_logging, stream_is_journal


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """configure_logging changes the root logger: put pytest's handlers and levels back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in (ACCESS_LOGGER, "aiohttp.access")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[TextIO]:
    with (tmp_path / "stderr").open("w+", encoding="utf-8") as stream:
        yield stream


def _journal_stream_of(stream: TextIO) -> str:
    stat = os.fstat(stream.fileno())
    return f"{stat.st_dev}:{stat.st_ino}"


def _lines(stream: TextIO) -> list[str]:
    stream.flush()
    stream.seek(0)
    return stream.read().splitlines()


def test_journal_lines_carry_syslog_priorities(log_file: TextIO) -> None:
    """Under journald every line starts with <N> and has no timestamp of our own."""
    configure_logging(LoggingSettings(), {"JOURNAL_STREAM": _journal_stream_of(log_file)}, log_file)
    log = logging.getLogger("bedrock_gw.test")
    log.info("ready")
    log.warning("slow")
    log.error("broken")
    assert _lines(log_file) == [
        "<6>bedrock_gw.test: ready",
        "<4>bedrock_gw.test: slow",
        "<3>bedrock_gw.test: broken",
    ]


def test_every_traceback_line_is_prefixed(log_file: TextIO) -> None:
    """A traceback spans lines; each carries the priority, so `journalctl -p err` shows it all."""
    configure_logging(LoggingSettings(), {"JOURNAL_STREAM": _journal_stream_of(log_file)}, log_file)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("bedrock_gw.test").exception("failed")
    lines = _lines(log_file)
    assert len(lines) > 3
    assert all(line.startswith("<3>") for line in lines)
    assert lines[-1] == "<3>RuntimeError: boom"


@pytest.mark.parametrize(
    "journal_stream",
    [
        pytest.param(None, id="terminal"),
        pytest.param("1:2", id="inherited-variable-other-stream"),
        pytest.param("garbage", id="malformed-variable"),
    ],
)
def test_plain_lines_have_timestamps(log_file: TextIO, journal_stream: str | None) -> None:
    """Outside journald (or when stderr is not the stream systemd named) lines are timestamped."""
    environ = {} if journal_stream is None else {"JOURNAL_STREAM": journal_stream}
    configure_logging(LoggingSettings(), environ, log_file)
    logging.getLogger("bedrock_gw.test").warning("slow")
    (line,) = _lines(log_file)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING bedrock_gw.test: slow", line)


def test_stream_is_journal_needs_a_real_file() -> None:
    """A stream with no file descriptor (captured output) is never the journal."""
    import io

    assert not stream_is_journal(io.StringIO(), {"JOURNAL_STREAM": "1:2"})


def test_levels_change_without_new_handlers(log_file: TextIO) -> None:
    """apply_levels (the reload path) raises or lowers the level on the handler already set up."""
    configure_logging(LoggingSettings(level="WARNING"), {}, log_file)
    log = logging.getLogger("bedrock_gw.test")
    log.info("hidden")
    apply_levels(LoggingSettings(level="DEBUG"))
    log.debug("shown")
    lines = _lines(log_file)
    assert len(lines) == 1
    assert lines[0].endswith("DEBUG   bedrock_gw.test: shown")


@pytest.mark.parametrize(
    ("access_log", "logged"),
    [pytest.param(True, True, id="on"), pytest.param(False, False, id="off")],
)
def test_access_log_switch(log_file: TextIO, access_log: bool, logged: bool) -> None:
    """logging.access_log turns the access log on and off by its logger's level."""
    configure_logging(LoggingSettings(access_log=not access_log), {}, log_file)
    apply_levels(LoggingSettings(access_log=access_log))
    logging.getLogger(ACCESS_LOGGER).info('127.0.0.1 "GET /health" 200 0.1ms')
    assert bool(_lines(log_file)) is logged
