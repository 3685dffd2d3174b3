"""Pure parsers for the places API keys are written: a key file and a secret's SecretString.

Errors say where and what shape was wrong, never the text that was there: it may be a key.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bedrock_gw.auth import ApiKey

__all__ = [
    "KeyFormatError",
    "has_plaintext_keys",
    "keys_from_file_text",
    "keys_from_secret_string",
]

_NAME = re.compile(r"^[\w.@+-]{1,64}$")
_DIGEST = re.compile(r"^sha256:([0-9a-fA-F]{64})$")


class KeyFormatError(ValueError):
    """The text does not hold keys in a supported form."""


def keys_from_file_text(text: str, *, default_name: str = "file") -> list[ApiKey]:
    """One key per line, ``[name] <key>`` or ``[name] sha256:<hex>``; ``#`` starts a comment.

    Unnamed keys are called ``<default_name>-<line number>``.
    """
    keys = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) > 2:
            raise KeyFormatError(f"line {number}: expected '[name] key', found {len(fields)} words")
        name = fields[0] if len(fields) == 2 else f"{default_name}-{number}"
        if not _NAME.match(name):
            raise KeyFormatError(f"line {number}: a key name may hold letters, digits and ._@+-")
        token = fields[-1]
        if token.lower().startswith("sha256:"):
            match = _DIGEST.match(token)
            if match is None:
                raise KeyFormatError(f"line {number}: sha256: must be followed by 64 hex digits")
            keys.append(ApiKey(name, bytes.fromhex(match.group(1))))
        else:
            keys.append(ApiKey.from_plaintext(name, token))
    return keys


def has_plaintext_keys(text: str) -> bool:
    """Whether a key file holds any key in clear (rather than only digests)."""
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and not line.split()[-1].lower().startswith("sha256:"):
            return True
    return False


def keys_from_secret_string(text: str, *, default_name: str = "secret") -> list[ApiKey]:
    """The key itself, or ``{"api_key": k}``, ``{"api_keys": [k, ...]}``, or named keys.

    Named keys are ``{"api_keys": [{"name": "openwebui", "key": "..."}]}``; strings and named
    objects may be mixed. Unnamed keys are ``<default_name>`` or ``<default_name>-<n>``.
    """
    stripped = text.strip()
    if not stripped:
        raise KeyFormatError("the secret is empty")
    if not stripped.startswith("{"):
        if any(ch.isspace() for ch in stripped):
            raise KeyFormatError("a plain-text secret must be one key without spaces")
        return [ApiKey.from_plaintext(default_name, stripped)]
    try:
        document: Any = json.loads(stripped)
    except ValueError:
        raise KeyFormatError("the secret starts with '{' but is not valid JSON") from None
    if not isinstance(document, dict):
        raise KeyFormatError("the secret's JSON is not an object")
    keys: list[ApiKey] = []
    if "api_key" in document:
        keys.append(ApiKey.from_plaintext(default_name, _key(document["api_key"], "api_key")))
    if "api_keys" in document:
        entries = document["api_keys"]
        if not isinstance(entries, list):
            raise KeyFormatError("api_keys must be a list")
        keys.extend(_entry(entry, index, default_name) for index, entry in enumerate(entries, 1))
    if not keys:
        raise KeyFormatError("the secret's JSON has no api_key and no api_keys")
    return keys


def _entry(entry: Any, index: int, default_name: str) -> ApiKey:
    where = f"api_keys[{index - 1}]"
    if isinstance(entry, str):
        return ApiKey.from_plaintext(f"{default_name}-{index}", _key(entry, where))
    if not isinstance(entry, dict) or set(entry) - {"name", "key"}:
        raise KeyFormatError(f"{where} must be a string or an object with name and key")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise KeyFormatError(f"{where}.name must be 1-64 letters, digits or ._@+-")
    return ApiKey.from_plaintext(name, _key(entry.get("key"), f"{where}.key"))


def _key(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise KeyFormatError(f"{where} must be a non-empty string")
    return value.strip()
