"""The aiohttp application: routes, middlewares, and the resources it owns.

Resources are opened in ``cleanup_ctx`` order and closed in reverse: the thread pool for slow
credential sources, the usage store (so a bad state directory stops the start at once), the
credential cache, the API keys, the HTTP client session with the Bedrock client and the
passthrough's forwarder, and the model catalogue that uses them.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
from aiohttp import web

from bedrock_gw.auth import KeyRing, keyring_from_settings
from bedrock_gw.aws.credentials import CredentialCache
from bedrock_gw.aws.json_rpc import AwsJsonClient
from bedrock_gw.aws.sources import credential_fetcher
from bedrock_gw.bedrock.client import BedrockClient, BedrockEndpoints, BedrockTimeouts
from bedrock_gw.bedrock.forward import Forwarder
from bedrock_gw.config import Settings
from bedrock_gw.governance.governor import Governor
from bedrock_gw.governance.metrics import GatewayStatus, Metrics
from bedrock_gw.governance.usage_store import UsageStore, usage_database
from bedrock_gw.keys import KEY_STORE, key_sources, key_store_from_settings
from bedrock_gw.models.catalog import ModelCatalog
from bedrock_gw.readiness import ReadinessGates
from bedrock_gw.reload import RELOAD_HOOKS, ReloadHooks
from bedrock_gw.web.chat import chat_completions
from bedrock_gw.web.embeddings import create_embeddings
from bedrock_gw.web.metrics import metrics_endpoint, metrics_middleware
from bedrock_gw.web.middleware import auth_middleware, error_middleware
from bedrock_gw.web.models import get_model, health, list_models
from bedrock_gw.web.passthrough import PREFIX, bedrock_passthrough
from bedrock_gw.web.sse import EventStream
from bedrock_gw.web.state import (
    BEDROCK,
    CATALOG,
    CREDENTIALS,
    FORWARDER,
    GOVERNOR,
    HTTP_CLIENT,
    LIVE,
    METRICS,
    READINESS,
    STREAMS,
    LiveConfig,
)

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

_EXECUTOR = web.AppKey("executor", ThreadPoolExecutor)


def create_app(settings: Settings, *, environ: Mapping[str, str] | None = None) -> web.Application:
    """Build the application; nothing is opened until the runner starts it."""
    server = settings.server
    environment = dict(os.environ if environ is None else environ)
    app = web.Application(
        # Metrics outermost: they see the status the error middleware chose.
        middlewares=[metrics_middleware, error_middleware, auth_middleware],
        client_max_size=server.max_body_bytes,
        handler_args={
            "max_field_size": server.max_header_bytes,
            "max_line_size": server.max_header_bytes,
            "keepalive_timeout": server.idle_timeout,
        },
    )
    app[LIVE] = LiveConfig(settings, keyring_from_settings(settings.auth))
    app[STREAMS] = weakref.WeakSet[EventStream]()
    app[READINESS] = ReadinessGates()
    app[RELOAD_HOOKS] = ReloadHooks()
    app[METRICS] = Metrics()
    app[METRICS].watch(lambda: _status(app))
    app.cleanup_ctx.extend(
        [
            _executor_ctx,
            _usage_ctx(usage_database(settings, environment)),
            _credentials_ctx,
            _keys_ctx,
            _bedrock_ctx(environment),
            _catalog_ctx,
        ]
    )
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics_endpoint)
    for prefix in ("/v1", "/api/v1"):
        app.router.add_get(f"{prefix}/models", list_models)
        app.router.add_get(f"{prefix}/models/{{model_id:.+}}", get_model)
        app.router.add_post(f"{prefix}/chat/completions", chat_completions)
        app.router.add_post(f"{prefix}/embeddings", create_embeddings)
    app.router.add_route("*", f"{PREFIX}/{{tail:.*}}", bedrock_passthrough)
    return app


def _status(app: web.Application) -> GatewayStatus:
    return GatewayStatus(
        credentials=app[CREDENTIALS].status if CREDENTIALS in app else None,
        keys=app[KEY_STORE].status if KEY_STORE in app else None,
        catalog=app[CATALOG].status if CATALOG in app else None,
        usage_store_error=app[GOVERNOR].store.last_error if GOVERNOR in app else None,
    )


async def _executor_ctx(app: web.Application) -> AsyncIterator[None]:
    # Only slow credential sources (botocore's chain, a helper process) use these threads;
    # requests and streams never do.
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bedrock-gw-aws")
    app[_EXECUTOR] = executor
    yield
    executor.shutdown(wait=False, cancel_futures=True)


def _usage_ctx(database: Path | None) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        settings = app[LIVE].settings
        store = UsageStore(database)
        # Raises ConfigError when the file cannot be opened: no start.
        await store.open(settings.usage.flush_interval)
        governor = Governor(store, app[METRICS])
        try:
            await governor.start()
        except BaseException:
            await store.close()
            raise
        app[GOVERNOR] = governor
        if database is None:
            logger.warning(
                "usage is kept in memory only: budgets start afresh at every restart "
                "(set [usage] directory, or run under systemd with StateDirectory=)"
            )
        yield
        # The last counts are written here, after every request has ended.
        await store.close()

    return context


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
        endpoints = BedrockEndpoints.resolve(
            aws.region, environ, aws.runtime_endpoint, aws.control_endpoint
        )
        timeouts = BedrockTimeouts(
            connect=aws.connect_timeout,
            first_byte=aws.first_byte_timeout,
            stream_idle=aws.stream_idle_timeout,
        )
        app[BEDROCK] = BedrockClient(
            session,
            credentials=app[CREDENTIALS].current,
            region=aws.region,
            endpoints=endpoints,
            timeouts=timeouts,
        )
        app[FORWARDER] = Forwarder(
            session,
            credentials=app[CREDENTIALS].current,
            region=aws.region,
            runtime_endpoint=endpoints.runtime,
            timeouts=timeouts,
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
