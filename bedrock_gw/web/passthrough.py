"""``/bedrock/...``: Bedrock's own runtime API, for clients that already speak it.

A client points its Bedrock runtime endpoint at ``https://gateway/bedrock`` and sends a gateway
key as a Bedrock API key (``AWS_BEARER_TOKEN_BEDROCK``, i.e. ``Authorization: Bearer <key>``).
The gateway checks the key, admits the call under the key's limits, forwards it signed with
its own AWS credentials, and relays Bedrock's answer byte for byte as it arrives, event streams
included. Usage is read from a copy of the bytes on the way. No operation is listed here, so
operations Bedrock adds later pass through as they are.

Refusals by the gateway itself are answered in Bedrock's error shape (``x-amzn-ErrorType``),
so the client's SDK raises its usual exceptions (``ThrottlingException`` ...).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import aiohttp
from aiohttp import web

from bedrock_gw.bedrock.forward import response_headers
from bedrock_gw.errors import GatewayError, NotFound, ServiceUnavailable
from bedrock_gw.governance.governor import Lease
from bedrock_gw.governance.observe import UsageObserver
from bedrock_gw.governance.usage import estimate_tokens
from bedrock_gw.web.admission import admit
from bedrock_gw.web.metrics import route_of
from bedrock_gw.web.state import CATALOG, FORWARDER, LIVE, METRICS, TRACE

__all__ = ["PREFIX", "bedrock_passthrough", "runtime_target"]

logger = logging.getLogger(__name__)

PREFIX = "/bedrock"


def runtime_target(path: str, body: Any) -> tuple[str, str]:
    """``(model, operation)`` of a runtime path: ``/model/{id}/converse-stream`` gives the
    unquoted id and ``converse-stream``; other paths (guardrails, async invocations) give the
    body's ``modelId`` if it has one, else the first path segment, and that segment."""
    parts = path.split("/")
    if len(parts) >= 4 and parts[1] == "model" and parts[2]:
        return unquote(parts[2]), parts[3]
    operation = parts[1] if len(parts) > 1 else ""
    model = body.get("modelId") if isinstance(body, Mapping) else None
    return (model if isinstance(model, str) and model else operation), operation


def max_output_tokens(body: Any) -> int | None:
    """The output cap a runtime request sets, in the shapes Converse and the models use."""
    if not isinstance(body, Mapping):
        return None
    config = body.get("inferenceConfig")
    candidates = [body.get("max_tokens")]
    if isinstance(config, Mapping):
        candidates += [config.get("maxTokens"), config.get("max_new_tokens")]
    for value in candidates:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


async def bedrock_passthrough(request: web.Request) -> web.StreamResponse:
    if not request.app[LIVE].settings.passthrough.enabled:
        raise NotFound("the Bedrock passthrough is off (passthrough.enabled)")
    tail = request.raw_path[len(PREFIX) :] or "/"
    raw = await request.read()  # bounded by server.max_body_bytes; the signature covers it
    body = _json(raw, request.headers.get("Content-Type", ""))
    model, operation = runtime_target(tail.partition("?")[0], body)
    streaming = operation.endswith("-stream")
    with admit(
        request,
        model=model,
        names=(model, *await _base_ids(request, model)),
        input_tokens=estimate_tokens(body) if body is not None else -(-len(raw) // 4),
        max_output_tokens=max_output_tokens(body),
        stream=streaming,
        api="bedrock",
    ) as lease:
        upstream = await request.app[FORWARDER].send(request.method, tail, request.headers, raw)
        async with upstream:
            return await _relay(request, upstream, lease, streaming=streaming)


async def _relay(
    request: web.Request, upstream: aiohttp.ClientResponse, lease: Lease, *, streaming: bool
) -> web.StreamResponse:
    trace = request[TRACE]
    if upstream.status >= 300:
        trace.upstream_error = _error_code(upstream.headers, upstream.status)
    response = web.StreamResponse(
        status=upstream.status, reason=upstream.reason, headers=response_headers(upstream.headers)
    )
    if upstream.content_length is not None:
        response.content_length = upstream.content_length  # else chunked, as Bedrock sent it
    observer = UsageObserver(upstream.headers.get("Content-Type", ""), upstream.headers)
    await response.prepare(request)
    first = True
    try:
        async for chunk in request.app[FORWARDER].chunks(upstream):
            observer.feed(chunk)
            lease.output_progress(observer.output_tokens)
            await response.write(chunk)
            if first and streaming:
                first = False
                request.app[METRICS].first_token.labels(
                    route_of(request), trace.model or ""
                ).observe(time.monotonic() - trace.started)
    except GatewayError as error:
        # The status is sent: cut the connection, so the client sees a truncated body rather
        # than one that looks complete.
        trace.upstream_error = trace.upstream_error or error.upstream_code or error.code
        logger.info("passthrough: Bedrock's response broke off: %s", error.message)
        if request.transport is not None:
            request.transport.abort()
        return response
    usage = observer.finish()
    if usage is not None:
        lease.settle(usage)
        trace.prompt_tokens = usage.input + usage.cache_read + usage.cache_write
        trace.completion_tokens = usage.output
    await response.write_eof()
    return response


async def _base_ids(request: web.Request, model: str) -> tuple[str, ...]:
    """The base model behind an id the catalogue knows (for model patterns and prices)."""
    with contextlib.suppress(ServiceUnavailable):
        entry = (await request.app[CATALOG].entries()).get(model)
        if entry is not None:
            return (entry.bedrock_id, entry.base_model_id)
    return ()


def _json(raw: bytes, content_type: str) -> Any:
    if not raw or "json" not in content_type:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


def _error_code(headers: Mapping[str, str], status: int) -> str:
    # "ThrottlingException:http://internal.amazon.com/coral/..." and "ns#Code" both occur.
    raw = headers.get("x-amzn-ErrorType", "")
    code = raw.split(":", 1)[0].rsplit("#", 1)[-1]
    return code or f"HTTP{status}"
