"""HTTPS with a generated certificate, renewed in place and re-read on reload (SIGHUP)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509

from bedrock_gw.config import ConfigError
from bedrock_gw.reload import ReloadRejected, apply_settings
from bedrock_gw.server import Gateway
from bedrock_gw.web.state import LIVE
from tests.fakes.bedrock import FakeBedrock
from tests.fakes.catalogue import HAIKU
from tests.fakes.certificates import ServerCertificate, make_server_certificate
from tests.integration.conftest import API_KEY, GatewayFactory, gateway_settings


def _tls(cert: ServerCertificate) -> dict[str, Any]:
    return {"certificate": str(cert.certificate), "private_key": str(cert.private_key)}


async def _served_serial(gateway: Gateway, ca: Path) -> int:
    """The serial number of the certificate a new handshake presents (verified against ``ca``)."""
    port = int(gateway.url.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=str(ca))
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()
    return x509.load_der_x509_certificate(der).serial_number


@pytest.fixture
def cert(tmp_path: Path) -> ServerCertificate:
    return make_server_certificate(tmp_path / "tls")


async def test_https_with_a_generated_certificate(
    start_gateway: GatewayFactory, cert: ServerCertificate
) -> None:
    """The gateway serves HTTPS to a client that trusts its CA; plain HTTP gets nothing."""
    gateway = await start_gateway(tls=_tls(cert))
    assert gateway.url.startswith("https://127.0.0.1:")
    trusted = aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=str(cert.ca)))
    async with (
        aiohttp.ClientSession(connector=trusted) as http,
        http.post(
            f"{gateway.url}/v1/chat/completions",
            json={"model": HAIKU, "messages": [{"role": "user", "content": "over tls"}]},
            headers={"Authorization": f"Bearer {API_KEY}"},
        ) as response,
    ):
        completion = await response.json()
    assert completion["choices"][0]["message"]["content"] == "echo: over tls"
    plain = gateway.url.replace("https://", "http://")
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientError):
            async with http.get(f"{plain}/health") as response:
                await response.read()


async def test_reload_serves_a_renewed_certificate(
    start_gateway: GatewayFactory, fake: FakeBedrock, cert: ServerCertificate, tmp_path: Path
) -> None:
    """A certificate replaced in place is served to new connections after a reload."""
    gateway = await start_gateway(tls=_tls(cert))
    assert await _served_serial(gateway, cert.ca) == cert.serial
    renewed = make_server_certificate(tmp_path / "renewed")
    shutil.copy(renewed.certificate, cert.certificate)
    shutil.copy(renewed.private_key, cert.private_key)
    assert await _served_serial(gateway, cert.ca) == cert.serial  # not before the reload
    await apply_settings(gateway.app, gateway_settings(fake.url, tls=_tls(cert)))
    assert await _served_serial(gateway, renewed.ca) == renewed.serial


async def test_a_broken_pair_rejects_the_reload(
    start_gateway: GatewayFactory, fake: FakeBedrock, cert: ServerCertificate, tmp_path: Path
) -> None:
    """A key that does not match its certificate is refused; the old pair keeps serving."""
    gateway = await start_gateway(tls=_tls(cert))
    other = make_server_certificate(tmp_path / "other")
    mismatched = {"certificate": str(other.certificate), "private_key": str(cert.private_key)}
    with pytest.raises(ReloadRejected, match="reloading the TLS certificate failed"):
        await apply_settings(gateway.app, gateway_settings(fake.url, tls=mismatched))
    assert await _served_serial(gateway, cert.ca) == cert.serial
    assert gateway.app[LIVE].settings.tls.certificate == cert.certificate


async def test_tls_cannot_be_switched_off_by_a_reload(
    start_gateway: GatewayFactory, fake: FakeBedrock, cert: ServerCertificate
) -> None:
    """Switching HTTPS off needs a restart; the reload keeps it on and says so in the settings."""
    gateway = await start_gateway(tls=_tls(cert))
    await apply_settings(gateway.app, gateway_settings(fake.url))
    assert gateway.app[LIVE].settings.tls.enabled
    assert await _served_serial(gateway, cert.ca) == cert.serial


async def test_unusable_files_stop_the_start(fake: FakeBedrock, tmp_path: Path) -> None:
    """A certificate that cannot be read is a configuration error at start."""
    missing = {"certificate": str(tmp_path / "nope.pem"), "private_key": str(tmp_path / "k.pem")}
    gateway = Gateway(gateway_settings(fake.url, tls=missing))
    with pytest.raises(ConfigError, match=r"\[tls\]: cannot use .*nope\.pem"):
        await gateway.start()
    await gateway.stop()
