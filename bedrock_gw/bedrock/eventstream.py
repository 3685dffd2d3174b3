"""An I/O-free, incremental decoder for ``application/vnd.amazon.eventstream``.

Feed it bytes as they arrive (``feed``) and take the whole messages decoded so far
(``messages``); a message may span many reads and one read may hold many messages. Each frame
is: prelude (total length, headers length, CRC32 of those 8 bytes), headers, payload, and a
CRC32 of everything before it. Both CRCs are checked; a bad frame raises ``EventStreamError``.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

__all__ = ["EventStreamDecoder", "EventStreamError", "EventStreamMessage", "HeaderValue"]

_PRELUDE = struct.Struct(">III")
_PRELUDE_LEN = _PRELUDE.size
_CRC_LEN = 4
_MIN_MESSAGE = _PRELUDE_LEN + _CRC_LEN
# AWS caps a message at 16 MiB and its headers at 128 KiB; larger prelude values mean garbage.
_MAX_MESSAGE = 16 * 1024 * 1024
_MAX_HEADERS = 128 * 1024

HeaderValue = bool | int | bytes | str


class EventStreamError(Exception):
    """The byte stream is not a well-formed event stream (bad length, CRC or header)."""


@dataclass(frozen=True, slots=True)
class EventStreamMessage:
    headers: dict[str, HeaderValue]
    payload: bytes

    @property
    def message_type(self) -> str:
        value = self.headers.get(":message-type", "event")
        return value if isinstance(value, str) else "event"

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return value if isinstance(value, str) else None


class EventStreamDecoder:
    """Accumulates bytes and yields complete messages; holds no socket and does no I/O."""

    __slots__ = ("_buffer", "_ready")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._ready: list[EventStreamMessage] = []

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while self._try_decode_one():
            pass

    def messages(self) -> list[EventStreamMessage]:
        """Take the messages decoded so far, oldest first."""
        ready, self._ready = self._ready, []
        return ready

    @property
    def pending_bytes(self) -> int:
        """Bytes of an incomplete message still waiting for the rest of it."""
        return len(self._buffer)

    def _try_decode_one(self) -> bool:
        buffer = self._buffer
        if len(buffer) < _PRELUDE_LEN:
            return False
        total, headers_len, prelude_crc = _PRELUDE.unpack_from(buffer)
        if zlib.crc32(memoryview(buffer)[:8]) != prelude_crc:
            raise EventStreamError("prelude CRC mismatch")
        if total < _MIN_MESSAGE or total > _MAX_MESSAGE or headers_len > _MAX_HEADERS:
            raise EventStreamError(f"implausible message length {total}")
        if headers_len > total - _MIN_MESSAGE:
            raise EventStreamError("headers longer than the message")
        if len(buffer) < total:
            return False
        frame = bytes(buffer[:total])
        del buffer[:total]
        (message_crc,) = struct.unpack_from(">I", frame, total - _CRC_LEN)
        if zlib.crc32(frame[: total - _CRC_LEN]) != message_crc:
            raise EventStreamError("message CRC mismatch")
        headers_end = _PRELUDE_LEN + headers_len
        headers = _decode_headers(frame[_PRELUDE_LEN:headers_end])
        self._ready.append(EventStreamMessage(headers, frame[headers_end : total - _CRC_LEN]))
        return True


_FIXED_WIDTH: dict[int, struct.Struct] = {
    2: struct.Struct(">b"),
    3: struct.Struct(">h"),
    4: struct.Struct(">i"),
    5: struct.Struct(">q"),
    8: struct.Struct(">q"),  # timestamp, milliseconds since the epoch
}


def _decode_headers(raw: bytes) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {}
    pos = 0
    end = len(raw)
    try:
        while pos < end:
            name_len = raw[pos]
            name = raw[pos + 1 : pos + 1 + name_len].decode()
            pos += 1 + name_len
            kind = raw[pos]
            pos += 1
            value: HeaderValue
            if kind in (0, 1):
                value = kind == 0
            elif kind in _FIXED_WIDTH:
                fmt = _FIXED_WIDTH[kind]
                (value,) = fmt.unpack_from(raw, pos)
                pos += fmt.size
            elif kind in (6, 7):
                (length,) = struct.unpack_from(">H", raw, pos)
                data = raw[pos + 2 : pos + 2 + length]
                if len(data) != length:
                    raise EventStreamError("truncated header value")
                value = data.decode() if kind == 7 else data
                pos += 2 + length
            elif kind == 9:
                value = raw[pos : pos + 16]
                pos += 16
            else:
                raise EventStreamError(f"unknown header type {kind}")
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise EventStreamError("malformed headers") from exc
    if pos != end:
        raise EventStreamError("malformed headers")
    return headers
