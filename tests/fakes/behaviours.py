"""Scripted behaviours a test queues for the fake's next runtime call."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ToolUse:
    name: str
    input: dict[str, Any] = field(default_factory=dict)
    tool_use_id: str | None = None


@dataclass
class Reply:
    """A model answer, for Converse or ConverseStream.

    ``stop_reason`` None means: ``tool_use`` when tool uses are given, else ``end_turn``.
    Token counts None mean: counted from the words of the request and of the reply.
    """

    text: str = ""
    stop_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning: str | None = None
    tool_uses: list[ToolUse] = field(default_factory=list)


@dataclass
class StreamEvents:
    """Raw ConverseStream events, sent as given (padding is added)."""

    events: list[tuple[str, dict[str, Any]]]
    delay: float = 0.0


@dataclass
class Error:
    """An HTTP error answer, before any stream starts."""

    status: int
    code: str
    message: str


@dataclass
class StreamException:
    """The echo stream, cut by an exception frame after ``after_events`` normal events."""

    after_events: int = 1
    exception_type: str = "throttlingException"
    message: str = "Too many requests, please wait before trying again."


@dataclass
class Slow:
    """Wait ``seconds`` before answering normally (to trip client timeouts)."""

    seconds: float


@dataclass
class Hang:
    """Never answer; the handler ends only when the client leaves or the fake closes."""


@dataclass
class Held:
    """Wait for ``release`` before answering with ``then`` (None: the echo reply).

    For ConverseStream with ``after_events``: send that many events first, then wait, then the
    rest, so a test can see what a client receives while the stream is still open.
    In process only (an event cannot cross the control endpoint).
    """

    release: asyncio.Event
    then: Reply | StreamEvents | None = None
    after_events: int = 0


Behaviour = Reply | StreamEvents | Error | StreamException | Slow | Hang | Held


def _tool_use(raw: dict[str, Any]) -> ToolUse:
    return ToolUse(
        name=raw["name"],
        input=raw.get("input", {}),
        tool_use_id=raw.get("tool_use_id", raw.get("toolUseId")),
    )


def behaviour_from_json(raw: dict[str, Any]) -> Behaviour:
    """Build a behaviour from the control endpoint's ``{"kind": ..., ...fields}`` body."""
    fields = dict(raw)
    kind = fields.pop("kind", None)
    if kind == "reply":
        fields["tool_uses"] = [_tool_use(t) for t in fields.get("tool_uses", [])]
        return Reply(**fields)
    if kind == "stream_events":
        events = [(str(e[0]), dict(e[1])) for e in fields.get("events", [])]
        return StreamEvents(events=events, delay=float(fields.get("delay", 0.0)))
    if kind == "error":
        return Error(**fields)
    if kind == "stream_exception":
        return StreamException(**fields)
    if kind == "slow":
        return Slow(**fields)
    if kind == "hang":
        return Hang()
    raise ValueError(f"unknown behaviour kind: {kind!r}")
