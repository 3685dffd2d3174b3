"""Forwarding a client's Bedrock runtime request as it is, signed with the gateway's credentials.

For the native passthrough: the path (as the client encoded it), the query, the body bytes and
the client's Bedrock headers go to the runtime endpoint unchanged; only the authentication is
replaced. The response comes back as an open ``aiohttp.ClientResponse`` for the caller to relay
chunk by chunk.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping

import aiohttp
from yarl import URL

from bedrock_gw.aws.credentials import AwsCredentials
from bedrock_gw.aws.sigv4 import sign_headers
from bedrock_gw.bedrock.client import SIGNING_NAME, BedrockTimeouts
from bedrock_gw.errors import UpstreamError, UpstreamTimeout

__all__ = ["Forwarder", "forwards_header", "response_headers"]

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# The client's authentication is replaced by ours; what its transport set is set anew.
_NOT_FORWARDED = _HOP_BY_HOP | {
    "authorization",
    "host",
    "content-length",
    "expect",
    "accept-encoding",
    "cookie",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
}


def forwards_header(name: str) -> bool:
    """Whether a client request header goes on to Bedrock."""
    lowered = name.lower()
    return lowered not in _NOT_FORWARDED and not lowered.startswith("x-openwebui-")


class Forwarder:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        credentials: Callable[[], AwsCredentials],
        region: str,
        runtime_endpoint: str,
        timeouts: BedrockTimeouts,
    ) -> None:
        self._session = session
        self._credentials = credentials
        self._region = region
        self._runtime = runtime_endpoint.rstrip("/")
        self._timeouts = timeouts
        # Reads are bounded per chunk in ``chunks``; the first byte by ``first_byte``.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeouts.connect)

    async def send(
        self, method: str, path_and_query: str, headers: Mapping[str, str], body: bytes
    ) -> aiohttp.ClientResponse:
        """Send the request; the caller must release the response (``async with``)."""
        url = self._runtime + path_and_query
        forwarded = {name: value for name, value in headers.items() if forwards_header(name)}
        # Sign what Bedrock reads (content type and Bedrock's own headers); anything else is
        # passed unsigned, so a header a proxy may rewrite cannot break the signature.
        to_sign = {
            name: value
            for name, value in forwarded.items()
            if name.lower() == "content-type" or name.lower().startswith("x-amz")
        }
        signed = sign_headers(
            method,
            url,
            to_sign,
            body,
            credentials=self._credentials(),
            region=self._region,
            service=SIGNING_NAME,
        )
        # The observer reads usage from the bytes; an identity body keeps them readable.
        outgoing = {**forwarded, **signed, "Accept-Encoding": "identity"}
        try:
            async with asyncio.timeout(self._timeouts.first_byte):
                return await self._session.request(
                    method,
                    URL(url, encoded=True),  # the path exactly as signed, and as the client sent it
                    data=body or None,
                    headers=outgoing,
                    timeout=self._timeout,
                    allow_redirects=False,
                )
        except TimeoutError as exc:
            raise UpstreamTimeout("Bedrock did not answer in time") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"cannot reach Bedrock: {type(exc).__name__}") from exc

    async def chunks(self, response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
        """The response body as it arrives, one read at a time (never the whole body at once)."""
        idle = self._timeouts.stream_idle
        while True:
            try:
                async with asyncio.timeout(idle):
                    chunk = await response.content.readany()
            except TimeoutError as exc:
                raise UpstreamTimeout(f"Bedrock was silent for {idle:g}s") from exc
            except aiohttp.ClientError as exc:
                raise UpstreamError("the connection to Bedrock broke mid-response") from exc
            if not chunk:
                return
            yield chunk


def response_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Bedrock's response headers to relay: all but hop-by-hop ones and what aiohttp sets."""
    return {
        name: value
        for name, value in headers.items()
        if name.lower() not in _HOP_BY_HOP | {"date", "server", "content-length"}
    }
