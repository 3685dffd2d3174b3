"""Admission and accounting for every Bedrock call a client asks for, on both APIs.

``Governor.admit`` runs before a request goes upstream: it checks the key may use the model,
its rates and budgets, and the cap on streams, and returns a ``Lease``. The handler tells the
lease what the request used (tokens as a stream delivers them, then Bedrock's own count) and
closes it; closing counts the request in the usage store and the metrics. Admission and every
count happen on the event loop without awaiting, so concurrent requests see each other.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from types import TracebackType
from typing import Literal

from bedrock_gw.config import KeyPolicy, Price, Settings
from bedrock_gw.errors import BudgetExhausted, LimitExceeded, PermissionDenied
from bedrock_gw.governance.limits import (
    Charge,
    KeyLedger,
    RequestTally,
    day_of,
    month_of,
    period_start,
)
from bedrock_gw.governance.metrics import Metrics
from bedrock_gw.governance.usage import EndUser, TokenUsage, cost_of, price_for
from bedrock_gw.governance.usage_store import UsageStore

__all__ = ["Ask", "Governor", "Lease", "model_allowed"]

logger = logging.getLogger(__name__)

Api = Literal["openai", "bedrock"]


@dataclass(frozen=True, slots=True)
class Ask:
    """What a request is about to ask of Bedrock."""

    key: str
    """The API key's name."""
    model: str
    """The model as the client named it: what usage is accounted under."""
    model_names: tuple[str, ...]
    """Every name of that model (alias, Bedrock id, base model id) for globs and prices."""
    user: EndUser
    input_tokens: int
    """Estimated prompt tokens."""
    max_output_tokens: int | None
    """The request's own cap on output tokens, when it sets one."""
    stream: bool
    api: Api


def model_allowed(policy: KeyPolicy, names: Iterable[str]) -> bool:
    """Whether one of a model's names matches one of the key's model patterns."""
    candidates = [name for name in names if name]
    return any(fnmatchcase(name, pattern) for pattern in policy.models for name in candidates)


class Governor:
    def __init__(
        self, store: UsageStore, metrics: Metrics, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.metrics = metrics
        self._clock = clock
        self._ledgers: dict[str, KeyLedger] = {}
        self._seeds: dict[str, tuple[str, Charge, str, Charge]] = {}
        self.streams = 0

    async def start(self) -> None:
        """Pick up today's and this month's usage from the store, so budgets survive restarts."""
        now = self._clock()
        day, month = day_of(now), month_of(now)
        today = await self.store.totals_since(period_start(day))
        this_month = await self.store.totals_since(period_start(month))
        for key in today.keys() | this_month.keys():
            self._seeds[key] = (day, today.get(key, Charge()), month, this_month.get(key, Charge()))

    def used(self, key: str) -> tuple[Charge, Charge]:
        """What a key used today and this month, in flight included."""
        now = self._clock()
        ledger = self._ledger(key, now)
        return ledger.used_today(now), ledger.used_this_month(now)

    def admit(self, settings: Settings, ask: Ask) -> Lease:
        """A lease for the request, or raises ``PermissionDenied`` / ``LimitExceeded``."""
        policy = settings.limits.policy(ask.key)
        if not model_allowed(policy, (ask.model, *ask.model_names)):
            raise PermissionDenied(
                f"the key '{ask.key}' may not use the model '{ask.model}'",
                param="model",
                code="model_not_allowed",
            )
        cap = settings.server.max_streams
        if ask.stream and cap and self.streams >= cap:
            self.metrics.refusals.labels(ask.key, "max_streams").inc()
            raise LimitExceeded(
                f"the gateway serves at most {cap} streams at once (server.max_streams)",
                limit="max_streams",
                retry_after=1.0,
            )
        price = price_for(settings.usage.prices, (ask.model, *ask.model_names))
        output = ask.max_output_tokens
        if output is None:
            output = settings.limits.reservation_tokens
        reservation = Charge(
            ask.input_tokens + output, cost_of(TokenUsage(ask.input_tokens, output), price)
        )
        now = self._clock()
        ledger = self._ledger(ask.key, now)
        refusal = ledger.check(ask.key, policy, reservation, now)
        if refusal is not None:
            self.metrics.refusals.labels(ask.key, refusal.limit).inc()
            error = BudgetExhausted if refusal.budget else LimitExceeded
            raise error(refusal.message, limit=refusal.limit, retry_after=refusal.retry_after)
        return Lease(self, ask, price, RequestTally(ledger, reservation, now))

    def _ledger(self, key: str, now: float) -> KeyLedger:
        ledger = self._ledgers.get(key)
        if ledger is None:
            ledger = self._ledgers[key] = KeyLedger(now)
            seed = self._seeds.pop(key, None)
            if seed is not None:
                day, today, month, this_month = seed
                ledger.seed(
                    today if day == ledger.day.name else Charge(),
                    this_month if month == ledger.month.name else Charge(),
                )
        return ledger

    def _stream_opened(self, api: Api) -> None:
        self.streams += 1
        self.metrics.streams.labels(api).inc()

    def _stream_closed(self, api: Api) -> None:
        self.streams -= 1
        self.metrics.streams.labels(api).dec()

    def _account(self, ask: Ask, usage: TokenUsage, cost: float) -> None:
        self.store.add(
            self._clock(), key=ask.key, model=ask.model, user=ask.user, usage=usage, cost=cost
        )
        self.metrics.count_usage(
            key=ask.key, model=ask.model, user=ask.user, usage=usage, cost=cost
        )

    def _now(self) -> float:
        return self._clock()


class Lease:
    """One admitted request. Use it as a context manager so it is always closed."""

    def __init__(self, governor: Governor, ask: Ask, price: Price | None, tally: RequestTally):
        self._governor = governor
        self.ask = ask
        self._price = price
        self._tally = tally
        self._output_seen = 0
        self._usage: TokenUsage | None = None
        self._closed = False
        if ask.stream:
            governor._stream_opened(ask.api)

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def usage(self) -> TokenUsage | None:
        """Bedrock's count, once it arrived."""
        return self._usage

    def output_progress(self, tokens: int) -> None:
        """Estimated output tokens streamed so far: counted against limits at once."""
        if self._usage is not None or tokens <= self._output_seen:
            return
        self._output_seen = tokens
        self._tally.observe(self._charge(self._estimate()), self._governor._now())

    def settle(self, usage: TokenUsage) -> None:
        """Bedrock's own count replaces every estimate."""
        self._usage = usage
        self._tally.observe(self._charge(usage), self._governor._now())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # No count from Bedrock (the client left, the stream broke): what was seen streaming
        # is charged as estimated; a request that produced nothing is charged nothing.
        usage = self._usage if self._usage is not None else self._estimate()
        if self._usage is None:
            self._tally.observe(self._charge(usage), self._governor._now())
        self._tally.close()
        self._governor._account(self.ask, usage, self._tally.counted.cost)
        if self.ask.stream:
            self._governor._stream_closed(self.ask.api)

    def _estimate(self) -> TokenUsage:
        if not self._output_seen:
            return TokenUsage()
        return TokenUsage(self.ask.input_tokens, self._output_seen)

    def _charge(self, usage: TokenUsage) -> Charge:
        return Charge(usage.total, cost_of(usage, self._price))
