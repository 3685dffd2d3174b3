"""OpenAI embeddings <-> Bedrock InvokeModel bodies, per model family. Pure, no I/O.

Titan takes one text per call, so a list fans out into one call per text; Cohere takes up to 96
texts per call, so a list is cut into batches. ``plan`` says which bodies to send, ``collect``
reads the vectors back in input order, and ``to_openai`` builds the response.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from bedrock_gw.errors import InvalidRequest, UpstreamError
from bedrock_gw.openai.embeddings import EmbeddingRequest

__all__ = ["EmbeddingFamily", "EmbeddingPlan", "collect", "family_of", "plan", "to_openai"]


class EmbeddingFamily(Enum):
    TITAN_V1 = "titan-v1"
    TITAN_V2 = "titan-v2"
    COHERE_V3 = "cohere-v3"


@dataclass(frozen=True, slots=True)
class _FamilyTraits:
    batch_size: int
    dimensions: frozenset[int]
    """Output sizes the caller may choose; empty when the size is fixed."""


_TRAITS: Mapping[EmbeddingFamily, _FamilyTraits] = {
    EmbeddingFamily.TITAN_V1: _FamilyTraits(1, frozenset()),
    EmbeddingFamily.TITAN_V2: _FamilyTraits(1, frozenset({256, 512, 1024})),
    EmbeddingFamily.COHERE_V3: _FamilyTraits(96, frozenset()),
}

_FAMILY_BY_MODEL_PREFIX: Sequence[tuple[str, EmbeddingFamily]] = (
    ("amazon.titan-embed-text-v1", EmbeddingFamily.TITAN_V1),
    ("amazon.titan-embed-text-v2", EmbeddingFamily.TITAN_V2),
    ("cohere.embed-english-v3", EmbeddingFamily.COHERE_V3),
    ("cohere.embed-multilingual-v3", EmbeddingFamily.COHERE_V3),
)


def family_of(base_model_id: str) -> EmbeddingFamily | None:
    for prefix, family in _FAMILY_BY_MODEL_PREFIX:
        if base_model_id.startswith(prefix):
            return family
    return None


@dataclass(frozen=True, slots=True)
class EmbeddingPlan:
    family: EmbeddingFamily
    texts: tuple[str, ...]
    bodies: tuple[dict[str, Any], ...]
    """InvokeModel bodies, in input order; each covers ``batch_size`` consecutive texts."""


def plan(request: EmbeddingRequest, family: EmbeddingFamily) -> EmbeddingPlan:
    texts = _texts(request.input)
    traits = _TRAITS[family]
    if request.dimensions is not None and request.dimensions not in traits.dimensions:
        allowed = ", ".join(str(d) for d in sorted(traits.dimensions)) or "none (fixed size)"
        raise InvalidRequest(
            f"dimensions={request.dimensions} is not supported by this model; choose: {allowed}",
            param="dimensions",
        )
    if request.input_type is not None and family is not EmbeddingFamily.COHERE_V3:
        raise InvalidRequest("input_type applies to Cohere models only", param="input_type")
    bodies: list[dict[str, Any]] = []
    if family is EmbeddingFamily.COHERE_V3:
        input_type = request.input_type or "search_document"
        for start in range(0, len(texts), traits.batch_size):
            batch = list(texts[start : start + traits.batch_size])
            bodies.append({"texts": batch, "input_type": input_type})
    elif family is EmbeddingFamily.TITAN_V2:
        extra: dict[str, Any] = {"normalize": True}
        if request.dimensions is not None:
            extra["dimensions"] = request.dimensions
        bodies.extend({"inputText": text, **extra} for text in texts)
    else:
        bodies.extend({"inputText": text} for text in texts)
    return EmbeddingPlan(family, texts, tuple(bodies))


def collect(
    embedding_plan: EmbeddingPlan, results: Sequence[tuple[Any, int | None]]
) -> tuple[list[list[float]], int]:
    """Vectors in input order and the prompt token count, from ``(body, header tokens)`` pairs."""
    vectors: list[list[float]] = []
    tokens = 0
    for body, header_tokens in results:
        if not isinstance(body, Mapping):
            raise UpstreamError("Bedrock returned an embedding response that is not an object")
        if embedding_plan.family is EmbeddingFamily.COHERE_V3:
            batch = body.get("embeddings")
            if isinstance(batch, Mapping):  # the shape when embedding_types was given
                batch = batch.get("float")
            if not isinstance(batch, list):
                raise UpstreamError("Bedrock's Cohere response lacks embeddings")
            vectors.extend(_vector(v) for v in batch)
            tokens += header_tokens or 0
        else:
            vectors.append(_vector(body.get("embedding")))
            counted = body.get("inputTextTokenCount")
            tokens += counted if isinstance(counted, int) else header_tokens or 0
    if len(vectors) != len(embedding_plan.texts):
        raise UpstreamError("Bedrock returned a different number of embeddings than inputs")
    return vectors, tokens


def to_openai(
    vectors: Sequence[Sequence[float]], *, model: str, encoding_format: str, prompt_tokens: int
) -> dict[str, Any]:
    data = [
        {
            "object": "embedding",
            "index": index,
            "embedding": _encode(vector) if encoding_format == "base64" else list(vector),
        }
        for index, vector in enumerate(vectors)
    ]
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def _texts(value: str | list[str] | list[int] | list[list[int]]) -> tuple[str, ...]:
    items: list[Any] = [value] if isinstance(value, str) else list(value)
    if not items:
        raise InvalidRequest("input must not be empty", param="input")
    if not all(isinstance(item, str) for item in items):
        raise InvalidRequest(
            "token arrays are not supported: Bedrock embeds text; send strings", param="input"
        )
    if any(not item for item in items):
        raise InvalidRequest("input must not contain empty strings", param="input")
    return tuple(items)


def _vector(value: object) -> list[float]:
    if not isinstance(value, list) or not all(isinstance(x, int | float) for x in value):
        raise UpstreamError("Bedrock returned an embedding that is not a list of numbers")
    return [float(x) for x in value]


def _encode(vector: Sequence[float]) -> str:
    # OpenAI's base64 format: little-endian float32, as numpy.frombuffer(..., "float32") reads.
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
