"""Converse response / stream events -> OpenAI chat completion / chunks. Pure, no I/O.

``ChunkTranslator`` is a small state machine in the spirit of h11: feed it one ConverseStream
event at a time and it returns the OpenAI chunks that event produces, in order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bedrock_gw.errors import UpstreamError

__all__ = [
    "FINISH_REASONS",
    "ChunkTranslator",
    "converse_as_stream_events",
    "to_chat_completion",
    "to_openai_usage",
]

FINISH_REASONS: Mapping[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
"""Bedrock ``stopReason`` -> OpenAI ``finish_reason``; anything else is reported as ``stop``."""


def finish_reason(stop_reason: object) -> str:
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def to_openai_usage(usage: Mapping[str, Any] | None) -> dict[str, Any]:
    usage = usage or {}
    cache_read = _int(usage.get("cacheReadInputTokens"))
    cache_write = _int(usage.get("cacheWriteInputTokens"))
    # Converse counts cached prompt tokens apart from inputTokens; OpenAI counts them in.
    prompt = _int(usage.get("inputTokens")) + cache_read + cache_write
    completion = _int(usage.get("outputTokens"))
    result: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cache_read or cache_write:
        result["prompt_tokens_details"] = {"cached_tokens": cache_read}
    return result


def to_chat_completion(
    response: Mapping[str, Any], *, model: str, completion_id: str, created: int
) -> dict[str, Any]:
    """The OpenAI ``chat.completion`` object for a Converse response."""
    output = response.get("output")
    message = output.get("message") if isinstance(output, Mapping) else None
    if not isinstance(message, Mapping) or not isinstance(message.get("content"), list):
        raise UpstreamError("Bedrock's Converse response has no output message")
    texts: list[str] = []
    reasoning: list[str] = []
    for block in message["content"]:
        if not isinstance(block, Mapping):
            continue
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        reasoning_text = _reasoning_text(block.get("reasoningContent"))
        if reasoning_text:
            reasoning.append(reasoning_text)
    reply: dict[str, Any] = {"role": "assistant", "content": "".join(texts), "refusal": None}
    if reasoning:
        reply["reasoning_content"] = "".join(reasoning)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": reply,
                "logprobs": None,
                "finish_reason": finish_reason(response.get("stopReason")),
            }
        ],
        "usage": to_openai_usage(response.get("usage")),
    }


def converse_as_stream_events(response: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The ConverseStream events equivalent to a plain Converse response (for models that
    cannot stream), so that one translator serves both."""
    output = response.get("output")
    message = output.get("message") if isinstance(output, Mapping) else None
    content = message.get("content") if isinstance(message, Mapping) else None
    if not isinstance(content, list):
        raise UpstreamError("Bedrock's Converse response has no output message")
    events: list[tuple[str, dict[str, Any]]] = [("messageStart", {"role": "assistant"})]
    for index, block in enumerate(content):
        if not isinstance(block, Mapping):
            continue
        if isinstance(block.get("text"), str):
            delta: dict[str, Any] = {"text": block["text"]}
        elif (reasoning := _reasoning_text(block.get("reasoningContent"))) != "":
            delta = {"reasoningContent": {"text": reasoning}}
        else:
            continue
        events.append(("contentBlockDelta", {"contentBlockIndex": index, "delta": delta}))
        events.append(("contentBlockStop", {"contentBlockIndex": index}))
    events.append(("messageStop", {"stopReason": response.get("stopReason", "end_turn")}))
    events.append(("metadata", {"usage": response.get("usage") or {}}))
    return events


class ChunkTranslator:
    """Turns ConverseStream events into ``chat.completion.chunk`` objects."""

    def __init__(
        self, *, model: str, completion_id: str, created: int, include_usage: bool
    ) -> None:
        self._model = model
        self._id = completion_id
        self._created = created
        self._include_usage = include_usage
        self._started = False
        self.usage: dict[str, Any] | None = None
        """OpenAI usage once the ``metadata`` event arrived (for logs even when not sent)."""
        self.finish_reason: str | None = None

    def on_event(self, event_type: str, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        if event_type == "messageStart":
            return self._start()
        if event_type == "contentBlockDelta":
            return self._delta(payload.get("delta"))
        if event_type == "messageStop":
            self.finish_reason = finish_reason(payload.get("stopReason"))
            return [*self._start(), self._chunk({}, self.finish_reason)]
        if event_type == "metadata":
            self.usage = to_openai_usage(payload.get("usage"))
            if self._include_usage:
                return [self._usage_chunk(self.usage)]
        # contentBlockStart/Stop carry nothing a text-only client sees; unknown events are
        # ignored so that a new Bedrock event type never breaks a stream.
        return []

    def _start(self) -> list[dict[str, Any]]:
        if self._started:
            return []
        self._started = True
        return [self._chunk({"role": "assistant", "content": ""}, None)]

    def _delta(self, delta: object) -> list[dict[str, Any]]:
        if not isinstance(delta, Mapping):
            return []
        chunks = self._start()
        text = delta.get("text")
        if isinstance(text, str) and text:
            chunks.append(self._chunk({"content": text}, None))
        reasoning = _reasoning_text(delta.get("reasoningContent"))
        if reasoning:
            chunks.append(self._chunk({"reasoning_content": reasoning}, None))
        return chunks

    def _chunk(self, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    def _usage_chunk(self, usage: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [],
            "usage": usage,
        }


def _reasoning_text(value: object) -> str:
    if isinstance(value, Mapping):
        text = value.get("text")
        if isinstance(text, str):
            return text
        nested = value.get("reasoningText")
        if isinstance(nested, Mapping) and isinstance(nested.get("text"), str):
            return str(nested["text"])
    return ""


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
