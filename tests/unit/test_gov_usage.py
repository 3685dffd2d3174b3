"""Usage from Bedrock's three reporting places, prices, estimates, the passthrough's observer."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from bedrock_gw.config import Price
from bedrock_gw.governance.observe import UsageObserver, delta_chars
from bedrock_gw.governance.usage import (
    IMAGE_TOKENS,
    EndUser,
    TokenUsage,
    cost_of,
    end_user,
    estimate_tokens,
    price_for,
    usage_from_converse,
    usage_from_headers,
    usage_from_invocation_metrics,
)
from tests.fakes.eventstream import event_frame, exception_frame

EVENTSTREAM = "application/vnd.amazon.eventstream"


def test_converse_usage_keeps_cache_counts_apart() -> None:
    """Converse's inputTokens excludes cached tokens; the total counts everything."""
    usage = usage_from_converse(
        {
            "inputTokens": 10,
            "outputTokens": 5,
            "cacheReadInputTokens": 100,
            "cacheWriteInputTokens": 7,
            "totalTokens": 122,
        }
    )
    assert usage == TokenUsage(10, 5, 100, 7)
    assert usage.total == 122


@pytest.mark.parametrize(
    "value",
    [None, "x", [], {"inputTokens": "ten"}, {"inputTokens": -3}, {"inputTokens": True}],
    ids=["none", "string", "list", "text-count", "negative", "bool"],
)
def test_malformed_usage_counts_nothing(value: Any) -> None:
    """Whatever shape arrives, usage parsing never raises."""
    assert usage_from_converse(value) == TokenUsage()


def test_invoke_headers_and_stream_metrics() -> None:
    """InvokeModel headers and the invocation metrics of a model-native stream."""
    headers = {"X-Amzn-Bedrock-Input-Token-Count": "12", "X-Amzn-Bedrock-Output-Token-Count": "3"}
    assert usage_from_headers(headers) == TokenUsage(12, 3)
    assert usage_from_headers({}) is None
    metrics = {"inputTokenCount": 8, "outputTokenCount": 2, "cacheReadInputTokenCount": 4}
    assert usage_from_invocation_metrics(metrics) == TokenUsage(8, 2, 4)


def test_price_table_first_match_and_cache_defaults() -> None:
    """The first matching pattern prices a model; cache prices default to the input price."""
    prices = {
        "*haiku*": Price(input=0.25, output=1.25),
        "*": Price(input=3, output=15, cache_read=0.3),
    }
    haiku = price_for(prices, ["cheap-alias", "anthropic.claude-3-haiku-20240307-v1:0"])
    assert haiku == prices["*haiku*"]
    assert price_for({}, ["x"]) is None
    assert cost_of(TokenUsage(1_000_000, 1_000_000, 1_000_000, 0), haiku) == pytest.approx(1.75)
    sonnet = prices["*"]
    assert cost_of(TokenUsage(0, 0, 1_000_000, 1_000_000), sonnet) == pytest.approx(3.3)
    assert cost_of(TokenUsage(5, 5), None) == 0.0


def test_estimate_counts_text_and_blobs() -> None:
    """Four characters of text per token; a base64 image counts a fixed amount."""
    image = "data:image/png;base64," + "A" * 50_000
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "x" * 400}, image]}],
    }
    assert estimate_tokens(body) == (1 + 4 + 1 + 400 + 4) // 4 + 1 + IMAGE_TOKENS
    assert estimate_tokens({}) == 0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({}, EndUser(), id="absent"),
        pytest.param(
            {"X-OpenWebUI-User-Id": "u-1", "X-OpenWebUI-User-Email": "ann@example.org"},
            EndUser("u-1", "ann@example.org"),
            id="both",
        ),
        pytest.param({"X-OpenWebUI-User-Id": "x" * 200}, EndUser(), id="too-long"),
        pytest.param({"X-OpenWebUI-User-Email": "a b\n"}, EndUser(), id="odd-characters"),
    ],
)
def test_end_user_headers(headers: dict[str, str], expected: EndUser) -> None:
    """Open WebUI's user headers are taken when sane, and never required."""
    assert end_user(headers) == expected


def test_delta_chars_counts_every_kind_of_output() -> None:
    """Text, reasoning and tool input deltas all count as output."""
    assert delta_chars("contentBlockDelta", {"delta": {"text": "abcd"}}) == 4
    assert delta_chars("contentBlockDelta", {"delta": {"reasoningContent": {"text": "ab"}}}) == 2
    assert delta_chars("contentBlockDelta", {"delta": {"toolUse": {"input": '{"a":1}'}}}) == 7
    assert delta_chars("messageStop", {"stopReason": "end_turn"}) == 0


def _split(data: bytes, sizes: int) -> list[bytes]:
    return [data[i : i + sizes] for i in range(0, len(data), sizes)]


def test_observer_reads_converse_stream_metadata_across_reads() -> None:
    """Frames split over reads are decoded; output counts as it streams; metadata wins."""
    frames = b"".join(
        [
            event_frame("messageStart", {"role": "assistant"}),
            event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "x" * 40}}),
            event_frame("messageStop", {"stopReason": "end_turn"}),
            event_frame("metadata", {"usage": {"inputTokens": 3, "outputTokens": 9}}),
        ]
    )
    observer = UsageObserver(EVENTSTREAM, {})
    seen = []
    for piece in _split(frames, 7):
        observer.feed(piece)
        seen.append(observer.output_tokens)
    assert max(seen) == 10
    assert observer.finish() == TokenUsage(3, 9)


def test_observer_reads_invocation_metrics_of_model_native_streams() -> None:
    """InvokeModelWithResponseStream hides usage in the last chunk's base64 JSON."""

    def chunk(value: dict[str, Any]) -> bytes:
        return event_frame(
            "chunk", {"bytes": base64.b64encode(json.dumps(value).encode()).decode()}
        )

    observer = UsageObserver(EVENTSTREAM, {})
    observer.feed(chunk({"type": "content_block_delta", "delta": {"text": "y" * 8}}))
    assert observer.output_tokens == 2
    observer.feed(
        chunk(
            {
                "type": "message_stop",
                "amazon-bedrock-invocationMetrics": {"inputTokenCount": 5, "outputTokenCount": 2},
            }
        )
    )
    assert observer.finish() == TokenUsage(5, 2)


def test_observer_reads_json_bodies_and_headers() -> None:
    """A Converse body's usage, or InvokeModel's headers."""
    observer = UsageObserver("application/json", {})
    for piece in _split(json.dumps({"usage": {"inputTokens": 4, "outputTokens": 1}}).encode(), 5):
        observer.feed(piece)
    assert observer.finish() == TokenUsage(4, 1)
    invoke = UsageObserver("application/json", {"X-Amzn-Bedrock-Input-Token-Count": "6"})
    invoke.feed(b'{"embedding": [0.1]}')
    assert invoke.finish() == TokenUsage(6, 0)


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        pytest.param(EVENTSTREAM, b"\x00\x00\x00\x05garbage-that-is-no-frame", id="bad-frame"),
        pytest.param(EVENTSTREAM, exception_frame("throttlingException", "slow"), id="exception"),
        pytest.param("application/json", b"{not json", id="bad-json"),
        pytest.param("text/plain", b"hello", id="other"),
    ],
)
def test_observer_gives_up_quietly(content_type: str, data: bytes) -> None:
    """Bytes it cannot read make the observer report nothing, never raise."""
    observer = UsageObserver(content_type, {})
    observer.feed(data)
    observer.feed(data)
    assert observer.finish() is None
