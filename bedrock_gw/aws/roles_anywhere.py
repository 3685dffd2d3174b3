"""IAM Roles Anywhere: AWS's ``aws_signing_helper``, or CreateSession signed in-process.

The helper is the reference client; AWS publishes builds for x86_64 and aarch64 only, so 32-bit
ARM hosts (older Raspberry Pis) use the in-process source, which signs CreateSession with
``cryptography`` (``sigv4_x509``) and POSTs it over aiohttp. The PyPI library
``iam-rolesanywhere-session`` does the same signing but is blocking, needs boto3, and only
speaks ``https://{endpoint}/sessions``, so it fits neither the loop nor a test endpoint.
API: https://docs.aws.amazon.com/rolesanywhere/latest/APIReference/API_CreateSession.html
"""

from __future__ import annotations

import json
import logging
import shutil
import stat
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from bedrock_gw.aws.credentials import AwsCredentials, CredentialSourceError, FetchFailed
from bedrock_gw.aws.process import CredentialProcessFetcher
from bedrock_gw.config import RolesAnywhereSettings

if TYPE_CHECKING:
    from bedrock_gw.aws.sigv4_x509 import X509Identity

__all__ = [
    "RolesAnywhereSessionFetcher",
    "check_private_key_mode",
    "helper_fetcher",
    "roles_anywhere_endpoint",
]

logger = logging.getLogger(__name__)


def helper_fetcher(settings: RolesAnywhereSettings) -> CredentialProcessFetcher:
    """``aws_signing_helper credential-process ...`` as a fetcher; checks the files first."""
    helper = shutil.which(settings.helper)
    if helper is None:
        raise CredentialSourceError(
            f"aws.roles_anywhere.helper: {settings.helper!r} is not an executable file "
            "(nor a command found in PATH)"
        )
    certificate, private_key = _required_files(settings)
    argv = [
        helper,
        "credential-process",
        "--certificate",
        str(certificate),
        "--private-key",
        str(private_key),
        "--trust-anchor-arn",
        str(settings.trust_anchor_arn),
        "--profile-arn",
        str(settings.profile_arn),
        "--role-arn",
        str(settings.role_arn),
    ]
    if settings.certificate_chain is not None:
        argv += ["--intermediates", str(settings.certificate_chain)]
    if settings.session_duration is not None:
        argv += ["--session-duration", str(settings.session_duration)]
    if settings.region is not None:
        argv += ["--region", settings.region]
    if settings.endpoint is not None:
        argv += ["--endpoint", settings.endpoint]
    return CredentialProcessFetcher(
        argv, timeout=settings.timeout, description=f"Roles Anywhere via {Path(helper).name}"
    )


def _required_files(settings: RolesAnywhereSettings) -> tuple[Path, Path]:
    if settings.certificate is None or settings.private_key is None:  # config validates this
        raise CredentialSourceError("aws.roles_anywhere needs certificate and private_key")
    for key, path in (
        ("certificate", settings.certificate),
        ("private_key", settings.private_key),
        ("certificate_chain", settings.certificate_chain),
    ):
        if path is not None and not path.is_file():
            raise CredentialSourceError(f"aws.roles_anywhere.{key}: no such file {path}")
    check_private_key_mode(settings.private_key)
    return settings.certificate, settings.private_key


def check_private_key_mode(path: Path) -> bool:
    """Warn (once, at start-up) when group or others may read the key; True when it is private."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return True  # reading it will fail with a clearer message
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning(
            "the Roles Anywhere private key %s has mode %04o: group or others can reach it; "
            "make it readable by the gateway's user only (chmod 600)",
            path,
            stat.S_IMODE(mode),
        )
        return False
    return True


def roles_anywhere_endpoint(settings: RolesAnywhereSettings, environ: Mapping[str, str]) -> str:
    """Config, then AWS_ENDPOINT_URL_ROLESANYWHERE, AWS_ENDPOINT_URL, then AWS's host."""
    url = (
        settings.endpoint
        or environ.get("AWS_ENDPOINT_URL_ROLESANYWHERE")
        or environ.get("AWS_ENDPOINT_URL")
        or f"https://rolesanywhere.{settings.effective_region()}.amazonaws.com"
    )
    return url.rstrip("/")


class RolesAnywhereSessionFetcher:
    """CreateSession signed with the certificate's key in-process, sent over aiohttp."""

    description = "Roles Anywhere in-process CreateSession"

    def __init__(
        self,
        identity: X509Identity,
        *,
        endpoint: str,
        region: str,
        trust_anchor_arn: str,
        profile_arn: str,
        role_arn: str,
        session_duration: int | None,
        timeout: float,
    ) -> None:
        self._identity = identity
        self._url = f"{endpoint}/sessions"
        self._region = region
        body: dict[str, Any] = {
            "profileArn": profile_arn,
            "roleArn": role_arn,
            "trustAnchorArn": trust_anchor_arn,
        }
        if session_duration is not None:
            body["durationSeconds"] = session_duration
        self._body = json.dumps(body, separators=(",", ":")).encode()
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(
        cls, settings: RolesAnywhereSettings, environ: Mapping[str, str]
    ) -> RolesAnywhereSessionFetcher:
        try:  # only this source needs cryptography (it has wheels for armv7l too)
            from bedrock_gw.aws.sigv4_x509 import load_identity
        except ImportError as exc:
            raise CredentialSourceError(
                f"{cls.description} needs the 'cryptography' package: {exc}"
            ) from exc
        certificate, private_key = _required_files(settings)
        region = settings.effective_region()
        if (
            region is None
            or settings.trust_anchor_arn is None
            or settings.profile_arn is None
            or settings.role_arn is None
        ):  # config validates this
            raise CredentialSourceError("aws.roles_anywhere needs the three ARNs")
        return cls(
            load_identity(certificate, private_key, settings.certificate_chain),
            endpoint=roles_anywhere_endpoint(settings, environ),
            region=region,
            trust_anchor_arn=settings.trust_anchor_arn,
            profile_arn=settings.profile_arn,
            role_arn=settings.role_arn,
            session_duration=settings.session_duration,
            timeout=settings.timeout,
        )

    async def fetch(self) -> AwsCredentials:
        from bedrock_gw.aws.sigv4_x509 import sign_headers_x509

        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        headers = sign_headers_x509(
            "POST",
            self._url,
            {"Content-Type": "application/json"},
            self._body,
            identity=self._identity,
            region=self._region,
        )
        try:
            async with self._session.post(self._url, data=self._body, headers=headers) as response:
                raw = await response.read()
                status = response.status
                error_type = response.headers.get("x-amzn-ErrorType", "")
        except TimeoutError:
            raise FetchFailed(f"CreateSession at {self._url} timed out") from None
        except aiohttp.ClientError as exc:
            raise FetchFailed(f"cannot reach {self._url}: {exc}") from None
        # The body of a success holds the secret: it is parsed, never logged.
        if status >= 300:
            raise FetchFailed(
                f"CreateSession at {self._url} failed: {_error(status, error_type, raw)}"
            )
        return _parse_session(raw)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _error(status: int, error_type: str, raw: bytes) -> str:
    code = error_type.split(":", 1)[0]
    message = ""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        body = None
    if isinstance(body, dict):
        code = code or str(body.get("__type", "")).rsplit("#", 1)[-1]
        message = str(body.get("message") or body.get("Message") or "")
    return f"HTTP {status} {code or 'error'}" + (f": {message}" if message else "")


def _parse_session(raw: bytes) -> AwsCredentials:
    try:
        credentials = json.loads(raw)["credentialSet"][0]["credentials"]
        key_id, secret = credentials["accessKeyId"], credentials["secretAccessKey"]
        token, expiration = credentials.get("sessionToken"), credentials.get("expiration")
        expires_at = datetime.fromisoformat(expiration) if expiration else None
    except (UnicodeDecodeError, ValueError, LookupError, TypeError):
        raise FetchFailed("CreateSession answered without a usable credential set") from None
    if not isinstance(key_id, str) or not isinstance(secret, str) or not key_id or not secret:
        raise FetchFailed("CreateSession answered without an access key")
    if expires_at is not None and expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    return AwsCredentials(key_id, secret, token, expires_at)
