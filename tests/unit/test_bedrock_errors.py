"""Bedrock's structured error codes map through one table to OpenAI errors."""

from __future__ import annotations

import json

import pytest

from bedrock_gw.bedrock.errors import error_from_response, error_from_stream_exception

SUFFIX = ":http://internal.amazon.com/coral/com.amazon.bedrock/"


@pytest.mark.parametrize(
    ("code", "status"),
    [
        pytest.param("ValidationException", 400, id="validation"),
        pytest.param("AccessDeniedException", 403, id="access-denied"),
        pytest.param("ResourceNotFoundException", 404, id="not-found"),
        pytest.param("ThrottlingException", 429, id="throttling"),
        pytest.param("ServiceQuotaExceededException", 429, id="quota"),
        pytest.param("ModelNotReadyException", 503, id="not-ready"),
        pytest.param("ServiceUnavailableException", 503, id="unavailable"),
        pytest.param("ModelTimeoutException", 504, id="model-timeout"),
        pytest.param("InternalServerException", 502, id="internal"),
        pytest.param("ModelErrorException", 502, id="model-error"),
        pytest.param("UnrecognizedClientException", 502, id="gateway-credentials"),
    ],
)
def test_header_code_table(code: str, status: int) -> None:
    """The code before ':' in x-amzn-ErrorType picks the status; the message is kept."""
    error = error_from_response(418, {"x-amzn-ErrorType": code + SUFFIX}, b'{"message": "why"}')
    assert error.status == status
    assert error.upstream_code == code
    assert "why" in error.message


def test_body_code_and_capitalised_message() -> None:
    """Without the header the body's __type is used, and Message is read too."""
    error = error_from_response(
        400,
        {},
        json.dumps({"__type": "com.amazon#ThrottlingException", "Message": "later"}).encode(),
    )
    assert (error.status, error.upstream_code) == (429, "ThrottlingException")
    assert "later" in error.message


def test_unparseable_body() -> None:
    """A 5xx with an HTML body is still a clean 502."""
    error = error_from_response(500, {}, b"<html>")
    assert error.status == 502


@pytest.mark.parametrize(
    ("exception_type", "status"),
    [
        pytest.param("throttlingException", 429, id="throttling"),
        pytest.param("validationException", 400, id="validation"),
        pytest.param("modelStreamErrorException", 502, id="model-stream-error"),
        pytest.param("serviceUnavailableException", 503, id="unavailable"),
        pytest.param("internalServerException", 502, id="internal"),
    ],
)
def test_stream_exceptions(exception_type: str, status: int) -> None:
    """lowerCamel stream exception types use the same table."""
    error = error_from_stream_exception(exception_type, b'{"message": "m"}')
    assert error.status == status
