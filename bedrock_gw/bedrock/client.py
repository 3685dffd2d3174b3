"""The Bedrock adapter: Converse, ConverseStream, InvokeModel and the model listings over aiohttp.

Every call is a coroutine on the event loop: requests are signed in-process (``sigv4``), sent
over one pooled ``aiohttp.ClientSession``, and stream bodies are decoded as bytes arrive. No
thread is held per request or per stream. Cancelling the awaiting task (a client that went
away) closes the upstream connection at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import aiohttp
from yarl import URL

from bedrock_gw.aws.credentials import AwsCredentials
from bedrock_gw.aws.sigv4 import encode_path_segment, sign_headers
from bedrock_gw.bedrock.errors import error_from_response, error_from_stream_exception
from bedrock_gw.bedrock.eventstream import (
    EventStreamDecoder,
    EventStreamError,
    EventStreamMessage,
)
from bedrock_gw.errors import GatewayError, UpstreamError, UpstreamTimeout

__all__ = [
    "Bedrock",
    "BedrockClient",
    "BedrockEndpoints",
    "BedrockTimeouts",
    "InvokeResult",
    "StreamEvent",
]

logger = logging.getLogger(__name__)

# Signing name of both the runtime and the control plane; "bedrock-runtime" is rejected.
SIGNING_NAME = "bedrock"
_JSON = "application/json"
_LISTING_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class BedrockEndpoints:
    runtime: str
    control: str

    @classmethod
    def resolve(
        cls,
        region: str,
        environ: Mapping[str, str],
        runtime_override: str | None = None,
        control_override: str | None = None,
    ) -> BedrockEndpoints:
        """Config keys win, then the standard AWS_ENDPOINT_URL_* variables, then AWS's hosts."""
        shared = environ.get("AWS_ENDPOINT_URL")
        runtime = (
            runtime_override
            or environ.get("AWS_ENDPOINT_URL_BEDROCK_RUNTIME")
            or shared
            or f"https://bedrock-runtime.{region}.amazonaws.com"
        )
        control = (
            control_override
            or environ.get("AWS_ENDPOINT_URL_BEDROCK")
            or shared
            or f"https://bedrock.{region}.amazonaws.com"
        )
        return cls(runtime.rstrip("/"), control.rstrip("/"))


@dataclass(frozen=True, slots=True)
class BedrockTimeouts:
    connect: float
    first_byte: float
    stream_idle: float


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One decoded ConverseStream event: ``messageStart``, ``contentBlockDelta``, ..."""

    type: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class InvokeResult:
    body: Any
    input_tokens: int | None
    """From Bedrock's ``X-Amzn-Bedrock-Input-Token-Count`` header, when it sends one."""


class Bedrock(Protocol):
    """What the HTTP handlers need from Bedrock."""

    async def converse(self, model_id: str, request: Mapping[str, Any]) -> dict[str, Any]: ...

    def converse_stream(
        self, model_id: str, request: Mapping[str, Any]
    ) -> AsyncIterator[list[StreamEvent]]: ...

    async def invoke_model(self, model_id: str, body: Mapping[str, Any]) -> InvokeResult: ...

    async def list_foundation_models(self) -> list[dict[str, Any]]: ...

    async def list_inference_profiles(self, profile_type: str) -> list[dict[str, Any]]: ...


class BedrockClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        credentials: Callable[[], AwsCredentials],
        region: str,
        endpoints: BedrockEndpoints,
        timeouts: BedrockTimeouts,
    ) -> None:
        self._session = session
        self._credentials = credentials
        self._region = region
        self._endpoints = endpoints
        self._timeouts = timeouts
        self._plain_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=timeouts.connect, sock_read=timeouts.first_byte
        )
        # Listings are small; a hung one must not hold the first requests for minutes.
        self._listing_timeout = aiohttp.ClientTimeout(
            total=_LISTING_TIMEOUT, sock_connect=timeouts.connect
        )
        # Stream reads are bounded per event below, so aiohttp's own read timeout is off.
        self._stream_timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeouts.connect)

    async def converse(self, model_id: str, request: Mapping[str, Any]) -> dict[str, Any]:
        url = f"{self._endpoints.runtime}/model/{encode_path_segment(model_id)}/converse"
        result = await self._request_json("POST", url, request)
        if not isinstance(result, dict):
            raise UpstreamError("Bedrock returned a Converse response that is not an object")
        return result

    async def converse_stream(
        self, model_id: str, request: Mapping[str, Any]
    ) -> AsyncIterator[list[StreamEvent]]:
        """Yield the events decoded from each read, as soon as it is decoded (one read often
        holds several, and relaying them together saves a write per event). Raises a
        ``GatewayError`` for upstream failures, after yielding the events that preceded it."""
        url = f"{self._endpoints.runtime}/model/{encode_path_segment(model_id)}/converse-stream"
        body = _dump(request)
        headers = self._signed("POST", url, body, accept="application/vnd.amazon.eventstream")
        try:
            async with asyncio.timeout(self._timeouts.first_byte):
                response = await self._session.post(
                    _exact(url), data=body, headers=headers, timeout=self._stream_timeout
                )
        except TimeoutError as exc:
            raise UpstreamTimeout("Bedrock did not answer in time") from exc
        except aiohttp.ClientError as exc:
            raise _unreachable(exc) from exc
        async with response:
            if response.status >= 300:
                raise error_from_response(response.status, response.headers, await response.read())
            decoder = EventStreamDecoder()
            async for batch in self._decode_stream(response, decoder):
                yield batch

    async def _decode_stream(
        self, response: aiohttp.ClientResponse, decoder: EventStreamDecoder
    ) -> AsyncIterator[list[StreamEvent]]:
        idle = self._timeouts.stream_idle
        content = response.content
        while True:
            try:
                async with asyncio.timeout(idle):
                    chunk = await content.readany()
            except TimeoutError as exc:
                raise UpstreamTimeout(f"Bedrock's stream was silent for {idle:g}s") from exc
            except aiohttp.ClientError as exc:
                raise UpstreamError("the connection to Bedrock broke mid-stream") from exc
            if not chunk:
                if decoder.pending_bytes:
                    raise UpstreamError("Bedrock's stream ended inside an event")
                return
            try:
                decoder.feed(chunk)
            except EventStreamError as exc:
                raise UpstreamError(f"Bedrock sent a malformed event stream: {exc}") from exc
            batch: list[StreamEvent] = []
            for message in decoder.messages():
                if message.message_type == "event":
                    event_type = message.header(":event-type") or ""
                    batch.append(StreamEvent(event_type, _load_object(message.payload)))
                    continue
                if batch:
                    yield batch
                raise _stream_error(message)
            if batch:
                yield batch

    async def invoke_model(self, model_id: str, body: Mapping[str, Any]) -> InvokeResult:
        url = f"{self._endpoints.runtime}/model/{encode_path_segment(model_id)}/invoke"
        payload = _dump(body)
        headers = self._signed("POST", url, payload, accept=_JSON)
        try:
            async with self._session.post(
                _exact(url), data=payload, headers=headers, timeout=self._plain_timeout
            ) as response:
                raw = await response.read()
                if response.status >= 300:
                    raise error_from_response(response.status, response.headers, raw)
                tokens = response.headers.get("X-Amzn-Bedrock-Input-Token-Count")
        except TimeoutError as exc:
            raise UpstreamTimeout("Bedrock did not answer in time") from exc
        except aiohttp.ClientError as exc:
            raise _unreachable(exc) from exc
        return InvokeResult(_load_any(raw), int(tokens) if tokens and tokens.isdigit() else None)

    async def list_foundation_models(self) -> list[dict[str, Any]]:
        result = await self._request_json(
            "GET", f"{self._endpoints.control}/foundation-models", limits=self._listing_timeout
        )
        return _list_of_objects(result, "modelSummaries")

    async def list_inference_profiles(self, profile_type: str) -> list[dict[str, Any]]:
        summaries: list[dict[str, Any]] = []
        next_token: str | None = None
        while True:
            # The member is typeEquals, but on the wire its query name is "type".
            query = {"type": profile_type, "maxResults": "1000"}
            if next_token:
                query["nextToken"] = next_token
            url = f"{self._endpoints.control}/inference-profiles?{urlencode(query)}"
            result = await self._request_json("GET", url, limits=self._listing_timeout)
            summaries.extend(_list_of_objects(result, "inferenceProfileSummaries"))
            next_token = result.get("nextToken") if isinstance(result, dict) else None
            if not next_token:
                return summaries

    async def _request_json(
        self,
        method: str,
        url: str,
        request: Mapping[str, Any] | None = None,
        *,
        limits: aiohttp.ClientTimeout | None = None,
    ) -> Any:
        body = _dump(request) if request is not None else b""
        headers = self._signed(method, url, body, accept=_JSON)
        try:
            async with self._session.request(
                method,
                _exact(url),
                data=body or None,
                headers=headers,
                timeout=limits or self._plain_timeout,
            ) as response:
                raw = await response.read()
                if response.status >= 300:
                    raise error_from_response(response.status, response.headers, raw)
        except TimeoutError as exc:
            raise UpstreamTimeout("Bedrock did not answer in time") from exc
        except aiohttp.ClientError as exc:
            raise _unreachable(exc) from exc
        return _load_any(raw)

    def _signed(self, method: str, url: str, body: bytes, *, accept: str) -> dict[str, str]:
        headers = {"Accept": accept}
        if body:
            headers["Content-Type"] = _JSON
        return sign_headers(
            method,
            url,
            headers,
            body,
            credentials=self._credentials(),
            region=self._region,
            service=SIGNING_NAME,
        )


def _stream_error(message: EventStreamMessage) -> GatewayError:
    if message.message_type == "exception":
        exception_type = message.header(":exception-type") or "internalServerException"
        return error_from_stream_exception(exception_type, message.payload)
    code = message.header(":error-code") or "InternalServerException"
    text = message.header(":error-message") or ""
    return error_from_stream_exception(code, json.dumps({"message": text}).encode())


def _exact(url: str) -> URL:
    # yarl would otherwise decode "%3A" to ":" on the wire, and Bedrock would then compute a
    # different canonical path than the one we signed.
    return URL(url, encoded=True)


def _dump(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _load_any(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else {}
    except ValueError as exc:
        raise UpstreamError("Bedrock returned a body that is not JSON") from exc


def _load_object(raw: bytes) -> dict[str, Any]:
    value = _load_any(raw)
    if not isinstance(value, dict):
        raise UpstreamError("Bedrock sent an event whose payload is not an object")
    return value


def _list_of_objects(result: Any, member: str) -> list[dict[str, Any]]:
    items = result.get(member) if isinstance(result, dict) else None
    if not isinstance(items, list):
        raise UpstreamError(f"Bedrock's listing lacks {member}")
    return [item for item in items if isinstance(item, dict)]


def _unreachable(exc: aiohttp.ClientError) -> UpstreamError:
    logger.debug("cannot reach Bedrock: %s", exc)
    return UpstreamError(f"cannot reach Bedrock: {type(exc).__name__}")
