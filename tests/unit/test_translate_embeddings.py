"""OpenAI embeddings <-> Bedrock InvokeModel bodies per family, table-driven."""

from __future__ import annotations

import base64
import struct
from typing import Any

import pytest

from bedrock_gw.errors import InvalidRequest, UpstreamError
from bedrock_gw.openai.embeddings import EmbeddingRequest
from bedrock_gw.translate.embeddings import EmbeddingFamily, collect, family_of, plan, to_openai


def _req(**fields: Any) -> EmbeddingRequest:
    return EmbeddingRequest.model_validate({"model": "m", **fields})


@pytest.mark.parametrize(
    ("model_id", "family"),
    [
        pytest.param("amazon.titan-embed-text-v1", EmbeddingFamily.TITAN_V1, id="titan-v1"),
        pytest.param("amazon.titan-embed-text-v2:0", EmbeddingFamily.TITAN_V2, id="titan-v2"),
        pytest.param("cohere.embed-english-v3", EmbeddingFamily.COHERE_V3, id="cohere-en"),
        pytest.param("cohere.embed-multilingual-v3", EmbeddingFamily.COHERE_V3, id="cohere-multi"),
        pytest.param("amazon.titan-embed-image-v1", None, id="image-model-unsupported"),
    ],
)
def test_family_of(model_id: str, family: EmbeddingFamily | None) -> None:
    """Embedding families are chosen from the base model id by a prefix table."""
    assert family_of(model_id) is family


PLANS = [
    pytest.param(
        EmbeddingFamily.TITAN_V1, {"input": "a"}, ({"inputText": "a"},), id="titan-v1-one"
    ),
    pytest.param(
        EmbeddingFamily.TITAN_V2,
        {"input": ["a", "b"], "dimensions": 256},
        (
            {"inputText": "a", "normalize": True, "dimensions": 256},
            {"inputText": "b", "normalize": True, "dimensions": 256},
        ),
        id="titan-v2-fans-out",
    ),
    pytest.param(
        EmbeddingFamily.COHERE_V3,
        {"input": ["a", "b"]},
        ({"texts": ["a", "b"], "input_type": "search_document"},),
        id="cohere-one-batch",
    ),
    pytest.param(
        EmbeddingFamily.COHERE_V3,
        {"input": [f"t{i}" for i in range(100)], "input_type": "search_query"},
        (
            {"texts": [f"t{i}" for i in range(96)], "input_type": "search_query"},
            {"texts": [f"t{i}" for i in range(96, 100)], "input_type": "search_query"},
        ),
        id="cohere-batches-of-96",
    ),
]


@pytest.mark.parametrize(("family", "fields", "bodies"), PLANS)
def test_plan(
    family: EmbeddingFamily, fields: dict[str, Any], bodies: tuple[dict[str, Any], ...]
) -> None:
    """Each request plans exactly these InvokeModel bodies."""
    assert plan(_req(**fields), family).bodies == bodies


@pytest.mark.parametrize(
    ("family", "fields", "param"),
    [
        pytest.param(
            EmbeddingFamily.TITAN_V1,
            {"input": "a", "dimensions": 256},
            "dimensions",
            id="v1-fixed-size",
        ),
        pytest.param(
            EmbeddingFamily.TITAN_V2,
            {"input": "a", "dimensions": 300},
            "dimensions",
            id="v2-bad-size",
        ),
        pytest.param(EmbeddingFamily.TITAN_V2, {"input": []}, "input", id="empty-list"),
        pytest.param(EmbeddingFamily.TITAN_V2, {"input": ["a", ""]}, "input", id="empty-string"),
        pytest.param(EmbeddingFamily.TITAN_V2, {"input": [1, 2, 3]}, "input", id="token-array"),
        pytest.param(
            EmbeddingFamily.TITAN_V2,
            {"input": "a", "input_type": "search_query"},
            "input_type",
            id="input-type-not-cohere",
        ),
    ],
)
def test_plan_rejections(family: EmbeddingFamily, fields: dict[str, Any], param: str) -> None:
    """Inputs a family cannot take fail with a 400 naming the parameter."""
    with pytest.raises(InvalidRequest) as caught:
        plan(_req(**fields), family)
    assert caught.value.param == param


def test_collect_titan_counts_tokens_from_body() -> None:
    """Titan vectors come back in order with the token counts summed."""
    p = plan(_req(input=["a", "b"]), EmbeddingFamily.TITAN_V2)
    vectors, tokens = collect(
        p,
        [
            ({"embedding": [1, 2], "inputTextTokenCount": 3}, None),
            ({"embedding": [3.5, 4], "inputTextTokenCount": 4}, None),
        ],
    )
    assert (vectors, tokens) == ([[1.0, 2.0], [3.5, 4.0]], 7)


def test_collect_cohere_uses_header_tokens() -> None:
    """Cohere vectors of each batch are concatenated; tokens come from Bedrock's header."""
    p = plan(_req(input=["a", "b", "c"]), EmbeddingFamily.COHERE_V3)
    vectors, tokens = collect(
        p, [({"embeddings": [[1], [2], [3]], "response_type": "embeddings_floats"}, 9)]
    )
    assert (vectors, tokens) == ([[1.0], [2.0], [3.0]], 9)


def test_collect_count_mismatch_is_upstream_error() -> None:
    """Fewer vectors than inputs is Bedrock's fault (502)."""
    p = plan(_req(input=["a", "b"]), EmbeddingFamily.COHERE_V3)
    with pytest.raises(UpstreamError):
        collect(p, [({"embeddings": [[1]]}, 1)])


def test_to_openai_float_and_base64() -> None:
    """Base64 output is little-endian float32, decodable to the same numbers."""
    floats = to_openai([[0.5, -1.25]], model="m", encoding_format="float", prompt_tokens=2)
    encoded = to_openai([[0.5, -1.25]], model="m", encoding_format="base64", prompt_tokens=2)
    assert floats["data"][0]["embedding"] == [0.5, -1.25]
    raw = base64.b64decode(encoded["data"][0]["embedding"])
    assert struct.unpack("<2f", raw) == (0.5, -1.25)
    assert floats["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
    assert (floats["object"], floats["data"][0]["object"], floats["data"][0]["index"]) == (
        "list",
        "embedding",
        0,
    )
