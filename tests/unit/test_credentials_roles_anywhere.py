"""In-process Roles Anywhere: CreateSession signed with the certificate, checked by a fake."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from bedrock_gw.aws.credentials import CredentialCache, CredentialSourceError, FetchFailed
from bedrock_gw.aws.roles_anywhere import RolesAnywhereSessionFetcher, roles_anywhere_endpoint
from bedrock_gw.aws.sigv4_x509 import load_identity, sign_headers_x509
from bedrock_gw.config import RolesAnywhereSettings
from tests.fakes.rolesanywhere import (
    PROFILE_ARN,
    ROLE_ARN,
    TRUST_ANCHOR_ARN,
    FakeRolesAnywhere,
    Identity,
    issue,
    new_key,
)
from tests.stubs import eventually


@pytest.fixture(scope="module")
def ca() -> Identity:
    return issue("Homelab Root CA", new_key("ec"), ca=True)


@pytest.fixture
async def fake(ca: Identity) -> AsyncIterator[FakeRolesAnywhere]:
    async with FakeRolesAnywhere(ca.certificate) as server:
        yield server


def _settings(tmp_path: Path, leaf: Identity, **extra: object) -> RolesAnywhereSettings:
    certificate, private_key = leaf.write(tmp_path, "gateway")
    values: dict[str, object] = {
        "certificate": certificate,
        "private_key": private_key,
        "trust_anchor_arn": TRUST_ANCHOR_ARN,
        "profile_arn": PROFILE_ARN,
        "role_arn": ROLE_ARN,
        "timeout": 2.0,
        **extra,
    }
    return RolesAnywhereSettings.model_validate(values)


@pytest.mark.parametrize("kind", [pytest.param("rsa", id="rsa"), pytest.param("ec", id="ecdsa")])
async def test_create_session_is_accepted(
    tmp_path: Path, ca: Identity, fake: FakeRolesAnywhere, kind: str
) -> None:
    """An RSA or EC certificate from the trust anchor gets credentials with their expiry."""
    leaf = issue("gateway", new_key(kind), issuer=ca)
    settings = _settings(tmp_path, leaf, endpoint=fake.url, session_duration=1800)
    fetcher = RolesAnywhereSessionFetcher.from_settings(settings, {})
    try:
        creds = await fetcher.fetch()
    finally:
        await fetcher.close()
    (call,) = fake.requests
    assert call.error is None
    assert call.serial == leaf.certificate.serial_number
    assert call.algorithm == ("AWS4-X509-RSA-SHA256" if kind == "rsa" else "AWS4-X509-ECDSA-SHA256")
    assert call.body["durationSeconds"] == 1800
    assert (creds.access_key_id, creds.secret_access_key, creds.session_token) == (
        "ASIARA0001",
        *FakeRolesAnywhere.secret_of("ASIARA0001"),
    )
    assert creds.expires_at is not None and creds.expires_at > datetime.now(UTC)


async def test_intermediate_chain_is_sent(
    tmp_path: Path, ca: Identity, fake: FakeRolesAnywhere
) -> None:
    """A certificate issued by an intermediate CA is accepted when the chain file is given."""
    intermediate = issue("Homelab Issuing CA", new_key("ec"), issuer=ca, ca=True)
    leaf = issue("gateway", new_key("ec"), issuer=intermediate)
    chain, _ = intermediate.write(tmp_path, "intermediate")
    settings = _settings(tmp_path, leaf, endpoint=fake.url, certificate_chain=chain)
    without = _settings(tmp_path, leaf, endpoint=fake.url)
    fetcher = RolesAnywhereSessionFetcher.from_settings(settings, {})
    unchained = RolesAnywhereSessionFetcher.from_settings(without, {})
    try:
        assert (await fetcher.fetch()).access_key_id == "ASIARA0001"
        with pytest.raises(FetchFailed, match="HTTP 403 AccessDeniedException"):
            await unchained.fetch()
    finally:
        await fetcher.close()
        await unchained.close()


async def test_untrusted_certificate_is_refused(tmp_path: Path, fake: FakeRolesAnywhere) -> None:
    """A certificate from another CA fails with the service's structured error in the message."""
    stranger = issue("Other CA", new_key("ec"), ca=True)
    leaf = issue("gateway", new_key("ec"), issuer=stranger)
    fetcher = RolesAnywhereSessionFetcher.from_settings(
        _settings(tmp_path, leaf, endpoint=fake.url), {}
    )
    try:
        with pytest.raises(FetchFailed, match="AccessDeniedException: Untrusted certificate"):
            await fetcher.fetch()
    finally:
        await fetcher.close()


async def test_fake_rejects_a_tampered_request(
    tmp_path: Path, ca: Identity, fake: FakeRolesAnywhere
) -> None:
    """The fake really checks the signature: a body changed after signing is refused."""
    leaf = issue("gateway", new_key("rsa"), issuer=ca)
    certificate, private_key = leaf.write(tmp_path, "gateway")
    identity = load_identity(certificate, private_key)
    url = f"{fake.url}/sessions"
    body = json.dumps(
        {"profileArn": PROFILE_ARN, "roleArn": ROLE_ARN, "trustAnchorArn": TRUST_ANCHOR_ARN}
    ).encode()
    headers = sign_headers_x509(
        "POST",
        url,
        {"Content-Type": "application/json"},
        body,
        identity=identity,
        region="us-east-1",
    )
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=body, headers=headers) as good:
            assert good.status == 201
        async with session.post(url, data=body + b" ", headers=headers) as bad:
            assert bad.status == 403
            assert (await bad.json())["message"] == "Signature does not verify"


async def test_in_process_refresh_before_expiry(
    tmp_path: Path, ca: Identity, fake: FakeRolesAnywhere
) -> None:
    """Short sessions are renewed in the background before they expire."""
    fake.expires_in = 1.0
    leaf = issue("gateway", new_key("ec"), issuer=ca)
    fetcher = RolesAnywhereSessionFetcher.from_settings(
        _settings(tmp_path, leaf, endpoint=fake.url), {}
    )
    cache = CredentialCache(fetcher, refresh_margin=900, retry_initial=0.05)
    await cache.start()
    try:
        first = cache.current()
        assert first.expires_at is not None
        await eventually(lambda: cache.current().access_key_id == "ASIARA0002")
        assert datetime.now(UTC) < first.expires_at
    finally:
        await cache.close()
    assert [r.issued for r in fake.requests][:2] == ["ASIARA0001", "ASIARA0002"]


async def test_unreachable_endpoint_is_a_fetch_failure(tmp_path: Path, ca: Identity) -> None:
    """A closed port gives a FetchFailed naming the URL, within the timeout."""
    leaf = issue("gateway", new_key("ec"), issuer=ca)
    fetcher = RolesAnywhereSessionFetcher.from_settings(
        _settings(tmp_path, leaf, endpoint="http://127.0.0.1:9"), {}
    )
    started = time.monotonic()
    try:
        with pytest.raises(FetchFailed, match=r"cannot reach http://127\.0\.0\.1:9/sessions"):
            await fetcher.fetch()
    finally:
        await fetcher.close()
    assert time.monotonic() - started < 2.5


def test_key_that_does_not_match_the_certificate(tmp_path: Path, ca: Identity) -> None:
    """A private key of another certificate is refused at start-up."""
    leaf = issue("gateway", new_key("ec"), issuer=ca)
    other = issue("other", new_key("ec"), issuer=ca)
    certificate, _ = leaf.write(tmp_path, "gateway")
    _, wrong_key = other.write(tmp_path, "other")
    with pytest.raises(CredentialSourceError, match="is not the key of"):
        load_identity(certificate, wrong_key)


def test_garbage_certificate_is_refused(tmp_path: Path) -> None:
    """A certificate file that is not PEM is a start-up error naming the file."""
    bad = tmp_path / "cert.pem"
    bad.write_text("not a certificate")
    key = tmp_path / "key.pem"
    key.write_text("")
    with pytest.raises(CredentialSourceError, match="not a PEM certificate"):
        load_identity(bad, key)


@pytest.mark.parametrize(
    ("configured", "environ", "expected"),
    [
        pytest.param(
            "https://ra.example/",
            {"AWS_ENDPOINT_URL": "http://x"},
            "https://ra.example",
            id="config",
        ),
        pytest.param(
            None,
            {"AWS_ENDPOINT_URL_ROLESANYWHERE": "http://ra:1", "AWS_ENDPOINT_URL": "http://x"},
            "http://ra:1",
            id="service-variable",
        ),
        pytest.param(None, {"AWS_ENDPOINT_URL": "http://x"}, "http://x", id="shared-variable"),
        pytest.param(None, {}, "https://rolesanywhere.us-east-1.amazonaws.com", id="aws"),
    ],
)
def test_endpoint_resolution(
    configured: str | None, environ: dict[str, str], expected: str
) -> None:
    """The CreateSession URL comes from config, then the standard variables, then AWS."""
    settings = RolesAnywhereSettings(trust_anchor_arn=TRUST_ANCHOR_ARN, endpoint=configured)
    assert roles_anywhere_endpoint(settings, environ) == expected
