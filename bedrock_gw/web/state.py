"""Typed keys for what lives on the app and on each request."""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from bedrock_gw.auth import ApiKey, KeyRing
from bedrock_gw.aws.credentials import CredentialCache
from bedrock_gw.bedrock.client import Bedrock
from bedrock_gw.bedrock.forward import Forwarder
from bedrock_gw.config import Settings
from bedrock_gw.governance.governor import Governor
from bedrock_gw.governance.metrics import Metrics
from bedrock_gw.models.catalog import ModelCatalog
from bedrock_gw.readiness import ReadinessGates
from bedrock_gw.web.sse import EventStream

__all__ = [
    "BEDROCK",
    "CATALOG",
    "CREDENTIALS",
    "FORWARDER",
    "GOVERNOR",
    "HTTP_CLIENT",
    "LIVE",
    "METRICS",
    "READINESS",
    "STREAMS",
    "TRACE",
    "LiveConfig",
    "RequestTrace",
]


class LiveConfig:
    """What may change while the daemon runs (on reload or key refresh).

    Each attribute is replaced whole, never mutated, so a request that read one keeps a
    consistent value for its whole life.
    """

    def __init__(self, settings: Settings, keyring: KeyRing) -> None:
        self.settings = settings
        self.keyring = keyring


@dataclass(slots=True)
class RequestTrace:
    """What the access log reports about one request besides method, path and status."""

    key: ApiKey | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    admitted: bool = False
    """The request passed its key's limits: its model may label metrics."""
    upstream_error: str | None = None
    """Bedrock's structured error code, when Bedrock failed the request."""
    started: float = field(default_factory=time.monotonic)
    extra: dict[str, str] = field(default_factory=dict)


LIVE = web.AppKey("live", LiveConfig)
HTTP_CLIENT = web.AppKey("http_client", aiohttp.ClientSession)
BEDROCK = web.AppKey("bedrock", Bedrock)
CATALOG = web.AppKey("catalog", ModelCatalog)
CREDENTIALS = web.AppKey("credentials", CredentialCache)
STREAMS: web.AppKey[weakref.WeakSet[EventStream]] = web.AppKey("streams")
READINESS = web.AppKey("readiness", ReadinessGates)
METRICS = web.AppKey("metrics", Metrics)
GOVERNOR = web.AppKey("governor", Governor)
FORWARDER = web.AppKey("forwarder", Forwarder)
TRACE = web.RequestKey("trace", RequestTrace)
