"""User content parts -> Converse content blocks: text, images and documents. Pure, no I/O.

Images arrive as data URLs (Open WebUI always sends those); remote ``http(s)`` URLs are fetched
by the HTTP layer beforehand, only when the config allows it, and handed in as ``fetched``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from bedrock_gw.bedrock.converse_types import ContentBlock
from bedrock_gw.errors import InvalidRequest
from bedrock_gw.openai.chat_request import AudioPart, ContentPart, FilePart, ImagePart, TextPart

__all__ = [
    "DOCUMENT_FORMATS",
    "IMAGE_FORMATS",
    "ContentLimits",
    "content_blocks",
    "parse_data_url",
    "sanitize_document_name",
]

IMAGE_FORMATS: Mapping[str, str] = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
DOCUMENT_FORMATS: Mapping[str, str] = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/html": "html",
    "text/plain": "txt",
    "text/markdown": "md",
}
_DOCUMENT_EXTENSIONS = frozenset(DOCUMENT_FORMATS.values())
_DATA_URL = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w-]+=[^;,]*)*);base64,", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class ContentLimits:
    max_image_bytes: int
    max_document_bytes: int
    images_allowed: bool
    documents_allowed: bool
    fetched_images: Mapping[str, tuple[str, bytes]] = field(default_factory=dict)
    """Remote image URL -> (MIME type, bytes), fetched by the HTTP layer when enabled."""


def parse_data_url(url: str) -> tuple[str, str] | None:
    """``(mime type, base64 payload)`` of a base64 data URL, else None."""
    match = _DATA_URL.match(url)
    if match is None:
        return None
    return (match.group("mime") or "").lower(), url[match.end() :]


def content_blocks(
    parts: list[ContentPart], limits: ContentLimits, where: str
) -> list[tuple[ContentBlock, bool]]:
    """Blocks for the parts, each with whether a cache point follows it."""
    blocks: list[tuple[ContentBlock, bool]] = []
    for index, part in enumerate(parts):
        param = f"{where}[{index}]"
        if isinstance(part, TextPart):
            if part.text:
                blocks.append(({"text": part.text}, part.cache_control is not None))
        elif isinstance(part, ImagePart):
            blocks.append((_image(part, limits, param), part.cache_control is not None))
        elif isinstance(part, FilePart):
            blocks.append((_document(part, limits, param, index), part.cache_control is not None))
        elif isinstance(part, AudioPart):
            raise InvalidRequest("audio input is not supported by Bedrock's Converse", param=param)
    return blocks


def _image(part: ImagePart, limits: ContentLimits, param: str) -> ContentBlock:
    if not limits.images_allowed:
        raise InvalidRequest("this model does not accept images", param=param)
    url = part.image_url.url
    parsed = parse_data_url(url)
    if parsed is not None:
        mime, payload = parsed
        raw = _decode(payload, param)
    elif url in limits.fetched_images:
        mime, raw = limits.fetched_images[url]
        payload = base64.b64encode(raw).decode()
    elif url.startswith(("http://", "https://")):
        raise InvalidRequest(
            "remote image URLs are disabled on this gateway; send the image as a data URL",
            param=param,
        )
    else:
        raise InvalidRequest("image_url must be a base64 data URL", param=param)
    image_format = IMAGE_FORMATS.get(mime)
    if image_format is None:
        raise InvalidRequest(
            f"image type {mime or 'unknown'!r} is not supported; use png, jpeg, gif or webp",
            param=param,
        )
    if len(raw) > limits.max_image_bytes:
        raise InvalidRequest(
            f"image is {len(raw)} bytes; the limit is {limits.max_image_bytes}", param=param
        )
    return {"image": {"format": image_format, "source": {"bytes": payload}}}


def _document(part: FilePart, limits: ContentLimits, param: str, index: int) -> ContentBlock:
    if not limits.documents_allowed:
        raise InvalidRequest("this model does not accept documents", param=param)
    data = part.file.file_data
    if not data:
        raise InvalidRequest(
            "file parts need file_data (uploaded file ids are not supported)", param=param
        )
    filename = part.file.filename or ""
    parsed = parse_data_url(data)
    mime, payload = parsed if parsed is not None else ("", data)
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    doc_format = DOCUMENT_FORMATS.get(mime) or (
        extension if extension in _DOCUMENT_EXTENSIONS else None
    )
    if doc_format is None:
        raise InvalidRequest(
            "document type not supported; use pdf, csv, doc, docx, xls, xlsx, html, txt or md",
            param=param,
        )
    raw = _decode(payload, param)
    if len(raw) > limits.max_document_bytes:
        raise InvalidRequest(
            f"document is {len(raw)} bytes; the limit is {limits.max_document_bytes}",
            param=param,
        )
    stem = filename.rsplit(".", 1)[0] if "." in filename else filename
    name = sanitize_document_name(stem) or f"document-{index + 1}"
    return {"document": {"format": doc_format, "name": name, "source": {"bytes": payload}}}


_NAME_DISALLOWED = re.compile(r"[^A-Za-z0-9\s\-\(\)\[\]]+")
_SPACES = re.compile(r"\s+")


def sanitize_document_name(name: str) -> str:
    """Bedrock accepts letters, digits, single spaces, hyphens, parentheses and brackets."""
    cleaned = _NAME_DISALLOWED.sub("-", name)
    return _SPACES.sub(" ", cleaned).strip(" -")[:200]


def _decode(payload: str, param: str) -> bytes:
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest("the base64 data is not valid", param=param) from exc
