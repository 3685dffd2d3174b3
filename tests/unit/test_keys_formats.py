"""Parsing API keys from a key file and from a secret's SecretString."""

from __future__ import annotations

import hashlib

import pytest

from bedrock_gw.auth import ApiKey, KeyRing
from bedrock_gw.keys.formats import (
    KeyFormatError,
    has_plaintext_keys,
    keys_from_file_text,
    keys_from_secret_string,
)


def _named(keys: list[ApiKey]) -> list[tuple[str, bytes]]:
    return [(key.name, key.digest) for key in keys]


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        pytest.param("sk-plain-1", [("secret", "sk-plain-1")], id="plain"),
        pytest.param("  sk-plain-1\n", [("secret", "sk-plain-1")], id="plain-trimmed"),
        pytest.param('{"api_key": "sk-1"}', [("secret", "sk-1")], id="api-key"),
        pytest.param(
            '{"api_keys": ["sk-1", "sk-2"]}',
            [("secret-1", "sk-1"), ("secret-2", "sk-2")],
            id="list",
        ),
        pytest.param(
            '{"api_keys": [{"name": "openwebui", "key": "sk-1"},'
            ' {"name": "phone", "key": "sk-2"}]}',
            [("openwebui", "sk-1"), ("phone", "sk-2")],
            id="named",
        ),
        pytest.param(
            '{"api_keys": ["sk-1", {"name": "phone", "key": "sk-2"}]}',
            [("secret-1", "sk-1"), ("phone", "sk-2")],
            id="mixed",
        ),
    ],
)
def test_secret_forms(secret: str, expected: list[tuple[str, str]]) -> None:
    """Every documented SecretString form yields named digests."""
    keys = keys_from_secret_string(secret)
    assert _named(keys) == [(name, _digest(key)) for name, key in expected]


@pytest.mark.parametrize(
    ("secret", "fragment"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param("two words-hunter2", "one key", id="spaces"),
        pytest.param('{"api_key": "hunter2"', "not valid JSON", id="broken-json"),
        pytest.param('{"key": "hunter2"}', "no api_key and no api_keys", id="wrong-field"),
        pytest.param('{"api_keys": "hunter2"}', "must be a list", id="keys-not-list"),
        pytest.param('{"api_keys": [{"name": "a b", "key": "hunter2"}]}', ".name", id="bad-name"),
        pytest.param('{"api_keys": [{"name": "a", "key": ""}]}', ".key must be", id="empty-key"),
        pytest.param('{"api_keys": [{"name": "a", "kye": "hunter2"}]}', "name and key", id="typo"),
        pytest.param('{"api_key": 12345}', "api_key must be", id="number"),
    ],
)
def test_bad_secrets_are_described_not_quoted(secret: str, fragment: str) -> None:
    """A bad secret raises KeyFormatError saying what is wrong, without the secret's text."""
    with pytest.raises(KeyFormatError, match=fragment) as caught:
        keys_from_secret_string(secret)
    assert "hunter2" not in str(caught.value)


def test_key_file_lines() -> None:
    """Plain keys, digests, names and comments in a key file."""
    digest = hashlib.sha256(b"sk-hashed").hexdigest()
    text = f"# gateway keys\n\nsk-plain\nphone sha256:{digest}\n  laptop   sk-laptop  \n"
    keys = keys_from_file_text(text, default_name="keys")
    assert _named(keys) == [
        ("keys-3", _digest("sk-plain")),
        ("phone", _digest("sk-hashed")),
        ("laptop", _digest("sk-laptop")),
    ]
    ring = KeyRing(keys)
    found = ring.authenticate("sk-hashed")
    assert found is not None and found.name == "phone"
    assert ring.authenticate(f"sha256:{digest}") is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("a b c\n", "line 1: expected .*found 3 words", id="three-words"),
        pytest.param("x\nname sha256:abc\n", "line 2: sha256: must be followed", id="short-hex"),
        pytest.param("na/me key\n", "line 1: a key name", id="bad-name"),
    ],
)
def test_bad_key_file_lines(text: str, fragment: str) -> None:
    """A malformed line is reported by number."""
    with pytest.raises(KeyFormatError, match=fragment):
        keys_from_file_text(text)


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        pytest.param("# c\nsha256:" + "0" * 64 + "\n", False, id="digests-only"),
        pytest.param("name sk-1\n", True, id="plaintext"),
    ],
)
def test_plaintext_detection(text: str, plain: bool) -> None:
    """A file of digests only holds no plaintext key."""
    assert has_plaintext_keys(text) is plain
