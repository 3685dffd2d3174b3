"""The load generator, run as its own process: ``python -m bench.load < plan.json > result.json``.

It drives the gateway (OpenAI chat completions) and the fake Bedrock directly (SigV4-signed
Converse / ConverseStream, as the gateway itself would send them) with bounded loops of
closed-loop clients, then holds many slow streams open through the gateway while sampling the
gateway's RSS. Loopback only; every loop ends by its own deadline. Progress goes to stderr,
the result (one JSON object) to stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
from yarl import URL

from bedrock_gw.aws.credentials import AwsCredentials
from bedrock_gw.aws.sigv4 import encode_path_segment, sign_headers
from bench.procs import FAKE_ACCESS_KEY, FAKE_SECRET, REGION, cpu_seconds, rss_mb

__all__ = ["Plan", "main"]

_PROMPT = "Say hello to the benchmark in five words."
_MAX_TOKENS = 64
_REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=60)
# Slow streams stay open for as long as the phase lasts; only a silent connection is an error.
_SLOW_STREAM_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=30)
_RSS_SAMPLE_EVERY = 0.1
_EVENTSTREAM = "application/vnd.amazon.eventstream"


@dataclass(frozen=True)
class Plan:
    gateway: str
    fake: str
    api_key: str
    model: str
    gateway_pid: int
    fake_pid: int
    rounds: int
    duration: float
    concurrency: tuple[int, ...]
    warmup: float
    streams: int
    stream_delay: float
    stream_hold: float
    stream_ramp_timeout: float
    stream_open_parallel: int


@dataclass
class Cell:
    """One measured run of one target, mode and client count."""

    target: str
    mode: str
    clients: int
    round: int
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    first_p50_ms: float | None = None
    first_p99_ms: float | None = None
    cpu_ms_per_request: float | None = None
    """CPU time of the serving process (the gateway, or the fake when direct) per request."""


@dataclass
class SlowStreams:
    wanted: int
    opened: int = 0
    max_open: int = 0
    min_open_while_holding: int = 0
    errors: int = 0
    ramp_seconds: float = 0.0
    rss_before_mb: float = 0.0
    rss_peak_mb: float = 0.0
    rss_after_close_mb: float = 0.0
    upstream_open_after_close: int | None = None
    error_samples: list[str] = field(default_factory=list)


class BadAnswer(Exception):
    pass


def _log(message: str) -> None:
    print(f"  [load] {message}", file=sys.stderr, flush=True)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return math.nan
    rank = max(math.ceil(fraction * len(sorted_values)), 1)
    return sorted_values[rank - 1]


# --------------------------------------------------------------------- requests


Call = Callable[[aiohttp.ClientSession], Awaitable[tuple[float, float | None]]]


async def _timed_post(
    session: aiohttp.ClientSession,
    url: str | URL,
    headers: dict[str, str],
    body: bytes,
    *,
    stream: bool,
    must_end_with: bytes,
) -> tuple[float, float | None]:
    """POST and read the whole answer; return (time to last byte, time to first body chunk)."""
    start = time.perf_counter()
    async with session.post(url, data=body, headers=headers) as response:
        if response.status != 200:
            raise BadAnswer(f"HTTP {response.status}: {(await response.read())[:200]!r}")
        first: float | None = None
        if stream:
            chunk = await response.content.readany()
            first = time.perf_counter() - start
            tail = chunk
            while chunk:
                tail = (tail + chunk)[-64:]
                chunk = await response.content.readany()
        else:
            tail = await response.read()
    elapsed = time.perf_counter() - start
    if must_end_with not in tail[-max(len(must_end_with), 64) :]:
        raise BadAnswer(f"unexpected end of answer: {tail[-64:]!r}")
    return elapsed, first


def gateway_call(plan: Plan, *, stream: bool) -> Call:
    url = f"{plan.gateway}/v1/chat/completions"
    payload: dict[str, Any] = {
        "model": plan.model,
        "messages": [{"role": "user", "content": _PROMPT}],
        "max_tokens": _MAX_TOKENS,
    }
    if stream:
        payload["stream"] = True
    body = json.dumps(payload).encode()
    headers = {"Authorization": f"Bearer {plan.api_key}", "Content-Type": "application/json"}
    end = b"data: [DONE]\n\n" if stream else b"}"

    async def call(session: aiohttp.ClientSession) -> tuple[float, float | None]:
        return await _timed_post(session, url, headers, body, stream=stream, must_end_with=end)

    return call


def direct_call(plan: Plan, *, stream: bool) -> Call:
    """A Converse / ConverseStream request to the fake, signed per request like the gateway's."""
    operation = "converse-stream" if stream else "converse"
    url = f"{plan.fake}/model/{encode_path_segment(plan.model)}/{operation}"
    exact = URL(url, encoded=True)  # keep "%3A" in the path exactly as signed
    body = json.dumps(
        {
            "messages": [{"role": "user", "content": [{"text": _PROMPT}]}],
            "inferenceConfig": {"maxTokens": _MAX_TOKENS},
        },
        separators=(",", ":"),
    ).encode()
    credentials = AwsCredentials(FAKE_ACCESS_KEY, FAKE_SECRET)
    unsigned = {
        "Accept": _EVENTSTREAM if stream else "application/json",
        "Content-Type": "application/json",
    }
    # The last frame of a ConverseStream is the metadata event; a Converse body ends with "}".
    end = b"" if stream else b"}"

    async def call(session: aiohttp.ClientSession) -> tuple[float, float | None]:
        headers = sign_headers(
            "POST", url, unsigned, body, credentials=credentials, region=REGION, service="bedrock"
        )
        return await _timed_post(session, exact, headers, body, stream=stream, must_end_with=end)

    return call


# --------------------------------------------------------------------- closed-loop cells


async def run_cell(
    session: aiohttp.ClientSession, call: Call, clients: int, duration: float
) -> tuple[list[float], list[float], int, float, list[str]]:
    """``clients`` workers call back to back until ``duration`` has passed."""
    totals: list[float] = []
    firsts: list[float] = []
    errors: list[str] = []
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        while time.perf_counter() < deadline:
            try:
                total, first = await call(session)
            except (aiohttp.ClientError, TimeoutError, BadAnswer) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(0.01)  # a failing target must not turn this into a spin
                continue
            totals.append(total)
            if first is not None:
                firsts.append(first)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return totals, firsts, len(errors), time.perf_counter() - start, errors[:3]


def summarise(target: str, mode: str, clients: int, rnd: int, measured: tuple[Any, ...]) -> Cell:
    totals, firsts, errors, seconds, _ = measured
    totals = sorted(totals)
    firsts = sorted(firsts)
    cell = Cell(
        target=target,
        mode=mode,
        clients=clients,
        round=rnd,
        requests=len(totals),
        errors=errors,
        seconds=seconds,
        rps=len(totals) / seconds if seconds else 0.0,
        p50_ms=percentile(totals, 0.50) * 1000,
        p99_ms=percentile(totals, 0.99) * 1000,
    )
    if firsts:
        cell.first_p50_ms = percentile(firsts, 0.50) * 1000
        cell.first_p99_ms = percentile(firsts, 0.99) * 1000
    return cell


async def _reset_fake(session: aiohttp.ClientSession, plan: Plan) -> None:
    # The fake records every request; clearing keeps its memory (and speed) steady across cells.
    async with session.post(f"{plan.fake}/_fake/reset") as response:
        response.raise_for_status()


async def throughput(plan: Plan, session: aiohttp.ClientSession) -> tuple[list[Cell], float]:
    """Warm up, read the idle RSS, then measure every cell ``rounds`` times."""
    calls = {
        ("gateway", "chat"): gateway_call(plan, stream=False),
        ("gateway", "stream"): gateway_call(plan, stream=True),
        ("direct", "chat"): direct_call(plan, stream=False),
        ("direct", "stream"): direct_call(plan, stream=True),
    }
    warm_clients = max(plan.concurrency)
    for (target, mode), call in calls.items():
        _, _, errors, _, samples = await run_cell(session, call, warm_clients, plan.warmup)
        if errors:
            raise BadAnswer(f"warm-up of {target} {mode} failed: {samples}")
    await _reset_fake(session, plan)
    await asyncio.sleep(1.0)  # let the gateway settle before reading its idle size
    idle_rss = rss_mb(plan.gateway_pid)
    _log(f"gateway idle RSS after warm-up: {idle_rss:.1f} MB")

    cells: list[Cell] = []
    for rnd in range(plan.rounds):
        for mode in ("chat", "stream"):
            for clients in plan.concurrency:
                # Alternate targets so that both see the same machine conditions.
                for target in ("gateway", "direct"):
                    server = plan.gateway_pid if target == "gateway" else plan.fake_pid
                    cpu_before = cpu_seconds(server)
                    measured = await run_cell(
                        session, calls[(target, mode)], clients, plan.duration
                    )
                    cpu = cpu_seconds(server) - cpu_before
                    cell = summarise(target, mode, clients, rnd, measured)
                    if cell.requests:
                        cell.cpu_ms_per_request = cpu * 1000 / cell.requests
                    if measured[4]:
                        _log(f"{target} {mode} x{clients}: errors such as {measured[4]}")
                    cells.append(cell)
                    await _reset_fake(session, plan)
        _log(f"round {rnd + 1}/{plan.rounds} done")
    return cells, idle_rss


# --------------------------------------------------------------------- slow streams


def slow_stream_events(frames: int) -> list[list[Any]]:
    """A ConverseStream of ``frames`` events that the fake sends one by one, slowly."""
    events: list[list[Any]] = [["messageStart", {"role": "assistant"}]]
    for i in range(max(frames - 4, 1)):
        events.append(["contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": f" w{i}"}}])
    events += [
        ["contentBlockStop", {"contentBlockIndex": 0}],
        ["messageStop", {"stopReason": "end_turn"}],
        [
            "metadata",
            {
                "usage": {"inputTokens": 8, "outputTokens": frames, "totalTokens": frames + 8},
                "metrics": {"latencyMs": 1},
            },
        ],
    ]
    return events


async def slow_streams(plan: Plan) -> SlowStreams:
    """Open ``plan.streams`` slow streams through the gateway, hold them, sample RSS, close."""
    result = SlowStreams(wanted=plan.streams)
    # The fake sleeps between about three of every four frames (it also batches and splits
    # some); make each stream outlast the ramp and the hold by a wide margin.
    seconds = plan.stream_ramp_timeout + plan.stream_hold + 30
    frames = math.ceil(seconds / plan.stream_delay / 0.75)
    behaviour = {
        "kind": "stream_events",
        "events": slow_stream_events(frames),
        "delay": plan.stream_delay,
    }
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector, timeout=_SLOW_STREAM_TIMEOUT) as session:
        await _reset_fake(session, plan)
        async with session.post(
            f"{plan.fake}/_fake/enqueue", json=[behaviour] * plan.streams
        ) as response:
            response.raise_for_status()
        await asyncio.sleep(1.0)
        result.rss_before_mb = rss_mb(plan.gateway_pid)

        url, open_now = f"{plan.gateway}/v1/chat/completions", 0
        all_open = asyncio.Event()
        gate = asyncio.Semaphore(plan.stream_open_parallel)
        body = json.dumps(
            {
                "model": plan.model,
                "stream": True,
                "messages": [{"role": "user", "content": _PROMPT}],
            }
        ).encode()
        headers = {"Authorization": f"Bearer {plan.api_key}", "Content-Type": "application/json"}

        async def one() -> None:
            nonlocal open_now
            try:
                async with gate:  # bound only the opening, so the listen queues never overflow
                    response = await session.post(url, data=body, headers=headers)
                    if response.status != 200:
                        response.close()
                        raise BadAnswer(f"HTTP {response.status}")
                    chunk = await response.content.readany()
            except (aiohttp.ClientError, TimeoutError, BadAnswer) as exc:
                result.errors += 1
                if len(result.error_samples) < 3:
                    result.error_samples.append(f"{type(exc).__name__}: {exc}")
                return
            result.opened += 1
            open_now += 1
            result.max_open = max(result.max_open, open_now)
            if open_now == plan.streams:
                all_open.set()
            try:
                while chunk:
                    chunk = await response.content.readany()
            except (aiohttp.ClientError, TimeoutError):
                result.errors += 1
            finally:
                open_now -= 1
                response.close()  # on cancellation: drop the connection, as a leaving client

        started = time.perf_counter()
        tasks = [asyncio.create_task(one()) for _ in range(plan.streams)]
        peak = result.rss_before_mb
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(plan.stream_ramp_timeout):
                while not all_open.is_set():
                    peak = max(peak, rss_mb(plan.gateway_pid))
                    await asyncio.sleep(_RSS_SAMPLE_EVERY)
        result.ramp_seconds = time.perf_counter() - started
        _log(f"{open_now}/{plan.streams} slow streams open after {result.ramp_seconds:.1f}s")
        least = open_now
        hold_until = time.perf_counter() + plan.stream_hold
        while time.perf_counter() < hold_until:
            peak = max(peak, rss_mb(plan.gateway_pid))
            least = min(least, open_now)
            await asyncio.sleep(_RSS_SAMPLE_EVERY)
        result.rss_peak_mb = peak
        result.min_open_while_holding = least
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

        # The gateway must cancel its upstream streams once the clients are gone.
        for _ in range(50):
            async with session.get(f"{plan.fake}/_fake/state") as response:
                state = await response.json()
            result.upstream_open_after_close = state["active_streams"]
            if state["active_streams"] == 0:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        result.rss_after_close_mb = rss_mb(plan.gateway_pid)
        await _reset_fake(session, plan)
    return result


# --------------------------------------------------------------------- entry point


async def run(plan: Plan) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=_REQUEST_TIMEOUT,
        auto_decompress=False,
        skip_auto_headers=("User-Agent",),
    ) as session:
        cells, idle_rss = await throughput(plan, session)
    streams = await slow_streams(plan) if plan.streams else None
    return {
        "cells": [asdict(cell) for cell in cells],
        "idle_rss_mb": idle_rss,
        "slow_streams": asdict(streams) if streams else None,
    }


def main() -> int:
    raw = json.load(sys.stdin)
    raw["concurrency"] = tuple(raw["concurrency"])
    plan = Plan(**raw)
    try:
        import uvloop
    except ImportError:
        loop = "asyncio"
        result = asyncio.run(run(plan))
    else:
        loop = "uvloop"
        result = uvloop.run(run(plan))
    result["load_loop"] = loop
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
