"""AWS rest-json error responses, shaped the way Bedrock sends them."""

from __future__ import annotations

import json
from dataclasses import dataclass

from aiohttp import web

# Bedrock's modelled exceptions carry this namespace after the code in x-amzn-ErrorType;
# clients must keep only the part before ':'.
CORAL_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.bedrock/"


@dataclass(frozen=True)
class ErrorStyle:
    status: int
    # Which JSON key holds the text: AWS is not consistent across its layers.
    message_key: str = "message"
    suffix: bool = True


# Statuses come from botocore's service models (bedrock-runtime 2023-09-30, bedrock 2023-04-20);
# the auth-layer codes are not modelled there and use the status AWS's front end returns.
ERROR_STYLES: dict[str, ErrorStyle] = {
    "ValidationException": ErrorStyle(400),
    "SerializationException": ErrorStyle(400, suffix=False),
    "AccessDeniedException": ErrorStyle(403, message_key="Message"),
    "ResourceNotFoundException": ErrorStyle(404),
    "ThrottlingException": ErrorStyle(429),
    # The model says 400, not 429, for the quota error.
    "ServiceQuotaExceededException": ErrorStyle(400),
    "ModelNotReadyException": ErrorStyle(429),
    "ModelTimeoutException": ErrorStyle(408),
    "ModelErrorException": ErrorStyle(424),
    "ServiceUnavailableException": ErrorStyle(503),
    "InternalServerException": ErrorStyle(500),
    "UnrecognizedClientException": ErrorStyle(403, message_key="Message", suffix=False),
    "InvalidSignatureException": ErrorStyle(403, message_key="Message", suffix=False),
    "IncompleteSignatureException": ErrorStyle(403, message_key="Message", suffix=False),
    "MissingAuthenticationTokenException": ErrorStyle(403, message_key="Message", suffix=False),
    "UnknownOperationException": ErrorStyle(404, suffix=False),
}


class AwsError(Exception):
    """Raised anywhere in the fake; the server turns it into the matching HTTP answer."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        style = ERROR_STYLES.get(code, ErrorStyle(status or 400))
        self.code = code
        self.message = message
        self.status = status if status is not None else style.status
        self.style = style


def validation(message: str) -> AwsError:
    return AwsError("ValidationException", message)


def error_response(err: AwsError, request_id: str) -> web.Response:
    error_type = err.code + (CORAL_SUFFIX if err.style.suffix else "")
    return web.Response(
        status=err.status,
        body=json.dumps({err.style.message_key: err.message}).encode("utf-8"),
        headers={
            "Content-Type": "application/json",
            "x-amzn-ErrorType": error_type,
            "x-amzn-RequestId": request_id,
        },
    )
