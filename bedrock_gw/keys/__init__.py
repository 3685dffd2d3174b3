"""API keys: the sources they are read from and the store that keeps them fresh."""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from bedrock_gw.auth import KeyRing
from bedrock_gw.aws.json_rpc import AwsJsonClient
from bedrock_gw.config import AuthSettings
from bedrock_gw.keys.sources import (
    InlineKeys,
    KeyFile,
    KeySource,
    KeySourceError,
    SsmSecretKeys,
    arn_region,
)
from bedrock_gw.keys.store import KeyStore, KeyStoreStatus

__all__ = [
    "KEY_STORE",
    "KeySourceError",
    "KeyStore",
    "KeyStoreStatus",
    "key_sources",
    "key_store_from_settings",
]

KEY_STORE = web.AppKey("key_store", KeyStore)


def key_sources(
    auth: AuthSettings, *, aws_region: str, aws: AwsJsonClient | None
) -> list[KeySource]:
    """Every configured source; ``aws`` is needed only with ``ssm_parameter``."""
    sources: list[KeySource] = []
    if auth.api_keys:
        sources.append(InlineKeys(auth.api_keys))
    if auth.key_file is not None:
        sources.append(KeyFile(auth.key_file))
    if auth.ssm_parameter is not None:
        if aws is None:
            raise ValueError("auth.ssm_parameter needs an AWS client")
        sources.append(
            SsmSecretKeys(
                aws,
                parameter=auth.ssm_parameter,
                region=auth.ssm_region or arn_region(auth.ssm_parameter, "ssm") or aws_region,
                grace=auth.rotation_grace_period,
                clock=time.time,
            )
        )
    return sources


def key_store_from_settings(
    auth: AuthSettings,
    *,
    aws_region: str,
    aws: AwsJsonClient | None,
    on_change: Callable[[KeyRing], None],
) -> KeyStore:
    """One store over every configured source."""
    return KeyStore(
        key_sources(auth, aws_region=aws_region, aws=aws),
        refresh_interval=auth.refresh_interval,
        on_change=on_change,
    )
