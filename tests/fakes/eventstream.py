"""Encoder for ``application/vnd.amazon.eventstream`` messages.

Written from the format description (prelude, typed headers, payload, two CRC32s) rather than
from botocore, so that botocore's decoder can act as an independent check of our framing.
"""

from __future__ import annotations

import datetime as dt
import json
import struct
import uuid
import zlib
from collections.abc import Mapping
from typing import Any

HeaderValue = str | bytes | bool | int | dt.datetime | uuid.UUID

# Header value type tags from the event stream specification.
_TRUE = 0
_FALSE = 1
_INT32 = 4
_INT64 = 5
_BYTES = 6
_STRING = 7
_TIMESTAMP = 8
_UUID = 9

_PRELUDE = struct.Struct(">II")
_CRC = struct.Struct(">I")
_INT32_RANGE = range(-(2**31), 2**31)

# Real Bedrock pads each event payload with a field "p" holding a slice of this alphabet, so
# that payload sizes do not leak the length of the generated text.
_PAD_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _encode_header_value(value: HeaderValue) -> bytes:
    # bool first: it is a subclass of int.
    if isinstance(value, bool):
        return bytes([_TRUE if value else _FALSE])
    if isinstance(value, int):
        if value in _INT32_RANGE:
            return bytes([_INT32]) + struct.pack(">i", value)
        return bytes([_INT64]) + struct.pack(">q", value)
    if isinstance(value, bytes):
        return bytes([_BYTES]) + struct.pack(">H", len(value)) + value
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return bytes([_STRING]) + struct.pack(">H", len(raw)) + raw
    if isinstance(value, dt.datetime):
        millis = int(value.timestamp() * 1000)
        return bytes([_TIMESTAMP]) + struct.pack(">q", millis)
    if isinstance(value, uuid.UUID):
        return bytes([_UUID]) + value.bytes
    raise TypeError(f"unsupported event stream header value: {value!r}")


def encode_headers(headers: Mapping[str, HeaderValue]) -> bytes:
    """Serialise headers in the given order (real Bedrock sends a stable order)."""
    out = bytearray()
    for name, value in headers.items():
        raw_name = name.encode("utf-8")
        if not 0 < len(raw_name) < 256:
            raise ValueError(f"header name length out of range: {name!r}")
        out += bytes([len(raw_name)]) + raw_name + _encode_header_value(value)
    return bytes(out)


def encode_message(headers: Mapping[str, HeaderValue], payload: bytes) -> bytes:
    """One complete message: prelude, prelude CRC, headers, payload, message CRC."""
    raw_headers = encode_headers(headers)
    # 12 bytes of prelude (two lengths + CRC) and 4 bytes of trailing CRC.
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = _PRELUDE.pack(total, len(raw_headers))
    prelude_crc = zlib.crc32(prelude)
    body = prelude + _CRC.pack(prelude_crc) + raw_headers + payload
    return body + _CRC.pack(zlib.crc32(body))


def padded_json(payload: Mapping[str, Any]) -> bytes:
    """JSON with the ``"p"`` filler field that real Bedrock adds (its length varies)."""
    compact = json.dumps(payload, separators=(",", ":"))
    filler = _PAD_ALPHABET[: 1 + len(compact) % len(_PAD_ALPHABET)]
    return json.dumps({**payload, "p": filler}, separators=(",", ":")).encode("utf-8")


def event_frame(event_type: str, payload: Mapping[str, Any]) -> bytes:
    """An ``event`` message as ConverseStream sends it."""
    headers: dict[str, HeaderValue] = {
        ":event-type": event_type,
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return encode_message(headers, padded_json(payload))


def exception_frame(exception_type: str, message: str) -> bytes:
    """An ``exception`` message, e.g. ``throttlingException`` in the middle of a stream."""
    headers: dict[str, HeaderValue] = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    payload = json.dumps({"message": message}, separators=(",", ":")).encode("utf-8")
    return encode_message(headers, payload)
