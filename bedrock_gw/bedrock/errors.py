"""Bedrock's structured error codes, mapped in one table to the gateway's errors.

The code comes from the ``x-amzn-ErrorType`` header (or ``__type``/``code`` in the body, or an
event stream's ``:exception-type``); it is never guessed from message text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from bedrock_gw.errors import (
    AuthenticationFailed,
    GatewayError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    UpstreamError,
    UpstreamTimeout,
)

__all__ = [
    "ERROR_TABLE",
    "aws_error_code",
    "bedrock_error",
    "error_from_response",
    "error_from_stream_exception",
]

ERROR_TABLE: Mapping[str, type[GatewayError]] = {
    "ValidationException": InvalidRequest,
    "AccessDeniedException": PermissionDenied,
    "ResourceNotFoundException": NotFound,
    "ThrottlingException": RateLimited,
    "ServiceQuotaExceededException": RateLimited,
    "ModelNotReadyException": ServiceUnavailable,
    "ServiceUnavailableException": ServiceUnavailable,
    "ModelTimeoutException": UpstreamTimeout,
}
"""Codes not listed here (InternalServerException, ModelErrorException, signature and token
errors, which are the gateway's own credential problems) become a 502."""


_AWS_CODES: Mapping[type[GatewayError], str] = {
    InvalidRequest: "ValidationException",
    PayloadTooLarge: "ValidationException",
    AuthenticationFailed: "UnrecognizedClientException",
    PermissionDenied: "AccessDeniedException",
    NotFound: "ResourceNotFoundException",
    RateLimited: "ThrottlingException",
    ServiceUnavailable: "ServiceUnavailableException",
    UpstreamTimeout: "ModelTimeoutException",
}
"""The other way, for the native passthrough: the code a Bedrock SDK client raises for each of
the gateway's own errors (the nearest class in the hierarchy wins); anything else is an
InternalServerException."""


def aws_error_code(error: GatewayError) -> str:
    """The Bedrock error code that stands for ``error`` (its own, if Bedrock raised it)."""
    if error.upstream_code:
        return error.upstream_code
    for cls in type(error).__mro__:
        code = _AWS_CODES.get(cls)
        if code is not None:
            return code
    return "InternalServerException"


def bedrock_error(code: str, message: str) -> GatewayError:
    error_class = ERROR_TABLE.get(code, UpstreamError)
    text = message or f"Bedrock returned {code}"
    return error_class(f"Bedrock: {text}", code=_snake(code), upstream_code=code)


def error_from_response(status: int, headers: Mapping[str, str], body: bytes) -> GatewayError:
    """Build the error for a non-2xx Bedrock response."""
    parsed: dict[str, object] = {}
    try:
        loaded = json.loads(body) if body else {}
        if isinstance(loaded, dict):
            parsed = loaded
    except ValueError:
        parsed = {}
    raw_code = headers.get("x-amzn-ErrorType") or str(
        parsed.get("__type") or parsed.get("code") or ""
    )
    # "ThrottlingException:http://internal.amazon.com/coral/..." and "ns#Code" both occur.
    code = raw_code.split(":", 1)[0].rsplit("#", 1)[-1]
    message = parsed.get("message") or parsed.get("Message") or ""
    if not code:
        code = "InternalServerException" if status >= 500 else f"HTTP{status}"
    return bedrock_error(code, str(message))


def error_from_stream_exception(exception_type: str, payload: bytes) -> GatewayError:
    """Build the error for an ``exception`` frame inside a ConverseStream body."""
    message = ""
    try:
        loaded = json.loads(payload) if payload else {}
        if isinstance(loaded, dict):
            message = str(loaded.get("message") or loaded.get("Message") or "")
    except ValueError:
        message = ""
    # Stream exceptions are named in lowerCamelCase ("throttlingException").
    code = exception_type[:1].upper() + exception_type[1:]
    return bedrock_error(code, message)


def _snake(code: str) -> str:
    name = code.removesuffix("Exception") or code
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
