"""``GET /v1/models``, ``GET /v1/models/{id}`` and ``GET /health``."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bedrock_gw.errors import ModelNotFound
from bedrock_gw.keys import KEY_STORE
from bedrock_gw.models.listing import to_openai_model
from bedrock_gw.web.admission import entry_allowed
from bedrock_gw.web.state import CATALOG, CREDENTIALS, GOVERNOR, LIVE

__all__ = ["get_model", "health", "list_models"]

_EXPIRING = 120.0
"""Seconds of credential lifetime under which /health reports them as degraded."""


async def list_models(request: web.Request) -> web.Response:
    """The models the request's key may use."""
    entries = await request.app[CATALOG].entries()
    data = [to_openai_model(entry) for entry in entries.values() if entry_allowed(request, entry)]
    return web.json_response({"object": "list", "data": data})


async def get_model(request: web.Request) -> web.Response:
    model_id = request.match_info["model_id"]
    entry = await request.app[CATALOG].lookup(model_id)
    if not entry_allowed(request, entry):  # as if it did not exist, like OpenAI does
        raise ModelNotFound(f"The model '{model_id}' does not exist", param="model")
    return web.json_response(to_openai_model(entry))


async def health(request: web.Request) -> web.Response:
    """Liveness plus what the daemon knows of its own state; never calls AWS."""
    credentials = request.app[CREDENTIALS].status
    catalog = request.app[CATALOG].status
    keys = request.app[KEY_STORE].status
    degraded: list[str] = []
    expires_in = (
        (credentials.expires_at - datetime.now(UTC)).total_seconds()
        if credentials.expires_at is not None
        else None
    )
    # Refreshes start 15 minutes ahead by default: two minutes left means they keep failing.
    if not credentials.healthy or (expires_in is not None and expires_in < _EXPIRING):
        degraded.append("credentials")
    if not keys.healthy:
        degraded.append("keys")
    # Stale: two refresh intervals without a successful listing.
    refresh = request.app[LIVE].settings.models.refresh_interval
    stale = catalog.last_success is not None and time.time() - catalog.last_success > 2 * refresh
    if catalog.last_error is not None or catalog.last_success is None or stale:
        degraded.append("models")
    store_error = request.app[GOVERNOR].store.last_error
    if store_error is not None:
        degraded.append("usage")
    body: dict[str, Any] = {
        "status": "degraded" if degraded else "ok",
        "degraded": degraded,
        "credentials": {
            "source": credentials.source,
            "healthy": credentials.healthy,
            "expires_at": _iso(credentials.expires_at),
            "expires_in": round(expires_in) if expires_in is not None else None,
            "last_error": credentials.last_error,
        },
        "keys": {
            "loaded": keys.loaded,
            "count": keys.keys,
            "sources": [
                {
                    "source": source.description,
                    "loaded": source.loaded,
                    "last_error": source.last_error,
                }
                for source in keys.sources
            ],
        },
        "models": {
            "count": catalog.models,
            "last_refresh": _iso(
                datetime.fromtimestamp(catalog.last_success, UTC) if catalog.last_success else None
            ),
            "last_error": catalog.last_error,
            "stale": stale,
        },
        "usage": {
            "persistent": request.app[GOVERNOR].store.path is not None,
            "last_error": store_error,
        },
    }
    return web.json_response(body)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
