"""InvokeModel bodies of the embedding models, with deterministic vectors.

Vectors are a pure function of the input text (SHA-256 in counter mode), so tests can compute
the exact expected floats with :func:`embedding_vector`.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
import uuid
from collections.abc import Callable
from typing import Any

from .errors import AwsError, validation

TITAN_V1_DIMENSIONS = 1536
TITAN_V2_DIMENSIONS = (256, 512, 1024)
COHERE_DIMENSIONS = 1024
COHERE_MAX_TEXTS = 96
COHERE_INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")
COHERE_TRUNCATE = ("NONE", "START", "END")
COHERE_EMBEDDING_TYPES = ("float", "int8", "uint8", "binary", "ubinary")

# (response body, input token count)
InvokeResult = tuple[dict[str, Any], int]


def embedding_vector(text: str, dimensions: int, normalize: bool = True) -> list[float]:
    """The fake's embedding of ``text``: values in [-1, 1), optionally unit length."""
    seed = hashlib.sha256(text.encode("utf-8")).digest()
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        block = hashlib.sha256(seed + counter.to_bytes(4, "big")).digest()
        values.extend(n / 2**31 - 1.0 for n in struct.unpack(">8I", block))
        counter += 1
    values = values[:dimensions]
    if normalize:
        norm = math.sqrt(sum(v * v for v in values)) or 1.0
        values = [v / norm for v in values]
    return values


def _malformed(detail: str) -> AwsError:
    # Bedrock reports model-body schema failures in this form.
    return validation(
        f"Malformed input request: {detail}, please reformat your input and try again."
    )


def _parse(body: bytes, allowed: frozenset[str]) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise _malformed("#: expected type: JSONObject, found: String") from None
    if not isinstance(parsed, dict):
        raise _malformed("#: expected type: JSONObject")
    for key in parsed:
        if key not in allowed:
            raise _malformed(f"#: extraneous key [{key}] is not permitted")
    return parsed


def _input_text(parsed: dict[str, Any]) -> str:
    if "inputText" not in parsed:
        raise _malformed("#: required key [inputText] not found")
    text = parsed["inputText"]
    if not isinstance(text, str):
        raise _malformed("#/inputText: expected type: String")
    if not text:
        raise _malformed("#/inputText: expected minLength: 1, actual: 0")
    return text


def _words(text: str) -> int:
    return max(1, len(text.split()))


def titan_v1(body: bytes) -> InvokeResult:
    parsed = _parse(body, frozenset({"inputText"}))
    text = _input_text(parsed)
    tokens = _words(text)
    vector = embedding_vector(text, TITAN_V1_DIMENSIONS, normalize=False)
    return {"embedding": vector, "inputTextTokenCount": tokens}, tokens


def titan_v2(body: bytes) -> InvokeResult:
    parsed = _parse(body, frozenset({"inputText", "dimensions", "normalize", "embeddingTypes"}))
    text = _input_text(parsed)
    dimensions = parsed.get("dimensions", 1024)
    if isinstance(dimensions, bool) or dimensions not in TITAN_V2_DIMENSIONS:
        raise _malformed(f"#/dimensions: {dimensions} is not a valid enum value")
    normalize = parsed.get("normalize", True)
    if not isinstance(normalize, bool):
        raise _malformed("#/normalize: expected type: Boolean")
    types = parsed.get("embeddingTypes", ["float"])
    if not isinstance(types, list) or not types or any(t not in ("float", "binary") for t in types):
        raise _malformed("#/embeddingTypes: expected a non-empty subset of [float, binary]")
    vector = embedding_vector(text, dimensions, normalize)
    by_type: dict[str, Any] = {}
    if "float" in types:
        by_type["float"] = vector
    if "binary" in types:
        by_type["binary"] = [1 if v > 0 else 0 for v in vector]
    tokens = _words(text)
    return {"embedding": vector, "embeddingsByType": by_type, "inputTextTokenCount": tokens}, tokens


def _quantise(vector: list[float], kind: str) -> list[Any]:
    if kind == "int8":
        return [max(-128, min(127, round(v * 127 * 8))) for v in vector]
    if kind == "uint8":
        return [max(0, min(255, round(v * 127 * 8) + 128)) for v in vector]
    bits = [1 if v > 0 else 0 for v in vector]
    packed = [int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8)]
    return [p - 128 for p in packed] if kind == "binary" else packed


def cohere_v3(body: bytes) -> InvokeResult:
    parsed = _parse(
        body, frozenset({"texts", "input_type", "truncate", "embedding_types", "images"})
    )
    texts = parsed.get("texts")
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise _malformed("#/texts: expected type: JSONArray of String")
    if not texts:
        raise _malformed("#/texts: expected minimum item count: 1, found: 0")
    if len(texts) > COHERE_MAX_TEXTS:
        raise _malformed(
            f"#/texts: expected maximum item count: {COHERE_MAX_TEXTS}, found: {len(texts)}"
        )
    if "input_type" not in parsed:
        raise _malformed("#: required key [input_type] not found")
    if parsed["input_type"] not in COHERE_INPUT_TYPES:
        raise _malformed(f"#/input_type: {parsed['input_type']} is not a valid enum value")
    if parsed.get("truncate", "NONE") not in COHERE_TRUNCATE:
        raise _malformed(f"#/truncate: {parsed['truncate']} is not a valid enum value")
    vectors = [embedding_vector(t, COHERE_DIMENSIONS) for t in texts]
    out: dict[str, Any] = {"id": str(uuid.uuid4()), "texts": texts}
    kinds = parsed.get("embedding_types")
    if kinds is None:
        out.update(embeddings=vectors, response_type="embeddings_floats")
    else:
        if not isinstance(kinds, list) or any(k not in COHERE_EMBEDDING_TYPES for k in kinds):
            raise _malformed(
                f"#/embedding_types: expected a subset of [{', '.join(COHERE_EMBEDDING_TYPES)}]"
            )
        by_type = {
            k: vectors if k == "float" else [_quantise(v, k) for v in vectors] for k in kinds
        }
        out.update(embeddings=by_type, response_type="embeddings_by_type")
    return out, sum(_words(t) for t in texts)


SCHEMAS: dict[str, Callable[[bytes], InvokeResult]] = {
    "titan-embed-v1": titan_v1,
    "titan-embed-v2": titan_v2,
    "cohere-embed-v3": cohere_v3,
}
