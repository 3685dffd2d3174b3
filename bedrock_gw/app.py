"""The aiohttp application: routes, middlewares, and the resources it owns.

Resources are opened in ``cleanup_ctx`` order and closed in reverse: the thread pool for slow
credential sources, the credential cache, the HTTP client session with the Bedrock client, and
the model catalogue that uses it.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

import aiohttp
from aiohttp import web

from bedrock_gw.auth import keyring_from_settings
from bedrock_gw.aws.credentials import BotocoreChainFetcher, CredentialCache
from bedrock_gw.bedrock.client import BedrockClient, BedrockEndpoints, BedrockTimeouts
from bedrock_gw.config import Settings
from bedrock_gw.models.catalog import ModelCatalog
from bedrock_gw.readiness import ReadinessGates
from bedrock_gw.web.chat import chat_completions
from bedrock_gw.web.embeddings import create_embeddings
from bedrock_gw.web.middleware import auth_middleware, error_middleware
from bedrock_gw.web.models import get_model, health, list_models
from bedrock_gw.web.sse import EventStream
from bedrock_gw.web.state import (
    BEDROCK,
    CATALOG,
    CREDENTIALS,
    LIVE,
    READINESS,
    STREAMS,
    LiveConfig,
)

__all__ = ["create_app"]

_EXECUTOR = web.AppKey("executor", ThreadPoolExecutor)
_HTTP = web.AppKey("http", aiohttp.ClientSession)


def create_app(settings: Settings, *, environ: Mapping[str, str] | None = None) -> web.Application:
    """Build the application; nothing is opened until the runner starts it."""
    app = web.Application(
        middlewares=[error_middleware, auth_middleware],
        client_max_size=settings.server.max_body_bytes,
        handler_args={"max_field_size": 16 * 1024},
    )
    app[LIVE] = LiveConfig(settings, keyring_from_settings(settings.auth))
    app[STREAMS] = weakref.WeakSet[EventStream]()
    app[READINESS] = ReadinessGates()
    app.cleanup_ctx.extend(
        [
            _executor_ctx,
            _credentials_ctx,
            _bedrock_ctx(dict(os.environ if environ is None else environ)),
            _catalog_ctx,
        ]
    )
    app.router.add_get("/health", health)
    for prefix in ("/v1", "/api/v1"):
        app.router.add_get(f"{prefix}/models", list_models)
        app.router.add_get(f"{prefix}/models/{{model_id:.+}}", get_model)
        app.router.add_post(f"{prefix}/chat/completions", chat_completions)
        app.router.add_post(f"{prefix}/embeddings", create_embeddings)
    return app


async def _executor_ctx(app: web.Application) -> AsyncIterator[None]:
    # Only slow credential sources (botocore's chain, a helper process) use these threads;
    # requests and streams never do.
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bedrock-gw-aws")
    app[_EXECUTOR] = executor
    yield
    executor.shutdown(wait=False, cancel_futures=True)


async def _credentials_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[LIVE].settings
    cache = CredentialCache(
        BotocoreChainFetcher(app[_EXECUTOR]),
        refresh_margin=settings.aws.credentials_refresh_margin,
    )
    await cache.start()
    app[CREDENTIALS] = cache
    app[READINESS].add(f"loading AWS credentials ({cache.status.source})", cache.wait_until_loaded)
    yield
    await cache.close()


def _bedrock_ctx(
    environ: Mapping[str, str],
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        aws = app[LIVE].settings.aws
        connector = aiohttp.TCPConnector(
            limit=aws.max_connections, ttl_dns_cache=300, keepalive_timeout=60
        )
        session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",)
        )
        app[_HTTP] = session
        app[BEDROCK] = BedrockClient(
            session,
            credentials=app[CREDENTIALS].current,
            region=aws.region,
            endpoints=BedrockEndpoints.resolve(
                aws.region, environ, aws.runtime_endpoint, aws.control_endpoint
            ),
            timeouts=BedrockTimeouts(
                connect=aws.connect_timeout,
                first_byte=aws.first_byte_timeout,
                stream_idle=aws.stream_idle_timeout,
            ),
        )
        yield
        await session.close()

    return context


async def _catalog_ctx(app: web.Application) -> AsyncIterator[None]:
    models = app[LIVE].settings.models
    catalog = ModelCatalog(
        app[BEDROCK],
        allow=models.allow,
        deny=models.deny,
        refresh_interval=models.refresh_interval,
    )
    catalog.start()
    app[CATALOG] = catalog
    yield
    await catalog.close()
