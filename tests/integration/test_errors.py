"""Every failure reaches the client in OpenAI's error shape with the right status."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import openai
import pytest

from bedrock_gw.server import Gateway
from tests.fakes.bedrock import FakeBedrock
from tests.fakes.behaviours import Error, Hang, Slow, StreamEvents, StreamException
from tests.integration.conftest import API_KEY, GatewayFactory

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
USER = [{"role": "user", "content": "hello"}]

BEDROCK_ERRORS = [
    pytest.param(400, "ValidationException", 400, openai.BadRequestError, id="validation"),
    pytest.param(
        403, "AccessDeniedException", 403, openai.PermissionDeniedError, id="access-denied"
    ),
    pytest.param(404, "ResourceNotFoundException", 404, openai.NotFoundError, id="not-found"),
    pytest.param(429, "ThrottlingException", 429, openai.RateLimitError, id="throttling"),
    pytest.param(400, "ServiceQuotaExceededException", 429, openai.RateLimitError, id="quota"),
    pytest.param(
        429, "ModelNotReadyException", 503, openai.InternalServerError, id="model-not-ready"
    ),
    pytest.param(
        503, "ServiceUnavailableException", 503, openai.InternalServerError, id="unavailable"
    ),
    pytest.param(408, "ModelTimeoutException", 504, openai.InternalServerError, id="model-timeout"),
    pytest.param(500, "InternalServerException", 502, openai.InternalServerError, id="internal"),
    pytest.param(424, "ModelErrorException", 502, openai.InternalServerError, id="model-error"),
]


@pytest.mark.parametrize(("upstream_status", "code", "status", "exc_type"), BEDROCK_ERRORS)
@pytest.mark.parametrize(
    "stream", [pytest.param(False, id="plain"), pytest.param(True, id="stream")]
)
async def test_bedrock_errors_mapped(
    client: openai.AsyncOpenAI,
    fake: FakeBedrock,
    upstream_status: int,
    code: str,
    status: int,
    exc_type: type[openai.APIStatusError],
    stream: bool,
) -> None:
    """Each Bedrock error code gets its status (a throttled stream is a 429, not a 200) and
    Bedrock's message."""
    fake.enqueue(Error(upstream_status, code, f"upstream says {code}"))
    with pytest.raises(exc_type) as caught:
        await client.chat.completions.create(model=HAIKU, messages=USER, stream=stream)
    assert caught.value.status_code == status
    body: Any = caught.value.body
    assert f"upstream says {code}" in body["message"]
    assert set(body) >= {"message", "type", "param", "code"}


async def test_error_mid_stream_is_an_event(client: openai.AsyncOpenAI, fake: FakeBedrock) -> None:
    """After the stream began, a Bedrock exception becomes one error event and the stream ends."""
    fake.enqueue(
        StreamException(after_events=3, exception_type="throttlingException", message="slow down")
    )
    stream = await client.chat.completions.create(
        model=HAIKU, messages=[{"role": "user", "content": "a b c d e f"}], stream=True
    )
    received: list[Any] = []
    with pytest.raises(openai.APIError, match="slow down"):
        async for chunk in stream:
            received.append(chunk)
    assert received and received[0].choices[0].delta.role == "assistant"


async def test_error_event_raw_and_no_done(gateway: Gateway, fake: FakeBedrock) -> None:
    """The mid-stream error event has OpenAI's error shape and no [DONE] follows it."""
    fake.enqueue(
        StreamException(
            after_events=2, exception_type="modelStreamErrorException", message="broken"
        )
    )
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{gateway.url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {API_KEY}"},
            json={"model": HAIKU, "messages": USER, "stream": True},
        ) as response,
    ):
        assert response.status == 200
        events = [e for e in (await response.read()).decode().split("\n\n") if e]
    last = json.loads(events[-1].removeprefix("data: "))
    assert set(last["error"]) == {"message", "type", "param", "code"}
    assert "broken" in last["error"]["message"]
    assert "data: [DONE]" not in events


async def test_unknown_model_is_404_without_bedrock_call(
    client: openai.AsyncOpenAI, fake: FakeBedrock
) -> None:
    """An unknown model is refused before any runtime call, never swapped for another model."""
    with pytest.raises(openai.NotFoundError) as caught:
        await client.chat.completions.create(model="gpt-4o", messages=USER)
    assert caught.value.code == "model_not_found"
    assert fake.requests_for("Converse") == [] and fake.requests_for("ConverseStream") == []


async def test_profile_only_base_id_is_404(client: openai.AsyncOpenAI) -> None:
    """A base id Bedrock serves only through a profile is not offered: 404, not a 400 later."""
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(
            model="anthropic.claude-3-7-sonnet-20250219-v1:0", messages=USER
        )


async def test_embedding_model_refused_for_chat(client: openai.AsyncOpenAI) -> None:
    """Chat with an embedding model is a clear 400."""
    with pytest.raises(openai.BadRequestError, match="embedding model"):
        await client.chat.completions.create(model="amazon.titan-embed-text-v2:0", messages=USER)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        pytest.param({}, "Missing API key", id="missing"),
        pytest.param({"Authorization": "Bearer wrong"}, "Incorrect API key", id="wrong"),
        pytest.param({"Authorization": f"Basic {API_KEY}"}, "Missing API key", id="not-bearer"),
    ],
)
async def test_auth_failures(
    gateway: Gateway, fake: FakeBedrock, headers: dict[str, str], message: str
) -> None:
    """Wrong or missing keys get 401 in OpenAI's shape, and nothing reaches Bedrock."""
    async with aiohttp.ClientSession() as http:
        for path in ("/v1/models", "/v1/chat/completions", "/api/v1/embeddings"):
            async with http.post(f"{gateway.url}{path}", headers=headers, json={}) as response:
                body = await response.json()
                assert response.status == 401, path
                assert message in body["error"]["message"]
                assert body["error"]["code"] == "invalid_api_key"
    assert [
        r
        for r in fake.requests
        if r.operation != "ListFoundationModels" and r.operation != "ListInferenceProfiles"
    ] == []


async def test_sdk_auth_error(gateway: Gateway) -> None:
    """The openai SDK sees a wrong key as AuthenticationError."""
    async with openai.AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key="nope", max_retries=0
    ) as sdk:
        with pytest.raises(openai.AuthenticationError):
            await sdk.models.list()


BAD_BODIES = [
    pytest.param(b"{not json", 400, "not valid JSON", None, id="malformed-json"),
    pytest.param(b"[1, 2]", 400, "JSON object", None, id="not-an-object"),
    pytest.param(b"", 400, "empty", None, id="empty-body"),
    pytest.param(
        json.dumps({"messages": USER}).encode(),
        400,
        "Missing required parameter",
        "model",
        id="missing-model",
    ),
    pytest.param(
        json.dumps({"model": HAIKU}).encode(),
        400,
        "Missing required parameter",
        "messages",
        id="missing-messages",
    ),
    pytest.param(
        json.dumps({"model": HAIKU, "messages": []}).encode(),
        400,
        "messages",
        "messages",
        id="no-messages",
    ),
    pytest.param(
        json.dumps({"model": HAIKU, "messages": [{"role": "user", "content": 5}]}).encode(),
        400,
        "messages[0].content",
        "messages[0].content",
        id="wrong-content-type",
    ),
    pytest.param(
        json.dumps({"model": HAIKU, "messages": [{"role": "wizard", "content": "x"}]}).encode(),
        400,
        "messages[0]",
        "messages[0]",
        id="unknown-role",
    ),
    pytest.param(
        json.dumps({"model": HAIKU, "messages": USER, "temperature": "hot"}).encode(),
        400,
        "temperature",
        "temperature",
        id="wrong-type",
    ),
    pytest.param(
        json.dumps({"model": HAIKU, "messages": USER, "frobnicate": 1}).encode(),
        400,
        "Unrecognized request argument supplied: frobnicate",
        "frobnicate",
        id="unknown-parameter",
    ),
    pytest.param(
        json.dumps({"model": HAIKU, "messages": USER, "n": 3}).encode(),
        400,
        "n > 1",
        "n",
        id="n-greater-than-one",
    ),
]


@pytest.mark.parametrize(("raw", "status", "message", "param"), BAD_BODIES)
async def test_bad_input(
    gateway: Gateway, raw: bytes, status: int, message: str, param: str | None
) -> None:
    """Malformed or invalid bodies get a 4xx that says what was wrong (and which parameter)."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{gateway.url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
            data=raw,
        ) as response,
    ):
        body = await response.json()
    assert response.status == status
    assert message in body["error"]["message"]
    assert body["error"]["type"] == "invalid_request_error"
    if param is not None:
        assert body["error"]["param"] == param


async def test_oversize_body_is_413(start_gateway: GatewayFactory) -> None:
    """A body over server.max_body_bytes gets 413 in OpenAI's shape."""
    gateway = await start_gateway(server={"max_body_bytes": 4096})
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{gateway.url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {API_KEY}"},
            json={"model": HAIKU, "messages": [{"role": "user", "content": "x" * 10000}]},
        ) as response,
    ):
        body = await response.json()
    assert response.status == 413
    assert body["error"]["code"] == "request_too_large"


async def test_unknown_route_and_method(gateway: Gateway) -> None:
    """Unknown routes and wrong methods answer in OpenAI's error shape too."""
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with http.get(f"{gateway.url}/v1/nothing", headers=headers) as response:
            assert response.status == 404
            assert "error" in await response.json()
        async with http.get(f"{gateway.url}/v1/chat/completions", headers=headers) as response:
            assert response.status == 405
            assert "error" in await response.json()


async def test_first_byte_timeout_is_504(start_gateway: GatewayFactory, fake: FakeBedrock) -> None:
    """Bedrock answering later than aws.first_byte_timeout gives 504."""
    gateway = await start_gateway(aws={"first_byte_timeout": 0.3})
    fake.enqueue(Slow(3.0))
    async with openai.AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0
    ) as sdk:
        with pytest.raises(openai.InternalServerError) as caught:
            await sdk.chat.completions.create(model=HAIKU, messages=USER)
    assert caught.value.status_code == 504


async def test_stream_idle_timeout_ends_stream_with_error(
    start_gateway: GatewayFactory, fake: FakeBedrock
) -> None:
    """A stream silent for longer than aws.stream_idle_timeout ends with an error event."""
    gateway = await start_gateway(aws={"stream_idle_timeout": 0.3})
    fake.enqueue(
        StreamEvents(
            events=[
                ("messageStart", {"role": "assistant"}),
                ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "late"}}),
            ],
            delay=2.0,
        )
    )
    async with openai.AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0
    ) as sdk:
        stream = await sdk.chat.completions.create(model=HAIKU, messages=USER, stream=True)
        with pytest.raises(openai.APIError, match="silent"):
            async for _ in stream:
                pass


async def test_hung_stream_before_first_event_is_504(
    start_gateway: GatewayFactory, fake: FakeBedrock
) -> None:
    """A stream request that never answers is a 504, not a hang."""
    gateway = await start_gateway(aws={"first_byte_timeout": 0.3})
    fake.enqueue(Hang())
    async with openai.AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0
    ) as sdk:
        with pytest.raises(openai.InternalServerError) as caught:
            await sdk.chat.completions.create(model=HAIKU, messages=USER, stream=True)
    assert caught.value.status_code == 504


async def test_bedrock_unreachable_is_502(start_gateway: GatewayFactory, fake: FakeBedrock) -> None:
    """With Bedrock gone after the model list was loaded, chat answers 502 quickly."""
    gateway = await start_gateway()
    async with openai.AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0
    ) as sdk:
        await sdk.models.list()
        await fake.close()
        with pytest.raises(openai.InternalServerError) as caught:
            await sdk.chat.completions.create(model=HAIKU, messages=USER)
    assert caught.value.status_code == 502
