"""Middlewares: every failure leaves as an OpenAI-shaped error; ``/v1`` routes need a key.

Errors on the native passthrough (``/bedrock/...``) also carry Bedrock's shape (the
``x-amzn-ErrorType`` header and a top-level ``message``), so Bedrock SDKs raise their usual
exceptions for them.
"""

from __future__ import annotations

import logging
import math

from aiohttp import web
from aiohttp.typedefs import Handler

from bedrock_gw.bedrock.errors import aws_error_code
from bedrock_gw.errors import (
    AuthenticationFailed,
    GatewayError,
    InvalidRequest,
    LimitExceeded,
    NotFound,
    PayloadTooLarge,
)
from bedrock_gw.web.state import LIVE, TRACE, RequestTrace

__all__ = ["PROTECTED_PREFIXES", "auth_middleware", "error_middleware", "json_error"]

logger = logging.getLogger(__name__)

PASSTHROUGH_PREFIX = "/bedrock/"
PROTECTED_PREFIXES = ("/v1/", "/api/v1/", PASSTHROUGH_PREFIX)


def json_error(
    error: GatewayError, headers: dict[str, str] | None = None, *, bedrock: bool = False
) -> web.Response:
    """The error as OpenAI shapes it; with ``bedrock``, also as Bedrock's SDKs parse it."""
    body = error.to_openai()
    headers = dict(headers or {})
    if bedrock:
        body["message"] = error.message
        headers["x-amzn-ErrorType"] = aws_error_code(error)
    return web.json_response(body, status=error.status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[TRACE] = RequestTrace()
    bedrock = request.path.startswith(PASSTHROUGH_PREFIX)
    try:
        return await handler(request)
    except GatewayError as error:
        trace = request[TRACE]
        trace.extra["error"] = error.upstream_code or error.code or error.error_type
        trace.upstream_error = error.upstream_code
        return json_error(error, _error_headers(error), bedrock=bedrock)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[LIVE].settings.server.max_body_bytes
        too_large = PayloadTooLarge(f"the request body is larger than {limit} bytes")
        return json_error(too_large, bedrock=bedrock)
    except web.HTTPNotFound:
        return json_error(NotFound(f"no route for {request.method} {request.path}"))
    except web.HTTPMethodNotAllowed as exc:
        refusal = InvalidRequest(f"method {request.method} is not allowed on {request.path}")
        response = json_error(refusal, {"Allow": ",".join(sorted(exc.allowed_methods))})
        response.set_status(405)
        return response
    except web.HTTPException:
        raise
    except Exception:
        logger.exception("unhandled error serving %s %s", request.method, request.path)
        failure = GatewayError("the gateway failed to serve this request")
        return json_error(failure, bedrock=bedrock)


def _error_headers(error: GatewayError) -> dict[str, str] | None:
    if isinstance(error, AuthenticationFailed):
        return {"WWW-Authenticate": "Bearer"}
    if isinstance(error, LimitExceeded):
        # Whole seconds (RFC 9110 delay-seconds), rounded up so a client never comes back early.
        return {"Retry-After": str(max(math.ceil(error.retry_after), 1))}
    return None


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(PROTECTED_PREFIXES):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationFailed("Missing API key: send it as 'Authorization: Bearer <key>'")
        key = request.app[LIVE].keyring.authenticate(token.strip())
        if key is None:
            raise AuthenticationFailed("Incorrect API key provided")
        request[TRACE].key = key
    return await handler(request)
