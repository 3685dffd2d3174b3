"""Converse responses and stream events -> OpenAI completions and chunks, table-driven."""

from __future__ import annotations

from typing import Any

import pytest

from bedrock_gw.errors import UpstreamError
from bedrock_gw.translate.chat_response import (
    ChunkTranslator,
    ResponseOptions,
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


def _chunks(events: list[tuple[str, dict[str, Any]]], **options: Any) -> list[dict[str, Any]]:
    translator = ChunkTranslator(
        model="m",
        completion_id="c",
        created=1,
        include_usage=False,
        options=ResponseOptions(**options),
    )
    return [
        c["choices"][0]["delta"] for e in events for c in translator.on_event(*e) if c["choices"]
    ]


def _start(index: int, tool_id: str, name: str) -> tuple[str, dict[str, Any]]:
    return (
        "contentBlockStart",
        {"contentBlockIndex": index, "start": {"toolUse": {"toolUseId": tool_id, "name": name}}},
    )


def _tool_delta(index: int, fragment: str) -> tuple[str, dict[str, Any]]:
    return (
        "contentBlockDelta",
        {"contentBlockIndex": index, "delta": {"toolUse": {"input": fragment}}},
    )


def test_stream_tool_calls_follow_openai_indexes() -> None:
    """Text first, then each call with its own index from 0: id, type and name first, then
    argument fragments; a call without input gets '{}'."""
    events = [
        ("messageStart", {"role": "assistant"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Let me check."}}),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        _start(1, "t1", "weather"),
        _tool_delta(1, '{"city": '),
        _tool_delta(1, '"Oslo"}'),
        ("contentBlockStop", {"contentBlockIndex": 1}),
        _start(2, "t2", "time"),
        ("contentBlockStop", {"contentBlockIndex": 2}),
        ("messageStop", {"stopReason": "tool_use"}),
    ]
    assert _chunks(events) == [
        {"role": "assistant", "content": ""},
        {"content": "Let me check."},
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "t1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": ""},
                }
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]},
        {
            "tool_calls": [
                {
                    "index": 1,
                    "id": "t2",
                    "type": "function",
                    "function": {"name": "time", "arguments": ""},
                }
            ]
        },
        {"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]},
        {},
    ]


def test_stream_tool_call_first_block_has_index_zero() -> None:
    """A tool call that is the very first block still gets index 0 (never -1)."""
    events = [
        _start(0, "t1", "f"),
        _tool_delta(0, "{}"),
        ("contentBlockStop", {"contentBlockIndex": 0}),
    ]
    deltas = _chunks(events)
    assert deltas[1]["tool_calls"][0]["index"] == 0


def test_stream_interleaved_parallel_calls() -> None:
    """Fragments of parallel calls that interleave go to the right call index."""
    events = [
        _start(0, "a", "f"),
        _start(1, "b", "g"),
        _tool_delta(1, '{"y":1}'),
        _tool_delta(0, '{"x":1}'),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        ("contentBlockStop", {"contentBlockIndex": 1}),
    ]
    fragments = [
        (d["tool_calls"][0]["index"], d["tool_calls"][0]["function"]["arguments"])
        for d in _chunks(events)
        if "tool_calls" in d and "id" not in d["tool_calls"][0]
    ]
    assert fragments == [(1, '{"y":1}'), (0, '{"x":1}')]


def test_stream_reasoning_details_after_block() -> None:
    """A reasoning block streams its text, then one reasoning_details item with the signature."""
    events = [
        (
            "contentBlockDelta",
            {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "th"}}},
        ),
        (
            "contentBlockDelta",
            {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "ink"}}},
        ),
        (
            "contentBlockDelta",
            {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "SIG"}}},
        ),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": "answer"}}),
    ]
    assert _chunks(events)[1:] == [
        {"reasoning_content": "th"},
        {"reasoning_content": "ink"},
        {
            "reasoning_details": [
                {
                    "type": "reasoning.text",
                    "text": "think",
                    "format": "anthropic-claude-v1",
                    "index": 0,
                    "signature": "SIG",
                }
            ]
        },
        {"content": "answer"},
    ]


def test_stream_think_tags() -> None:
    """With think tags, reasoning goes into content between <think> and </think>."""
    events = [
        (
            "contentBlockDelta",
            {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "hm"}}},
        ),
        ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": "ok"}}),
    ]
    contents = [d.get("content") for d in _chunks(events, think_tags=True)[1:]]
    assert contents == ["<think>hm", "</think>", "ok"]


def test_stream_json_tool_becomes_content() -> None:
    """The forced JSON tool's input streams as content and finishes with 'stop'."""
    events = [
        _start(0, "j", "json_response"),
        _tool_delta(0, '{"a":'),
        _tool_delta(0, "1}"),
        ("messageStop", {"stopReason": "tool_use"}),
    ]
    assert _chunks(events, json_tool="json_response") == [
        {"role": "assistant", "content": ""},
        {"content": '{"a":'},
        {"content": "1}"},
        {},
    ]


def test_plain_tool_calls_and_details() -> None:
    """A plain response returns tool_calls (content null), reasoning_details and the JSON tool."""
    response = _response(
        [
            {"reasoningContent": {"reasoningText": {"text": "t", "signature": "s"}}},
            {"toolUse": {"toolUseId": "t1", "name": "weather", "input": {}}},
        ],
        "tool_use",
    )
    message = to_chat_completion(response, model="m", completion_id="c", created=1)["choices"][0]
    assert message["finish_reason"] == "tool_calls"
    assert message["message"]["content"] is None
    assert message["message"]["tool_calls"] == [
        {"id": "t1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
    ]
    assert message["message"]["reasoning_details"][0]["signature"] == "s"
    as_json = to_chat_completion(
        _response(
            [{"toolUse": {"toolUseId": "j", "name": "json_response", "input": {"a": 1}}}],
            "tool_use",
        ),
        model="m",
        completion_id="c",
        created=1,
        options=ResponseOptions(json_tool="json_response"),
    )["choices"][0]
    assert (as_json["message"]["content"], as_json["finish_reason"]) == ('{"a": 1}', "stop")
