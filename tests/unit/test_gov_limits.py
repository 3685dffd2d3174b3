"""Per-key limits: sliding windows, budgets per UTC period, admission beside requests in flight."""

from __future__ import annotations

import calendar

import pytest

from bedrock_gw.config import KeyPolicy
from bedrock_gw.governance.limits import (
    Charge,
    KeyLedger,
    RequestTally,
    Window,
    day_of,
    month_of,
    period_end,
    period_start,
)

# 2025-03-31 23:59:00 UTC: one minute before a day and a month roll over.
T0 = float(calendar.timegm((2025, 3, 31, 23, 59, 0, 0, 0, 0)))


def test_window_forgets_after_its_span() -> None:
    """Entries count for exactly 60 seconds."""
    window = Window()
    window.add(T0, 5)
    window.add(T0 + 30, 7)
    assert window.total(T0 + 59) == 12
    assert window.total(T0 + 60) == 7
    assert window.total(T0 + 90) == 0


def test_window_tells_when_it_drops_below_a_limit() -> None:
    """The wait is until enough of the oldest entries leave the window."""
    window = Window()
    window.add(T0, 5)
    window.add(T0 + 10, 5)
    window.add(T0 + 20, 5)
    assert window.seconds_until_below(15, T0 + 30) == pytest.approx(30)
    assert window.seconds_until_below(6, T0 + 30) == pytest.approx(40)
    assert window.seconds_until_below(100, T0 + 30) == 0


def test_requests_per_minute_counts_admissions() -> None:
    """Under a limit of two, the third request in a minute is refused until the first ages out."""
    ledger = KeyLedger(T0)
    policy = KeyPolicy(requests_per_minute=2)
    for offset in (0, 1):
        assert ledger.check("kids", policy, Charge(), T0 + offset) is None
        RequestTally(ledger, Charge(), T0 + offset).close()
    refusal = ledger.check("kids", policy, Charge(), T0 + 2)
    assert refusal is not None
    assert refusal.limit == "requests_per_minute"
    assert "2 requests per minute" in refusal.message
    assert refusal.retry_after == pytest.approx(58)
    assert not refusal.budget
    assert ledger.check("kids", policy, Charge(), T0 + 60) is None


def test_in_flight_requests_hold_their_reservation() -> None:
    """Beside requests in flight, a request is admitted only if its reservation fits too."""
    ledger = KeyLedger(T0)
    policy = KeyPolicy(tokens_per_minute=1000)
    first = RequestTally(ledger, Charge(400), T0)
    assert ledger.check("k", policy, Charge(400), T0) is None
    second = RequestTally(ledger, Charge(400), T0)
    refusal = ledger.check("k", policy, Charge(400), T0)
    assert refusal is not None
    assert refusal.limit == "tokens_per_minute"
    assert "in flight" in refusal.message
    assert refusal.retry_after == 1.0
    first.close()
    second.close()
    assert ledger.check("k", policy, Charge(400), T0) is None


def test_an_idle_key_may_start_one_request_larger_than_what_is_left() -> None:
    """With nothing in flight, any request starts while the limit is not yet reached."""
    ledger = KeyLedger(T0)
    policy = KeyPolicy(daily_tokens=100)
    assert ledger.check("k", policy, Charge(5000), T0) is None
    tally = RequestTally(ledger, Charge(5000), T0)
    assert ledger.check("k", policy, Charge(1), T0) is not None  # the one in flight may use it all
    tally.observe(Charge(5000), T0)
    tally.close()
    refusal = ledger.check("k", policy, Charge(1), T0)
    assert refusal is not None and refusal.budget


def test_streamed_tokens_count_as_they_arrive() -> None:
    """Observed usage counts at once; the final count corrects the running estimate."""
    ledger = KeyLedger(T0)
    tally = RequestTally(ledger, Charge(100), T0)
    tally.observe(Charge(150), T0)
    assert ledger.tokens.total(T0) == 150
    assert ledger.held == Charge()  # the count went past the reservation: nothing held
    tally.observe(Charge(120), T0)  # Bedrock's own count was lower than the estimate
    assert ledger.tokens.total(T0) == 120
    assert ledger.used_today(T0).tokens == 120
    tally.close()
    assert ledger.in_flight == 0


@pytest.mark.parametrize(
    ("field", "value", "charge", "message"),
    [
        pytest.param("daily_tokens", 100, Charge(100), "daily budget of 100 tokens", id="daily"),
        pytest.param(
            "monthly_tokens", 100, Charge(100), "monthly budget of 100 tokens", id="monthly"
        ),
        pytest.param("daily_cost", 1.5, Charge(0, 1.5), "daily budget of $1.5", id="daily-cost"),
        pytest.param(
            "monthly_cost", 2.0, Charge(0, 2.5), "monthly budget of $2", id="monthly-cost"
        ),
    ],
)
def test_spent_budget_is_refused_until_the_period_ends(
    field: str, value: float, charge: Charge, message: str
) -> None:
    """A spent budget names itself and says when it renews (UTC midnight, or the 1st)."""
    ledger = KeyLedger(T0)
    ledger.count(charge, T0)
    refusal = ledger.check("kids", KeyPolicy(**{field: value}), Charge(), T0)
    assert refusal is not None
    assert refusal.budget
    assert refusal.limit == field
    assert message in refusal.message
    assert field in refusal.message
    assert refusal.retry_after == pytest.approx(60)  # both roll over at 2025-04-01T00:00Z
    assert "2025-04-01T00:00:00Z" in refusal.message
    assert ledger.check("kids", KeyPolicy(**{field: value}), Charge(), T0 + 60) is None


def test_seeded_usage_counts_toward_budgets() -> None:
    """What the store had before a restart still counts."""
    ledger = KeyLedger(T0)
    ledger.seed(Charge(90), Charge(900))
    assert ledger.check("k", KeyPolicy(daily_tokens=90), Charge(), T0) is not None
    assert ledger.check("k", KeyPolicy(monthly_tokens=901), Charge(), T0) is None


def test_periods() -> None:
    """UTC days and months, their first second and the first second after them."""
    assert (day_of(T0), month_of(T0)) == ("2025-03-31", "2025-03")
    assert period_start("2025-03") == calendar.timegm((2025, 3, 1, 0, 0, 0, 0, 0, 0))
    assert period_end("2025-12") == calendar.timegm((2026, 1, 1, 0, 0, 0, 0, 0, 0))
    assert period_end("2025-03-31") == T0 + 60


def test_closing_twice_releases_once() -> None:
    """A tally closed twice leaves the ledger consistent."""
    ledger = KeyLedger(T0)
    tally = RequestTally(ledger, Charge(10), T0)
    other = RequestTally(ledger, Charge(20), T0)
    tally.close()
    tally.close()
    assert ledger.in_flight == 1
    assert ledger.held == Charge(20)
    other.close()
