"""Prometheus metrics: one registry per app (never the process-wide default one).

Label values are bounded: routes are route patterns, models and key names appear only for
requests that passed authentication and admission, end users only from the Open WebUI headers
of such requests, and upstream error codes are Bedrock's structured codes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bedrock_gw.aws.credentials import CredentialStatus
from bedrock_gw.governance.usage import EndUser, TokenUsage
from bedrock_gw.keys.store import KeyStoreStatus
from bedrock_gw.models.catalog import CatalogStatus

__all__ = ["CONTENT_TYPE", "GatewayStatus", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320)
_FIRST_TOKEN_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 13, 20, 40)


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    """What the daemon knows of its own state at scrape time (the same as ``/health``)."""

    credentials: CredentialStatus | None
    keys: KeyStoreStatus | None
    catalog: CatalogStatus | None
    usage_store_error: str | None


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "bedrock_gw_requests",
            "Requests served, by route pattern, status, model and key name",
            ["route", "status", "model", "key"],
            registry=r,
        )
        self.latency = Histogram(
            "bedrock_gw_request_duration_seconds",
            "Time from the request to the end of its response (a stream's last byte)",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.first_token = Histogram(
            "bedrock_gw_time_to_first_token_seconds",
            "Time from a streamed request to its first relayed event",
            ["route", "model"],
            buckets=_FIRST_TOKEN_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "bedrock_gw_tokens",
            "Tokens Bedrock processed, by key name, model and kind "
            "(input, output, cache_read, cache_write)",
            ["key", "model", "kind"],
            registry=r,
        )
        self.user_tokens = Counter(
            "bedrock_gw_user_tokens",
            "Tokens by key name and Open WebUI user (only requests that name one)",
            ["key", "user", "kind"],
            registry=r,
        )
        self.cost = Counter(
            "bedrock_gw_cost_dollars",
            "Estimated cost in US dollars from the [usage] price table",
            ["key", "model"],
            registry=r,
        )
        self.upstream_errors = Counter(
            "bedrock_gw_upstream_errors",
            "Errors Bedrock returned, by its structured error code",
            ["code"],
            registry=r,
        )
        self.refusals = Counter(
            "bedrock_gw_limit_refusals",
            "Requests refused by a key's limit or budget, or the stream cap",
            ["key", "limit"],
            registry=r,
        )
        self.refused_connections = Counter(
            "bedrock_gw_connections_refused",
            "Connections closed unread because the client is outside server.allow_cidrs",
            registry=r,
        )
        self.streams = Gauge(
            "bedrock_gw_streams_in_flight",
            "Streamed responses being served, by API (openai, bedrock)",
            ["api"],
            registry=r,
        )
        for api in ("openai", "bedrock"):
            self.streams.labels(api).set(0)

    def watch(self, read: Callable[[], GatewayStatus]) -> None:
        """Report credential, key and model-list state, read from ``read`` at each scrape."""
        self.registry.register(_StatusCollector(read))

    def count_usage(
        self, *, key: str, model: str, user: EndUser, usage: TokenUsage, cost: float
    ) -> None:
        kinds = (
            ("input", usage.input),
            ("output", usage.output),
            ("cache_read", usage.cache_read),
            ("cache_write", usage.cache_write),
        )
        for kind, count in kinds:
            if count:
                self.tokens.labels(key, model, kind).inc(count)
                if user.label:
                    self.user_tokens.labels(key, user.label, kind).inc(count)
        if cost:
            self.cost.labels(key, model).inc(cost)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _StatusCollector(Collector):
    def __init__(self, read: Callable[[], GatewayStatus]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        status = self._read()
        if status.credentials is not None:
            yield from _credential_metrics(status.credentials)
        if status.keys is not None:
            yield from _key_metrics(status.keys)
        if status.catalog is not None:
            yield from _catalog_metrics(status.catalog)
        yield GaugeMetricFamily(
            "bedrock_gw_usage_store_healthy",
            "1 while usage counters are written to disk without error",
            value=float(status.usage_store_error is None),
        )


def _credential_metrics(credentials: CredentialStatus) -> Iterator[Metric]:
    healthy = GaugeMetricFamily(
        "bedrock_gw_credentials_healthy",
        "1 while AWS credentials are loaded and their last refresh succeeded",
        labels=["source"],
    )
    healthy.add_metric([credentials.source], float(credentials.healthy))
    yield healthy
    yield GaugeMetricFamily(
        "bedrock_gw_credentials_refresh_failures",
        "Consecutive failed attempts to refresh AWS credentials",
        value=float(credentials.consecutive_failures),
    )
    if credentials.expires_at is not None:
        yield GaugeMetricFamily(
            "bedrock_gw_credentials_expiry_timestamp_seconds",
            "When the current AWS credentials expire (Unix time)",
            value=credentials.expires_at.timestamp(),
        )


def _key_metrics(keys: KeyStoreStatus) -> Iterator[Metric]:
    yield GaugeMetricFamily("bedrock_gw_api_keys", "API keys accepted now", value=float(keys.keys))
    sources = GaugeMetricFamily(
        "bedrock_gw_key_source_healthy",
        "1 while an API key source is loaded and its last refresh succeeded",
        labels=["source"],
    )
    for source in keys.sources:
        sources.add_metric([source.description], float(source.loaded and not source.last_error))
    yield sources


def _catalog_metrics(catalog: CatalogStatus) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "bedrock_gw_models_offered", "Models offered in /v1/models", value=float(catalog.models)
    )
    yield GaugeMetricFamily(
        "bedrock_gw_models_refresh_healthy",
        "1 while the last listing of Bedrock's models succeeded",
        value=float(catalog.last_success is not None and catalog.last_error is None),
    )
    if catalog.last_success is not None:
        yield GaugeMetricFamily(
            "bedrock_gw_models_last_refresh_timestamp_seconds",
            "When Bedrock's models were last listed successfully (Unix time)",
            value=catalog.last_success,
        )
