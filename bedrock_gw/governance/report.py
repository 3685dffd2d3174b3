"""``bedrock-gw usage``: the usage table, and the ``--since`` values it understands. Pure."""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from bedrock_gw.governance.usage import TokenUsage
from bedrock_gw.governance.usage_store import GroupBy, ReportRow

__all__ = ["format_report", "parse_since"]

_RELATIVE = re.compile(r"^(\d+)([mhd])$")
_UNITS = {"m": 60, "h": 3600, "d": 86400}


def parse_since(text: str | None, now: float) -> float:
    """A Unix time from ``--since``: none (this UTC month), ``today``, ``month``, ``90m``,
    ``24h``, ``7d``, or an ISO date or time (UTC unless it says otherwise)."""
    day = time.gmtime(now)
    if text is None or text == "month":
        return calendar.timegm((day.tm_year, day.tm_mon, 1, 0, 0, 0, 0, 0, 0))
    if text == "today":
        return calendar.timegm((day.tm_year, day.tm_mon, day.tm_mday, 0, 0, 0, 0, 0, 0))
    relative = _RELATIVE.match(text)
    if relative is not None:
        return now - int(relative.group(1)) * _UNITS[relative.group(2)]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"--since {text!r}: use today, month, 90m, 24h, 7d, or an ISO date like 2025-01-31"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def format_report(rows: Sequence[ReportRow], *, by: GroupBy, since: float) -> str:
    """A fixed-width table with a total line; amounts in US dollars from the price table."""
    header = ("KEY", by.upper(), "REQUESTS", "INPUT", "OUTPUT", "CACHE READ", "CACHE WRITE")
    lines: list[tuple[str, ...]] = [(*header, "COST $")]
    total_requests = 0
    total_usage = TokenUsage()
    total_cost = 0.0
    for row in rows:
        lines.append(_cells(row.key, row.group or "-", row.requests, row.usage, row.cost))
        total_requests += row.requests
        total_usage += row.usage
        total_cost += row.cost
    lines.append(_cells("TOTAL", "", total_requests, total_usage, total_cost))
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = [f"Usage since {_when(since)} (hourly resolution)"]
    for line in lines:
        left = [cell.ljust(width) for cell, width in zip(line[:2], widths, strict=False)]
        right = [cell.rjust(width) for cell, width in zip(line[2:], widths[2:], strict=True)]
        out.append("  ".join(left + right).rstrip())
    return "\n".join(out)


def _cells(key: str, group: str, requests: int, usage: TokenUsage, cost: float) -> tuple[str, ...]:
    return (
        key,
        group,
        str(requests),
        str(usage.input),
        str(usage.output),
        str(usage.cache_read),
        str(usage.cache_write),
        f"{cost:.4f}",
    )


def _when(since: float) -> str:
    # The store's resolution is the hour: say which hour the table starts with.
    start = int(since) - int(since) % 3600
    return time.strftime("%Y-%m-%d %H:00 UTC", time.gmtime(start))
