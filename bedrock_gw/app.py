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

from bedrock_gw.auth import KeyRing, keyring_from_settings
from bedrock_gw.aws.credentials import CredentialCache
from bedrock_gw.aws.json_rpc import AwsJsonClient
from bedrock_gw.aws.sources import credential_fetcher
from bedrock_gw.bedrock.client import BedrockClient, BedrockEndpoints, BedrockTimeouts
from bedrock_gw.config import Settings
from bedrock_gw.keys import KEY_STORE, key_sources, key_store_from_settings
from bedrock_gw.models.catalog import ModelCatalog
from bedrock_gw.readiness import ReadinessGates
from bedrock_gw.reload import RELOAD_HOOKS, ReloadHooks
from bedrock_gw.web.chat import chat_completions
from bedrock_gw.web.embeddings import create_embeddings
from bedrock_gw.web.middleware import auth_middleware, error_middleware
from bedrock_gw.web.models import get_model, health, list_models
from bedrock_gw.web.sse import EventStream
from bedrock_gw.web.state import (
    BEDROCK,
    CATALOG,
    CREDENTIALS,
    HTTP_CLIENT,
    LIVE,
    READINESS,
    STREAMS,
    LiveConfig,
)

__all__ = ["create_app"]

_EXECUTOR = web.AppKey("executor", ThreadPoolExecutor)


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
    app[RELOAD_HOOKS] = ReloadHooks()
    app.cleanup_ctx.extend(
        [
            _executor_ctx,
            _credentials_ctx,
            _keys_ctx,
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
    # Raises CredentialSourceError (a ConfigError) when the source cannot work: no start.
    fetcher = credential_fetcher(settings.aws, executor=app[_EXECUTOR], environ=os.environ)
    cache = CredentialCache(fetcher, refresh_margin=settings.aws.credentials_refresh_margin)
    await cache.start()
    app[CREDENTIALS] = cache
    app[READINESS].add(f"loading AWS credentials ({cache.status.source})", cache.wait_until_loaded)
    yield
    await cache.close()


async def _keys_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[LIVE].settings
    # A small session of its own: SSM and Secrets Manager calls are rare and tiny.
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4))
    aws = AwsJsonClient(
        session,
        credentials=app[CREDENTIALS].current,
        credentials_loaded=app[CREDENTIALS].wait_until_loaded,
        environ=os.environ,
        timeout=settings.auth.aws_timeout,
    )

    def publish(keyring: KeyRing) -> None:
        # Read LIVE at call time; the holder is updated in place, never replaced.
        app[LIVE].keyring = keyring

    store = key_store_from_settings(
        settings.auth, aws_region=settings.aws.region, aws=aws, on_change=publish
    )
    served = [settings.auth]

    async def reload_keys(candidate: LiveConfig) -> LiveConfig:
        # SIGHUP re-reads every key source. A changed [auth] gets new sources, and the whole
        # reload is refused (KeySourceError) if one of them cannot be read.
        auth = candidate.settings.auth
        if auth != served[0]:
            sources = key_sources(auth, aws_region=settings.aws.region, aws=aws)
            await store.replace_sources(sources, refresh_interval=auth.refresh_interval)
            served[0] = auth
        else:
            await store.refresh()
        return LiveConfig(candidate.settings, store.keyring)

    app[KEY_STORE] = store
    app[RELOAD_HOOKS].add("re-reading API keys", reload_keys)
    gate = "resolving API keys from SSM" if settings.auth.ssm_parameter else "loading API keys"
    app[READINESS].add(gate, store.wait_until_loaded)
    await store.start()
    yield
    await store.close()
    await session.close()


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
        app[HTTP_CLIENT] = session
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
        aliases=models.aliases,
        refresh_interval=models.refresh_interval,
    )
    catalog.start()
    app[CATALOG] = catalog
    yield
    await catalog.close()
