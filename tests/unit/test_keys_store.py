"""The key store: combining sources, readiness, last good set, grace periods, refresh."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from pathlib import Path
from typing import cast

import pytest
from pydantic import SecretStr

from bedrock_gw.auth import ApiKey, KeyRing
from bedrock_gw.aws.json_rpc import AwsJsonClient
from bedrock_gw.config import AuthSettings
from bedrock_gw.keys import key_store_from_settings
from bedrock_gw.keys.sources import InlineKeys, KeyFile, KeyMaterial, KeySourceError
from bedrock_gw.keys.store import KeyStore
from tests.stubs import eventually


class ScriptedSource:
    """Plays a queue of materials or errors; the last entry repeats."""

    def __init__(self, *script: KeyMaterial | Exception, description: str = "scripted") -> None:
        self.description = description
        self.script = deque(script)
        self.loads = 0

    async def load(self) -> KeyMaterial:
        self.loads += 1
        entry = self.script.popleft() if len(self.script) > 1 else self.script[0]
        if isinstance(entry, Exception):
            raise entry
        return entry


def _material(
    *keys: str,
    previous: tuple[str, ...] = (),
    until: float | None = None,
    version: str | None = None,
) -> KeyMaterial:
    return KeyMaterial(
        tuple(ApiKey.from_plaintext(k, k) for k in keys),
        tuple(ApiKey.from_plaintext(f"{k}@previous", k) for k in previous),
        until,
        version,
    )


class Published:
    def __init__(self) -> None:
        self.rings: list[KeyRing] = []

    def __call__(self, ring: KeyRing) -> None:
        self.rings.append(ring)

    def accepts(self, key: str) -> str | None:
        found = self.rings[-1].authenticate(key) if self.rings else None
        return found.name if found else None


def _store(*sources: object, published: Published, interval: float = 60.0) -> KeyStore:
    return KeyStore(
        sources,  # type: ignore[arg-type]
        refresh_interval=interval,
        on_change=published,
        retry_initial=0.02,
        retry_max=0.1,
    )


async def test_ready_only_when_every_source_has_loaded() -> None:
    """Keys from working sources are served at once; the gate waits for all sources."""
    published = Published()
    ssm = ScriptedSource(
        KeySourceError("GetParameter failed"),
        KeySourceError("again"),
        _material("remote"),
        description="ssm",
    )
    store = _store(InlineKeys([SecretStr("local")]), ssm, published=published)
    await store.start()
    try:
        await eventually(lambda: published.accepts("local"))
        assert not store.status.loaded
        await asyncio.wait_for(store.wait_until_loaded(), 2)
    finally:
        await store.close()
    assert published.accepts("remote") == "remote"
    assert published.accepts("local") == "inline-1"
    assert store.status.healthy and ssm.loads == 3


async def test_failed_refresh_keeps_the_last_good_set(caplog: pytest.LogCaptureFixture) -> None:
    """A source that fails after loading keeps its keys; the failure is logged once."""
    published = Published()
    source = ScriptedSource(
        _material("k1"),
        *[KeySourceError("ssm:GetParameter failed: timeout")] * 4,
        _material("k2"),
        description="ssm",
    )
    store = _store(source, published=published, interval=0.01)
    caplog.set_level(logging.INFO, logger="bedrock_gw.keys")
    await store.start()
    try:
        await eventually(lambda: source.loads >= 3)
        assert published.accepts("k1") == "k1"
        assert store.status.loaded and not store.status.healthy
        assert "timeout" in (store.status.sources[0].last_error or "")
        await eventually(lambda: published.accepts("k2"))
    finally:
        await store.close()
    assert published.accepts("k1") is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "keeping its last good keys" in warnings[0]
    assert "works again after 4 failed attempts" in caplog.text


async def test_start_up_failure_logged_as_error_with_the_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without any good set yet, the failure is an error saying the daemon is not ready."""
    source = ScriptedSource(KeySourceError("ssm:GetParameter /p failed: AccessDeniedException"))
    store = _store(source, published=Published())
    await store.start()
    try:
        await eventually(lambda: source.loads >= 3)
    finally:
        await store.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "AccessDeniedException" in errors[0] and "not ready" in errors[0]
    assert not store.status.loaded


async def test_previous_keys_expire_at_the_end_of_the_grace_period() -> None:
    """Keys of the previous version stop working when the grace ends, without a new load."""
    published = Published()
    until = time.time() + 0.3
    source = ScriptedSource(_material("new", previous=("old",), until=until))
    store = _store(source, published=published)
    await store.start()
    try:
        await store.wait_until_loaded()
        assert published.accepts("old") == "old@previous"
        await eventually(lambda: published.accepts("old") is None)
        assert time.time() >= until
    finally:
        await store.close()
    assert published.accepts("new") == "new"


async def test_refresh_now_picks_up_changes() -> None:
    """refresh() (what SIGHUP calls) reloads every source at once."""
    published = Published()
    source = ScriptedSource(_material("k1"), _material("k2"))
    store = _store(source, published=published)
    await store.start()
    try:
        await store.wait_until_loaded()
        assert published.accepts("k1")
        assert await store.refresh()
        assert published.accepts("k2") and not published.accepts("k1")
    finally:
        await store.close()


async def test_unchanged_keys_are_not_republished() -> None:
    """The ring is replaced only when the set of keys changes."""
    published = Published()
    store = _store(ScriptedSource(_material("k1")), published=published)
    await store.start()
    try:
        await store.wait_until_loaded()
        await store.refresh()
        await store.refresh()
    finally:
        await store.close()
    assert len(published.rings) == 1


async def test_no_sources_warns(caplog: pytest.LogCaptureFixture) -> None:
    """With no key source at all the store is loaded, empty, and says every request gets 401."""
    store = _store(published=Published())
    await store.start()
    try:
        await asyncio.wait_for(store.wait_until_loaded(), 1)
    finally:
        await store.close()
    assert "every request to /v1 will get 401" in caplog.text


# ------------------------------------------------------------------ key file source


async def test_key_file_is_reread(tmp_path: Path) -> None:
    """The key file is read on each load, so edits apply on the next refresh."""
    path = tmp_path / "api-keys"
    path.write_text("openwebui sk-1\n")
    path.chmod(0o600)
    source = KeyFile(path)
    assert [k.name for k in (await source.load()).keys] == ["openwebui"]
    path.write_text("openwebui sk-1\nphone sk-2\n")
    assert [k.name for k in (await source.load()).keys] == ["openwebui", "phone"]


async def test_key_file_errors(tmp_path: Path) -> None:
    """A missing or malformed key file is a KeySourceError naming the file and line."""
    with pytest.raises(KeySourceError, match=r"cannot read .*missing"):
        await KeyFile(tmp_path / "missing").load()
    bad = tmp_path / "bad"
    bad.write_text("a b c\n")
    with pytest.raises(KeySourceError, match="bad: line 1"):
        await KeyFile(bad).load()


@pytest.mark.parametrize(
    ("text", "mode", "warned"),
    [
        pytest.param("sk-1\n", 0o644, True, id="plaintext-world-readable"),
        pytest.param("sk-1\n", 0o640, False, id="plaintext-private"),
        pytest.param("sha256:" + "a" * 64 + "\n", 0o644, False, id="digests-world-readable"),
    ],
)
async def test_key_file_mode_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str, mode: int, warned: bool
) -> None:
    """Plaintext keys in a world-readable file draw a warning; digests do not."""
    path = tmp_path / "keys"
    path.write_text(text)
    path.chmod(mode)
    await KeyFile(path).load()
    assert ("holds keys in clear" in caplog.text) is warned


@pytest.mark.parametrize(
    ("auth", "region"),
    [
        pytest.param({"ssm_parameter": "/bedrock-gw/arn"}, "us-east-1", id="aws-region"),
        pytest.param(
            {"ssm_parameter": "arn:aws:ssm:eu-west-1:123456789012:parameter/bedrock-gw/arn"},
            "eu-west-1",
            id="parameter-arn",
        ),
        pytest.param(
            {"ssm_parameter": "/bedrock-gw/arn", "ssm_region": "ap-south-1"},
            "ap-south-1",
            id="ssm-region",
        ),
    ],
)
def test_sources_from_settings(auth: dict[str, str], region: str) -> None:
    """Every configured source is used; the SSM region follows ssm_region, the ARN, aws.region."""
    settings = AuthSettings.model_validate({"api_keys": ["sk-1"], "key_file": "keys", **auth})
    store = key_store_from_settings(
        settings, aws_region="us-east-1", aws=cast(AwsJsonClient, object()), on_change=Published()
    )
    descriptions = [source.description for source in store.status.sources]
    assert descriptions[:2] == ["inline keys (auth.api_keys)", "key file keys"]
    assert descriptions[2].endswith(f"({region}) -> Secrets Manager")
