"""Credentials from a ``credential_process`` command, run as an asyncio subprocess.

botocore would run the command synchronously, on every access once less than 15 minutes are
left (see shared notes): here it runs off the loop's critical path, from the cache's background
task, under a timeout after which a hung process is killed.

The output format is AWS's: ``{"Version": 1, "AccessKeyId", "SecretAccessKey", "SessionToken",
"Expiration"}`` (https://docs.aws.amazon.com/cli/latest/userguide/cli-configure-sourcing-external.html).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bedrock_gw.aws.credentials import AwsCredentials, FetchFailed

__all__ = ["CredentialProcessFetcher", "parse_credential_process_output"]

logger = logging.getLogger(__name__)

_STDERR_SHOWN = 400


class CredentialProcessFetcher:
    def __init__(self, argv: Sequence[str], *, timeout: float, description: str) -> None:
        self._argv = tuple(argv)
        self._timeout = timeout
        self.description = description

    async def fetch(self) -> AwsCredentials:
        name = self._argv[0]
        try:
            process = await asyncio.create_subprocess_exec(
                *self._argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise FetchFailed(f"cannot run {name}: {exc.strerror or exc}") from exc
        try:
            async with asyncio.timeout(self._timeout):
                stdout, stderr = await process.communicate()
        except TimeoutError:
            raise FetchFailed(
                f"{name} gave no answer within {self._timeout:g}s and was killed"
            ) from None
        finally:
            # On a timeout, and when the cache is closed mid-call, nothing outlives the call.
            await _kill(process)
        if process.returncode != 0:
            detail = _last_lines(stderr)
            raise FetchFailed(
                f"{name} exited with status {process.returncode}"
                + (f": {detail}" if detail else "")
            )
        # stdout holds the secret: it never reaches a log line or an exception message.
        return parse_credential_process_output(stdout, source=name)

    async def close(self) -> None:
        return None


async def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    # Reap it, even if the caller is being cancelled, so no zombie and no open pipe is left.
    await asyncio.shield(process.wait())


def _last_lines(stderr: bytes) -> str:
    text = stderr.decode("utf-8", errors="replace").strip()
    if len(text) > _STDERR_SHOWN:
        text = "..." + text[-_STDERR_SHOWN:]
    return " | ".join(line.strip() for line in text.splitlines() if line.strip())


def parse_credential_process_output(stdout: bytes, *, source: str) -> AwsCredentials:
    """Validate ``credential_process`` JSON; errors describe the shape, never the values."""
    try:
        data: Any = json.loads(stdout)
    except (UnicodeDecodeError, ValueError):
        raise FetchFailed(f"{source} printed something that is not JSON") from None
    if not isinstance(data, dict):
        raise FetchFailed(f"{source} printed JSON that is not an object")
    if data.get("Version") != 1:
        raise FetchFailed(f"{source} printed Version {data.get('Version')!r}; only 1 is known")
    key_id, secret = data.get("AccessKeyId"), data.get("SecretAccessKey")
    if not isinstance(key_id, str) or not key_id or not isinstance(secret, str) or not secret:
        raise FetchFailed(f"{source} printed no AccessKeyId or no SecretAccessKey")
    token = data.get("SessionToken")
    if token is not None and not isinstance(token, str):
        raise FetchFailed(f"{source} printed a SessionToken that is not a string")
    return AwsCredentials(
        key_id, secret, token or None, _expiration(data.get("Expiration"), source)
    )


def _expiration(value: Any, source: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise FetchFailed(f"{source} printed an Expiration that is not an ISO 8601 string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise FetchFailed(
            f"{source} printed an Expiration that is not ISO 8601: {value!r}"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
