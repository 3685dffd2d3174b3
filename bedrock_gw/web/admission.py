"""From a request to its lease: who asks (key, Open WebUI user), for which model, how much."""

from __future__ import annotations

from aiohttp import web

from bedrock_gw.errors import AuthenticationFailed, LimitExceeded
from bedrock_gw.governance.governor import Api, Ask, Lease, model_allowed
from bedrock_gw.governance.usage import end_user
from bedrock_gw.models.listing import ModelEntry
from bedrock_gw.web.state import GOVERNOR, LIVE, TRACE

__all__ = ["admit", "entry_allowed", "model_names"]


def model_names(entry: ModelEntry) -> tuple[str, ...]:
    """Every name a key's model patterns and the price table may match for ``entry``."""
    return tuple(dict.fromkeys((entry.id, entry.bedrock_id, entry.base_model_id)))


def entry_allowed(request: web.Request, entry: ModelEntry) -> bool:
    """Whether the request's key may use ``entry`` (for the model listings)."""
    key = request[TRACE].key
    if key is None:
        return False
    policy = request.app[LIVE].settings.limits.policy(key.name)
    return model_allowed(policy, model_names(entry))


def admit(
    request: web.Request,
    *,
    model: str,
    names: tuple[str, ...],
    input_tokens: int,
    max_output_tokens: int | None,
    stream: bool,
    api: Api,
) -> Lease:
    """Admit the request under its key's policy; raises the refusal as a ``GatewayError``.

    ``input_tokens`` is the estimate of the prompt (``estimate_tokens`` of the body).
    """
    trace = request[TRACE]
    if trace.key is None:  # the auth middleware guards every route that gets here
        raise AuthenticationFailed("Missing API key: send it as 'Authorization: Bearer <key>'")
    ask = Ask(
        key=trace.key.name,
        model=model,
        model_names=names,
        user=end_user(request.headers),
        input_tokens=input_tokens,
        max_output_tokens=max_output_tokens,
        stream=stream,
        api=api,
    )
    try:
        lease = request.app[GOVERNOR].admit(request.app[LIVE].settings, ask)
    except LimitExceeded as error:
        trace.extra["limit"] = error.limit
        raise
    trace.model = model
    trace.admitted = True
    return lease
