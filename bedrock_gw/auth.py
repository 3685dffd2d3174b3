"""API keys: a ring of key digests and the constant-time check of a presented bearer token."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from bedrock_gw.config import AuthSettings

__all__ = ["ApiKey", "KeyRing", "keyring_from_settings"]


@dataclass(frozen=True, slots=True)
class ApiKey:
    name: str
    """Shown in logs in place of the key."""
    digest: bytes
    """SHA-256 of the key; the plaintext is not kept."""

    @classmethod
    def from_plaintext(cls, name: str, key: str) -> ApiKey:
        return cls(name, hashlib.sha256(key.encode()).digest())


class KeyRing:
    """An immutable set of accepted keys; replaced whole when keys are re-resolved."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self._keys = tuple(keys)

    def __len__(self) -> int:
        return len(self._keys)

    def authenticate(self, presented: str) -> ApiKey | None:
        """The key matching ``presented``; every key is compared, so timing reveals nothing."""
        digest = hashlib.sha256(presented.encode()).digest()
        found: ApiKey | None = None
        for key in self._keys:
            if hmac.compare_digest(key.digest, digest):
                found = key
        return found


def keyring_from_settings(auth: AuthSettings) -> KeyRing:
    return KeyRing(
        ApiKey.from_plaintext(f"inline-{index}", secret.get_secret_value())
        for index, secret in enumerate(auth.api_keys, start=1)
        if secret.get_secret_value()
    )
