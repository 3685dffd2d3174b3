"""The gateway's exceptions, grouped by what the caller should do, each carrying its HTTP face.

Every error a client can see is one of these. The HTTP layer turns them into OpenAI's error shape
``{"error": {"message", "type", "param", "code"}}``; nothing else decides statuses.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AuthenticationFailed",
    "BudgetExhausted",
    "GatewayError",
    "InvalidRequest",
    "LimitExceeded",
    "ModelNotFound",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "ServiceUnavailable",
    "UpstreamError",
    "UpstreamTimeout",
]


class GatewayError(Exception):
    """Base of every error the gateway reports to a client."""

    status: ClassVar[int] = 500
    error_type: ClassVar[str] = "server_error"
    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        upstream_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        self.upstream_code = upstream_code
        """The structured error code Bedrock gave, for logs and metrics; never shown to clients."""

    def to_openai(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequest(GatewayError):
    """The request cannot be served as sent; the client must change it."""

    status = 400
    error_type = "invalid_request_error"


class AuthenticationFailed(GatewayError):
    status = 401
    error_type = "invalid_request_error"
    default_code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status = 403
    error_type = "permission_error"
    default_code = "permission_denied"


class NotFound(GatewayError):
    status = 404
    error_type = "invalid_request_error"
    default_code = "not_found"


class ModelNotFound(NotFound):
    default_code = "model_not_found"


class PayloadTooLarge(GatewayError):
    status = 413
    error_type = "invalid_request_error"
    default_code = "request_too_large"


class RateLimited(GatewayError):
    """Slow down and retry: Bedrock throttled us or a quota is exhausted."""

    status = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class LimitExceeded(RateLimited):
    """A limit of the gateway's own (a key's rate, the stream cap) refused the request.

    ``retry_after`` goes out as the ``Retry-After`` header; ``limit`` names the setting, for the
    access log and metrics.
    """

    def __init__(
        self, message: str, *, limit: str, retry_after: float, code: str | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.limit = limit
        self.retry_after = retry_after


class BudgetExhausted(LimitExceeded):
    """A key's daily or monthly budget is used up until the period rolls over.

    OpenAI's own shape for a spent quota, so clients that know it stop retrying.
    """

    error_type = "insufficient_quota"
    default_code = "insufficient_quota"


class UpstreamError(GatewayError):
    """Bedrock failed in a way the client cannot fix; retrying later may help."""

    status = 502
    error_type = "server_error"
    default_code = "upstream_error"


class ServiceUnavailable(GatewayError):
    status = 503
    error_type = "server_error"
    default_code = "service_unavailable"


class UpstreamTimeout(GatewayError):
    status = 504
    error_type = "server_error"
    default_code = "upstream_timeout"
