"""Model answers: the default echo, token counts, and Converse / ConverseStream shapes."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from .behaviours import Reply, ToolUse

Event = tuple[str, dict[str, Any]]

_PIECES = re.compile(r"\s*\S+")


def _block_texts(block: dict[str, Any]) -> list[str]:
    if "text" in block:
        return [block["text"]]
    if "toolResult" in block:
        return [c["text"] for c in block["toolResult"].get("content", []) if "text" in c]
    return []


def last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "user":
            return " ".join(t for b in message["content"] for t in _block_texts(b))
    return ""


def count_words(text: str) -> int:
    return len(text.split())


def request_words(body: dict[str, Any]) -> int:
    """Input tokens as the fake counts them: words across all messages and the system."""
    texts = [
        t for m in body.get("messages", []) for b in m.get("content", []) for t in _block_texts(b)
    ]
    texts += [b["text"] for b in body.get("system", []) if "text" in b]
    return sum(count_words(t) for t in texts)


def echo_reply(body: dict[str, Any]) -> Reply:
    return Reply(text="echo: " + last_user_text(body))


def tool_use_id(use: ToolUse, index: int) -> str:
    if use.tool_use_id:
        return use.tool_use_id
    # Stable ids so tests can assert on them; shaped like Bedrock's tooluse_... ids.
    digest = hashlib.sha256(f"{index}:{use.name}".encode()).hexdigest()[:22]
    return f"tooluse_{digest}"


def stop_reason(reply: Reply) -> str:
    if reply.stop_reason is not None:
        return reply.stop_reason
    return "tool_use" if reply.tool_uses else "end_turn"


def usage(reply: Reply, body: dict[str, Any]) -> dict[str, int]:
    inp = reply.input_tokens if reply.input_tokens is not None else request_words(body)
    out = reply.output_tokens
    if out is None:
        out = count_words(reply.text) + count_words(reply.reasoning or "")
    return {"inputTokens": inp, "outputTokens": out, "totalTokens": inp + out}


def _content(reply: Reply) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = []
    if reply.reasoning is not None:
        content.append(
            {
                "reasoningContent": {
                    "reasoningText": {"text": reply.reasoning, "signature": "fake-signature"}
                }
            }
        )
    if reply.text:
        content.append({"text": reply.text})
    for i, use in enumerate(reply.tool_uses):
        content.append(
            {"toolUse": {"toolUseId": tool_use_id(use, i), "name": use.name, "input": use.input}}
        )
    return content


def converse_response(reply: Reply, body: dict[str, Any], latency_ms: int) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": _content(reply)}},
        "stopReason": stop_reason(reply),
        "usage": usage(reply, body),
        "metrics": {"latencyMs": latency_ms},
    }


def split_pieces(text: str) -> list[str]:
    """Word-sized deltas that concatenate back to ``text`` exactly."""
    pieces = _PIECES.findall(text)
    tail = text[len("".join(pieces)) :]
    if tail:
        pieces.append(tail)
    return pieces


def stream_events(reply: Reply, body: dict[str, Any], latency_ms: int) -> list[Event]:
    """The ConverseStream event sequence Bedrock sends for this reply."""
    events: list[Event] = [("messageStart", {"role": "assistant"})]
    index = 0
    if reply.reasoning is not None:
        for piece in split_pieces(reply.reasoning):
            events.append(
                (
                    "contentBlockDelta",
                    {"contentBlockIndex": index, "delta": {"reasoningContent": {"text": piece}}},
                )
            )
        events.append(
            (
                "contentBlockDelta",
                {
                    "contentBlockIndex": index,
                    "delta": {"reasoningContent": {"signature": "fake-signature"}},
                },
            )
        )
        events.append(("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    if reply.text or not reply.tool_uses:
        for piece in split_pieces(reply.text):
            events.append(
                ("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": piece}})
            )
        events.append(("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    for i, use in enumerate(reply.tool_uses):
        events.append(
            (
                "contentBlockStart",
                {
                    "contentBlockIndex": index,
                    "start": {"toolUse": {"toolUseId": tool_use_id(use, i), "name": use.name}},
                },
            )
        )
        # Arguments arrive as partial JSON strings; split so clients must join them.
        args = json.dumps(use.input, separators=(",", ":"))
        half = len(args) // 2
        for part in (args[:half], args[half:]):
            if part:
                events.append(
                    (
                        "contentBlockDelta",
                        {"contentBlockIndex": index, "delta": {"toolUse": {"input": part}}},
                    )
                )
        events.append(("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    events.append(("messageStop", {"stopReason": stop_reason(reply)}))
    events.append(("metadata", {"usage": usage(reply, body), "metrics": {"latencyMs": latency_ms}}))
    return events
