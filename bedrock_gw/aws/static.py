"""Static AWS credentials: an IAM user's access key, from config, systemd credentials or env.

Each value is looked up on its own, in this order: the ``[aws.static]`` section, the systemd
credential file ``$CREDENTIALS_DIRECTORY/<name>`` (``LoadCredential=``: the secret then lives
in a root-only file and never in the unit or in a world-readable config), then the standard
``AWS_*`` variable. So the key id may sit in the config while the secret comes from systemd.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from bedrock_gw.aws.credentials import AwsCredentials, CredentialSourceError
from bedrock_gw.config import StaticCredentialSettings

__all__ = ["StaticFetcher", "static_fetcher"]


class StaticFetcher:
    """Long-lived credentials, resolved once at start-up; ``fetch`` only hands them out."""

    def __init__(self, credentials: AwsCredentials, description: str) -> None:
        self._credentials = credentials
        self.description = description

    async def fetch(self) -> AwsCredentials:
        return self._credentials

    async def close(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class _Found:
    value: str
    origin: str


def static_fetcher(settings: StaticCredentialSettings, environ: Mapping[str, str]) -> StaticFetcher:
    """Resolve the access key; raises ``CredentialSourceError`` naming every place it looked."""
    credentials_dir = environ.get("CREDENTIALS_DIRECTORY")
    key_id = _lookup(
        settings.access_key_id,
        settings.access_key_id_credential,
        "AWS_ACCESS_KEY_ID",
        credentials_dir,
        environ,
    )
    secret = _lookup(
        settings.secret_access_key,
        settings.secret_access_key_credential,
        "AWS_SECRET_ACCESS_KEY",
        credentials_dir,
        environ,
    )
    token = _lookup(
        settings.session_token,
        settings.session_token_credential,
        "AWS_SESSION_TOKEN",
        credentials_dir,
        environ,
    )
    missing = []
    if key_id is None:
        missing.append(
            _where(
                "access key id",
                "access_key_id",
                settings.access_key_id_credential,
                "AWS_ACCESS_KEY_ID",
                credentials_dir,
            )
        )
    if secret is None:
        missing.append(
            _where(
                "secret access key",
                "secret_access_key",
                settings.secret_access_key_credential,
                "AWS_SECRET_ACCESS_KEY",
                credentials_dir,
            )
        )
    if key_id is None or secret is None:
        raise CredentialSourceError("; ".join(missing))
    origins = f"key id from {key_id.origin}, secret from {secret.origin}"
    if token is not None:
        origins += f", session token from {token.origin}"
    return StaticFetcher(
        AwsCredentials(key_id.value, secret.value, token.value if token else None),
        f"static access key ({origins})",
    )


def _lookup(
    configured: str | SecretStr | None,
    credential_name: str,
    variable: str,
    credentials_dir: str | None,
    environ: Mapping[str, str],
) -> _Found | None:
    if configured is not None:
        value = configured.get_secret_value() if isinstance(configured, SecretStr) else configured
        if value:
            return _Found(value, "the config")
    if credentials_dir:
        path = Path(credentials_dir) / credential_name
        try:
            value = path.read_text().strip()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise CredentialSourceError(
                f"cannot read systemd credential {path}: {exc.strerror or exc}"
            ) from exc
        else:
            if value:
                return _Found(value, f"systemd credential {credential_name}")
    value = environ.get(variable, "").strip()
    if value:
        return _Found(value, variable)
    return None


def _where(
    what: str, key: str, credential_name: str, variable: str, credentials_dir: str | None
) -> str:
    credential = (
        f"$CREDENTIALS_DIRECTORY/{credential_name}"
        if credentials_dir
        else f"systemd credential {credential_name} (CREDENTIALS_DIRECTORY is not set)"
    )
    return f"no {what}: set aws.static.{key}, provide {credential}, or set {variable}"
