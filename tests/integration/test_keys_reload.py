"""API keys on reload (SIGHUP): sources are re-read, and a changed [auth] is applied safely."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from bedrock_gw.keys import KEY_STORE
from bedrock_gw.reload import ReloadRejected, apply_settings
from bedrock_gw.server import Gateway
from bedrock_gw.web.state import READINESS
from tests.fakes.bedrock import FakeBedrock
from tests.integration.conftest import GatewayFactory, gateway_settings


async def _status(gateway: Gateway, key: str) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{gateway.url}/v1/models", headers={"Authorization": f"Bearer {key}"}) as r,
    ):
        return r.status


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return _write(tmp_path / "api-keys", "openwebui sk-file-1\n")


async def test_reload_rereads_the_key_file(start_gateway: GatewayFactory, key_file: Path) -> None:
    """A reload with the same settings re-reads the key file at once (no interval wait)."""
    gateway = await start_gateway(auth={"api_keys": [], "key_file": str(key_file)})
    await gateway.app[READINESS].wait_all()
    assert await _status(gateway, "sk-file-1") == 200
    _write(key_file, "phone sk-file-2\n")
    assert await _status(gateway, "sk-file-2") == 401
    await apply_settings(gateway.app, gateway.settings)
    assert await _status(gateway, "sk-file-2") == 200
    assert await _status(gateway, "sk-file-1") == 401


async def test_changed_auth_swaps_sources(
    start_gateway: GatewayFactory, fake: FakeBedrock, key_file: Path, tmp_path: Path
) -> None:
    """A reload that points [auth] at new sources serves them and drops the old ones."""
    gateway = await start_gateway(auth={"api_keys": ["sk-inline"], "key_file": str(key_file)})
    await gateway.app[READINESS].wait_all()
    other = _write(tmp_path / "other-keys", "laptop sk-other\n")
    new_auth = {"api_keys": [], "key_file": str(other)}
    await apply_settings(gateway.app, gateway_settings(fake.url, auth=new_auth))
    assert await _status(gateway, "sk-other") == 200
    assert await _status(gateway, "sk-file-1") == 401
    assert await _status(gateway, "sk-inline") == 401
    store = gateway.app[KEY_STORE]
    assert [s.description for s in store.status.sources] == [f"key file {other}"]


async def test_unreadable_new_source_rejects_the_reload(
    start_gateway: GatewayFactory, fake: FakeBedrock, key_file: Path, tmp_path: Path
) -> None:
    """A reload naming a key file that cannot be read is refused and the old keys keep working."""
    gateway = await start_gateway(auth={"api_keys": [], "key_file": str(key_file)})
    await gateway.app[READINESS].wait_all()
    broken = gateway_settings(fake.url, auth={"api_keys": [], "key_file": str(tmp_path / "nope")})
    with pytest.raises(ReloadRejected, match=r"re-reading API keys failed: .*cannot read"):
        await apply_settings(gateway.app, broken)
    assert await _status(gateway, "sk-file-1") == 200
