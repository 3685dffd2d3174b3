"""Middlewares: every failure leaves as an OpenAI-shaped error; ``/v1`` routes need a key."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from bedrock_gw.errors import (
    AuthenticationFailed,
    GatewayError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
)
from bedrock_gw.web.state import LIVE, TRACE, RequestTrace

__all__ = ["PROTECTED_PREFIXES", "auth_middleware", "error_middleware", "json_error"]

logger = logging.getLogger(__name__)

PROTECTED_PREFIXES = ("/v1/", "/api/v1/")


def json_error(error: GatewayError, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(error.to_openai(), status=error.status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[TRACE] = RequestTrace()
    try:
        return await handler(request)
    except GatewayError as error:
        request[TRACE].extra["error"] = error.upstream_code or error.code or error.error_type
        return json_error(error, _auth_challenge(error))
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[LIVE].settings.server.max_body_bytes
        return json_error(PayloadTooLarge(f"the request body is larger than {limit} bytes"))
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
        return json_error(GatewayError("the gateway failed to serve this request"))


def _auth_challenge(error: GatewayError) -> dict[str, str] | None:
    return {"WWW-Authenticate": "Bearer"} if isinstance(error, AuthenticationFailed) else None


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
