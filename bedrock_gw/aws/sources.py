"""From ``[aws] credentials = ...`` to the fetcher that gets them."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import Executor

from bedrock_gw.aws.credentials import (
    BotocoreChainFetcher,
    CredentialFetcher,
    CredentialSourceError,
)
from bedrock_gw.aws.roles_anywhere import RolesAnywhereSessionFetcher, helper_fetcher
from bedrock_gw.aws.static import static_fetcher
from bedrock_gw.config import AwsSettings

__all__ = ["credential_fetcher"]

logger = logging.getLogger(__name__)


def credential_fetcher(
    aws: AwsSettings, *, executor: Executor, environ: Mapping[str, str]
) -> CredentialFetcher:
    """Build the configured source; ``CredentialSourceError`` says why it cannot work."""
    try:
        return _build(aws, executor, environ)
    except CredentialSourceError as exc:
        logger.error('AWS credentials (credentials = "%s"): %s', aws.credentials, exc.problem)
        raise


def _build(aws: AwsSettings, executor: Executor, environ: Mapping[str, str]) -> CredentialFetcher:
    match aws.credentials:
        case "default":
            return BotocoreChainFetcher(executor)
        case "static":
            return static_fetcher(aws.static, environ)
        case "roles-anywhere":
            return helper_fetcher(aws.roles_anywhere)
        case "roles-anywhere-inprocess":
            return RolesAnywhereSessionFetcher.from_settings(aws.roles_anywhere, environ)
