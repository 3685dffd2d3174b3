"""Token usage, its price, and estimates of it before Bedrock says. Pure: no I/O.

Bedrock reports usage in three places: the ``usage`` member of a Converse response (and of a
ConverseStream ``metadata`` event), the ``X-Amzn-Bedrock-*-Token-Count`` headers of InvokeModel,
and the ``amazon-bedrock-invocationMetrics`` member of InvokeModelWithResponseStream's last
chunk. Until it does, a request is charged an estimate, so that limits hold while it runs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from bedrock_gw.config import Price

__all__ = [
    "IMAGE_TOKENS",
    "EndUser",
    "TokenUsage",
    "cost_of",
    "end_user",
    "estimate_tokens",
    "price_for",
    "usage_from_converse",
    "usage_from_headers",
    "usage_from_invocation_metrics",
]

IMAGE_TOKENS = 1600
"""What one image or document is assumed to cost: Claude's count for a ~1.15 megapixel image
(docs.anthropic.com, "Vision": tokens = width * height / 750)."""
# A string this long without a space is taken to be base64 data (an image, a document).
_BLOB_LENGTH = 4096
_USER_HEADER_ID = "X-OpenWebUI-User-Id"
_USER_HEADER_EMAIL = "X-OpenWebUI-User-Email"
_USER_VALUE = re.compile(r"^[\w.@+\-]{1,128}$")


@dataclass(frozen=True, slots=True)
class TokenUsage:
    input: int = 0
    """Prompt tokens not read from or written to the prompt cache."""
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0

    @property
    def total(self) -> int:
        """What counts against token limits: every token Bedrock processed."""
        return self.input + self.output + self.cache_read + self.cache_write

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.input + other.input,
            self.output + other.output,
            self.cache_read + other.cache_read,
            self.cache_write + other.cache_write,
        )


@dataclass(frozen=True, slots=True)
class EndUser:
    """The person behind a shared key, as Open WebUI names them; empty when not sent."""

    id: str = ""
    email: str = ""

    @property
    def label(self) -> str:
        return self.email or self.id


def end_user(headers: Mapping[str, str]) -> EndUser:
    """The Open WebUI user headers, when present and sane (never required)."""
    return EndUser(
        _user_value(headers.get(_USER_HEADER_ID)), _user_value(headers.get(_USER_HEADER_EMAIL))
    )


def _user_value(value: str | None) -> str:
    # Client-supplied text goes into labels and a database: keep it short and plain.
    if value is None:
        return ""
    value = value.strip()
    return value if _USER_VALUE.match(value) else ""


def usage_from_converse(usage: Any) -> TokenUsage:
    """Converse's ``usage`` (``inputTokens`` excludes the cached prompt tokens)."""
    if not isinstance(usage, Mapping):
        return TokenUsage()
    return TokenUsage(
        _count(usage.get("inputTokens")),
        _count(usage.get("outputTokens")),
        _count(usage.get("cacheReadInputTokens")),
        _count(usage.get("cacheWriteInputTokens")),
    )


def usage_from_invocation_metrics(metrics: Any) -> TokenUsage:
    """``amazon-bedrock-invocationMetrics`` in the last chunk of a model-native stream."""
    if not isinstance(metrics, Mapping):
        return TokenUsage()
    return TokenUsage(
        _count(metrics.get("inputTokenCount")),
        _count(metrics.get("outputTokenCount")),
        _count(metrics.get("cacheReadInputTokenCount")),
        _count(metrics.get("cacheWriteInputTokenCount")),
    )


def usage_from_headers(headers: Mapping[str, str]) -> TokenUsage | None:
    """InvokeModel's token count headers; None when Bedrock sent none."""
    names = (
        "X-Amzn-Bedrock-Input-Token-Count",
        "X-Amzn-Bedrock-Output-Token-Count",
        "X-Amzn-Bedrock-Cache-Read-Input-Token-Count",
        "X-Amzn-Bedrock-Cache-Write-Input-Token-Count",
    )
    values = [headers.get(name) for name in names]
    if all(value is None for value in values):
        return None
    return TokenUsage(*(_count(value) for value in values))


def _count(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0


def price_for(prices: Mapping[str, Price], names: Iterable[str]) -> Price | None:
    """The first price whose pattern matches one of ``names`` (tried in table order)."""
    candidates = [name for name in names if name]
    for pattern, price in prices.items():
        if any(fnmatchcase(name, pattern) for name in candidates):
            return price
    return None


def cost_of(usage: TokenUsage, price: Price | None) -> float:
    """US dollars; 0 for a model without a price."""
    if price is None:
        return 0.0
    cache_read = price.cache_read if price.cache_read is not None else price.input
    cache_write = price.cache_write if price.cache_write is not None else price.input
    return (
        usage.input * price.input
        + usage.output * price.output
        + usage.cache_read * cache_read
        + usage.cache_write * cache_write
    ) / 1_000_000


def estimate_tokens(value: Any) -> int:
    """A rough count of the tokens in a JSON request: four characters of text to a token, and
    ``IMAGE_TOKENS`` for each long base64 string (an image or a document)."""
    chars = 0
    blobs = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if len(item) >= _BLOB_LENGTH and " " not in item[:_BLOB_LENGTH]:
                blobs += 1
            else:
                chars += len(item)
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return math.ceil(chars / 4) + blobs * IMAGE_TOKENS
