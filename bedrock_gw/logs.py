"""Logging set-up: plain timestamped lines in a terminal, syslog priorities under journald.

Under journald each line starts with ``<N>``, its syslog priority, so ``journalctl -p warning``
works; journald adds the time and the unit itself. Levels are set apart from the handler so a
reload can change them while the daemon runs.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import TextIO

from bedrock_gw.config import LoggingSettings

__all__ = ["ACCESS_LOGGER", "apply_levels", "configure_logging", "stream_is_journal"]

ACCESS_LOGGER = "bedrock_gw.access"

# journald reads "<N>" at the start of a line as the syslog priority of that line.
_PRIORITIES = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}


class _JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        priority = _PRIORITIES.get(record.levelno, 6)
        text = super().format(record)
        # A traceback spans lines; each one is its own journal entry and needs the prefix.
        return "\n".join(f"<{priority}>{line}" for line in text.splitlines())


def stream_is_journal(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """True when ``stream`` is the journal connection systemd announced in ``JOURNAL_STREAM``.

    The variable is inherited by children whose stderr may go elsewhere, so the device and
    inode it names are compared with the stream's own (systemd.exec(5), "$JOURNAL_STREAM").
    """
    device, _, inode = environ.get("JOURNAL_STREAM", "").partition(":")
    try:
        stat = os.fstat(stream.fileno())
        return (stat.st_dev, stat.st_ino) == (int(device), int(inode))
    except (OSError, ValueError, AttributeError):
        # No real file behind the stream (captured in tests), or a malformed variable.
        return False


def configure_logging(
    settings: LoggingSettings,
    environ: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
) -> None:
    """Send every log line to ``stream`` (stderr) in the journal's format or a terminal's."""
    env = os.environ if environ is None else environ
    out = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(out)
    if stream_is_journal(out, env):
        handler.setFormatter(_JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    apply_levels(settings)


def apply_levels(settings: LoggingSettings) -> None:
    """Set the log level and switch the access log; called at start-up and on every reload."""
    logging.getLogger().setLevel(settings.level)
    # aiohttp's own access logger is replaced by ours; its server errors still come through.
    logging.getLogger("aiohttp.access").setLevel(settings.level)
    # The access log writes at INFO, so raising its logger to WARNING turns it off (live).
    access = logging.getLogger(ACCESS_LOGGER)
    access.setLevel(logging.NOTSET if settings.access_log else logging.WARNING)
