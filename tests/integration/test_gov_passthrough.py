"""The native Bedrock passthrough, driven by botocore's own bedrock-runtime client.

botocore sends a Bedrock API key (``AWS_BEARER_TOKEN_BEDROCK``) only over HTTPS, so the
gateway runs with TLS on and a generated certificate the client trusts through ``verify=``.
botocore's calls block, so each runs in a thread.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from bedrock_gw.server import Gateway
from bedrock_gw.web.state import GOVERNOR, METRICS
from tests.fakes.bedrock import FakeBedrock
from tests.fakes.behaviours import Error, Held, Reply, StreamEvents
from tests.fakes.catalogue import HAIKU, TITAN_EMBED_V2
from tests.fakes.certificates import ServerCertificate, make_server_certificate
from tests.fakes.eventstream import event_frame
from tests.integration.conftest import API_KEY, GatewayFactory

KEY_NAME = "inline-1"
HELLO = [{"role": "user", "content": [{"text": "hello there"}]}]
RuntimeClient = Any


@pytest.fixture
def cert(tmp_path: Path) -> ServerCertificate:
    return make_server_certificate(tmp_path / "tls")


@pytest.fixture
def start_tls_gateway(start_gateway: GatewayFactory, cert: ServerCertificate) -> Callable[..., Any]:
    async def start(**sections: dict[str, Any]) -> Gateway:
        tls = {"certificate": str(cert.certificate), "private_key": str(cert.private_key)}
        gateway: Gateway = await start_gateway(tls=tls, **sections)
        return gateway

    return start


@pytest.fixture
def runtime(
    cert: ServerCertificate, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., RuntimeClient]]:
    """botocore's bedrock-runtime client pointed at a gateway, with a gateway key as its
    Bedrock API key; closed (with its connection pool) at the end of the test."""
    clients: list[RuntimeClient] = []

    def make(gateway: Gateway, key: str = API_KEY) -> RuntimeClient:
        monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", key)
        client = botocore.session.get_session().create_client(
            "bedrock-runtime",
            region_name="us-east-1",
            endpoint_url=f"{gateway.url}/bedrock",
            verify=str(cert.ca),
            config=Config(retries={"total_max_attempts": 1}),
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


async def _refused(call: Callable[..., Any], **kwargs: Any) -> dict[str, Any]:
    """The error response of a botocore call that must fail. Only the parsed response leaves
    here: a kept exception's traceback would hold botocore's connection open past the test."""
    try:
        await asyncio.to_thread(call, **kwargs)
    except ClientError as error:
        response: dict[str, Any] = error.response
        return response
    raise AssertionError("the call succeeded")


async def test_converse(
    start_tls_gateway: Callable[..., Any], runtime: Callable[..., RuntimeClient], fake: FakeBedrock
) -> None:
    """Converse works through the passthrough, re-signed with the gateway's credentials, and its
    usage is counted for the key."""
    gateway = await start_tls_gateway()
    fake.enqueue(Reply(text="Hi!", input_tokens=9, output_tokens=3))
    client = runtime(gateway)
    response = await asyncio.to_thread(client.converse, modelId=HAIKU, messages=HELLO)
    assert response["output"]["message"]["content"] == [{"text": "Hi!"}]
    assert response["usage"] == {"inputTokens": 9, "outputTokens": 3, "totalTokens": 12}
    (call,) = fake.requests_for("Converse")
    assert call.access_key_id == "AKIDFAKE"  # the gateway's own signature...
    assert call.api_key is None  # ...and never the client's key
    assert call.body["messages"] == HELLO
    today, _ = gateway.app[GOVERNOR].used(KEY_NAME)
    assert today.tokens == 12
    requests = gateway.app[METRICS].registry.get_sample_value(
        "bedrock_gw_requests_total",
        {"route": "/bedrock/{tail}", "status": "200", "model": HAIKU, "key": KEY_NAME},
    )
    assert requests == 1


async def test_converse_stream(
    start_tls_gateway: Callable[..., Any], runtime: Callable[..., RuntimeClient], fake: FakeBedrock
) -> None:
    """ConverseStream arrives event by event as Bedrock sent it; the metadata usage counts."""
    gateway = await start_tls_gateway()
    fake.enqueue(Reply(text="one two three", input_tokens=4, output_tokens=3))
    client = runtime(gateway)
    response = await asyncio.to_thread(client.converse_stream, modelId=HAIKU, messages=HELLO)
    events = await asyncio.to_thread(lambda: list(response["stream"]))
    text = "".join(
        e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e
    )
    assert text == "one two three"
    assert events[-1]["metadata"]["usage"] == {
        "inputTokens": 4,
        "outputTokens": 3,
        "totalTokens": 7,
    }
    assert gateway.app[GOVERNOR].used(KEY_NAME)[0].tokens == 7
    first_token = gateway.app[METRICS].registry.get_sample_value(
        "bedrock_gw_time_to_first_token_seconds_count",
        {"route": "/bedrock/{tail}", "model": HAIKU},
    )
    assert first_token == 1


async def test_event_stream_is_relayed_unchanged_as_it_arrives(
    start_tls_gateway: Callable[..., Any], fake: FakeBedrock, cert: ServerCertificate
) -> None:
    """The client gets Bedrock's bytes exactly, and the first events while Bedrock is still
    sending (nothing waits for the whole body)."""
    gateway = await start_tls_gateway()
    events = [
        ("messageStart", {"role": "assistant"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "first"}}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": " second"}}),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        ("messageStop", {"stopReason": "end_turn"}),
        ("metadata", {"usage": {"inputTokens": 2, "outputTokens": 2, "totalTokens": 4}}),
    ]
    frames = [event_frame(kind, payload) for kind, payload in events]
    release = asyncio.Event()
    fake.enqueue(Held(release, StreamEvents(events), after_events=2))
    trusted = aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=str(cert.ca)))
    async with (
        aiohttp.ClientSession(connector=trusted) as http,
        http.post(
            f"{gateway.url}/bedrock/model/{HAIKU.replace(':', '%3A')}/converse-stream",
            data=json.dumps({"messages": HELLO}),
            headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
        ) as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/vnd.amazon.eventstream"
        received = b""
        while len(received) < len(frames[0] + frames[1]):
            received += await response.content.readany()
        assert received == frames[0] + frames[1]
        assert fake.active_streams == 1  # Bedrock has not finished
        release.set()
        received += await response.read()
    assert received == b"".join(frames)
    assert gateway.app[GOVERNOR].used(KEY_NAME)[0].tokens == 4


async def test_invoke_model_usage_from_headers(
    start_tls_gateway: Callable[..., Any], runtime: Callable[..., RuntimeClient], fake: FakeBedrock
) -> None:
    """InvokeModel's body comes back as Bedrock sent it; its token count header is used."""
    gateway = await start_tls_gateway()
    client = runtime(gateway)
    response = await asyncio.to_thread(
        client.invoke_model,
        modelId=TITAN_EMBED_V2,
        body=json.dumps({"inputText": "embed these four words"}),
        contentType="application/json",
        accept="application/json",
    )
    body = json.loads(response["body"].read())
    assert len(body["embedding"]) > 0
    counted = int(response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-bedrock-input-token-count"])
    assert gateway.app[GOVERNOR].used(KEY_NAME)[0].tokens == counted > 0


async def test_limits_apply_as_bedrock_errors(
    start_tls_gateway: Callable[..., Any], runtime: Callable[..., RuntimeClient], fake: FakeBedrock
) -> None:
    """The key's limits hold on the passthrough; botocore raises ThrottlingException for them."""
    gateway = await start_tls_gateway(
        limits={"default": {"requests_per_minute": 1, "models": ["*haiku*"]}}
    )
    client = runtime(gateway)
    await asyncio.to_thread(client.converse, modelId=HAIKU, messages=HELLO)
    error = await _refused(client.converse, modelId=HAIKU, messages=HELLO)
    assert error["Error"]["Code"] == "ThrottlingException"
    assert "requests per minute" in error["Error"]["Message"]
    assert int(error["ResponseMetadata"]["HTTPHeaders"]["retry-after"]) >= 1
    error = await _refused(
        client.invoke_model, modelId=TITAN_EMBED_V2, body=b"{}", contentType="application/json"
    )
    assert error["Error"]["Code"] == "AccessDeniedException"
    assert len(fake.requests_for("Converse")) == 1
    assert not fake.requests_for("InvokeModel")


async def test_a_wrong_key_is_refused(
    start_tls_gateway: Callable[..., Any], runtime: Callable[..., RuntimeClient], fake: FakeBedrock
) -> None:
    """A Bedrock API key that is not a gateway key never reaches Bedrock."""
    gateway = await start_tls_gateway()
    client = runtime(gateway, key="not-a-gateway-key")
    error = await _refused(client.converse, modelId=HAIKU, messages=HELLO)
    assert error["Error"]["Code"] == "UnrecognizedClientException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 401
    assert not fake.requests_for("Converse")


async def test_bedrock_errors_pass_through_unchanged(
    start_tls_gateway: Callable[..., Any], runtime: Callable[..., RuntimeClient], fake: FakeBedrock
) -> None:
    """Bedrock's own error reaches the client as Bedrock sent it, and is counted by code."""
    gateway = await start_tls_gateway()
    fake.enqueue(Error(400, "ValidationException", "The model does not like you."))
    client = runtime(gateway)
    error = await _refused(client.converse, modelId=HAIKU, messages=HELLO)
    assert error["Error"] == {
        "Code": "ValidationException",
        "Message": "The model does not like you.",
    }
    errors = gateway.app[METRICS].registry.get_sample_value(
        "bedrock_gw_upstream_errors_total", {"code": "ValidationException"}
    )
    assert errors == 1


async def test_passthrough_can_be_switched_off(
    start_tls_gateway: Callable[..., Any], runtime: Callable[..., RuntimeClient], fake: FakeBedrock
) -> None:
    """With passthrough.enabled = false, /bedrock/... does not exist."""
    gateway = await start_tls_gateway(passthrough={"enabled": False})
    client = runtime(gateway)
    error = await _refused(client.converse, modelId=HAIKU, messages=HELLO)
    assert error["Error"]["Code"] == "ResourceNotFoundException"
    assert not fake.requests_for("Converse")


async def test_a_stream_that_breaks_off_is_cut_not_completed(
    start_gateway: GatewayFactory, fake: FakeBedrock
) -> None:
    """When Bedrock goes silent mid-stream the client's response is cut, never ended cleanly;
    what streamed before is still counted."""
    gateway = await start_gateway(aws={"stream_idle_timeout": 0.2})
    events = [
        ("messageStart", {"role": "assistant"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "x" * 40}}),
    ]
    release = asyncio.Event()  # never set: Bedrock stays silent after two events
    fake.enqueue(Held(release, StreamEvents(events), after_events=2))
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{gateway.url}/bedrock/model/{HAIKU}/converse-stream",
            data=json.dumps({"messages": HELLO}),
            headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
        ) as response,
    ):
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    assert gateway.app[GOVERNOR].used(KEY_NAME)[0].tokens > 0
    errors = gateway.app[METRICS].registry.get_sample_value(
        "bedrock_gw_upstream_errors_total", {"code": "upstream_timeout"}
    )
    assert errors == 1
