"""Where API keys come from: inline config, a key file, and SSM → Secrets Manager.

Each source's ``load`` returns the keys it holds now as digests (``KeyMaterial``) or raises
``KeySourceError`` with one line saying which call failed and why; the store keeps the last
good material of each source.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import SecretStr

from bedrock_gw.auth import ApiKey
from bedrock_gw.aws.json_rpc import (
    SECRETS_MANAGER,
    SSM,
    AwsApiError,
    AwsCallFailed,
    AwsJsonClient,
    AwsJsonService,
)
from bedrock_gw.keys.formats import (
    KeyFormatError,
    has_plaintext_keys,
    keys_from_file_text,
    keys_from_secret_string,
)

__all__ = [
    "InlineKeys",
    "KeyFile",
    "KeyMaterial",
    "KeySource",
    "KeySourceError",
    "SsmSecretKeys",
    "arn_region",
]

logger = logging.getLogger(__name__)

PREVIOUS_SUFFIX = "@previous"
"""Appended to the names of keys from the AWSPREVIOUS version, so logs show who still uses it."""


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    keys: tuple[ApiKey, ...]
    previous: tuple[ApiKey, ...] = ()
    """Keys of the version before the last rotation, accepted until ``previous_until``."""
    previous_until: float | None = None
    """Wall-clock time (``time.time()``) after which ``previous`` is no longer accepted."""
    version: str | None = None
    """Which version of the source this is (a secret's VersionId), for the log."""


class KeySourceError(Exception):
    """One load of one source failed; the message names the call and the reason."""


class KeySource(Protocol):
    @property
    def description(self) -> str: ...

    async def load(self) -> KeyMaterial: ...


class InlineKeys:
    def __init__(self, secrets: Sequence[SecretStr]) -> None:
        self.description = "inline keys (auth.api_keys)"
        self._keys = tuple(
            ApiKey.from_plaintext(f"inline-{index}", secret.get_secret_value())
            for index, secret in enumerate(secrets, start=1)
            if secret.get_secret_value()
        )

    async def load(self) -> KeyMaterial:
        return KeyMaterial(self._keys)


class KeyFile:
    """Read on every load, so an edited file is picked up by the next refresh or SIGHUP."""

    def __init__(self, path: Path) -> None:
        self.description = f"key file {path}"
        self._path = path
        self._warned_mode = False

    async def load(self) -> KeyMaterial:
        try:
            text, mode = await asyncio.to_thread(self._read)
        except OSError as exc:
            raise KeySourceError(f"cannot read {self._path}: {exc.strerror or exc}") from None
        try:
            keys = keys_from_file_text(text, default_name=self._path.stem or "file")
        except KeyFormatError as exc:
            raise KeySourceError(f"{self._path}: {exc}") from None
        if mode & stat.S_IROTH and not self._warned_mode and has_plaintext_keys(text):
            self._warned_mode = True
            logger.warning(
                "the key file %s holds keys in clear and anyone on this host can read it: "
                "chmod o-r it, or store sha256:<hex> digests instead",
                self._path,
            )
        return KeyMaterial(tuple(keys))

    def _read(self) -> tuple[str, int]:
        with self._path.open(encoding="utf-8") as fh:
            return fh.read(), os.fstat(fh.fileno()).st_mode


# What to tell the operator for each structured error code; everything else is shown as is.
_HINTS = {
    "ParameterNotFound": "no such parameter in that region",
    "ParameterVersionNotFound": "no such parameter version",
    "ResourceNotFoundException": "no such secret, or it has no version with that stage",
    "AccessDeniedException": "the gateway's IAM identity may not make this call",
    "AccessDenied": "the gateway's IAM identity may not make this call",
    "DecryptionFailure": "KMS refused to decrypt: allow kms:Decrypt on the secret's key",
    "InvalidKeyId": "KMS refused to decrypt: allow kms:Decrypt on the parameter's key",
    "KMSAccessDeniedException": "KMS refused to decrypt: allow kms:Decrypt on the key",
    "UnrecognizedClientException": "AWS does not know these credentials",
    "InvalidClientTokenId": "AWS does not know these credentials",
    "InvalidSignatureException": "AWS rejected the request signature (check the clock)",
    "ExpiredTokenException": "the AWS credentials have expired",
    "ThrottlingException": "throttled by AWS",
}


class SsmSecretKeys:
    """The SSM parameter names a secret (its ARN); the secret's SecretString holds the keys.

    Two calls per load: ``GetParameter`` (with decryption, so a SecureString works too) and
    ``GetSecretValue`` for ``AWSCURRENT``; within ``grace`` seconds of the current version's
    creation, also ``AWSPREVIOUS``, whose keys stay valid until that grace ends.
    """

    def __init__(
        self,
        client: AwsJsonClient,
        *,
        parameter: str,
        region: str,
        grace: float,
        clock: Callable[[], float],
    ) -> None:
        self.description = f"SSM parameter {parameter} ({region}) -> Secrets Manager"
        self._client = client
        self._parameter = parameter
        self._region = region
        self._grace = grace
        self._clock = clock
        self._first_seen: dict[str, float] = {}

    async def load(self) -> KeyMaterial:
        secret_id = await self._secret_id()
        region = arn_region(secret_id, "secretsmanager") or self._region
        current = await self._secret(secret_id, region, "AWSCURRENT")
        keys = self._parse(current, secret_id, "AWSCURRENT", suffix="")
        version = str(current.get("VersionId") or "")
        rotated_at = self._rotation_time(current, version)
        until = rotated_at + self._grace
        if self._grace <= 0 or until <= self._clock():
            return KeyMaterial(tuple(keys), version=version or None)
        try:
            previous = await self._secret(secret_id, region, "AWSPREVIOUS")
        except KeySourceError as exc:
            if isinstance(exc.__cause__, AwsApiError) and (
                exc.__cause__.code == "ResourceNotFoundException"
            ):
                return KeyMaterial(tuple(keys), version=version or None)  # never rotated
            raise
        if previous.get("VersionId") == current.get("VersionId"):
            return KeyMaterial(tuple(keys), version=version or None)
        try:
            old = self._parse(previous, secret_id, "AWSPREVIOUS", suffix=PREVIOUS_SUFFIX)
        except KeySourceError as exc:
            # The old version no longer parses: clients on it are cut off, the rest work.
            logger.warning("ignoring the previous version of the API key secret: %s", exc)
            old = []
        return KeyMaterial(tuple(keys), tuple(old), until, version or None)

    async def _secret_id(self) -> str:
        call = f"ssm:GetParameter {self._parameter} in {self._region}"
        result = await self._call(
            call,
            SSM,
            "GetParameter",
            {"Name": self._parameter, "WithDecryption": True},
            self._region,
        )
        value = result.get("Parameter", {}).get("Value")
        if not isinstance(value, str) or not value.strip():
            raise KeySourceError(f"{call} returned no value")
        return value.strip()

    async def _secret(self, secret_id: str, region: str, stage: str) -> dict[str, Any]:
        call = f"secretsmanager:GetSecretValue {secret_id} ({stage})"
        payload = {"SecretId": secret_id, "VersionStage": stage}
        return await self._call(call, SECRETS_MANAGER, "GetSecretValue", payload, region)

    async def _call(
        self,
        call: str,
        service: AwsJsonService,
        operation: str,
        payload: dict[str, Any],
        region: str,
    ) -> dict[str, Any]:
        try:
            return await self._client.call(service, operation, payload, region=region)
        except AwsApiError as exc:
            hint = _HINTS.get(exc.code)
            raise KeySourceError(
                f"{call} failed: {exc.reason}" + (f" [{hint}]" if hint else "")
            ) from exc
        except AwsCallFailed as exc:
            raise KeySourceError(f"{call} failed: {exc.reason}") from exc

    def _parse(
        self, response: dict[str, Any], secret_id: str, stage: str, *, suffix: str
    ) -> list[ApiKey]:
        text = response.get("SecretString")
        if not isinstance(text, str):
            raise KeySourceError(
                f"the secret {secret_id} ({stage}) has no SecretString; binary secrets are "
                "not supported"
            )
        try:
            keys = keys_from_secret_string(text)
        except KeyFormatError as exc:
            raise KeySourceError(f"the secret {secret_id} ({stage}): {exc}") from None
        return [ApiKey(key.name + suffix, key.digest) for key in keys]

    def _rotation_time(self, response: dict[str, Any], version: str) -> float:
        created = response.get("CreatedDate")
        if isinstance(created, int | float) and not isinstance(created, bool):
            return float(created)
        # No creation date: the version counts as made when this process first saw it.
        return self._first_seen.setdefault(version, self._clock())


def arn_region(value: str, service: str) -> str | None:
    """The region of an ARN of ``service`` (``arn:aws:ssm:eu-west-1:...``), else None."""
    parts = value.split(":")
    if len(parts) >= 6 and parts[0] == "arn" and parts[2] == service and parts[3]:
        return parts[3]
    return None
