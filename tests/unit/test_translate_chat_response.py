"""Converse responses and stream events -> OpenAI completions and chunks, table-driven."""

from __future__ import annotations

from typing import Any

import pytest

from bedrock_gw.errors import UpstreamError
from bedrock_gw.translate.chat_response import (
    ChunkTranslator,
    converse_as_stream_events,
    to_chat_completion,
    to_openai_usage,
)


def _response(
    content: list[dict[str, Any]], stop: str = "end_turn", **usage: int
) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5, **usage},
        "metrics": {"latencyMs": 10},
    }


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        pytest.param("end_turn", "stop", id="end_turn"),
        pytest.param("stop_sequence", "stop", id="stop_sequence"),
        pytest.param("max_tokens", "length", id="max_tokens"),
        pytest.param("tool_use", "tool_calls", id="tool_use"),
        pytest.param("guardrail_intervened", "content_filter", id="guardrail"),
        pytest.param("content_filtered", "content_filter", id="content_filtered"),
        pytest.param("something_new", "stop", id="unknown"),
    ],
)
def test_finish_reasons(stop: str, finish: str) -> None:
    """Every Bedrock stopReason maps to the documented OpenAI finish_reason."""
    completion = to_chat_completion(
        _response([{"text": "x"}], stop), model="m", completion_id="c", created=1
    )
    assert completion["choices"][0]["finish_reason"] == finish


def test_plain_completion_shape() -> None:
    """A Converse response becomes a complete chat.completion object."""
    completion = to_chat_completion(
        _response([{"text": "Hel"}, {"text": "lo"}]),
        model="my-model",
        completion_id="chatcmpl-1",
        created=7,
    )
    assert completion == {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 7,
        "model": "my-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


def test_reasoning_is_returned_apart() -> None:
    """Reasoning blocks come back as reasoning_content, not mixed into content."""
    completion = to_chat_completion(
        _response(
            [
                {"reasoningContent": {"reasoningText": {"text": "think", "signature": "s"}}},
                {"text": "ok"},
            ]
        ),
        model="m",
        completion_id="c",
        created=1,
    )
    message = completion["choices"][0]["message"]
    assert (message["content"], message["reasoning_content"]) == ("ok", "think")


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        pytest.param(
            {"inputTokens": 10, "outputTokens": 4},
            {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14},
            id="plain",
        ),
        pytest.param(
            {
                "inputTokens": 10,
                "outputTokens": 4,
                "cacheReadInputTokens": 100,
                "cacheWriteInputTokens": 5,
            },
            {
                "prompt_tokens": 115,
                "completion_tokens": 4,
                "total_tokens": 119,
                "prompt_tokens_details": {"cached_tokens": 100},
            },
            id="cached",
        ),
        pytest.param(
            None, {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}, id="missing"
        ),
    ],
)
def test_usage(usage: dict[str, int] | None, expected: dict[str, Any]) -> None:
    """Converse token usage maps to OpenAI usage, cached prompt tokens counted in."""
    assert to_openai_usage(usage) == expected


def test_missing_output_is_upstream_error() -> None:
    """A response without an output message is Bedrock's fault: 502, not a crash."""
    with pytest.raises(UpstreamError):
        to_chat_completion({"stopReason": "end_turn"}, model="m", completion_id="c", created=1)


EVENTS = [
    ("messageStart", {"role": "assistant", "p": "abc"}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hel"}}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "lo"}}),
    ("contentBlockStop", {"contentBlockIndex": 0}),
    ("messageStop", {"stopReason": "max_tokens"}),
    ("metadata", {"usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5}, "metrics": {}}),
]


def _deltas(include_usage: bool, events: list[tuple[str, dict[str, Any]]] = EVENTS) -> list[Any]:
    translator = ChunkTranslator(
        model="m", completion_id="c", created=1, include_usage=include_usage
    )
    chunks = [chunk for event in events for chunk in translator.on_event(*event)]
    for chunk in chunks:
        assert (chunk["id"], chunk["object"], chunk["model"], chunk["created"]) == (
            "c",
            "chat.completion.chunk",
            "m",
            1,
        )
    return [
        (c["choices"][0]["delta"], c["choices"][0]["finish_reason"])
        if c["choices"]
        else ("usage", c["usage"])
        for c in chunks
    ]


def test_stream_chunks_in_openai_order() -> None:
    """Role first, then content deltas, then the finish reason; no usage unless asked."""
    assert _deltas(include_usage=False) == [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "Hel"}, None),
        ({"content": "lo"}, None),
        ({}, "length"),
    ]


def test_stream_usage_chunk_when_asked() -> None:
    """With include_usage a last chunk carries usage and no choices."""
    assert _deltas(include_usage=True)[-1] == (
        "usage",
        {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    )


def test_stream_reasoning_deltas() -> None:
    """Reasoning deltas stream as reasoning_content; unknown events are ignored."""
    events = [
        ("messageStart", {"role": "assistant"}),
        (
            "contentBlockDelta",
            {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "hmm"}}},
        ),
        ("someFutureEvent", {"x": 1}),
        ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": "ok"}}),
        ("messageStop", {"stopReason": "end_turn"}),
    ]
    assert _deltas(False, events) == [
        ({"role": "assistant", "content": ""}, None),
        ({"reasoning_content": "hmm"}, None),
        ({"content": "ok"}, None),
        ({}, "stop"),
    ]


def test_stream_without_message_start_still_sends_role_first() -> None:
    """Even if messageStart is missing, the first chunk carries the role."""
    deltas = _deltas(False, EVENTS[1:])
    assert deltas[0] == ({"role": "assistant", "content": ""}, None)


def test_plain_response_replayed_as_events() -> None:
    """A non-streaming model's response replays into the same chunks a stream would give."""
    events = converse_as_stream_events(_response([{"text": "Hello"}], "max_tokens"))
    assert _deltas(True, events) == [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "Hello"}, None),
        ({}, "length"),
        ("usage", {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}),
    ]
