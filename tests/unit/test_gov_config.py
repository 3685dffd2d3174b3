"""Governance settings, and the address check behind server.allow_cidrs and LAN-only metrics."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from bedrock_gw.config import PRIVATE_NETWORKS, ConfigError, KeyPolicy, Settings, load_settings
from bedrock_gw.errors import BudgetExhausted, LimitExceeded, RateLimited
from bedrock_gw.web.boundary import address_allowed, peer_host

LOOPBACK_ONLY = (ipaddress.ip_network("127.0.0.1/32"),)


@pytest.mark.parametrize(
    ("host", "networks", "allowed"),
    [
        pytest.param("127.0.0.1", PRIVATE_NETWORKS, True, id="loopback"),
        pytest.param("192.168.1.20", PRIVATE_NETWORKS, True, id="lan-192"),
        pytest.param("172.31.255.1", PRIVATE_NETWORKS, True, id="lan-172"),
        pytest.param("172.32.0.1", PRIVATE_NETWORKS, False, id="not-172-16-12"),
        pytest.param("8.8.8.8", PRIVATE_NETWORKS, False, id="public-v4"),
        pytest.param("::1", PRIVATE_NETWORKS, True, id="loopback-v6"),
        pytest.param("fd12:3456::1", PRIVATE_NETWORKS, True, id="ula"),
        pytest.param("fe80::1%eth0", PRIVATE_NETWORKS, True, id="link-local-zone"),
        pytest.param("2001:db8::1", PRIVATE_NETWORKS, False, id="public-v6"),
        pytest.param("::ffff:10.1.2.3", PRIVATE_NETWORKS, True, id="v4-mapped"),
        pytest.param("::ffff:8.8.8.8", PRIVATE_NETWORKS, False, id="v4-mapped-public"),
        pytest.param("127.0.0.2", LOOPBACK_ONLY, False, id="second-loopback"),
        pytest.param(None, LOOPBACK_ONLY, True, id="unix-socket"),
        pytest.param("not-an-address", PRIVATE_NETWORKS, False, id="garbage"),
    ],
)
def test_address_allowed(
    host: str | None, networks: tuple[ipaddress.IPv4Network, ...], allowed: bool
) -> None:
    """Addresses are matched as IPs, IPv4-mapped and zoned IPv6 included."""
    assert address_allowed(host, networks) is allowed


def test_peer_host() -> None:
    """TCP peers are tuples; a Unix socket's peer is a path or empty."""
    assert peer_host(("10.0.0.1", 5555)) == "10.0.0.1"
    assert peer_host(("fe80::1", 5555, 0, 2)) == "fe80::1"
    assert peer_host("") is None
    assert peer_host(None) is None


def test_defaults_are_the_lan_and_nothing_governed() -> None:
    """By default: LAN-only connections, metrics off, HTTPS off, no limits, passthrough on."""
    settings = Settings()
    assert settings.server.allow_cidrs == PRIVATE_NETWORKS
    assert settings.metrics.access == "off"
    assert not settings.tls.enabled
    assert settings.limits.policy("anyone") == KeyPolicy()
    assert settings.passthrough.enabled


def test_a_keys_own_policy_replaces_the_default() -> None:
    """limits.keys.<name> is used whole for that key; others get limits.default."""
    settings = Settings(
        limits={"default": {"requests_per_minute": 5}, "keys": {"kids": {"daily_cost": 1}}}
    )
    assert settings.limits.policy("kids") == KeyPolicy(daily_cost=1)
    assert settings.limits.policy("owner").requests_per_minute == 5


def test_cidrs_accept_host_bits() -> None:
    """192.168.1.10/24 means that LAN."""
    settings = Settings(server={"allow_cidrs": ["192.168.1.10/24", "::1"]})
    assert [str(n) for n in settings.server.allow_cidrs] == ["192.168.1.0/24", "::1/128"]


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        pytest.param(
            '[tls]\ncertificate = "/c.pem"\n', "both certificate and private_key", id="tls"
        ),
        pytest.param('[metrics]\naccess = "token"\n', "needs metrics.token", id="metrics-token"),
        pytest.param('[server]\nallow_cidrs = ["lan"]\n', "server.allow_cidrs", id="cidr"),
        pytest.param(
            "[limits.default]\nrequests_per_minute = 0\n", "requests_per_minute", id="rpm"
        ),
        pytest.param('[usage.prices]\n"*" = { input = 1 }\n', "output", id="price"),
    ],
)
def test_invalid_governance_settings(tmp_path: Path, toml: str, problem: str) -> None:
    """Each mistake is reported with its key."""
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=problem):
        load_settings(path)


def test_limit_errors_are_rate_limits() -> None:
    """Limits are 429s; a spent budget uses OpenAI's insufficient_quota shape."""
    rate = LimitExceeded("slow down", limit="requests_per_minute", retry_after=3)
    budget = BudgetExhausted("spent", limit="daily_cost", retry_after=60)
    assert isinstance(budget, RateLimited) and budget.status == rate.status == 429
    assert rate.to_openai()["error"]["code"] == "rate_limit_exceeded"
    assert budget.to_openai()["error"] == {
        "message": "spent",
        "type": "insufficient_quota",
        "param": None,
        "code": "insufficient_quota",
    }
