"""``POST /v1/embeddings``: Titan fans out one call per text, Cohere batches, both bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from bedrock_gw.bedrock.client import Bedrock, InvokeResult
from bedrock_gw.errors import InvalidRequest
from bedrock_gw.governance.usage import TokenUsage, estimate_tokens
from bedrock_gw.openai.embeddings import EmbeddingRequest
from bedrock_gw.translate import embeddings
from bedrock_gw.web.admission import admit, model_names
from bedrock_gw.web.body import read_model
from bedrock_gw.web.state import BEDROCK, CATALOG, LIVE, TRACE

__all__ = ["create_embeddings"]


async def create_embeddings(request: web.Request) -> web.Response:
    body = await read_model(request, EmbeddingRequest)
    trace = request[TRACE]
    trace.model = body.model
    entry = await request.app[CATALOG].lookup(body.model)
    family = embeddings.family_of(entry.base_model_id)
    if entry.kind != "embedding" or family is None:
        raise InvalidRequest(
            f"'{body.model}' is not an embedding model this gateway supports "
            "(Titan text v1/v2, Cohere v3)",
            param="model",
        )
    plan = embeddings.plan(body, family)
    limit = request.app[LIVE].settings.embeddings.max_concurrency
    with admit(
        request,
        model=body.model,
        names=model_names(entry),
        input_tokens=estimate_tokens(body.model_dump(mode="json", exclude_none=True)),
        max_output_tokens=0,  # embeddings produce no tokens
        stream=False,
        api="openai",
    ) as lease:
        results = await _invoke_all(request.app[BEDROCK], entry.bedrock_id, plan.bodies, limit)
        vectors, tokens = embeddings.collect(plan, [(r.body, r.input_tokens) for r in results])
        lease.settle(TokenUsage(input=tokens))
    trace.prompt_tokens = tokens
    return web.json_response(
        embeddings.to_openai(
            vectors, model=body.model, encoding_format=body.encoding_format, prompt_tokens=tokens
        )
    )


async def _invoke_all(
    bedrock: Bedrock, model_id: str, bodies: tuple[Mapping[str, Any], ...], limit: int
) -> list[InvokeResult]:
    if len(bodies) == 1:
        return [await bedrock.invoke_model(model_id, bodies[0])]
    gate = asyncio.Semaphore(limit)

    async def one(body: Mapping[str, Any]) -> InvokeResult:
        async with gate:
            return await bedrock.invoke_model(model_id, body)

    # A TaskGroup cancels the remaining calls as soon as one fails.
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(body)) for body in bodies]
    except ExceptionGroup as group_error:
        raise group_error.exceptions[0] from None
    return [task.result() for task in tasks]
