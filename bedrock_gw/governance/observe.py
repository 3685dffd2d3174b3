"""Reading usage out of Bedrock responses as they pass by, without changing a byte. Pure.

The native passthrough relays Bedrock's bytes unchanged; a ``UsageObserver`` is fed a copy of
each chunk. It decodes event streams on the side (ConverseStream's ``metadata`` event, the
``amazon-bedrock-invocationMetrics`` of InvokeModelWithResponseStream's chunks), keeps a copy of
a JSON body (Converse's ``usage``) and reads InvokeModel's token count headers. A body it cannot
make sense of is still relayed: the observer just stops looking.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
from collections.abc import Mapping
from typing import Any

from bedrock_gw.bedrock.eventstream import EventStreamDecoder, EventStreamError
from bedrock_gw.governance.usage import (
    TokenUsage,
    usage_from_converse,
    usage_from_headers,
    usage_from_invocation_metrics,
)

__all__ = ["UsageObserver", "delta_chars"]

logger = logging.getLogger(__name__)

_EVENTSTREAM = "application/vnd.amazon.eventstream"
# A JSON answer larger than this is relayed without being parsed for usage.
_MAX_JSON_COPY = 8 * 1024 * 1024


def delta_chars(event_type: str, payload: Mapping[str, Any]) -> int:
    """Characters of model output in one ConverseStream event (text, reasoning, tool input)."""
    if event_type != "contentBlockDelta":
        return 0
    delta = payload.get("delta")
    if not isinstance(delta, Mapping):
        return 0
    chars = 0
    text = delta.get("text")
    if isinstance(text, str):
        chars += len(text)
    reasoning = delta.get("reasoningContent")
    if isinstance(reasoning, Mapping) and isinstance(reasoning.get("text"), str):
        chars += len(reasoning["text"])
    tool = delta.get("toolUse")
    if isinstance(tool, Mapping) and isinstance(tool.get("input"), str):
        chars += len(tool["input"])
    return chars


class UsageObserver:
    def __init__(self, content_type: str, headers: Mapping[str, str]) -> None:
        self._header_usage = usage_from_headers(headers)
        self._decoder: EventStreamDecoder | None = None
        self._json: bytearray | None = None
        if content_type.startswith(_EVENTSTREAM):
            self._decoder = EventStreamDecoder()
        elif content_type.startswith("application/json"):
            self._json = bytearray()
        self._usage: TokenUsage | None = None
        self._chars = 0

    @property
    def output_tokens(self) -> int:
        """Estimated output tokens streamed so far (four characters to a token)."""
        return math.ceil(self._chars / 4)

    def feed(self, chunk: bytes) -> None:
        if self._decoder is not None:
            self._feed_events(self._decoder, chunk)
        elif self._json is not None:
            if len(self._json) + len(chunk) > _MAX_JSON_COPY:
                self._json = None
            else:
                self._json += chunk

    def finish(self) -> TokenUsage | None:
        """Bedrock's count for the whole response, if it gave one."""
        if self._header_usage is not None:
            return self._header_usage
        if self._json:
            try:
                body = json.loads(self._json)
            except ValueError:
                return None
            if isinstance(body, dict) and "usage" in body:
                return usage_from_converse(body["usage"])
        return self._usage

    def _feed_events(self, decoder: EventStreamDecoder, chunk: bytes) -> None:
        try:
            decoder.feed(chunk)
        except EventStreamError as exc:
            logger.debug("passthrough: not following a malformed event stream: %s", exc)
            self._decoder = None
            return
        for message in decoder.messages():
            if message.message_type != "event":
                continue
            try:
                payload = json.loads(message.payload) if message.payload else {}
            except ValueError:
                continue
            if isinstance(payload, dict):
                self._on_event(message.header(":event-type") or "", payload)

    def _on_event(self, event_type: str, payload: dict[str, Any]) -> None:
        if event_type == "metadata":  # ConverseStream
            self._usage = usage_from_converse(payload.get("usage"))
        elif event_type == "chunk":  # InvokeModelWithResponseStream: model-native JSON inside
            inner = _chunk_json(payload.get("bytes"))
            metrics = inner.get("amazon-bedrock-invocationMetrics")
            if metrics is not None:
                self._usage = usage_from_invocation_metrics(metrics)
            self._chars += _native_delta_chars(inner)
        else:
            self._chars += delta_chars(event_type, payload)


def _chunk_json(data: Any) -> dict[str, Any]:
    if not isinstance(data, str):
        return {}
    try:
        value = json.loads(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _native_delta_chars(chunk: Mapping[str, Any]) -> int:
    # Anthropic's content_block_delta and the outputText of Titan / Nova-style models.
    delta = chunk.get("delta")
    if isinstance(delta, Mapping) and isinstance(delta.get("text"), str):
        return len(delta["text"])
    text = chunk.get("outputText")
    return len(text) if isinstance(text, str) else 0
