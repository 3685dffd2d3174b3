"""Small awsJson1.1 calls (SSM, Secrets Manager) over aiohttp, signed with ``sigv4``.

One POST to ``/`` with ``X-Amz-Target: <prefix>.<Operation>`` and a JSON body; errors come back
as a JSON body whose ``__type`` names the error (sometimes as ``namespace#Code``), mirrored in
the ``x-amzn-ErrorType`` header (sometimes with a ``:uri`` suffix). A Query-style XML error
(``<Error><Code>``) is read too: IAM denials from some emulators (moto) and proxies use it.
Callers branch on ``AwsApiError.code`` only; the message is for the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from bedrock_gw.aws.credentials import AwsCredentials, CredentialsUnavailable
from bedrock_gw.aws.sigv4 import sign_headers

__all__ = [
    "SECRETS_MANAGER",
    "SSM",
    "AwsApiError",
    "AwsCallFailed",
    "AwsJsonClient",
    "AwsJsonService",
]

_CONTENT_TYPE = "application/x-amz-json-1.1"
_XML_CODE = re.compile(rb"<Code>([\w.]{1,128})</Code>")
_XML_MESSAGE = re.compile(rb"<Message>([^<]{0,1024})</Message>")


@dataclass(frozen=True, slots=True)
class AwsJsonService:
    signing_name: str
    target_prefix: str
    endpoint_variable: str
    """The standard per-service override, e.g. ``AWS_ENDPOINT_URL_SSM``."""

    def endpoint(self, region: str, environ: Mapping[str, str]) -> str:
        url = (
            environ.get(self.endpoint_variable)
            or environ.get("AWS_ENDPOINT_URL")
            or f"https://{self.signing_name}.{region}.amazonaws.com"
        )
        return url.rstrip("/")


SSM = AwsJsonService("ssm", "AmazonSSM", "AWS_ENDPOINT_URL_SSM")
SECRETS_MANAGER = AwsJsonService(
    "secretsmanager", "secretsmanager", "AWS_ENDPOINT_URL_SECRETS_MANAGER"
)


class AwsCallFailed(Exception):
    """A call that got no answer from AWS (no credentials, unreachable, timed out)."""

    def __init__(self, operation: str, reason: str) -> None:
        super().__init__(f"{operation}: {reason}")
        self.operation = operation
        self.reason = reason


class AwsApiError(AwsCallFailed):
    """AWS answered with an error; ``code`` is its structured name (``AccessDeniedException``)."""

    def __init__(self, operation: str, code: str, message: str, status: int) -> None:
        detail = f"{code} (HTTP {status})" + (f": {message}" if message else "")
        super().__init__(operation, detail)
        self.code = code
        self.message = message
        self.status = status


class AwsJsonClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        credentials: Callable[[], AwsCredentials],
        environ: Mapping[str, str],
        timeout: float,
        credentials_loaded: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self._session = session
        self._credentials = credentials
        self._credentials_loaded = credentials_loaded
        self._environ = dict(environ)
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def call(
        self, service: AwsJsonService, operation: str, payload: Mapping[str, Any], *, region: str
    ) -> dict[str, Any]:
        """POST one operation; raises ``AwsApiError`` or ``AwsCallFailed``, never aiohttp's."""
        name = f"{service.target_prefix}.{operation}"
        if self._credentials_loaded is not None:
            # At start-up the first credentials may still be on their way (a slow helper):
            # wait for them up to one call's timeout rather than fail into a long backoff.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._timeout.total):
                    await self._credentials_loaded()
        try:
            credentials = self._credentials()
        except CredentialsUnavailable as exc:
            raise AwsCallFailed(name, f"no usable AWS credentials ({exc.message})") from None
        url = service.endpoint(region, self._environ) + "/"
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = sign_headers(
            "POST",
            url,
            {"Content-Type": _CONTENT_TYPE, "X-Amz-Target": name},
            body,
            credentials=credentials,
            region=region,
            service=service.signing_name,
        )
        try:
            async with self._session.post(
                url, data=body, headers=headers, timeout=self._timeout
            ) as response:
                raw = await response.read()
                status = response.status
                error_header = response.headers.get("x-amzn-ErrorType", "")
        except TimeoutError:
            raise AwsCallFailed(
                name, f"no answer from {url} within {self._timeout.total:g}s"
            ) from None
        except aiohttp.ClientError as exc:
            raise AwsCallFailed(name, f"cannot reach {url}: {exc}") from None
        document = _json(raw)
        if status == 200 and isinstance(document, dict):
            return document
        raise _api_error(name, status, error_header, document, raw)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except (UnicodeDecodeError, ValueError):
        return None


def _api_error(operation: str, status: int, header: str, document: Any, raw: bytes) -> AwsApiError:
    code, message = "", ""
    if isinstance(document, dict):
        code = str(document.get("__type") or "").rsplit("#", 1)[-1]
        message = str(document.get("message") or document.get("Message") or "")
    if not code:
        code = header.split(":", 1)[0]
    if not code and (xml_code := _XML_CODE.search(raw)):
        code = xml_code.group(1).decode()
        xml_message = _XML_MESSAGE.search(raw)
        message = xml_message.group(1).decode(errors="replace") if xml_message else ""
    if not code:
        code = "UnknownError" if status != 200 else "MalformedResponse"
    return AwsApiError(operation, code, message, status)
