"""``POST /v1/chat/completions``: plain and streamed."""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import AsyncGenerator
from typing import Any

from aiohttp import web

from bedrock_gw.bedrock.client import StreamEvent
from bedrock_gw.bedrock.converse_types import ConverseRequest
from bedrock_gw.errors import GatewayError, InvalidRequest, UpstreamError
from bedrock_gw.governance.governor import Lease
from bedrock_gw.governance.observe import delta_chars
from bedrock_gw.governance.usage import estimate_tokens, usage_from_converse
from bedrock_gw.models.capabilities import Capabilities, capabilities_for
from bedrock_gw.models.listing import ModelEntry
from bedrock_gw.openai.chat_request import ChatCompletionRequest
from bedrock_gw.translate.chat_request import ChatOptions, to_converse
from bedrock_gw.translate.chat_response import (
    ChunkTranslator,
    ResponseOptions,
    converse_as_stream_events,
    to_chat_completion,
)
from bedrock_gw.translate.content import ContentLimits
from bedrock_gw.web.admission import admit, model_names
from bedrock_gw.web.body import read_model
from bedrock_gw.web.images import fetch_remote_images, remote_image_urls
from bedrock_gw.web.metrics import route_of
from bedrock_gw.web.sse import EventStream
from bedrock_gw.web.state import (
    BEDROCK,
    CATALOG,
    HTTP_CLIENT,
    LIVE,
    METRICS,
    STREAMS,
    TRACE,
    RequestTrace,
)

__all__ = ["chat_completions"]

logger = logging.getLogger(__name__)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    body = await read_model(request, ChatCompletionRequest)
    trace = request[TRACE]
    trace.model = body.model
    entry = await request.app[CATALOG].lookup(body.model)
    if entry.kind != "chat":
        raise InvalidRequest(
            f"'{body.model}' is an embedding model; use /v1/embeddings", param="model"
        )
    lease = admit(
        request,
        model=body.model,
        names=model_names(entry),
        input_tokens=estimate_tokens(body.model_dump(mode="json", exclude_none=True)),
        max_output_tokens=body.max_completion_tokens or body.max_tokens,
        stream=bool(body.stream),
        api="openai",
    )
    with lease:
        return await _complete(request, body, entry, lease)


async def _complete(
    request: web.Request, body: ChatCompletionRequest, entry: ModelEntry, lease: Lease
) -> web.StreamResponse:
    trace = request[TRACE]
    settings = request.app[LIVE].settings
    caps = capabilities_for(entry.base_model_id)
    plan = to_converse(body, await _options(request, body, entry, caps))
    response_options = ResponseOptions(
        json_tool=plan.json_tool, think_tags=settings.chat.reasoning_output == "think_tags"
    )
    completion_id = f"chatcmpl-{secrets.token_hex(12)}"
    created = int(time.time())
    bedrock = request.app[BEDROCK]
    if not body.stream:
        response = await bedrock.converse(entry.bedrock_id, plan.body)
        lease.settle(usage_from_converse(response.get("usage")))
        completion = to_chat_completion(
            response,
            model=body.model,
            completion_id=completion_id,
            created=created,
            options=response_options,
        )
        usage = completion["usage"]
        trace.prompt_tokens = usage["prompt_tokens"]
        trace.completion_tokens = usage["completion_tokens"]
        return web.json_response(completion)
    translator = ChunkTranslator(
        model=body.model,
        completion_id=completion_id,
        created=created,
        include_usage=bool(body.stream_options and body.stream_options.include_usage),
        options=response_options,
    )
    streamable = entry.streaming and (caps.tool_streaming or "toolConfig" not in plan.body)
    events = _events(request, entry, plan.body, streamable=streamable)
    return await _relay(request, events, _Meter(translator, lease))


async def _options(
    request: web.Request, body: ChatCompletionRequest, entry: ModelEntry, caps: Capabilities
) -> ChatOptions:
    chat = request.app[LIVE].settings.chat
    fetched: dict[str, tuple[str, bytes]] = {}
    urls = remote_image_urls(body)
    if urls and chat.fetch_remote_images:
        fetched = await fetch_remote_images(
            request.app[HTTP_CLIENT],
            urls,
            max_bytes=chat.max_image_bytes,
            time_limit=chat.remote_image_timeout,
        )
    limits = ContentLimits(
        max_image_bytes=chat.max_image_bytes,
        max_document_bytes=chat.max_document_bytes,
        images_allowed=caps.images and "IMAGE" in entry.input_modalities,
        documents_allowed=caps.documents,
        fetched_images=fetched,
    )
    return ChatOptions(
        capabilities=caps,
        content=limits,
        prompt_caching=chat.prompt_caching,
        reasoning_budgets={
            "low": chat.reasoning_budget_low,
            "medium": chat.reasoning_budget_medium,
            "high": chat.reasoning_budget_high,
        },
    )


async def _events(
    request: web.Request, entry: ModelEntry, converse: ConverseRequest, *, streamable: bool
) -> AsyncGenerator[list[StreamEvent], None]:
    bedrock = request.app[BEDROCK]
    if streamable:
        async for batch in bedrock.converse_stream(entry.bedrock_id, converse):
            yield batch
        return
    # A model that cannot stream (or cannot stream tool use) still gets a stream: one plain
    # call replayed as events.
    response = await bedrock.converse(entry.bedrock_id, converse)
    yield [StreamEvent(kind, payload) for kind, payload in converse_as_stream_events(response)]


class _Meter:
    """Translates a stream's events and tells the lease what they used, as they arrive."""

    def __init__(self, translator: ChunkTranslator, lease: Lease) -> None:
        self.translator = translator
        self._lease = lease
        self._chars = 0

    def chunks(self, batch: list[StreamEvent]) -> list[dict[str, Any]]:
        for event in batch:
            if event.type == "metadata":
                self._lease.settle(usage_from_converse(event.payload.get("usage")))
            else:
                self._chars += delta_chars(event.type, event.payload)
        if self._chars:
            self._lease.output_progress(-(-self._chars // 4))
        translate = self.translator.on_event
        return [chunk for event in batch for chunk in translate(event.type, event.payload)]


async def _relay(
    request: web.Request,
    events: AsyncGenerator[list[StreamEvent], None],
    meter: _Meter,
) -> web.StreamResponse:
    trace = request[TRACE]
    try:
        # Errors up to the first event are plain HTTP errors (a throttled stream is a 429).
        first = await anext(events, None)
        if first is None:
            raise UpstreamError("Bedrock's stream ended before any event")
        stream = EventStream(request, keepalive=request.app[LIVE].settings.server.stream_keepalive)
        request.app[STREAMS].add(stream)
        await stream.open()
        try:
            await stream.send(meter.chunks(first))
            first_token = request.app[METRICS].first_token
            first_token.labels(route_of(request), trace.model or "").observe(
                time.monotonic() - trace.started
            )
            async for batch in events:
                await stream.send(meter.chunks(batch))
            await stream.send_done()
        except GatewayError as error:
            # After the first event the status is sent; the error goes in the stream, no [DONE].
            trace.extra["error"] = error.upstream_code or error.code or error.error_type
            trace.upstream_error = error.upstream_code
            logger.info("stream failed after it began: %s", error.message)
            with contextlib.suppress(ConnectionResetError):
                await stream.send_error(error)
        except ConnectionResetError:
            trace.extra["client"] = "disconnected"
        finally:
            _record_usage(trace, meter.translator)
            await stream.close()
        return stream.response
    finally:
        # Closing the generator closes the upstream response (and its connection) at once.
        await events.aclose()


def _record_usage(trace: RequestTrace, translator: ChunkTranslator) -> None:
    if translator.usage is not None:
        trace.prompt_tokens = translator.usage["prompt_tokens"]
        trace.completion_tokens = translator.usage["completion_tokens"]
