"""Converse response / stream events -> OpenAI chat completion / chunks. Pure, no I/O.

``ChunkTranslator`` is a small state machine in the spirit of h11: feed it one ConverseStream
event at a time and it returns the OpenAI chunks that event produces, in order.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bedrock_gw.errors import UpstreamError
from bedrock_gw.translate.reasoning import reasoning_detail

__all__ = [
    "FINISH_REASONS",
    "ChunkTranslator",
    "ResponseOptions",
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

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


@dataclass(frozen=True, slots=True)
class ResponseOptions:
    json_tool: str | None = None
    """A forced tool whose input is the answer (``response_format``): returned as content."""
    think_tags: bool = False
    """Put reasoning into ``content`` between ``<think>`` tags instead of ``reasoning_content``."""


def finish_reason(stop_reason: object, options: ResponseOptions = ResponseOptions()) -> str:
    if not isinstance(stop_reason, str):
        return "stop"
    if stop_reason == "tool_use" and options.json_tool is not None:
        return "stop"
    return FINISH_REASONS.get(stop_reason, "stop")


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
    response: Mapping[str, Any],
    *,
    model: str,
    completion_id: str,
    created: int,
    options: ResponseOptions = ResponseOptions(),
) -> dict[str, Any]:
    """The OpenAI ``chat.completion`` object for a Converse response."""
    texts: list[str] = []
    reasoning: list[str] = []
    details: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for block in _output_blocks(response):
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif isinstance(block.get("reasoningContent"), Mapping):
            detail = reasoning_detail(block["reasoningContent"], len(details))
            if detail is not None:
                details.append(detail)
                reasoning.append(detail.get("text", ""))
        elif isinstance(block.get("toolUse"), Mapping):
            tool_use = block["toolUse"]
            arguments = json.dumps(tool_use.get("input") or {}, ensure_ascii=False)
            if tool_use.get("name") == options.json_tool:
                texts.append(arguments)
            else:
                calls.append(_tool_call(tool_use, arguments))
    content = "".join(texts)
    reply: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if reasoning and options.think_tags:
        reply["content"] = f"{THINK_OPEN}{''.join(reasoning)}{THINK_CLOSE}{content}"
    elif reasoning:
        reply["reasoning_content"] = "".join(reasoning)
    if details:
        reply["reasoning_details"] = details
    if calls:
        reply["tool_calls"] = calls
        if not content:
            reply["content"] = None
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
                "finish_reason": finish_reason(response.get("stopReason"), options),
            }
        ],
        "usage": to_openai_usage(response.get("usage")),
    }


def _output_blocks(response: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    output = response.get("output")
    message = output.get("message") if isinstance(output, Mapping) else None
    content = message.get("content") if isinstance(message, Mapping) else None
    if not isinstance(content, list):
        raise UpstreamError("Bedrock's Converse response has no output message")
    return [block for block in content if isinstance(block, Mapping)]


def _tool_call(tool_use: Mapping[str, Any], arguments: str) -> dict[str, Any]:
    return {
        "id": str(tool_use.get("toolUseId", "")),
        "type": "function",
        "function": {"name": str(tool_use.get("name", "")), "arguments": arguments},
    }


def converse_as_stream_events(response: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The ConverseStream events equivalent to a plain Converse response (for models that
    cannot stream), so that one translator serves both."""
    events: list[tuple[str, dict[str, Any]]] = [("messageStart", {"role": "assistant"})]
    for index, block in enumerate(_output_blocks(response)):
        start: dict[str, Any] | None = None
        deltas: list[dict[str, Any]] = []
        if isinstance(block.get("text"), str):
            deltas.append({"text": block["text"]})
        elif isinstance(block.get("toolUse"), Mapping):
            tool_use = block["toolUse"]
            start = {
                "toolUse": {"toolUseId": tool_use.get("toolUseId"), "name": tool_use.get("name")}
            }
            deltas.append({"toolUse": {"input": json.dumps(tool_use.get("input") or {})}})
        elif isinstance(block.get("reasoningContent"), Mapping):
            deltas.extend(_reasoning_deltas(block["reasoningContent"]))
        if start is not None:
            events.append(("contentBlockStart", {"contentBlockIndex": index, "start": start}))
        events.extend(
            ("contentBlockDelta", {"contentBlockIndex": index, "delta": delta}) for delta in deltas
        )
        events.append(("contentBlockStop", {"contentBlockIndex": index}))
    events.append(("messageStop", {"stopReason": response.get("stopReason", "end_turn")}))
    events.append(("metadata", {"usage": response.get("usage") or {}}))
    return events


def _reasoning_deltas(block: Mapping[str, Any]) -> list[dict[str, Any]]:
    text_part = block.get("reasoningText")
    if isinstance(text_part, Mapping):
        deltas: list[dict[str, Any]] = [{"reasoningContent": {"text": text_part.get("text", "")}}]
        if isinstance(text_part.get("signature"), str):
            deltas.append({"reasoningContent": {"signature": text_part["signature"]}})
        return deltas
    if isinstance(block.get("redactedContent"), str):
        return [{"reasoningContent": {"redactedContent": block["redactedContent"]}}]
    return []


@dataclass(slots=True)
class _Block:
    """What the translator remembers about one open content block of the stream."""

    kind: str  # "text", "reasoning", "tool", "json"
    tool_index: int = -1
    arguments_sent: bool = False
    reasoning_text: list[str] = field(default_factory=list)
    signature: str | None = None
    redacted: str | None = None


class ChunkTranslator:
    """Turns ConverseStream events into ``chat.completion.chunk`` objects."""

    def __init__(
        self,
        *,
        model: str,
        completion_id: str,
        created: int,
        include_usage: bool,
        options: ResponseOptions = ResponseOptions(),
    ) -> None:
        self._model = model
        self._id = completion_id
        self._created = created
        self._include_usage = include_usage
        self._options = options
        self._started = False
        self._blocks: dict[int, _Block] = {}
        self._tool_calls = 0
        self._reasoning_details = 0
        self._think_open = False
        self.usage: dict[str, Any] | None = None
        """OpenAI usage once the ``metadata`` event arrived (for logs even when not sent)."""
        self.finish_reason: str | None = None
        self._handlers: dict[str, Callable[[Mapping[str, Any]], list[dict[str, Any]]]] = {
            "messageStart": self._message_start,
            "contentBlockStart": self._content_block_start,
            "contentBlockDelta": self._content_block_delta,
            "contentBlockStop": self._content_block_stop,
            "messageStop": self._message_stop,
            "metadata": self._metadata,
        }

    def on_event(self, event_type: str, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        handler = self._handlers.get(event_type)
        # Unknown events are ignored so that a new Bedrock event type never breaks a stream.
        return handler(payload) if handler is not None else []

    def _message_start(self, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        return self._start()

    def _content_block_start(self, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        return self._block_start(_index(payload), payload.get("start"))

    def _content_block_delta(self, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        return self._delta(_index(payload), payload.get("delta"))

    def _content_block_stop(self, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        return self._block_stop(_index(payload))

    def _message_stop(self, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        self.finish_reason = finish_reason(payload.get("stopReason"), self._options)
        return [*self._start(), *self._close_think(), self._chunk({}, self.finish_reason)]

    def _metadata(self, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        self.usage = to_openai_usage(payload.get("usage"))
        return [self._usage_chunk(self.usage)] if self._include_usage else []

    def _start(self) -> list[dict[str, Any]]:
        if self._started:
            return []
        self._started = True
        return [self._chunk({"role": "assistant", "content": ""}, None)]

    def _block_start(self, index: int, start: object) -> list[dict[str, Any]]:
        chunks = self._start()
        tool_use = start.get("toolUse") if isinstance(start, Mapping) else None
        if not isinstance(tool_use, Mapping):
            return chunks
        if tool_use.get("name") == self._options.json_tool:
            self._blocks[index] = _Block("json")
            return chunks
        block = _Block("tool", tool_index=self._tool_calls)
        self._tool_calls += 1
        self._blocks[index] = block
        call = {
            "index": block.tool_index,
            "id": str(tool_use.get("toolUseId", "")),
            "type": "function",
            "function": {"name": str(tool_use.get("name", "")), "arguments": ""},
        }
        return [*chunks, *self._close_think(), self._chunk({"tool_calls": [call]}, None)]

    def _delta(self, index: int, delta: object) -> list[dict[str, Any]]:
        if not isinstance(delta, Mapping):
            return []
        chunks = self._start()
        block = self._blocks.get(index)
        if isinstance(delta.get("text"), str) and delta["text"]:
            chunks.extend(self._close_think())
            chunks.append(self._chunk({"content": delta["text"]}, None))
        elif isinstance(delta.get("toolUse"), Mapping) and block is not None:
            fragment = str(delta["toolUse"].get("input", ""))
            if fragment and block.kind == "json":
                chunks.append(self._chunk({"content": fragment}, None))
            elif fragment:
                block.arguments_sent = True
                call = {"index": block.tool_index, "function": {"arguments": fragment}}
                chunks.append(self._chunk({"tool_calls": [call]}, None))
        elif isinstance(delta.get("reasoningContent"), Mapping):
            chunks.extend(self._reasoning_delta(index, delta["reasoningContent"]))
        return chunks

    def _reasoning_delta(self, index: int, part: Mapping[str, Any]) -> list[dict[str, Any]]:
        block = self._blocks.setdefault(index, _Block("reasoning"))
        if isinstance(part.get("signature"), str):
            block.signature = part["signature"]
        if isinstance(part.get("redactedContent"), str):
            block.redacted = part["redactedContent"]
        text = part.get("text")
        if not isinstance(text, str) or not text:
            return []
        block.reasoning_text.append(text)
        if not self._options.think_tags:
            return [self._chunk({"reasoning_content": text}, None)]
        prefix = "" if self._think_open else THINK_OPEN
        self._think_open = True
        return [self._chunk({"content": prefix + text}, None)]

    def _block_stop(self, index: int) -> list[dict[str, Any]]:
        block = self._blocks.pop(index, None)
        if block is None:
            return []
        if block.kind == "tool" and not block.arguments_sent:
            # OpenAI clients parse arguments as JSON: a call without input is "{}".
            call = {"index": block.tool_index, "function": {"arguments": "{}"}}
            return [self._chunk({"tool_calls": [call]}, None)]
        if block.kind == "reasoning":
            source: dict[str, Any]
            if block.redacted is not None:
                source = {"redactedContent": block.redacted}
            else:
                text: dict[str, Any] = {"text": "".join(block.reasoning_text)}
                if block.signature is not None:
                    text["signature"] = block.signature
                source = {"reasoningText": text}
            detail = reasoning_detail(source, self._reasoning_details)
            self._reasoning_details += 1
            if detail is not None:
                return [self._chunk({"reasoning_details": [detail]}, None)]
        return []

    def _close_think(self) -> list[dict[str, Any]]:
        if not self._think_open:
            return []
        self._think_open = False
        return [self._chunk({"content": THINK_CLOSE}, None)]

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


def _index(payload: Mapping[str, Any]) -> int:
    value = payload.get("contentBlockIndex")
    return value if isinstance(value, int) else 0


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
