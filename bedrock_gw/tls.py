"""HTTPS on the listening socket, with the certificate re-read on SIGHUP.

One ``ssl.SSLContext`` serves every connection. A reload first loads the new files into a
scratch context, so a bad certificate or a key that does not match is refused (and the reload
with it) while the old pair keeps serving; only then is the live context given the new pair,
which every later handshake uses. Connections already open keep theirs.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path

from bedrock_gw.config import ConfigError, TlsSettings

__all__ = ["TlsContext"]

logger = logging.getLogger(__name__)


class TlsContext:
    def __init__(self, settings: TlsSettings) -> None:
        """Build the context from ``settings`` (which must have TLS on); raises ``ConfigError``."""
        self.settings = settings
        self.context = _new_context()
        _load(self.context, settings)

    async def reload(self, settings: TlsSettings) -> None:
        """Serve the (possibly renewed) files named in ``settings``; raises ``ConfigError``."""
        # Parsing the files (and the key check) happens in a thread, on a context of its own.
        await asyncio.to_thread(_load, _new_context(), settings)
        # Re-reads the same small files on the loop: the live context must not be changed from
        # another thread while handshakes use it.
        _load(self.context, settings)
        self.settings = settings
        logger.info("TLS certificate loaded from %s", settings.certificate)


def _new_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    return context


def _load(context: ssl.SSLContext, settings: TlsSettings) -> None:
    certificate, private_key = settings.certificate, settings.private_key
    assert certificate is not None and private_key is not None
    try:
        context.load_cert_chain(Path(certificate), Path(private_key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            "[tls]", [f"cannot use {certificate} with {private_key}: {_reason(exc)}"]
        ) from exc


def _reason(exc: OSError | ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return exc.strerror or str(exc)
