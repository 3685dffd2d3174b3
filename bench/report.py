"""Turn the load generator's measurements into the one table the benchmark prints."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Figures", "Machine", "render"]

# The targets (issue 2, "Proof").
MIN_THROUGHPUT_RATIO = 0.25
MAX_ADDED_P50_MS = 1.0
MAX_STREAM_GROWTH_MB = 40.0
MAX_IDLE_RSS_MB = 80.0
RATIO_CLIENTS = 16
LATENCY_CLIENTS = 1
# Columns shown for each of the two targets.
_SIDE = ("req/s", "p50", "p99", "1st p50", "1st p99", "cpu/req")


@dataclass(frozen=True)
class Machine:
    python: str
    gateway_loop: str
    load_loop: str
    cores: int
    load_before: float
    """The machine's one-minute load average just before the run."""
    rounds: int
    duration: float


@dataclass(frozen=True)
class Figures:
    """Medians over rounds of one (target, mode, clients) cell."""

    rps: float
    p50_ms: float
    p99_ms: float
    first_p50_ms: float | None
    first_p99_ms: float | None
    cpu_ms: float | None
    errors: int


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(present) if present else None


def aggregate(cells: list[Mapping[str, Any]]) -> dict[tuple[str, str, int], Figures]:
    grouped: dict[tuple[str, str, int], list[Mapping[str, Any]]] = {}
    for cell in cells:
        grouped.setdefault((cell["target"], cell["mode"], cell["clients"]), []).append(cell)
    out = {}
    for key, runs in grouped.items():
        out[key] = Figures(
            rps=_median(r["rps"] for r in runs) or 0.0,
            p50_ms=_median(r["p50_ms"] for r in runs) or math.nan,
            p99_ms=_median(r["p99_ms"] for r in runs) or math.nan,
            first_p50_ms=_median(r["first_p50_ms"] for r in runs),
            first_p99_ms=_median(r["first_p99_ms"] for r in runs),
            cpu_ms=_median(r["cpu_ms_per_request"] for r in runs),
            errors=sum(r["errors"] for r in runs),
        )
    return out


def _ms(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.2f}"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("MET" if ok else "MISSED")


def _side(fig: Figures | None) -> list[str]:
    if fig is None:
        return ["-"] * len(_SIDE)
    return [
        f"{fig.rps:.0f}",
        _ms(fig.p50_ms),
        _ms(fig.p99_ms),
        _ms(fig.first_p50_ms),
        _ms(fig.first_p99_ms),
        _ms(fig.cpu_ms),
    ]


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )

    # A group line over the two blocks of _SIDE columns: gateway, then direct.
    group = len(_SIDE)
    lead = sum(widths[:2]) + 2 * 2
    gw_width = sum(widths[2 : 2 + group]) + 2 * (group - 1)
    direct_width = sum(widths[2 + group : 2 + 2 * group]) + 2 * (group - 1)
    groups = (
        " " * lead
        + "through the gateway".center(gw_width, "-")
        + "  "
        + "direct to the fake".center(direct_width, "-")
    )
    return [groups, line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def render(result: Mapping[str, Any], machine: Machine, concurrency: tuple[int, ...]) -> str:
    figures = aggregate(result["cells"])
    out = [
        f"bedrock-gw bench · Python {machine.python} · gateway loop: {machine.gateway_loop} · "
        f"load generator loop: {machine.load_loop} · {machine.cores} cores · "
        f"load average before the run {machine.load_before:.2f}",
        f"medians of {machine.rounds} round(s) x {machine.duration:g}s per cell; times in ms; "
        "p50/p99: time to last byte; 1st: time to first body chunk (streams)",
        "direct: SigV4-signed Converse / ConverseStream straight to the fake; "
        "cpu/req: CPU ms per request of the gateway (left) or of the fake (right)",
        "gw/direct: throughput ratio; added p50: gateway p50 - direct p50; errors: gw/direct",
        "",
    ]
    header = ["scenario", "clients", *_SIDE, *_SIDE, "gw/direct", "added p50", "errors"]
    rows = []
    ratios: dict[str, float] = {}
    added: dict[str, float] = {}
    for mode, label in (("chat", "chat"), ("stream", "chat stream")):
        for clients in concurrency:
            gw = figures.get(("gateway", mode, clients))
            direct = figures.get(("direct", mode, clients))
            ratio = gw.rps / direct.rps if gw and direct and direct.rps else math.nan
            extra = gw.p50_ms - direct.p50_ms if gw and direct else math.nan
            if clients == RATIO_CLIENTS:
                ratios[label] = ratio
            if clients == LATENCY_CLIENTS:
                added[label] = extra
            errors = f"{gw.errors if gw else '-'}/{direct.errors if direct else '-'}"
            rows.append(
                [
                    label,
                    str(clients),
                    *_side(gw),
                    *_side(direct),
                    f"{ratio:.0%}" if not math.isnan(ratio) else "-",
                    _ms(extra),
                    errors,
                ]
            )
    out += _table(rows, header)
    out.append("")
    out.append("targets (issue 2):")
    for label, ratio in ratios.items():
        out.append(
            f"  {label:<12} gw/direct throughput at {RATIO_CLIENTS} clients: "
            f"{ratio:6.1%}  (>= {MIN_THROUGHPUT_RATIO:.0%})  "
            f"{_verdict(ratio >= MIN_THROUGHPUT_RATIO)}"
        )
    for label, extra in added.items():
        out.append(
            f"  {label:<12} added p50 latency at {LATENCY_CLIENTS} client:  "
            f"{extra:6.2f} ms (< {MAX_ADDED_P50_MS:g} ms)  "
            f"{_verdict(extra < MAX_ADDED_P50_MS)}"
        )
    idle = result["idle_rss_mb"]
    out.append(
        f"  idle RSS of the gateway after warm-up:       {idle:6.1f} MB (< "
        f"{MAX_IDLE_RSS_MB:g} MB)  {_verdict(idle < MAX_IDLE_RSS_MB)}"
    )
    slow = result.get("slow_streams")
    if slow:
        growth = slow["rss_peak_mb"] - slow["rss_before_mb"]
        held = slow["min_open_while_holding"] == slow["wanted"] and slow["errors"] == 0
        out.append(
            f"  {slow['wanted']} slow streams: open at once {slow['max_open']}, held throughout "
            f"{slow['min_open_while_holding']}, errors {slow['errors']}, "
            f"opened in {slow['ramp_seconds']:.1f}s"
        )
        out.append(
            f"    gateway RSS before {slow['rss_before_mb']:.1f} MB, peak "
            f"{slow['rss_peak_mb']:.1f} MB, growth {growth:.1f} MB "
            f"(< {MAX_STREAM_GROWTH_MB:g} MB)  {_verdict(held and growth < MAX_STREAM_GROWTH_MB)}"
        )
        out.append(
            f"    after the clients left: RSS {slow['rss_after_close_mb']:.1f} MB, upstream "
            f"streams still open at the fake: {slow['upstream_open_after_close']}"
        )
        if slow["error_samples"]:
            out.append(f"    errors such as: {slow['error_samples']}")
    return "\n".join(out)
