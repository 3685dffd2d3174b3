"""Fetching remote image URLs for clients, only when ``chat.fetch_remote_images`` is on.

Bounded in size and time; only ``image/*`` answers are kept. Off by default: a daemon on a LAN
must not fetch arbitrary URLs on a client's behalf.
"""

from __future__ import annotations

import asyncio

import aiohttp

from bedrock_gw.errors import InvalidRequest
from bedrock_gw.openai.chat_request import ChatCompletionRequest, ImagePart, UserMessage

__all__ = ["fetch_remote_images", "remote_image_urls"]


def remote_image_urls(request: ChatCompletionRequest) -> list[str]:
    urls: list[str] = []
    for message in request.messages:
        if isinstance(message, UserMessage) and isinstance(message.content, list):
            urls.extend(
                part.image_url.url
                for part in message.content
                if isinstance(part, ImagePart)
                and part.image_url.url.startswith(("http://", "https://"))
            )
    return list(dict.fromkeys(urls))


async def fetch_remote_images(
    session: aiohttp.ClientSession, urls: list[str], *, max_bytes: int, time_limit: float
) -> dict[str, tuple[str, bytes]]:
    results = await asyncio.gather(*(_fetch(session, url, max_bytes, time_limit) for url in urls))
    return dict(zip(urls, results, strict=True))


async def _fetch(
    session: aiohttp.ClientSession, url: str, max_bytes: int, time_limit: float
) -> tuple[str, bytes]:
    try:
        async with asyncio.timeout(time_limit), session.get(url, allow_redirects=True) as response:
            if response.status != 200:
                raise InvalidRequest(f"fetching image {url} failed with HTTP {response.status}")
            mime = response.content_type.lower()
            if not mime.startswith("image/"):
                raise InvalidRequest(f"{url} is not an image ({mime})")
            data = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                data += chunk
                if len(data) > max_bytes:
                    raise InvalidRequest(f"image {url} is larger than {max_bytes} bytes")
            return mime, bytes(data)
    except TimeoutError as exc:
        raise InvalidRequest(f"fetching image {url} took longer than {time_limit:g}s") from exc
    except aiohttp.ClientError as exc:
        raise InvalidRequest(f"fetching image {url} failed: {type(exc).__name__}") from exc
