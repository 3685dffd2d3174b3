"""/v1/embeddings through the openai SDK: Titan v1/v2 fan-out, Cohere batching, encodings."""

from __future__ import annotations

import base64
import struct

import openai
import pytest

from tests.fakes.bedrock import FakeBedrock
from tests.fakes.embeddings import embedding_vector
from tests.integration.conftest import API_KEY, GatewayFactory

TITAN_V2 = "amazon.titan-embed-text-v2:0"
TITAN_V1 = "amazon.titan-embed-text-v1"
COHERE = "cohere.embed-english-v3"


def _close(a: list[float], b: list[float]) -> bool:
    # float32 on the base64 path; the fake's vectors are doubles.
    return len(a) == len(b) and all(abs(x - y) < 1e-6 for x, y in zip(a, b, strict=True))


async def test_titan_v2_single(client: openai.AsyncOpenAI, fake: FakeBedrock) -> None:
    """One string gives one vector, equal to Bedrock's, with usage from Bedrock's count."""
    result = await client.embeddings.create(
        model=TITAN_V2, input="hello world", encoding_format="float"
    )
    assert result.model == TITAN_V2
    assert len(result.data) == 1
    assert _close(result.data[0].embedding, embedding_vector("hello world", 1024))
    assert result.usage.prompt_tokens > 0
    (call,) = fake.requests_for("InvokeModel")
    assert call.body == {"inputText": "hello world", "normalize": True}


async def test_base64_matches_float(client: openai.AsyncOpenAI) -> None:
    """The base64 encoding carries the same vector as float32 little-endian bytes."""
    floats = await client.embeddings.create(
        model=TITAN_V2, input="same text", encoding_format="float"
    )
    encoded = await client.embeddings.with_raw_response.create(
        model=TITAN_V2, input="same text", encoding_format="base64"
    )
    raw_body = encoded.http_response.json()
    data = base64.b64decode(raw_body["data"][0]["embedding"])
    decoded = list(struct.unpack(f"<{len(data) // 4}f", data))
    assert _close(decoded, floats.data[0].embedding)


async def test_sdk_default_encoding(client: openai.AsyncOpenAI) -> None:
    """The SDK's default (it asks for base64 and decodes) yields the right vector."""
    result = await client.embeddings.create(model=TITAN_V2, input="default path")
    assert _close(result.data[0].embedding, embedding_vector("default path", 1024))


async def test_dimensions(client: openai.AsyncOpenAI) -> None:
    """dimensions reaches Titan v2 and the vector has that size."""
    result = await client.embeddings.create(
        model=TITAN_V2, input="x", dimensions=256, encoding_format="float"
    )
    assert len(result.data[0].embedding) == 256


async def test_dimensions_unsupported(client: openai.AsyncOpenAI, fake: FakeBedrock) -> None:
    """dimensions on a fixed-size model is a 400 before any Bedrock call."""
    with pytest.raises(openai.BadRequestError, match="dimensions"):
        await client.embeddings.create(model=TITAN_V1, input="x", dimensions=256)
    assert fake.requests_for("InvokeModel") == []


async def test_titan_list_fans_out_bounded(
    start_gateway: GatewayFactory, fake: FakeBedrock
) -> None:
    """A list for Titan becomes one call per text, at most embeddings.max_concurrency at once,
    with the vectors back in input order."""
    fake.invoke_delay = 0.05
    gateway = await start_gateway(embeddings={"max_concurrency": 3})
    texts = [f"text number {i}" for i in range(12)]
    async with openai.AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0
    ) as sdk:
        result = await sdk.embeddings.create(model=TITAN_V1, input=texts, encoding_format="float")
    assert [d.index for d in result.data] == list(range(12))
    for text, item in zip(texts, result.data, strict=True):
        assert _close(item.embedding, embedding_vector(text, 1536, normalize=False))
    assert len(fake.requests_for("InvokeModel")) == 12
    assert 1 < fake.max_concurrent_invokes <= 3


async def test_cohere_batches(client: openai.AsyncOpenAI, fake: FakeBedrock) -> None:
    """Cohere takes up to 96 texts per call: 100 inputs make two calls, vectors in order."""
    texts = [f"doc {i}" for i in range(100)]
    result = await client.embeddings.create(model=COHERE, input=texts, encoding_format="float")
    calls = fake.requests_for("InvokeModel")
    assert [len(c.body["texts"]) for c in calls] == [96, 4]
    assert all(c.body["input_type"] == "search_document" for c in calls)
    assert len(result.data) == 100
    assert result.data[99].index == 99
    assert result.usage.prompt_tokens > 0


async def test_chat_model_refused(client: openai.AsyncOpenAI) -> None:
    """Embeddings with a chat model is a clear 400."""
    with pytest.raises(openai.BadRequestError, match="not an embedding model"):
        await client.embeddings.create(model="anthropic.claude-3-haiku-20240307-v1:0", input="x")


async def test_token_arrays_refused(client: openai.AsyncOpenAI) -> None:
    """Token-id input is refused with a message saying to send text."""
    with pytest.raises(openai.BadRequestError, match="token arrays"):
        await client.embeddings.create(model=TITAN_V2, input=[[1, 2, 3]])
