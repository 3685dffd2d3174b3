"""The cached model list, refreshed in the background.

Requests never wait for Bedrock's listing APIs except for the very first fill; after that they
read the last good list while a background task refreshes it on an interval. A failed refresh
keeps the old list and is retried with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from bedrock_gw.bedrock.client import Bedrock
from bedrock_gw.errors import GatewayError, ModelNotFound, ServiceUnavailable
from bedrock_gw.models.listing import ModelEntry, build_entries, is_allowed

__all__ = ["CatalogStatus", "ModelCatalog"]

logger = logging.getLogger(__name__)

_PROFILE_TYPES = ("SYSTEM_DEFINED", "APPLICATION")


@dataclass(frozen=True, slots=True)
class CatalogStatus:
    models: int
    last_success: float | None
    """``time.time()`` of the last successful listing."""
    last_error: str | None


class ModelCatalog:
    def __init__(
        self,
        bedrock: Bedrock,
        *,
        allow: Sequence[str],
        deny: Sequence[str],
        aliases: Mapping[str, str] | None = None,
        refresh_interval: float,
        retry_initial: float = 2.0,
        retry_max: float = 300.0,
    ) -> None:
        self._bedrock = bedrock
        self._allow = tuple(allow)
        self._deny = tuple(deny)
        self._aliases = dict(aliases or {})
        self._refresh_interval = refresh_interval
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._all: dict[str, ModelEntry] | None = None
        self._visible: dict[str, ModelEntry] = {}
        self._first_attempt = asyncio.Event()
        self._last_success: float | None = None
        self._last_error: str | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._refresh_forever(), name="model-catalog-refresh")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def set_filters(
        self, allow: Sequence[str], deny: Sequence[str], aliases: Mapping[str, str] | None = None
    ) -> None:
        self._allow, self._deny = tuple(allow), tuple(deny)
        if aliases is not None:
            self._aliases = dict(aliases)
        self._apply_filters()

    async def refresh(self) -> None:
        """Fetch the listings now; raises the gateway error of a failed listing call."""
        foundation, *profile_lists = await asyncio.gather(
            self._bedrock.list_foundation_models(),
            *(self._bedrock.list_inference_profiles(kind) for kind in _PROFILE_TYPES),
        )
        profiles = [profile for listing in profile_lists for profile in listing]
        self._all = build_entries(foundation, profiles)
        self._apply_filters()
        self._last_success = time.time()
        self._last_error = None
        logger.info("model list refreshed: %d offered of %d", len(self._visible), len(self._all))

    async def entries(self) -> Mapping[str, ModelEntry]:
        """The offered models; waits only for the very first listing attempt."""
        if not self._first_attempt.is_set():
            await self._first_attempt.wait()
        if self._all is None:
            raise ServiceUnavailable(
                "the model list could not be fetched from Bedrock yet; retrying",
                code="model_list_unavailable",
            )
        return self._visible

    async def lookup(self, model_id: str) -> ModelEntry:
        entry = (await self.entries()).get(model_id)
        if entry is None:
            raise ModelNotFound(f"The model '{model_id}' does not exist", param="model")
        return entry

    @property
    def status(self) -> CatalogStatus:
        return CatalogStatus(len(self._visible), self._last_success, self._last_error)

    def _apply_filters(self) -> None:
        visible = {
            model_id: entry
            for model_id, entry in (self._all or {}).items()
            if is_allowed(model_id, self._allow, self._deny)
        }
        for alias, target in self._aliases.items():
            entry = visible.get(target)
            if entry is None:
                if self._all is not None:
                    logger.warning(
                        "alias %r names %r, which is not offered; ignored", alias, target
                    )
                continue
            visible[alias] = replace(entry, id=alias, alias_of=entry.bedrock_id)
        self._visible = dict(sorted(visible.items()))

    async def _refresh_forever(self) -> None:
        delay = self._retry_initial
        while True:
            try:
                await self.refresh()
            except Exception as exc:  # the refresher must outlive any failure
                self._last_error = exc.message if isinstance(exc, GatewayError) else repr(exc)
                logger.warning(
                    "listing Bedrock models failed: %s; retrying in %.0fs",
                    self._last_error,
                    delay,
                    exc_info=not isinstance(exc, GatewayError),
                )
                wait = delay
                delay = min(delay * 2, self._retry_max)
            else:
                wait = self._refresh_interval
                delay = self._retry_initial
            finally:
                self._first_attempt.set()
            await asyncio.sleep(wait)
