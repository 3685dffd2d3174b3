"""``GET /v1/models``, ``GET /v1/models/{id}`` and ``GET /health``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bedrock_gw.keys import KEY_STORE
from bedrock_gw.models.listing import to_openai_model
from bedrock_gw.web.state import CATALOG, CREDENTIALS

__all__ = ["get_model", "health", "list_models"]


async def list_models(request: web.Request) -> web.Response:
    entries = await request.app[CATALOG].entries()
    return web.json_response(
        {"object": "list", "data": [to_openai_model(entry) for entry in entries.values()]}
    )


async def get_model(request: web.Request) -> web.Response:
    entry = await request.app[CATALOG].lookup(request.match_info["model_id"])
    return web.json_response(to_openai_model(entry))


async def health(request: web.Request) -> web.Response:
    """Liveness plus what the daemon knows of its own state; never calls AWS."""
    credentials = request.app[CREDENTIALS].status
    catalog = request.app[CATALOG].status
    keys = request.app[KEY_STORE].status
    degraded: list[str] = []
    if not credentials.healthy:
        degraded.append("credentials")
    if not keys.healthy:
        degraded.append("keys")
    if catalog.last_error is not None or catalog.last_success is None:
        degraded.append("models")
    body: dict[str, Any] = {
        "status": "degraded" if degraded else "ok",
        "degraded": degraded,
        "credentials": {
            "source": credentials.source,
            "healthy": credentials.healthy,
            "expires_at": _iso(credentials.expires_at),
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
        },
    }
    return web.json_response(body)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
