"""Per-key rate limits and budgets: sliding windows and period totals. Pure: the time is passed in.

Admission counts what is in flight. Every admitted request holds a reservation (its estimated
tokens and cost) until Bedrock reports what it really used; tokens are counted as they arrive,
each one releasing as much of the hold. A request is refused when a limit is already reached,
or when requests of the same key are in flight and the new reservation would not fit beside
theirs. So under any concurrency a key overshoots a limit by at most one request: the one
admitted alone, while nothing else was in flight. A stream that crosses a budget is not cut;
the requests after it are refused.

Days and months are UTC; windows are the last 60 seconds.
"""

from __future__ import annotations

import calendar
import time
from collections import deque
from dataclasses import dataclass

from bedrock_gw.config import KeyPolicy

__all__ = [
    "WINDOW",
    "Charge",
    "KeyLedger",
    "Refusal",
    "RequestTally",
    "Window",
    "day_of",
    "month_of",
    "period_end",
    "period_start",
]

WINDOW = 60.0
"""Seconds covered by the per-minute limits."""
_IN_FLIGHT_RETRY = 1.0
"""Retry-After when only requests in flight stand in the way: they may end any moment."""


@dataclass(frozen=True, slots=True)
class Charge:
    """Tokens and US dollars; negative in a correction (an estimate that was too high)."""

    tokens: int = 0
    cost: float = 0.0

    def __add__(self, other: Charge) -> Charge:
        return Charge(self.tokens + other.tokens, self.cost + other.cost)

    def __sub__(self, other: Charge) -> Charge:
        return Charge(self.tokens - other.tokens, self.cost - other.cost)

    def floor(self) -> Charge:
        return Charge(max(self.tokens, 0), max(self.cost, 0.0))


@dataclass(frozen=True, slots=True)
class Refusal:
    limit: str
    """The ``KeyPolicy`` field that refused, e.g. ``tokens_per_minute``."""
    message: str
    retry_after: float
    budget: bool
    """A daily or monthly budget is spent (rather than a rate reached)."""


class Window:
    """Amounts added during the last ``span`` seconds: a sliding log, exact at any instant."""

    __slots__ = ("_entries", "_span", "_total")

    def __init__(self, span: float = WINDOW) -> None:
        self._span = span
        self._entries: deque[tuple[float, float]] = deque()
        self._total = 0.0

    def add(self, now: float, amount: float) -> None:
        self._entries.append((now, amount))
        self._total += amount

    def total(self, now: float) -> float:
        self._expire(now)
        return self._total

    def seconds_until_below(self, limit: float, now: float) -> float:
        """How long until the total drops under ``limit`` as old entries leave the window."""
        self._expire(now)
        remaining = self._total
        for stamp, amount in self._entries:
            if remaining < limit:
                break
            remaining -= amount
            if remaining < limit:
                return max(stamp + self._span - now, 0.0)
        return 0.0

    def _expire(self, now: float) -> None:
        horizon = now - self._span
        while self._entries and self._entries[0][0] <= horizon:
            self._total -= self._entries.popleft()[1]
        if not self._entries:
            self._total = 0.0  # no float drift once empty


@dataclass(slots=True)
class _Period:
    name: str
    """``2025-01-31`` or ``2025-01``."""
    used: Charge


class KeyLedger:
    """One key's usage: the last minute, today and this month, and what is in flight."""

    def __init__(self, now: float) -> None:
        self.requests = Window()
        self.tokens = Window()
        self.day = _Period(day_of(now), Charge())
        self.month = _Period(month_of(now), Charge())
        self.in_flight = 0
        self.held = Charge()

    def seed(self, day: Charge, month: Charge) -> None:
        """Start from what was used before a restart (read from the usage store)."""
        self.day.used = day
        self.month.used = month

    def used_today(self, now: float) -> Charge:
        self._roll(now)
        return self.day.used

    def used_this_month(self, now: float) -> Charge:
        self._roll(now)
        return self.month.used

    def check(self, name: str, policy: KeyPolicy, want: Charge, now: float) -> Refusal | None:
        """Why a request of this key, expected to use ``want``, may not start now (or None)."""
        self._roll(now)
        rpm = policy.requests_per_minute
        if rpm is not None and self.requests.total(now) >= rpm:
            return Refusal(
                "requests_per_minute",
                f"the key '{name}' reached its limit of {rpm} requests per minute",
                self.requests.seconds_until_below(rpm, now),
                budget=False,
            )
        tpm = policy.tokens_per_minute
        if tpm is not None:
            refusal = self._check_window(name, tpm, want.tokens, now)
            if refusal is not None:
                return refusal
        budgets = (
            ("daily_tokens", policy.daily_tokens, self.day, False),
            ("monthly_tokens", policy.monthly_tokens, self.month, False),
            ("daily_cost", policy.daily_cost, self.day, True),
            ("monthly_cost", policy.monthly_cost, self.month, True),
        )
        for field, limit, period, is_cost in budgets:
            if limit is None:
                continue
            used = period.used.cost if is_cost else period.used.tokens
            held = self.held.cost if is_cost else self.held.tokens
            wanted = want.cost if is_cost else want.tokens
            refusal = self._check_budget(
                name, field, limit=limit, amounts=(used, held + wanted), period=period, now=now
            )
            if refusal is not None:
                return refusal
        return None

    def open(self, reservation: Charge, now: float) -> None:
        """A request was admitted: it counts as a request now and holds its reservation."""
        self.requests.add(now, 1)
        self.in_flight += 1
        self.held += reservation

    def count(self, charge: Charge, now: float) -> None:
        """Usage that Bedrock reported (or a correction of an estimate)."""
        self._roll(now)
        if charge.tokens:
            self.tokens.add(now, charge.tokens)
        self.day.used += charge
        self.month.used += charge

    def release(self, hold: Charge) -> None:
        self.held = (self.held - hold).floor()

    def close(self) -> None:
        self.in_flight = max(self.in_flight - 1, 0)
        if not self.in_flight:
            self.held = Charge()

    def _check_window(self, name: str, tpm: int, wanted: int, now: float) -> Refusal | None:
        used = self.tokens.total(now)
        if used >= tpm:
            return Refusal(
                "tokens_per_minute",
                f"the key '{name}' reached its limit of {tpm} tokens per minute",
                self.tokens.seconds_until_below(tpm, now),
                budget=False,
            )
        if self.in_flight and used + self.held.tokens + wanted > tpm:
            return self._crowded(name, "tokens_per_minute", f"{tpm} tokens per minute")
        return None

    def _check_budget(
        self,
        name: str,
        field: str,
        *,
        limit: float,
        amounts: tuple[float, float],
        period: _Period,
        now: float,
    ) -> Refusal | None:
        used, wanted = amounts
        amount = f"${limit:g}" if field.endswith("cost") else f"{limit:g} tokens"
        what = f"{'daily' if period is self.day else 'monthly'} budget of {amount}"
        if used >= limit:
            until = period_end(period.name) - now
            return Refusal(
                field,
                f"the key '{name}' has used its {what} ({field}); it renews at "
                f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(period_end(period.name)))}",
                max(until, 1.0),
                budget=True,
            )
        if self.in_flight and used + wanted > limit:
            return self._crowded(name, field, what)
        return None

    @staticmethod
    def _crowded(name: str, field: str, what: str) -> Refusal:
        return Refusal(
            field,
            f"the key '{name}' has requests in flight that may use the rest of its {what} "
            f"({field}); retry when they finish",
            _IN_FLIGHT_RETRY,
            budget=False,
        )

    def _roll(self, now: float) -> None:
        day, month = day_of(now), month_of(now)
        if day != self.day.name:
            self.day = _Period(day, Charge())
        if month != self.month.name:
            self.month = _Period(month, Charge())


class RequestTally:
    """One admitted request's share of its key's ledger: its hold, and what it has counted."""

    def __init__(self, ledger: KeyLedger, reservation: Charge, now: float) -> None:
        self._ledger = ledger
        self._reservation = reservation
        self._counted = Charge()
        self._hold = reservation
        self._closed = False
        ledger.open(reservation, now)

    @property
    def counted(self) -> Charge:
        return self._counted

    def observe(self, so_far: Charge, now: float) -> None:
        """Usage of this request up to now (a running estimate, or Bedrock's final count)."""
        if self._closed:
            return
        delta = so_far - self._counted
        if delta.tokens or delta.cost:
            self._ledger.count(delta, now)
        self._counted = so_far
        hold = (self._reservation - so_far).floor()
        self._ledger.release(self._hold - hold)
        self._hold = hold

    def close(self) -> None:
        """The request is over; what it counted stays counted, its hold is released."""
        if self._closed:
            return
        self._closed = True
        self._ledger.release(self._hold)
        self._hold = Charge()
        self._ledger.close()


def day_of(now: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(now))


def month_of(now: float) -> str:
    return time.strftime("%Y-%m", time.gmtime(now))


def period_start(name: str) -> float:
    """The first second of a ``day_of`` or ``month_of`` period, as a Unix time."""
    if len(name) == 7:
        return calendar.timegm(time.strptime(name, "%Y-%m"))
    return calendar.timegm(time.strptime(name, "%Y-%m-%d"))


def period_end(name: str) -> float:
    """The first second after the period."""
    start = time.gmtime(period_start(name))
    if len(name) == 7:
        year, month = (
            (start.tm_year + 1, 1) if start.tm_mon == 12 else (start.tm_year, start.tm_mon + 1)
        )
        return calendar.timegm((year, month, 1, 0, 0, 0, 0, 0, 0))
    return period_start(name) + 86400
