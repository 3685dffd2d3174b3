"""Reading a JSON request body into a wire model, with OpenAI-shaped errors for bad input."""

from __future__ import annotations

import json
import logging
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from bedrock_gw.errors import InvalidRequest
from bedrock_gw.web.state import LIVE

__all__ = ["read_model"]

ModelT = TypeVar("ModelT", bound=BaseModel)

# Separate from the access log so that prompts only appear when this switch is deliberately on.
body_logger = logging.getLogger("bedrock_gw.bodies")
_LOGGED_BODY_LIMIT = 64 * 1024


async def read_model(request: web.Request, model: type[ModelT]) -> ModelT:
    raw = await request.read()  # aiohttp enforces client_max_size here (413)
    if request.app[LIVE].settings.logging.log_bodies:
        body_logger.info(
            "%s %s body: %s",
            request.method,
            request.path,
            raw[:_LOGGED_BODY_LIMIT].decode(errors="replace"),
        )
    if not raw:
        raise InvalidRequest("the request body is empty; send a JSON object")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc) from exc


def _invalid(exc: ValidationError) -> InvalidRequest:
    errors = exc.errors(include_url=False)
    first = errors[0]
    path = _param(first["loc"])
    if first["type"] == "extra_forbidden":
        return InvalidRequest(f"Unrecognized request argument supplied: {path}", param=path)
    if first["type"] == "missing":
        return InvalidRequest(f"Missing required parameter: '{path}'", param=path)
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return InvalidRequest(f"Invalid value for '{path}': {first['msg']}{more}", param=path)


def _param(loc: tuple[int | str, ...]) -> str:
    """``messages[2].content`` from pydantic's location, without the union branch names
    pydantic inserts (the discriminator value after a list index, or a type like ``list[str]``)."""
    parts: list[str] = []
    previous: int | str | None = None
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif (
            (isinstance(previous, int) and part in _UNION_TAGS)
            or "[" in part
            or part in {"str", "int", "float", "bool"}
        ):
            pass
        else:
            parts.append(f".{part}" if parts else part)
        previous = part
    return "".join(parts)


_UNION_TAGS = frozenset(
    {"system", "developer", "user", "assistant", "tool", "text", "image_url", "file", "input_audio"}
)
