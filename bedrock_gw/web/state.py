"""Typed keys for what lives on the app and on each request."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from bedrock_gw.auth import ApiKey, KeyRing
from bedrock_gw.aws.credentials import CredentialCache
from bedrock_gw.bedrock.client import Bedrock
from bedrock_gw.config import Settings
from bedrock_gw.models.catalog import ModelCatalog
from bedrock_gw.readiness import ReadinessGates
from bedrock_gw.web.sse import EventStream

__all__ = [
    "BEDROCK",
    "CATALOG",
    "CREDENTIALS",
    "HTTP_CLIENT",
    "LIVE",
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
    extra: dict[str, str] = field(default_factory=dict)


LIVE = web.AppKey("live", LiveConfig)
HTTP_CLIENT = web.AppKey("http_client", aiohttp.ClientSession)
BEDROCK = web.AppKey("bedrock", Bedrock)
CATALOG = web.AppKey("catalog", ModelCatalog)
CREDENTIALS = web.AppKey("credentials", CredentialCache)
STREAMS: web.AppKey[weakref.WeakSet[EventStream]] = web.AppKey("streams")
READINESS = web.AppKey("readiness", ReadinessGates)
TRACE = web.RequestKey("trace", RequestTrace)
