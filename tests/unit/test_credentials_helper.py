"""Roles Anywhere through the helper: credential_process output, refresh, failures, hangs."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bedrock_gw.aws.credentials import (
    CredentialCache,
    CredentialSourceError,
    CredentialsUnavailable,
    FetchFailed,
)
from bedrock_gw.aws.process import CredentialProcessFetcher, parse_credential_process_output
from bedrock_gw.aws.roles_anywhere import helper_fetcher
from bedrock_gw.config import RolesAnywhereSettings
from tests.fakes.rolesanywhere import PROFILE_ARN, ROLE_ARN, TRUST_ANCHOR_ARN, issue, new_key
from tests.stubs import SigningHelperStub, credentials_step, eventually, pid_alive


@pytest.fixture
def helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SigningHelperStub:
    return SigningHelperStub(tmp_path, monkeypatch)


@pytest.fixture
def ra_settings(tmp_path: Path, helper: SigningHelperStub) -> RolesAnywhereSettings:
    certificate, private_key = issue("gateway", new_key("ec")).write(tmp_path, "gateway")
    return RolesAnywhereSettings(
        helper=str(helper.path),
        certificate=certificate,
        private_key=private_key,
        trust_anchor_arn=TRUST_ANCHOR_ARN,
        profile_arn=PROFILE_ARN,
        role_arn=ROLE_ARN,
        session_duration=900,
        timeout=0.5,
    )


def _fetcher(helper: SigningHelperStub, timeout: float = 2.0) -> CredentialProcessFetcher:
    return CredentialProcessFetcher([str(helper.path)], timeout=timeout, description="stub")


# ------------------------------------------------------------------ output parsing


def test_parse_full_output() -> None:
    """All five fields become credentials with an aware expiry."""
    out = json.dumps(
        {
            "Version": 1,
            "AccessKeyId": "ASIA1",
            "SecretAccessKey": "s",
            "SessionToken": "t",
            "Expiration": "2030-01-02T03:04:05Z",
        }
    ).encode()
    creds = parse_credential_process_output(out, source="h")
    assert (creds.access_key_id, creds.secret_access_key, creds.session_token) == (
        "ASIA1",
        "s",
        "t",
    )
    assert creds.expires_at == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_parse_long_lived_output() -> None:
    """Without Expiration and SessionToken the credentials never expire."""
    out = b'{"Version": 1, "AccessKeyId": "AKIA1", "SecretAccessKey": "s"}'
    creds = parse_credential_process_output(out, source="h")
    assert (creds.session_token, creds.expires_at) == (None, None)


@pytest.mark.parametrize(
    ("stdout", "fragment"),
    [
        pytest.param(b"hunter2 not json", "not JSON", id="not-json"),
        pytest.param(b"[1]", "not an object", id="array"),
        pytest.param(
            b'{"Version": 2, "AccessKeyId": "A", "SecretAccessKey": "hunter2"}',
            "Version 2",
            id="version-2",
        ),
        pytest.param(b'{"Version": 1, "AccessKeyId": "A"}', "no SecretAccessKey", id="no-secret"),
        pytest.param(
            b'{"Version": 1, "AccessKeyId": "A", "SecretAccessKey": "hunter2", "Expiration": 5}',
            "Expiration",
            id="numeric-expiration",
        ),
        pytest.param(
            b'{"Version": 1, "AccessKeyId": "A", "SecretAccessKey": "hunter2",'
            b' "Expiration": "soon"}',
            "not ISO 8601",
            id="bad-expiration",
        ),
    ],
)
def test_parse_rejects_bad_output_without_echoing_it(stdout: bytes, fragment: str) -> None:
    """Malformed output is a FetchFailed that describes the shape and never quotes a secret."""
    with pytest.raises(FetchFailed, match=fragment) as caught:
        parse_credential_process_output(stdout, source="helper")
    assert "hunter2" not in str(caught.value)


# ------------------------------------------------------------------ the helper command


async def test_helper_gets_the_roles_anywhere_arguments(
    helper: SigningHelperStub, ra_settings: RolesAnywhereSettings
) -> None:
    """The helper runs as `credential-process` with the certificate, key, ARNs and duration."""
    helper.plan([credentials_step("ASIA1")])
    creds = await helper_fetcher(ra_settings).fetch()
    assert creds.access_key_id == "ASIA1"
    (call,) = helper.calls
    argv = call["argv"]
    assert argv[0] == "credential-process"
    pairs = dict(zip(argv[1::2], argv[2::2], strict=True))
    assert pairs == {
        "--certificate": str(ra_settings.certificate),
        "--private-key": str(ra_settings.private_key),
        "--trust-anchor-arn": TRUST_ANCHOR_ARN,
        "--profile-arn": PROFILE_ARN,
        "--role-arn": ROLE_ARN,
        "--session-duration": "900",
    }


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        pytest.param({"helper": "no-such-helper-here"}, "not an executable", id="no-helper"),
        pytest.param({"certificate": Path("missing.pem")}, "certificate: no such file", id="cert"),
        pytest.param({"private_key": Path("missing.key")}, "private_key: no such file", id="key"),
    ],
)
def test_helper_source_checks_its_files_at_start(
    ra_settings: RolesAnywhereSettings, change: dict[str, object], fragment: str
) -> None:
    """A missing helper, certificate or key is a start-up error naming the key."""
    settings = ra_settings.model_copy(update=change)
    with pytest.raises(CredentialSourceError, match=fragment):
        helper_fetcher(settings)


@pytest.mark.parametrize(
    ("mode", "warned"),
    [pytest.param(0o600, False, id="private"), pytest.param(0o644, True, id="world-readable")],
)
def test_private_key_mode_warning(
    ra_settings: RolesAnywhereSettings, caplog: pytest.LogCaptureFixture, mode: int, warned: bool
) -> None:
    """Start-up warns when group or others can read the private key, and only then."""
    assert ra_settings.private_key is not None
    ra_settings.private_key.chmod(mode)
    with caplog.at_level(logging.WARNING):
        helper_fetcher(ra_settings)
    assert any("chmod 600" in r.getMessage() for r in caplog.records) is warned


async def test_failing_helper_reports_status_and_stderr(helper: SigningHelperStub) -> None:
    """A helper exiting non-zero is a FetchFailed carrying its status and stderr."""
    helper.plan([{"fail": "AccessDeniedException: untrusted certificate", "status": 3}])
    with pytest.raises(FetchFailed, match="status 3: AccessDeniedException: untrusted"):
        await _fetcher(helper).fetch()


async def test_hung_helper_is_killed_after_the_timeout(helper: SigningHelperStub) -> None:
    """A helper that never answers is killed and reaped once the timeout passes."""
    helper.plan([{"hang": True}])
    started = time.monotonic()
    with pytest.raises(FetchFailed, match=r"no answer within 0\.3s"):
        await _fetcher(helper, timeout=0.3).fetch()
    assert 0.3 <= time.monotonic() - started < 2.0
    (call,) = helper.calls
    assert not pid_alive(call["pid"])


async def test_cancelled_fetch_kills_the_helper(helper: SigningHelperStub) -> None:
    """Closing the daemon mid-call leaves no helper process behind."""
    helper.plan([{"hang": True}])
    task = asyncio.create_task(_fetcher(helper, timeout=30).fetch())
    await eventually(lambda: helper.calls)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not pid_alive(helper.calls[0]["pid"])


# ------------------------------------------------------------------ refresh through the cache


async def _serve_requests(cache: CredentialCache, stop: asyncio.Event) -> tuple[list[str], float]:
    """Read current() every 10 ms like requests do; return the key ids and the longest stall."""
    seen: list[str] = []
    worst, last = 0.0, time.monotonic()
    while not stop.is_set():
        seen.append(cache.current().access_key_id)  # never raises, never waits
        await asyncio.sleep(0.01)
        now = time.monotonic()
        worst, last = max(worst, now - last), now
    return seen, worst


async def test_refresh_happens_before_expiry_without_blocking(helper: SigningHelperStub) -> None:
    """Short-lived credentials are replaced before they expire; a slow helper blocks nothing."""
    helper.plan([credentials_step("ASIA1", expires_in=2.4), credentials_step("ASIA2", delay=0.5)])
    cache = CredentialCache(_fetcher(helper), refresh_margin=900, retry_initial=0.05)
    await cache.start()
    stop = asyncio.Event()
    requests = asyncio.create_task(_serve_requests(cache, stop))
    try:
        first = cache.current()
        assert first.access_key_id == "ASIA1" and first.expires_at is not None
        await eventually(lambda: cache.current().access_key_id == "ASIA2")
        switched_at = datetime.now(UTC)
    finally:
        stop.set()
        seen, worst_gap = await requests
        await cache.close()
    assert switched_at < first.expires_at
    second = helper.calls[1]
    # Refreshed at about half the lifetime; the old key kept serving while the helper ran.
    assert second["started"] < first.expires_at.timestamp() - 0.5
    assert second["finished"] - second["started"] >= 0.5
    assert seen.count("ASIA1") > 40
    assert worst_gap < 0.2
    assert cache.status.healthy


async def test_failures_are_retried_and_logged_once(
    helper: SigningHelperStub, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing refresh keeps the old credentials, shows unhealthy, logs once, then recovers."""
    helper.plan(
        [
            credentials_step("ASIA1", expires_in=2.0),
            {"fail": "network is down"},
            {"fail": "network is down"},
            {"fail": "network is down"},
            credentials_step("ASIA2"),
        ]
    )
    cache = CredentialCache(_fetcher(helper), refresh_margin=900, retry_initial=0.05)
    caplog.set_level(logging.INFO, logger="bedrock_gw.aws.credentials")
    await cache.start()
    try:
        await eventually(lambda: cache.status.consecutive_failures > 0)
        assert not cache.status.healthy
        assert "network is down" in (cache.status.last_error or "")
        assert cache.current().access_key_id == "ASIA1"
        await eventually(lambda: cache.current().access_key_id == "ASIA2")
    finally:
        await cache.close()
    assert cache.status.healthy
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "after 3 failed attempts" in caplog.text


async def test_hung_refresh_is_retried(helper: SigningHelperStub) -> None:
    """A hung helper during refresh is killed and the next attempt succeeds."""
    helper.plan(
        [credentials_step("ASIA1", expires_in=2.0), {"hang": True}, credentials_step("ASIA2")]
    )
    cache = CredentialCache(_fetcher(helper, timeout=0.3), refresh_margin=900, retry_initial=0.05)
    await cache.start()
    try:
        await eventually(lambda: cache.current().access_key_id == "ASIA2")
    finally:
        await cache.close()
    assert not pid_alive(helper.calls[1]["pid"])


async def test_nothing_loaded_means_unavailable(helper: SigningHelperStub) -> None:
    """Until a first fetch succeeds, current() raises a 503-class error and the gate waits."""
    helper.plan([{"fail": "down"}, credentials_step("ASIA1")])
    cache = CredentialCache(_fetcher(helper), refresh_margin=900, retry_initial=0.05)
    await cache.start()
    try:
        with pytest.raises(CredentialsUnavailable):
            cache.current()
        await asyncio.wait_for(cache.wait_until_loaded(), 5)
        assert cache.current().access_key_id == "ASIA1"
    finally:
        await cache.close()
