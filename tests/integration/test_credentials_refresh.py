"""The gateway signs Bedrock calls with whatever credentials its source has just refreshed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from bedrock_gw.aws.credentials import CredentialSourceError
from bedrock_gw.server import Gateway
from bedrock_gw.web.state import CREDENTIALS, READINESS
from tests.fakes.bedrock import FakeBedrock
from tests.fakes.rolesanywhere import (
    PROFILE_ARN,
    ROLE_ARN,
    TRUST_ANCHOR_ARN,
    FakeRolesAnywhere,
    issue,
    new_key,
)
from tests.integration.conftest import API_KEY, gateway_settings
from tests.stubs import SigningHelperStub, credentials_step, eventually, fake_bedrock_credentials

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"


@pytest.fixture
async def bedrock() -> AsyncIterator[FakeBedrock]:
    credentials = fake_bedrock_credentials("ASIA1", "ASIA2")
    credentials["AKIASYSTEMD"] = ("systemd-secret", None)
    credentials["ASIARA0001"] = FakeRolesAnywhere.secret_of("ASIARA0001")
    async with FakeBedrock(credentials=credentials) as fake:
        yield fake


@pytest.fixture
async def start(bedrock: FakeBedrock) -> AsyncIterator[Callable[..., Any]]:
    """Start a gateway in front of ``bedrock``; it is stopped after the test."""
    started: list[Gateway] = []

    async def run(**aws: Any) -> Gateway:
        gateway = Gateway(gateway_settings(bedrock.url, aws=aws))
        started.append(gateway)
        await gateway.start()
        await asyncio.wait_for(gateway.app[READINESS].wait_all(), 5)
        return gateway

    yield run
    for gateway in started:
        await gateway.stop()


def _pki(tmp_path: Path) -> dict[str, Any]:
    ca = issue("Homelab Root CA", new_key("ec"), ca=True)
    certificate, private_key = issue("gateway", new_key("ec"), issuer=ca).write(tmp_path, "gw")
    return {
        "ca": ca,
        "certificate": str(certificate),
        "private_key": str(private_key),
        "trust_anchor_arn": TRUST_ANCHOR_ARN,
        "profile_arn": PROFILE_ARN,
        "role_arn": ROLE_ARN,
    }


async def _chat(sdk: openai.AsyncOpenAI) -> tuple[float, float]:
    """One chat completion; returns its wall-clock start and end."""
    started = time.time()
    await sdk.chat.completions.create(model=HAIKU, messages=[{"role": "user", "content": "hi"}])
    return started, time.time()


async def test_requests_use_refreshed_helper_credentials_without_waiting(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    bedrock: FakeBedrock,
    start: Callable[..., Any],
) -> None:
    """While a slow helper refreshes, requests keep flowing on the old key, then use the new."""
    helper = SigningHelperStub(tmp_path, monkeypatch)
    helper.plan([credentials_step("ASIA1", expires_in=2.4), credentials_step("ASIA2", delay=0.6)])
    pki = _pki(tmp_path)
    pki.pop("ca")
    gateway = await start(
        credentials="roles-anywhere", roles_anywhere={**pki, "helper": str(helper.path)}
    )
    cache = gateway.app[CREDENTIALS]
    first_expiry = cache.current().expires_at
    assert first_expiry is not None
    spans: list[tuple[float, float]] = []
    async with openai.AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0, timeout=10
    ) as sdk:
        while cache.current().access_key_id == "ASIA1":
            spans += await asyncio.gather(*(_chat(sdk) for _ in range(3)))
            await asyncio.sleep(0.02)
        assert time.time() < first_expiry.timestamp()
        spans.append(await _chat(sdk))
    refresh = helper.calls[1]
    converse = bedrock.requests_for("Converse")
    assert all(r.status == 200 for r in converse)
    signed_by = [r.access_key_id for r in converse]
    switch = signed_by.index("ASIA2")
    assert set(signed_by[:switch]) == {"ASIA1"} and set(signed_by[switch:]) == {"ASIA2"}
    # Requests made while the 0.6 s helper ran were answered at once, on the old key.
    during = [s for s in spans if refresh["started"] < s[0] and s[1] < refresh["finished"]]
    assert len(during) >= 6
    assert max(end - start for start, end in spans) < 0.5


async def test_failing_refresh_shows_degraded_health(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    bedrock: FakeBedrock,
    start: Callable[..., Any],
) -> None:
    """A helper failing to refresh marks /health degraded while requests still succeed."""
    # The credentials live 2.4 s: the refresh runs (and fails) at half-life, and the checks
    # below run before the old credentials expire.
    helper = SigningHelperStub(tmp_path, monkeypatch)
    helper.plan([credentials_step("ASIA1", expires_in=2.4), {"fail": "TLS handshake timeout"}])
    pki = _pki(tmp_path)
    pki.pop("ca")
    gateway = await start(
        credentials="roles-anywhere",
        roles_anywhere={**pki, "helper": str(helper.path)},
    )
    async with aiohttp.ClientSession() as http:
        await eventually(lambda: len(helper.calls) >= 2)
        await eventually(lambda: not gateway.app[CREDENTIALS].status.healthy)
        async with http.get(f"{gateway.url}/health") as response:
            health = await response.json()
    assert "credentials" in health["degraded"]
    assert "TLS handshake timeout" in health["credentials"]["last_error"]
    assert health["credentials"]["source"] == "Roles Anywhere via aws_signing_helper"
    async with openai.AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0, timeout=10
    ) as sdk:
        await _chat(sdk)
    assert bedrock.requests_for("Converse")[-1].access_key_id == "ASIA1"


async def test_in_process_roles_anywhere_signs_bedrock_calls(
    tmp_path: Path, bedrock: FakeBedrock, start: Callable[..., Any]
) -> None:
    """roles-anywhere-inprocess gets a session from CreateSession and signs with it."""
    pki = _pki(tmp_path)
    async with FakeRolesAnywhere(pki.pop("ca").certificate) as roles_anywhere:
        gateway = await start(
            credentials="roles-anywhere-inprocess",
            roles_anywhere={**pki, "endpoint": roles_anywhere.url},
        )
        async with openai.AsyncOpenAI(
            base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0, timeout=10
        ) as sdk:
            await _chat(sdk)
    assert bedrock.requests_for("Converse")[-1].access_key_id == "ASIARA0001"
    assert [r.issued for r in roles_anywhere.requests] == ["ASIARA0001"]


async def test_static_key_from_systemd_credentials(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    bedrock: FakeBedrock,
    start: Callable[..., Any],
) -> None:
    """credentials = "static" signs with the key id from config and the secret from systemd."""
    (tmp_path / "aws-secret-access-key").write_text("systemd-secret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    gateway = await start(credentials="static", static={"access_key_id": "AKIASYSTEMD"})
    async with openai.AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0, timeout=10
    ) as sdk:
        await _chat(sdk)
    assert bedrock.requests_for("Converse")[-1].access_key_id == "AKIASYSTEMD"


async def test_incomplete_static_source_stops_start_up(
    monkeypatch: pytest.MonkeyPatch, bedrock: FakeBedrock, caplog: pytest.LogCaptureFixture
) -> None:
    """With no access key anywhere the gateway refuses to start and logs why."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    gateway = Gateway(gateway_settings(bedrock.url, aws={"credentials": "static"}))
    try:
        with pytest.raises(CredentialSourceError, match="no access key id"):
            await gateway.start()
    finally:
        await gateway.stop()
    assert 'AWS credentials (credentials = "static"): no access key id' in caplog.text
