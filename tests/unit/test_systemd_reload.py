"""Reloading the configuration into a running app: what changes live, what waits for a restart."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp import web

from bedrock_gw.auth import ApiKey, KeyRing, keyring_from_settings
from bedrock_gw.config import Settings
from bedrock_gw.errors import ServiceUnavailable
from bedrock_gw.models.catalog import ModelCatalog
from bedrock_gw.reload import (
    RELOAD_HOOKS,
    Reloader,
    ReloadHooks,
    ReloadRejected,
    apply_settings,
    diff_settings,
)
from bedrock_gw.web.state import CATALOG, LIVE, LiveConfig

OLD_KEY = "old-key-0123456789"
NEW_KEY = "new-key-0123456789"


class RecordingCatalog:
    """Stands in for the model catalogue: records what a reload asks of it."""

    def __init__(self, *, refresh_error: Exception | None = None) -> None:
        self.filters: list[tuple[tuple[str, ...], tuple[str, ...], dict[str, str]]] = []
        self.refreshed = asyncio.Event()
        self._refresh_error = refresh_error

    def set_filters(
        self, allow: Sequence[str], deny: Sequence[str], aliases: Mapping[str, str] | None = None
    ) -> None:
        self.filters.append((tuple(allow), tuple(deny), dict(aliases or {})))

    async def refresh(self) -> None:
        self.refreshed.set()
        if self._refresh_error is not None:
            raise self._refresh_error


def settings(**sections: dict[str, Any]) -> Settings:
    data: dict[str, Any] = {"auth": {"api_keys": [OLD_KEY]}}
    data.update(sections)
    return Settings(**data)


def make_app(running: Settings, catalog: RecordingCatalog | None = None) -> web.Application:
    app = web.Application()
    app[LIVE] = LiveConfig(running, keyring_from_settings(running.auth))
    app[CATALOG] = cast(ModelCatalog, catalog or RecordingCatalog())
    app[RELOAD_HOOKS] = ReloadHooks()
    return app


@pytest.fixture(autouse=True)
def _restore_levels() -> Iterator[None]:
    """A reload sets log levels process-wide: put them back after each test."""
    names = ("", "aiohttp.access", "bedrock_gw.access")
    saved = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.parametrize(
    ("change", "live", "restart"),
    [
        pytest.param({}, (), (), id="nothing"),
        pytest.param({"auth": {"api_keys": [NEW_KEY]}}, ("auth.api_keys",), (), id="api-keys"),
        pytest.param(
            {"models": {"allow": ["us.*"], "deny": ["*titan*"]}},
            ("models.allow", "models.deny"),
            (),
            id="model-filters",
        ),
        pytest.param(
            {"models": {"aliases": {"fast": "us.x"}}}, ("models.aliases",), (), id="aliases"
        ),
        pytest.param(
            {"logging": {"level": "DEBUG", "access_log": False, "log_bodies": True}},
            ("logging.access_log", "logging.level", "logging.log_bodies"),
            (),
            id="logging",
        ),
        pytest.param(
            {"server": {"shutdown_timeout": 5.0, "stream_keepalive": 3.0}},
            ("server.shutdown_timeout", "server.stream_keepalive"),
            (),
            id="server-limits",
        ),
        pytest.param(
            {"embeddings": {"max_concurrency": 2}},
            ("embeddings.max_concurrency",),
            (),
            id="embedding-concurrency",
        ),
        pytest.param(
            {"server": {"host": "0.0.0.0", "port": 9000}},
            (),
            ("server.host", "server.port"),
            id="listen-address",
        ),
        pytest.param(
            {"aws": {"region": "eu-west-1", "runtime_endpoint": "http://x"}},
            (),
            ("aws.region", "aws.runtime_endpoint"),
            id="aws",
        ),
        pytest.param(
            {"server": {"max_body_bytes": 4096}}, (), ("server.max_body_bytes",), id="body-size"
        ),
        pytest.param(
            {"auth": {"api_keys": [OLD_KEY], "aws_timeout": 3.0}},
            (),
            ("auth.aws_timeout",),
            id="key-source-client-timeout",
        ),
        pytest.param(
            {"models": {"refresh_interval": 60.0}},
            (),
            ("models.refresh_interval",),
            id="refresh-interval",
        ),
    ],
)
def test_diff_splits_live_and_restart(
    change: dict[str, Any], live: tuple[str, ...], restart: tuple[str, ...]
) -> None:
    """Each changed setting is either applied by a reload or reported as needing a restart."""
    changes = diff_settings(settings(), settings(**change))
    assert (changes.live, changes.restart) == (live, restart)


async def test_new_key_is_live_and_old_one_gone() -> None:
    """After a reload the new inline key authenticates and the old one no longer does."""
    app = make_app(settings())
    holder = app[LIVE]
    await apply_settings(app, settings(auth={"api_keys": [NEW_KEY]}))
    assert app[LIVE] is holder  # replaced inside the holder, which aiohttp lets us keep
    assert holder.keyring.authenticate(NEW_KEY) is not None
    assert holder.keyring.authenticate(OLD_KEY) is None


async def test_restart_settings_keep_their_running_value() -> None:
    """app[LIVE] tells what is in effect: a new port is not pretended to be in use."""
    app = make_app(settings(server={"port": 8000}))
    changes = await apply_settings(
        app, settings(server={"port": 9000, "stream_keepalive": 2.0}, auth={"api_keys": [NEW_KEY]})
    )
    assert changes.restart == ("server.port",)
    live = app[LIVE].settings
    assert (live.server.port, live.server.stream_keepalive) == (8000, 2.0)
    # The next reload of the same file still reports the pending restart.
    again = await apply_settings(app, settings(server={"port": 9000, "stream_keepalive": 2.0}))
    assert again.restart == ("server.port",)


async def test_unchanged_auth_keeps_the_published_keyring() -> None:
    """Keys published by a key source stay when [auth] did not change."""
    app = make_app(settings())
    published = KeyRing([ApiKey.from_plaintext("from-ssm", "ssm-key-0123456789")])
    app[LIVE].keyring = published
    await apply_settings(app, settings(models={"deny": ["*titan*"]}))
    assert app[LIVE].keyring is published


async def test_filters_and_levels_are_applied() -> None:
    """Model filters and aliases go to the catalogue; the log level changes at once."""
    catalog = RecordingCatalog()
    app = make_app(settings(), catalog)
    await apply_settings(
        app,
        settings(
            models={"allow": ["us.*"], "deny": ["*v1*"], "aliases": {"fast": "us.a"}},
            logging={"level": "WARNING", "access_log": False},
        ),
    )
    assert catalog.filters == [(("us.*",), ("*v1*",), {"fast": "us.a"})]
    assert logging.getLogger().level == logging.WARNING
    assert not logging.getLogger("bedrock_gw.access").isEnabledFor(logging.INFO)


async def test_hook_can_replace_the_keyring() -> None:
    """A key source's hook sees the candidate config and may add its own keys to it."""
    app = make_app(settings())
    seen: list[Settings] = []

    async def add_ssm_keys(candidate: LiveConfig) -> LiveConfig:
        seen.append(candidate.settings)
        keys = KeyRing([ApiKey.from_plaintext("from-ssm", "ssm-key-0123456789")])
        return LiveConfig(candidate.settings, keys)

    app[RELOAD_HOOKS].add("re-reading API keys from SSM", add_ssm_keys)
    new = settings(auth={"api_keys": [NEW_KEY]})
    await apply_settings(app, new)
    assert seen == [new]
    assert app[LIVE].keyring.authenticate("ssm-key-0123456789") is not None


async def test_failing_hook_rejects_the_whole_reload() -> None:
    """If a hook fails nothing changes: same settings, same keys, no filters applied."""
    catalog = RecordingCatalog()
    app = make_app(settings(), catalog)
    before = (app[LIVE].settings, app[LIVE].keyring)

    async def broken(candidate: LiveConfig) -> LiveConfig:
        raise ServiceUnavailable("SSM is unreachable")

    app[RELOAD_HOOKS].add("re-reading API keys from SSM", broken)
    with pytest.raises(ReloadRejected, match="re-reading API keys from SSM failed: SSM is"):
        await apply_settings(app, settings(auth={"api_keys": [NEW_KEY]}, models={"deny": ["x"]}))
    assert (app[LIVE].settings, app[LIVE].keyring) == before
    assert catalog.filters == []


async def test_reloader_rejects_an_invalid_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file that does not validate is logged as rejected, and the old config serves on."""
    path = tmp_path / "config.toml"
    path.write_text('[server]\nport = "eighty"\n')
    app = make_app(settings())
    before = app[LIVE].settings
    reloader = Reloader(app, path)
    with caplog.at_level(logging.ERROR, logger="bedrock_gw.reload"), pytest.raises(ReloadRejected):
        await reloader.reload()
    assert app[LIVE].settings is before
    (record,) = caplog.records
    message = record.getMessage()
    assert "reload rejected, still serving the previous one" in message
    assert "server.port" in message
    await reloader.close()


async def test_reloader_applies_logs_and_refreshes_models(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A valid file goes live, restart-only changes are warned about, models are re-listed."""
    path = tmp_path / "config.toml"
    path.write_text(f'[server]\nport = 9000\n[auth]\napi_keys = ["{NEW_KEY}"]\n')
    catalog = RecordingCatalog(refresh_error=ServiceUnavailable("Bedrock is down"))
    app = make_app(settings(), catalog)
    reloader = Reloader(app, path)
    with caplog.at_level(logging.INFO, logger="bedrock_gw.reload"):
        changes = await reloader.reload()
        await asyncio.wait_for(catalog.refreshed.wait(), 5)
        await reloader.close()
    assert changes.live == ("auth.api_keys",)
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert ("INFO", f"configuration reloaded from {path}: changed auth.api_keys") in messages
    assert (
        "WARNING",
        f"changed in {path} but kept at the running value until a restart: server.port",
    ) in messages
    assert ("WARNING", "listing models after the reload failed: Bedrock is down") in messages
    assert app[LIVE].keyring.authenticate(NEW_KEY) is not None
