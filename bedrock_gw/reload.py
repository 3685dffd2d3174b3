"""Applying a re-read configuration to the running app (SIGHUP, ``systemctl reload``).

What may change live is swapped in whole: the settings and key ring in ``app[LIVE]``, the model
filters, the log levels; the model list is fetched again in the background. What was fixed when
the daemon started (the listening socket, the Bedrock client and its endpoints and timeouts, the
credential source, the body size limit aiohttp enforces) keeps its old value until a restart,
and the reload says so. A file that does not validate, or a key source that fails, changes
nothing: the previous configuration keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from bedrock_gw.auth import keyring_from_settings
from bedrock_gw.config import ConfigError, Settings, load_settings
from bedrock_gw.errors import GatewayError
from bedrock_gw.logs import apply_levels
from bedrock_gw.web.state import CATALOG, LIVE, LiveConfig

__all__ = [
    "LIVE_KEYS",
    "RELOAD_HOOKS",
    "Changes",
    "ReloadHook",
    "ReloadHooks",
    "ReloadRejected",
    "Reloader",
    "apply_settings",
    "diff_settings",
]

logger = logging.getLogger(__name__)

LIVE_KEYS = frozenset(
    {
        # Read from app[LIVE] where they are used; key sources re-resolve through a hook.
        "auth",
        "chat",
        "embeddings.max_concurrency",
        "logging.log_bodies",
        "server.shutdown_timeout",
        "server.stream_keepalive",
        "server.allow_cidrs",
        "server.max_streams",
        "limits",
        "metrics",
        "passthrough",
        "usage.prices",
        # Re-read from the files by the server's hook (HTTPS on or off needs a restart).
        "tls",
        # Applied by this module: catalogue filters and log levels.
        "logging.access_log",
        "logging.level",
        "models.aliases",
        "models.allow",
        "models.deny",
    }
)
"""Settings (sections or ``section.key``) a reload applies; any other change needs a restart."""

# Exceptions inside live sections: the SSM and Secrets Manager client is built once, at start.
_RESTART_ONLY = frozenset({"auth.aws_timeout"})

ReloadHook = Callable[[LiveConfig], Awaitable[LiveConfig]]
"""Given the candidate ``LiveConfig`` of a reload, return it (or a replacement: e.g. with keys
re-resolved from another source added to its key ring). Raising rejects the whole reload."""


class ReloadHooks:
    """What resources (such as a key source) need done before a reloaded config goes live."""

    def __init__(self) -> None:
        self._hooks: list[tuple[str, ReloadHook]] = []

    def add(self, description: str, hook: ReloadHook) -> None:
        self._hooks.append((description, hook))

    def __iter__(self) -> Iterator[tuple[str, ReloadHook]]:
        return iter(tuple(self._hooks))


RELOAD_HOOKS = web.AppKey("reload_hooks", ReloadHooks)


class ReloadRejected(Exception):
    """The new configuration was not applied; the message says why, on one line."""


@dataclass(frozen=True, slots=True)
class Changes:
    live: tuple[str, ...]
    """Changed settings now in effect (``section.key``)."""
    restart: tuple[str, ...]
    """Changed settings kept at their old value until the daemon restarts."""


def diff_settings(old: Settings, new: Settings) -> Changes:
    """Which settings differ, split by whether a reload can apply them."""
    before, after = _flatten(old), _flatten(new)
    changed = sorted(
        key for key in before.keys() | after.keys() if before.get(key) != after.get(key)
    )
    live = tuple(key for key in changed if _is_live(key))
    return Changes(live, tuple(key for key in changed if not _is_live(key)))


async def apply_settings(app: web.Application, new: Settings) -> Changes:
    """Put ``new`` into effect in a running app, as far as it can be without a restart.

    Raises ``ReloadRejected``, with nothing changed, when a reload hook fails.
    """
    current = app[LIVE]
    running = current.settings
    changes = diff_settings(running, new)
    # What needs a restart keeps its running value, so app[LIVE] always tells what is in effect.
    settings = _keep_running_values(new, running, changes.restart)
    # Inline keys are rebuilt only when [auth] changed; other key sources refresh in a hook.
    if settings.auth == running.auth:
        keyring = current.keyring
    else:
        keyring = keyring_from_settings(settings.auth)
    candidate = LiveConfig(settings, keyring)
    for description, hook in app.get(RELOAD_HOOKS, ()):
        try:
            candidate = await hook(candidate)
        except Exception as exc:  # any failure of a resource keeps the old config serving
            raise ReloadRejected(f"{description} failed: {_describe(exc)}") from exc
    # Both attributes in one step (no await between): a request sees the old pair or the new.
    # The holder stays in place: aiohttp deprecates replacing state on a started app.
    live = app[LIVE]
    live.settings, live.keyring = candidate.settings, candidate.keyring
    models = settings.models
    app[CATALOG].set_filters(models.allow, models.deny, models.aliases)
    apply_levels(settings.logging)
    return changes


class Reloader:
    """Re-reads the config file on request and applies it; one reload at a time."""

    def __init__(
        self,
        app: web.Application,
        path: Path | None,
        *,
        load: Callable[[Path | None], Settings] = load_settings,
    ) -> None:
        self._app = app
        self._path = path
        self._load = load
        self._lock = asyncio.Lock()
        self._refresh: asyncio.Task[None] | None = None

    @property
    def source(self) -> str:
        return str(self._path) if self._path is not None else "the environment"

    async def reload(self) -> Changes:
        """Apply the file as it is now; raises ``ReloadRejected`` (and logs why) if it cannot."""
        async with self._lock:
            try:
                new = self._load(self._path)
                changes = await apply_settings(self._app, new)
            except (ConfigError, ReloadRejected) as exc:
                logger.error(
                    "configuration reload rejected, still serving the previous one: %s", exc
                )
                raise ReloadRejected(str(exc)) from exc
            self._log(changes)
            self._refresh_models()
            return changes

    async def close(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            await asyncio.gather(self._refresh, return_exceptions=True)
            self._refresh = None

    def _log(self, changes: Changes) -> None:
        logger.info(
            "configuration reloaded from %s: %s",
            self.source,
            "changed " + ", ".join(changes.live) if changes.live else "nothing to change live",
        )
        if changes.restart:
            logger.warning(
                "changed in %s but kept at the running value until a restart: %s",
                self.source,
                ", ".join(changes.restart),
            )

    def _refresh_models(self) -> None:
        # Fetched in the background: a slow or unreachable Bedrock must not hold up the reload.
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.create_task(self._refresh_catalog(), name="reload-models")

    async def _refresh_catalog(self) -> None:
        try:
            await self._app[CATALOG].refresh()
        except Exception as exc:  # the catalogue keeps its last good list
            logger.warning("listing models after the reload failed: %s", _describe(exc))


def _flatten(settings: Settings) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for section in type(settings).model_fields:
        value = getattr(settings, section)
        if isinstance(value, BaseModel):
            for name in type(value).model_fields:
                flat[f"{section}.{name}"] = getattr(value, name)
        else:
            flat[section] = value
    return flat


def _is_live(key: str) -> bool:
    section = key.partition(".")[0]
    return key not in _RESTART_ONLY and (key in LIVE_KEYS or section in LIVE_KEYS)


def _keep_running_values(new: Settings, running: Settings, keys: Iterable[str]) -> Settings:
    sections: dict[str, dict[str, Any]] = {}
    whole: dict[str, Any] = {}
    for key in keys:
        section, _, name = key.partition(".")
        if name:
            sections.setdefault(section, {})[name] = getattr(getattr(running, section), name)
        else:
            whole[section] = getattr(running, section)
    for section, values in sections.items():
        whole[section] = getattr(new, section).model_copy(update=values)
    return new.model_copy(update=whole)


def _describe(exc: BaseException) -> str:
    return exc.message if isinstance(exc, GatewayError) else f"{type(exc).__name__}: {exc}"
