"""``GET /metrics`` and the middleware that counts every request for it."""

from __future__ import annotations

import asyncio
import hmac
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from bedrock_gw.config import PRIVATE_NETWORKS
from bedrock_gw.errors import AuthenticationFailed, NotFound, PermissionDenied
from bedrock_gw.governance.metrics import CONTENT_TYPE
from bedrock_gw.web.boundary import address_allowed
from bedrock_gw.web.state import LIVE, METRICS, TRACE

__all__ = ["metrics_endpoint", "metrics_middleware", "route_of"]

# nginx's code for "the client closed the connection before the response".
_CLIENT_GONE = 499


def route_of(request: web.Request) -> str:
    """The route pattern (``/v1/chat/completions``, ``/bedrock/{tail}``): bounded, unlike paths."""
    route = request.match_info.route
    resource = route.resource if route is not None else None
    if resource is None or isinstance(request.match_info.http_exception, web.HTTPException):
        return "unmatched"
    return resource.canonical


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outside the error middleware, so it sees the status the client got."""
    started = time.monotonic()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = _CLIENT_GONE
        raise
    finally:
        _observe(request, status, time.monotonic() - started)


def _observe(request: web.Request, status: int, elapsed: float) -> None:
    metrics = request.app[METRICS]
    route = route_of(request)
    trace = request.get(TRACE)
    key = model = ""
    if trace is not None:
        key = trace.key.name if trace.key is not None else ""
        # Only an admitted request names a model the key may use: arbitrary text from a
        # client must not become a label.
        model = (trace.model or "") if trace.admitted else ""
        if trace.upstream_error:
            metrics.upstream_errors.labels(trace.upstream_error).inc()
    metrics.requests.labels(route, str(status), model, key).inc()
    metrics.latency.labels(route).observe(elapsed)


async def metrics_endpoint(request: web.Request) -> web.Response:
    """Prometheus text format, for whoever ``metrics.access`` lets in."""
    settings = request.app[LIVE].settings.metrics
    if settings.access == "off":
        raise NotFound("metrics are off (metrics.access)")
    if settings.access == "lan" and not address_allowed(request.remote, PRIVATE_NETWORKS):
        raise PermissionDenied("metrics are served to the LAN only (metrics.access)")
    if settings.access == "token":
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expected = settings.token.get_secret_value() if settings.token is not None else ""
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), expected.encode()
        ):
            raise AuthenticationFailed("metrics need 'Authorization: Bearer <metrics.token>'")
    body = request.app[METRICS].exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
