"""The event-stream decoder against frames built by the independent test encoder."""

from __future__ import annotations

import json
import random
import struct

import pytest

from bedrock_gw.bedrock.eventstream import EventStreamDecoder, EventStreamError
from tests.fakes.eventstream import encode_message, event_frame, exception_frame

FRAMES = [
    event_frame("messageStart", {"role": "assistant"}),
    event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Héllo"}}),
    event_frame("contentBlockStop", {"contentBlockIndex": 0}),
    event_frame("messageStop", {"stopReason": "end_turn"}),
    exception_frame("throttlingException", "slow down"),
]
STREAM = b"".join(FRAMES)


def _decode_in_pieces(data: bytes, sizes: list[int]) -> list[tuple[str | None, dict[str, object]]]:
    decoder = EventStreamDecoder()
    out = []
    pos = 0
    for size in sizes:
        decoder.feed(data[pos : pos + size])
        pos += size
        out.extend(
            (m.header(":event-type") or m.header(":exception-type"), json.loads(m.payload))
            for m in decoder.messages()
        )
    assert pos == len(data)
    assert decoder.pending_bytes == 0
    return out


EXPECTED = [
    ("messageStart", "assistant"),
    ("contentBlockDelta", {"text": "Héllo"}),
    ("contentBlockStop", 0),
    ("messageStop", "end_turn"),
    ("throttlingException", "slow down"),
]


def _summary(
    decoded: list[tuple[str | None, dict[str, object]]],
) -> list[tuple[str | None, object]]:
    keys = ["role", "delta", "contentBlockIndex", "stopReason", "message"]
    return [(name, next(p[k] for k in keys if k in p)) for name, p in decoded]


@pytest.mark.parametrize(
    "sizes",
    [
        pytest.param([len(STREAM)], id="all-at-once"),
        pytest.param([1] * len(STREAM), id="byte-by-byte"),
        pytest.param([len(FRAMES[0]) + 3, len(STREAM) - len(FRAMES[0]) - 3], id="split-mid-frame"),
        pytest.param([5, 7, len(STREAM) - 12], id="split-inside-prelude"),
    ],
)
def test_decodes_every_split(sizes: list[int]) -> None:
    """Frames decode the same whether they arrive whole, split, or several per read."""
    assert _summary(_decode_in_pieces(STREAM, sizes)) == EXPECTED


def test_random_splits() -> None:
    """Any random cutting of the stream yields the same messages."""
    rng = random.Random(7)
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(STREAM)), 6))
        sizes = [b - a for a, b in zip([0, *cuts], [*cuts, len(STREAM)], strict=True)]
        assert _summary(_decode_in_pieces(STREAM, sizes)) == EXPECTED


def test_header_types() -> None:
    """Boolean, integer, bytes and string headers decode to Python values."""
    frame = encode_message(
        {"yes": True, "no": False, "n": 42, "big": 2**40, "raw": b"\x00\x01", "s": "x"}, b"{}"
    )
    decoder = EventStreamDecoder()
    decoder.feed(frame)
    (message,) = decoder.messages()
    assert message.headers == {
        "yes": True,
        "no": False,
        "n": 42,
        "big": 2**40,
        "raw": b"\x00\x01",
        "s": "x",
    }
    assert message.message_type == "event"


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0xFF]) + data[index + 1 :]


@pytest.mark.parametrize(
    ("corrupt", "match"),
    [
        pytest.param(lambda f: _flip(f, 1), "prelude CRC", id="length-corrupted"),
        pytest.param(lambda f: _flip(f, len(f) - 10), "message CRC", id="payload-corrupted"),
        pytest.param(lambda f: _flip(f, len(f) - 1), "message CRC", id="crc-corrupted"),
    ],
)
def test_rejects_corruption(corrupt, match: str) -> None:
    """A flipped bit anywhere in a frame is caught by one of the two CRCs."""
    decoder = EventStreamDecoder()
    with pytest.raises(EventStreamError, match=match):
        decoder.feed(corrupt(FRAMES[1]))


def test_rejects_implausible_length() -> None:
    """A prelude announcing a giant frame is refused instead of buffering forever."""
    import zlib

    prelude = struct.pack(">II", 1 << 30, 0)
    decoder = EventStreamDecoder()
    with pytest.raises(EventStreamError, match="implausible"):
        decoder.feed(prelude + struct.pack(">I", zlib.crc32(prelude)))


def test_incomplete_frame_is_pending() -> None:
    """Half a frame yields nothing yet and is reported as pending bytes."""
    decoder = EventStreamDecoder()
    decoder.feed(FRAMES[1][:20])
    assert decoder.messages() == []
    assert decoder.pending_bytes == 20
