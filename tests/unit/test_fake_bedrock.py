"""Tests of the fake Bedrock itself, with botocore as the reference client."""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime as dt
import json
import os
import signal
import struct
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import botocore.session
import pytest
import yarl
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer
from botocore.exceptions import ClientError, EventStreamError

from tests.fakes import converse_validation as cv
from tests.fakes.bedrock import FakeBedrock
from tests.fakes.behaviours import (
    Error,
    Hang,
    Reply,
    Slow,
    StreamEvents,
    StreamException,
    ToolUse,
)
from tests.fakes.catalogue import (
    APP_PROFILE_ARN,
    COHERE_EMBED_EN,
    HAIKU,
    LLAMA3_8B,
    SONNET_37,
    TITAN_EMBED_V1,
    TITAN_EMBED_V2,
)
from tests.fakes.embeddings import embedding_vector
from tests.fakes.errors import ERROR_STYLES, AwsError
from tests.fakes.eventstream import HeaderValue, encode_message, event_frame, exception_frame
from tests.fakes.sigv4 import SigV4Verifier, canonical_uri
from tests.fakes.streaming import plan_writes

REPO_ROOT = Path(__file__).resolve().parents[2]
AKID, SECRET = "AKIDFAKE", "fake-secret"
REGION = "us-east-1"
# One session: loading botocore's service models is the slow part of making a client.
SESSION = botocore.session.get_session()
NO_RETRY = Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=10)
HELLO = {"messages": [{"role": "user", "content": [{"text": "hello there world"}]}]}
PNG_1PX = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()


# --------------------------------------------------------------------------- helpers


def make_client(fake: FakeBedrock, service: str = "bedrock-runtime", **creds: str) -> Any:
    return SESSION.create_client(
        service,
        region_name=REGION,
        endpoint_url=fake.url,
        aws_access_key_id=creds.get("akid", AKID),
        aws_secret_access_key=creds.get("secret", SECRET),
        aws_session_token=creds.get("token"),
        config=NO_RETRY,
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeBedrock]:
    async with FakeBedrock() as server:
        yield server


@pytest.fixture
async def runtime(fake: FakeBedrock) -> AsyncIterator[Any]:
    client = make_client(fake)
    yield client
    client.close()


@pytest.fixture
async def control(fake: FakeBedrock) -> AsyncIterator[Any]:
    client = make_client(fake, "bedrock")
    yield client
    client.close()


def model_path(model_id: str, operation: str) -> str:
    # Percent-encode the label the way botocore does (':' and '/' included).
    return f"/model/{quote(model_id, safe='')}/{operation}"


def sign(
    method: str,
    url: str,
    body: bytes = b"",
    *,
    service: str = "bedrock",
    credentials: Credentials | None = None,
    region: str = REGION,
) -> dict[str, str]:
    headers = {"Content-Type": "application/json"} if body else {}
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(credentials or Credentials(AKID, SECRET), service, region).add_auth(request)
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}


async def raw_call(
    fake: FakeBedrock,
    method: str,
    path: str,
    body: Any = None,
    *,
    service: str = "bedrock",
    time_limit: float = 10.0,
) -> tuple[int, dict[str, str], bytes]:
    """Send a request signed by botocore's SigV4Auth, exactly as signed, via aiohttp."""
    raw = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    url = fake.url + path
    headers = sign(method, url, raw, service=service)
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=time_limit)) as session,
        session.request(method, yarl.URL(url, encoded=True), data=raw, headers=headers) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.read()


async def converse_raw(fake: FakeBedrock, body: Any, model_id: str = HAIKU) -> dict[str, Any]:
    status, headers, data = await raw_call(fake, "POST", model_path(model_id, "converse"), body)
    return {"status": status, "headers": headers, "json": json.loads(data)}


def decode_frames(data: bytes) -> list[Any]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return list(buffer)


def split_on_frames(data: bytes) -> list[bytes]:
    frames = []
    while data:
        (total,) = struct.unpack(">I", data[:4])
        frames.append(data[:total])
        data = data[total:]
    return frames


async def wait_until(predicate: Callable[[], bool], seconds: float = 2.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"condition not met within {seconds} s")


def stream_all(client: Any, **kwargs: Any) -> list[dict[str, Any]]:
    response = client.converse_stream(**kwargs)
    stream = response["stream"]
    try:
        return list(stream)
    finally:
        stream.close()


# --------------------------------------------------------------------------- event stream


def test_encoded_headers_of_every_type_decode_in_botocore() -> None:
    """Every header type the encoder writes is read back identically by botocore."""
    when = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    headers: dict[str, HeaderValue] = {
        "s": "text",
        "t": True,
        "f": False,
        "i": -7,
        "l": 2**40,
        "b": b"\x00\x01",
        "ts": when,
        "u": ident,
    }
    (message,) = decode_frames(encode_message(headers, b"payload"))
    decoded = message.headers
    assert message.payload == b"payload"
    assert decoded["s"] == "text" and decoded["t"] is True and decoded["f"] is False
    assert decoded["i"] == -7 and decoded["l"] == 2**40 and decoded["b"] == b"\x00\x01"
    assert decoded["ts"] == int(when.timestamp() * 1000)
    assert decoded["u"] == ident.bytes


@pytest.mark.parametrize("offset", [9, -2], ids=["prelude-crc", "message-crc"])
def test_corrupted_frame_fails_botocore_checksum(offset: int) -> None:
    """A flipped byte makes botocore's CRC check fail, so the CRCs are really checked."""
    frame = bytearray(event_frame("messageStart", {"role": "assistant"}))
    frame[offset] ^= 0xFF
    with pytest.raises(ChecksumMismatch):
        decode_frames(bytes(frame))


def test_event_and_exception_frames_carry_bedrock_headers() -> None:
    """Event frames are padded JSON with event headers; exception frames name the exception."""
    (event,) = decode_frames(event_frame("contentBlockDelta", {"contentBlockIndex": 0}))
    assert event.headers == {
        ":event-type": "contentBlockDelta",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    assert set(json.loads(event.payload)) == {"contentBlockIndex", "p"}
    (exc,) = decode_frames(exception_frame("throttlingException", "slow down"))
    assert exc.headers[":message-type"] == "exception"
    assert exc.headers[":exception-type"] == "throttlingException"
    assert json.loads(exc.payload) == {"message": "slow down"}


def test_write_plan_coalesces_and_splits_frames() -> None:
    """The write plan keeps every byte in order and both joins and splits frames."""
    frames = [bytes([n]) * (20 + n) for n in range(9)]
    writes = plan_writes(frames)
    assert b"".join(w.data for w in writes) == b"".join(frames)
    assert any(w.data == frames[1] + frames[2] for w in writes)
    assert any(w.continues_frame for w in writes)


# --------------------------------------------------------------------------- sigv4 (direct)


def _signed_parts(
    method: str, path: str, body: bytes = b"", **kwargs: Any
) -> tuple[str, str, list[tuple[str, str]], bytes]:
    url = "http://127.0.0.1:8080" + path
    headers = sign(method, url, body, **kwargs)
    headers["Host"] = "127.0.0.1:8080"
    return method, path, list(headers.items()), body


VERIFIER = SigV4Verifier(
    {AKID: (SECRET, None), "AKIDTOKEN": ("other-secret", "session-token")}, REGION
)


@pytest.mark.parametrize(
    "path",
    [
        model_path(HAIKU, "converse"),
        model_path(APP_PROFILE_ARN, "converse-stream"),
        "/inference-profiles?type=SYSTEM_DEFINED&maxResults=2&nextToken=a%2Fb%2Bc%3D",
    ],
    ids=["model-id-with-colon", "arn-with-slash", "query-string"],
)
def test_verifier_accepts_botocore_signatures(path: str) -> None:
    """Requests signed by botocore's SigV4Auth verify, including encoded ':' and '/'."""
    body = b'{"messages": []}' if path.startswith("/model") else b""
    method = "POST" if body else "GET"
    assert VERIFIER.verify(*_signed_parts(method, path, body)) == AKID


def test_verifier_accepts_session_token_credentials() -> None:
    """A credential with a session token verifies when botocore sends that token."""
    creds = Credentials("AKIDTOKEN", "other-secret", "session-token")
    parts = _signed_parts("GET", "/foundation-models", credentials=creds)
    assert VERIFIER.verify(*parts) == "AKIDTOKEN"


def test_canonical_uri_encodes_the_received_path_again() -> None:
    """AWS re-encodes the path as received, so '%3A' becomes '%253A' in the canonical URI."""
    assert canonical_uri("/model/a%3Ab/converse") == "/model/a%253Ab/converse"


def _expired_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(minutes=6)


@pytest.mark.parametrize(
    ("mutate", "code", "text"),
    [
        (lambda p: p, None, None),
        (
            lambda p: (*p[:3], p[3] + b" "),
            "InvalidSignatureException",
            "does not match",
        ),
        (
            lambda p: (p[0], p[1] + "x", *p[2:]),
            "InvalidSignatureException",
            "does not match",
        ),
        (
            lambda p: (*p[:2], [h for h in p[2] if h[0] != "X-Amz-Date"], p[3]),
            "IncompleteSignatureException",
            "X-Amz-Date",
        ),
        (
            lambda p: (*p[:2], [h for h in p[2] if h[0] != "Authorization"], p[3]),
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ),
    ],
    ids=["untouched", "body-changed", "path-changed", "no-amz-date", "no-authorization"],
)
def test_verifier_rejects_tampering(
    mutate: Callable[[Any], Any], code: str | None, text: str | None
) -> None:
    """Any change after signing, or a missing date or signature, is rejected."""
    parts = mutate(_signed_parts("POST", model_path(HAIKU, "converse"), b'{"a": 1}'))
    if code is None:
        assert VERIFIER.verify(*parts) == AKID
        return
    assert text is not None
    with pytest.raises(AwsError) as info:
        VERIFIER.verify(*parts)
    assert info.value.code == code and text in info.value.message


@pytest.mark.parametrize(
    ("kwargs", "code", "text"),
    [
        ({"credentials": Credentials(AKID, "wrong")}, "InvalidSignatureException", "does not"),
        ({"credentials": Credentials("AKIDNOPE", SECRET)}, "UnrecognizedClientException", ""),
        ({"service": "bedrock-runtime"}, "InvalidSignatureException", "correct service"),
        ({"region": "us-west-2"}, "InvalidSignatureException", "valid region"),
        (
            {"credentials": Credentials("AKIDTOKEN", "other-secret")},
            "UnrecognizedClientException",
            "security token",
        ),
        (
            {"credentials": Credentials(AKID, SECRET, "unexpected-token")},
            "UnrecognizedClientException",
            "security token",
        ),
    ],
    ids=[
        "wrong-secret",
        "unknown-key",
        "bedrock-runtime-scope",
        "wrong-region",
        "missing-session-token",
        "unexpected-session-token",
    ],
)
def test_verifier_rejects_bad_credentials(kwargs: dict[str, Any], code: str, text: str) -> None:
    """Bad keys, secrets, scopes and session tokens are refused like AWS does."""
    parts = _signed_parts("GET", "/foundation-models", **kwargs)
    with pytest.raises(AwsError) as info:
        VERIFIER.verify(*parts)
    assert info.value.code == code and text in info.value.message
    assert info.value.status == 403


def test_verifier_rejects_clock_skew_over_five_minutes() -> None:
    """A signature more than five minutes away from the server clock has expired."""
    skewed = SigV4Verifier({AKID: (SECRET, None)}, REGION, clock=_expired_clock)
    with pytest.raises(AwsError, match="Signature expired"):
        skewed.verify(*_signed_parts("GET", "/foundation-models"))


# --------------------------------------------------------------------------- model sync


def test_validation_member_sets_exist_in_botocore_model() -> None:
    """Every member the validator accepts exists in botocore's bedrock-runtime model."""
    model = SESSION.get_service_model("bedrock-runtime")

    def members(shape: str) -> set[str]:
        return set(model.shape_for(shape).members)

    assert members("ConverseRequest") - {"modelId"} >= cv.TOP_LEVEL_MEMBERS
    assert members("ContentBlock") >= cv.CONTENT_BLOCK_MEMBERS
    assert members("SystemContentBlock") >= cv.SYSTEM_BLOCK_MEMBERS
    assert members("InferenceConfiguration") >= cv.INFERENCE_CONFIG_MEMBERS
    assert members("ToolUseBlock") >= cv.TOOL_USE_MEMBERS
    assert members("ToolResultBlock") >= cv.TOOL_RESULT_MEMBERS
    assert members("ToolResultContentBlock") >= cv.TOOL_RESULT_CONTENT_MEMBERS
    assert members("Tool") >= cv.TOOL_MEMBERS
    assert members("ToolSpecification") >= cv.TOOL_SPEC_MEMBERS
    assert set(model.shape_for("ImageFormat").enum) == cv.IMAGE_FORMATS


def test_error_statuses_match_botocore_models() -> None:
    """Each modelled error code uses the HTTP status botocore's models give it."""
    checked = 0
    for service in ("bedrock-runtime", "bedrock"):
        model = SESSION.get_service_model(service)
        for code, style in ERROR_STYLES.items():
            if code in model.shape_names:
                assert model.shape_for(code).metadata["error"]["httpStatusCode"] == style.status
                checked += 1
    assert checked >= 12


# --------------------------------------------------------------------------- converse


async def test_converse_echoes_and_records_the_signer(fake: FakeBedrock, runtime: Any) -> None:
    """Plain Converse echoes the last user text with word-count usage and records the call."""
    result = await asyncio.to_thread(runtime.converse, modelId=HAIKU, **HELLO)
    assert result["output"]["message"] == {
        "role": "assistant",
        "content": [{"text": "echo: hello there world"}],
    }
    assert result["stopReason"] == "end_turn"
    assert result["usage"] == {"inputTokens": 3, "outputTokens": 4, "totalTokens": 7}
    assert "latencyMs" in result["metrics"]
    (record,) = fake.requests
    assert (record.operation, record.model_id, record.access_key_id) == ("Converse", HAIKU, AKID)
    assert record.body == HELLO and record.status == 200


@pytest.mark.parametrize(
    "model_id",
    [
        f"us.{HAIKU}",
        f"eu.{SONNET_37}",
        APP_PROFILE_ARN,
        f"arn:aws:bedrock:{REGION}::foundation-model/{HAIKU}",
    ],
    ids=["system-profile", "eu-profile", "application-profile-arn", "foundation-model-arn"],
)
async def test_converse_accepts_profiles_and_arns(
    fake: FakeBedrock, runtime: Any, model_id: str
) -> None:
    """Profile ids and ARNs arrive percent-encoded and are decoded and resolved."""
    result = await asyncio.to_thread(runtime.converse, modelId=model_id, **HELLO)
    assert result["output"]["message"]["content"][0]["text"] == "echo: hello there world"
    assert fake.requests[-1].model_id == model_id


@pytest.mark.parametrize(
    ("model_id", "text"),
    [
        ("anthropic.claude-nope-v1:0", "The provided model identifier is invalid."),
        (SONNET_37, "with on-demand throughput isn't supported"),
        (TITAN_EMBED_V2, "supported text or chat model"),
    ],
    ids=["unknown-model", "on-demand-not-supported", "embedding-model"],
)
async def test_converse_rejects_unusable_models(runtime: Any, model_id: str, text: str) -> None:
    """Unknown ids, profile-only models and embedding models give a 400 ValidationException."""
    with pytest.raises(ClientError) as info:
        await asyncio.to_thread(runtime.converse, modelId=model_id, **HELLO)
    error = info.value.response
    assert error["Error"]["Code"] == "ValidationException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert text in error["Error"]["Message"]


async def test_converse_scripted_reply_with_reasoning_and_tools(
    fake: FakeBedrock, runtime: Any
) -> None:
    """A queued Reply returns reasoning, text and tool use blocks with a tool_use stop."""
    fake.enqueue(
        Reply(
            text="checking",
            reasoning="need weather",
            tool_uses=[ToolUse("get_weather", {"city": "Paris"}, "tooluse_1")],
            input_tokens=11,
            output_tokens=5,
        )
    )
    result = await asyncio.to_thread(runtime.converse, modelId=HAIKU, **HELLO)
    content = result["output"]["message"]["content"]
    assert content[0]["reasoningContent"]["reasoningText"]["text"] == "need weather"
    assert content[1] == {"text": "checking"}
    assert content[2]["toolUse"] == {
        "toolUseId": "tooluse_1",
        "name": "get_weather",
        "input": {"city": "Paris"},
    }
    assert result["stopReason"] == "tool_use"
    assert result["usage"] == {"inputTokens": 11, "outputTokens": 5, "totalTokens": 16}


# --------------------------------------------------------------------------- converse stream


async def test_converse_stream_parses_in_botocore(fake: FakeBedrock, runtime: Any) -> None:
    """botocore decodes every echo event (framing and CRCs) in Bedrock's order."""
    body = {"messages": [{"role": "user", "content": [{"text": "one two three four five"}]}]}
    events = await asyncio.to_thread(stream_all, runtime, modelId=HAIKU, **body)
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart" and kinds[-3:] == [
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    text = "".join(
        e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e
    )
    assert text == "echo: one two three four five"
    assert kinds.count("contentBlockDelta") == 6
    assert events[-2]["messageStop"]["stopReason"] == "end_turn"
    assert events[-1]["metadata"]["usage"] == {
        "inputTokens": 5,
        "outputTokens": 6,
        "totalTokens": 11,
    }
    assert fake.completed_streams == 1 and fake.active_streams == 0


async def test_converse_stream_scripted_tool_use(fake: FakeBedrock, runtime: Any) -> None:
    """A Reply with tool uses streams contentBlockStart and partial JSON input deltas."""
    fake.enqueue(Reply(tool_uses=[ToolUse("lookup", {"q": "x"}, "tooluse_9")]))
    events = await asyncio.to_thread(stream_all, runtime, modelId=HAIKU, **HELLO)
    start = next(e["contentBlockStart"] for e in events if "contentBlockStart" in e)
    assert start["start"]["toolUse"] == {"toolUseId": "tooluse_9", "name": "lookup"}
    parts = [
        e["contentBlockDelta"]["delta"]["toolUse"]["input"]
        for e in events
        if "contentBlockDelta" in e and "toolUse" in e["contentBlockDelta"]["delta"]
    ]
    assert len(parts) == 2 and json.loads("".join(parts)) == {"q": "x"}
    assert events[-2]["messageStop"]["stopReason"] == "tool_use"


async def test_converse_stream_raw_scripted_events(fake: FakeBedrock, runtime: Any) -> None:
    """StreamEvents are sent as given and parse in botocore."""
    fake.enqueue(
        StreamEvents(
            [
                ("messageStart", {"role": "assistant"}),
                ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "raw"}}),
                ("messageStop", {"stopReason": "max_tokens"}),
            ]
        )
    )
    events = await asyncio.to_thread(stream_all, runtime, modelId=HAIKU, **HELLO)
    assert events == [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "raw"}}},
        {"messageStop": {"stopReason": "max_tokens"}},
    ]


async def test_converse_stream_exception_frame_mid_stream(fake: FakeBedrock, runtime: Any) -> None:
    """StreamException cuts the stream with an exception frame botocore raises."""
    fake.enqueue(StreamException(after_events=2, message="Too many tokens, slow down"))
    seen: list[dict[str, Any]] = []

    def consume() -> None:
        response = runtime.converse_stream(modelId=HAIKU, **HELLO)
        stream = response["stream"]
        try:
            for event in stream:
                seen.append(event)
        finally:
            stream.close()

    with pytest.raises(EventStreamError) as info:
        await asyncio.to_thread(consume)
    assert info.value.response["Error"]["Code"] == "throttlingException"
    assert info.value.response["Error"]["Message"] == "Too many tokens, slow down"
    assert len(seen) == 2


async def test_stream_frames_are_split_and_coalesced_on_the_wire(fake: FakeBedrock) -> None:
    """Raw HTTP chunks hold several frames at once and also end in the middle of a frame."""
    body = {"messages": [{"role": "user", "content": [{"text": " ".join(["w"] * 12)}]}]}
    url = fake.url + model_path(HAIKU, "converse-stream")
    raw = json.dumps(body).encode()
    chunks: list[bytes] = []
    async with (
        aiohttp.ClientSession() as session,
        session.post(yarl.URL(url, encoded=True), data=raw, headers=sign("POST", url, raw)) as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/vnd.amazon.eventstream"
        assert "Content-Length" not in resp.headers
        assert resp.headers["Transfer-Encoding"] == "chunked"
        current = b""
        async for data, end_of_chunk in resp.content.iter_chunks():
            current += data
            if end_of_chunk:
                chunks.append(current)
                current = b""
    data = b"".join(chunks)
    frame_ends = set()
    position = 0
    for frame in split_on_frames(data):
        position += len(frame)
        frame_ends.add(position)
    boundaries = []
    position = 0
    for chunk in chunks:
        start, position = position, position + len(chunk)
        boundaries.append((start, position))
    whole_frames_per_chunk = [
        sum(1 for end in frame_ends if start < end <= stop) for start, stop in boundaries
    ]
    assert max(whole_frames_per_chunk) >= 2, "no HTTP chunk carried two frames"
    assert any(stop not in frame_ends for _, stop in boundaries), "no frame was split"
    assert len(decode_frames(data)) == len(frame_ends)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "ValidationException"),
        (403, "AccessDeniedException"),
        (404, "ResourceNotFoundException"),
        (429, "ThrottlingException"),
        (400, "ServiceQuotaExceededException"),
        (429, "ModelNotReadyException"),
        (408, "ModelTimeoutException"),
        (503, "ServiceUnavailableException"),
        (500, "InternalServerException"),
        (424, "ModelErrorException"),
    ],
    ids=str,
)
async def test_scripted_errors_parse_in_botocore(
    fake: FakeBedrock, runtime: Any, status: int, code: str
) -> None:
    """A queued Error reaches botocore as a ClientError with its code, status and message."""
    fake.enqueue(Error(status, code, f"scripted {code}"))
    with pytest.raises(ClientError) as info:
        await asyncio.to_thread(runtime.converse, modelId=HAIKU, **HELLO)
    response = info.value.response
    assert response["Error"]["Code"] == code
    assert response["Error"]["Message"] == f"scripted {code}"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert response["ResponseMetadata"]["RequestId"]


async def test_error_before_stream_is_plain_http_error(fake: FakeBedrock, runtime: Any) -> None:
    """An Error queued for ConverseStream is an HTTP error, not a stream."""
    fake.enqueue(Error(429, "ThrottlingException", "Too many requests"))
    with pytest.raises(ClientError) as info:
        await asyncio.to_thread(stream_all, runtime, modelId=HAIKU, **HELLO)
    assert info.value.response["Error"]["Code"] == "ThrottlingException"
    assert fake.aborted_streams == 0


async def test_error_type_header_carries_coral_suffix(fake: FakeBedrock) -> None:
    """x-amzn-ErrorType is 'Code:namespace' and the body uses the AWS message key."""
    fake.enqueue(Error(429, "ThrottlingException", "slow"))
    status, headers, data = await raw_call(fake, "POST", model_path(HAIKU, "converse"), HELLO)
    assert status == 429
    assert headers["x-amzn-ErrorType"].startswith("ThrottlingException:http://internal.amazon.com/")
    assert json.loads(data) == {"message": "slow"}
    assert headers["x-amzn-RequestId"]


@pytest.mark.parametrize(
    ("creds", "code"),
    [
        ({"secret": "wrong-secret"}, "InvalidSignatureException"),
        ({"akid": "AKIDUNKNOWN"}, "UnrecognizedClientException"),
    ],
    ids=["wrong-secret", "unknown-access-key"],
)
async def test_botocore_with_bad_credentials_is_refused(
    fake: FakeBedrock, creds: dict[str, str], code: str
) -> None:
    """botocore signing with a wrong secret or unknown key gets a 403 with AWS's code."""
    client = make_client(fake, **creds)
    try:
        with pytest.raises(ClientError) as info:
            await asyncio.to_thread(client.converse, modelId=HAIKU, **HELLO)
    finally:
        client.close()
    assert info.value.response["Error"]["Code"] == code
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert fake.requests[-1].access_key_id is None


async def test_bedrock_runtime_signing_scope_is_rejected(fake: FakeBedrock) -> None:
    """A request signed for service 'bedrock-runtime' fails as real Bedrock does."""
    status, headers, data = await raw_call(
        fake, "POST", model_path(HAIKU, "converse"), HELLO, service="bedrock-runtime"
    )
    assert status == 403
    assert headers["x-amzn-ErrorType"].split(":")[0] == "InvalidSignatureException"
    assert "correct service: 'bedrock'" in json.loads(data)["Message"]


async def test_session_credentials_are_checked_and_recorded() -> None:
    """A credential with a session token works only with the token; the signer is recorded."""
    creds = {AKID: (SECRET, None), "ASIATEMP": ("temp-secret", "temp-token")}
    async with FakeBedrock(creds) as server:
        good = make_client(server, akid="ASIATEMP", secret="temp-secret", token="temp-token")
        bad = make_client(server, akid="ASIATEMP", secret="temp-secret")
        try:
            await asyncio.to_thread(good.converse, modelId=HAIKU, **HELLO)
            with pytest.raises(ClientError) as info:
                await asyncio.to_thread(bad.converse, modelId=HAIKU, **HELLO)
        finally:
            good.close()
            bad.close()
    assert server.requests[0].access_key_id == "ASIATEMP"
    assert info.value.response["Error"]["Code"] == "UnrecognizedClientException"


async def test_bearer_api_key_accepted_on_runtime_only() -> None:
    """A configured Bedrock API key works as a Bearer token on the runtime."""
    async with (
        FakeBedrock(api_keys={"bedrock-api-key-xyz"}) as server,
        aiohttp.ClientSession() as session,
    ):
        url = yarl.URL(server.url + model_path(HAIKU, "converse"), encoded=True)
        auth = {"Authorization": "Bearer bedrock-api-key-xyz"}
        async with session.post(url, json=HELLO, headers=auth) as ok:
            assert ok.status == 200
        async with session.post(url, json=HELLO, headers={"Authorization": "Bearer no"}) as no:
            assert no.status == 403
        async with session.get(server.url + "/foundation-models", headers=auth) as cp:
            assert cp.status == 403
    assert server.requests[0].api_key == "bedrock-api-key-xyz"


# --------------------------------------------------------------------------- validation


def _conversation(*turns: tuple[str, list[dict[str, Any]]], **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": r, "content": c} for r, c in turns], **extra}


_USER = ("user", [{"text": "hi"}])
_TOOL_USE = ("assistant", [{"toolUse": {"toolUseId": "t1", "name": "f", "input": {}}}])
_TOOL_RESULT = ("user", [{"toolResult": {"toolUseId": "t1", "content": [{"text": "ok"}]}}])
_TOOLS = {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}}]}


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"messages": []}, "messages field is empty"),
        (_conversation(("assistant", [{"text": "hi"}]), _USER), "must start with a user message"),
        (_conversation(_USER, ("system", [{"text": "x"}])), "[user, assistant]"),
        (_conversation(_USER, _USER), "must alternate between user and assistant"),
        (_conversation(("user", [])), "is empty. Add a ContentBlock"),
        (_conversation(("user", [{}])), "exactly one of"),
        (
            _conversation(("user", [{"text": "a", "cachePoint": {"type": "default"}}])),
            "exactly one",
        ),
        (_conversation(("user", [{"audioUrl": "x"}])), "Unknown field 'audioUrl'"),
        (_conversation(("user", [{"text": "  "}])), "is blank"),
        (_conversation(_USER, _TOOL_USE, _TOOL_RESULT), "toolConfig field must be defined"),
        (
            _conversation(
                _USER,
                _TOOL_USE,
                ("user", [{"toolResult": {"toolUseId": "t2", "content": [{"text": "ok"}]}}]),
                toolConfig=_TOOLS,
            ),
            "Expected toolResult blocks",
        ),
        (_conversation(_TOOL_RESULT, toolConfig=_TOOLS), "exceeds the number of toolUse blocks"),
        (
            _conversation(("user", _TOOL_USE[1]), toolConfig=_TOOLS),
            "only allowed in assistant turns",
        ),
        (_conversation(_USER, toolConfig={"tools": []}), "greater than or equal to 1"),
        (_conversation(_USER, inferenceConfig={"maxTokens": 0}), "greater than or equal to 1"),
        (_conversation(_USER, inferenceConfig={"temperature": 1.5}), "less than or equal to 1"),
        (_conversation(_USER, inferenceConfig={"topP": -0.1}), "greater than or equal to 0"),
        (
            _conversation(_USER, inferenceConfig={"stopSequences": ["a", "b", "c", "d", "e"]}),
            "exceeds the limit of 4",
        ),
        (_conversation(_USER, inferenceConfig={"stopSequences": [1]}), "stopSequences.0"),
        (_conversation(_USER, inferenceConfig={"topK": 5}), "Unknown field 'topK'"),
        (_conversation(_USER, system="be nice"), "at system is invalid"),
        (_conversation(_USER, system=[{"text": ""}]), "is blank"),
        (_conversation(_USER, stream=True), "Unknown field 'stream'"),
        (
            _conversation(("user", [{"image": {"format": "bmp", "source": {"bytes": PNG_1PX}}}])),
            "[png, jpeg, gif, webp]",
        ),
        (
            _conversation(("user", [{"image": {"format": "png", "source": {"bytes": "@@"}}}])),
            "base64",
        ),
    ],
    ids=[
        "empty-messages",
        "first-turn-assistant",
        "system-role-in-messages",
        "two-user-turns",
        "empty-content",
        "empty-block",
        "two-members-in-block",
        "unknown-block-member",
        "blank-text",
        "tool-blocks-without-tool-config",
        "tool-result-id-mismatch",
        "tool-result-without-tool-use",
        "tool-use-in-user-turn",
        "empty-tools",
        "max-tokens-zero",
        "temperature-above-one",
        "top-p-negative",
        "five-stop-sequences",
        "stop-sequence-not-string",
        "unknown-inference-field",
        "system-not-a-list",
        "blank-system-text",
        "unknown-top-level-field",
        "bad-image-format",
        "bad-image-base64",
    ],
)
async def test_converse_validation_rejects(
    fake: FakeBedrock, body: dict[str, Any], text: str
) -> None:
    """Each Converse rule Bedrock enforces gives a 400 ValidationException."""
    result = await converse_raw(fake, body)
    assert result["status"] == 400
    assert result["headers"]["x-amzn-ErrorType"].split(":")[0] == "ValidationException"
    assert text in result["json"]["message"]


@pytest.mark.parametrize(
    "body",
    [
        _conversation(_USER, _TOOL_USE, _TOOL_RESULT, toolConfig=_TOOLS),
        _conversation(
            ("user", [{"text": "see"}, {"image": {"format": "png", "source": {"bytes": PNG_1PX}}}])
        ),
        _conversation(_USER, ("assistant", [{"text": "Sure:"}]), system=[{"text": "be brief"}]),
        _conversation(
            _USER,
            inferenceConfig={"maxTokens": 5, "temperature": 0, "topP": 1, "stopSequences": ["x"]},
        ),
    ],
    ids=["tool-round-trip", "image", "prefill-and-system", "full-inference-config"],
)
async def test_converse_validation_accepts_valid_requests(
    fake: FakeBedrock, body: dict[str, Any]
) -> None:
    """Well-formed tool, image, prefill and inference requests are answered."""
    result = await converse_raw(fake, body)
    assert result["status"] == 200, result["json"]


async def test_image_rejected_for_text_only_model(fake: FakeBedrock) -> None:
    """An image block sent to a text-only model is refused."""
    body = _conversation(("user", [{"image": {"format": "png", "source": {"bytes": PNG_1PX}}}]))
    result = await converse_raw(fake, body, LLAMA3_8B)
    assert result["status"] == 400 and "image" in result["json"]["message"]


async def test_model_quirks_can_be_switched_on(fake: FakeBedrock) -> None:
    """Per-model flags reject temperature with top_p and assistant prefill."""
    model = fake.model(HAIKU)
    assert model is not None
    model.rejects_temperature_with_top_p = True
    model.rejects_assistant_prefill = True
    both = _conversation(_USER, inferenceConfig={"temperature": 0.5, "topP": 0.5})
    assert "cannot both be specified" in (await converse_raw(fake, both))["json"]["message"]
    prefill = _conversation(_USER, ("assistant", [{"text": "Sure"}]))
    assert "prefill" in (await converse_raw(fake, prefill))["json"]["message"]


async def test_malformed_json_body_is_a_serialization_error(fake: FakeBedrock) -> None:
    """A body that is not JSON is refused before any model logic."""
    status, headers, _ = await raw_call(fake, "POST", model_path(HAIKU, "converse"), b"{nope")
    assert status == 400
    assert headers["x-amzn-ErrorType"] == "SerializationException"


# --------------------------------------------------------------------------- control plane


async def test_list_foundation_models_parses(control: Any) -> None:
    """ListFoundationModels lists the catalogue and honours the modality filter."""
    result = await asyncio.to_thread(control.list_foundation_models)
    by_id = {m["modelId"]: m for m in result["modelSummaries"]}
    assert set(by_id) == {
        HAIKU,
        SONNET_37,
        LLAMA3_8B,
        TITAN_EMBED_V1,
        TITAN_EMBED_V2,
        COHERE_EMBED_EN,
    }
    assert by_id[HAIKU]["inputModalities"] == ["TEXT", "IMAGE"]
    assert by_id[SONNET_37]["inferenceTypesSupported"] == ["INFERENCE_PROFILE"]
    assert by_id[HAIKU]["modelArn"] == f"arn:aws:bedrock:{REGION}::foundation-model/{HAIKU}"
    embeddings = await asyncio.to_thread(
        control.list_foundation_models, byOutputModality="EMBEDDING"
    )
    assert {m["modelId"] for m in embeddings["modelSummaries"]} == {
        TITAN_EMBED_V1,
        TITAN_EMBED_V2,
        COHERE_EMBED_EN,
    }


async def test_list_inference_profiles_paginates(fake: FakeBedrock, control: Any) -> None:
    """The paginator must follow nextToken across pages of at most two profiles."""
    pages = await asyncio.to_thread(
        lambda: list(control.get_paginator("list_inference_profiles").paginate())
    )
    assert len(pages) >= 2 and all(len(p["inferenceProfileSummaries"]) <= 2 for p in pages)
    ids = [s["inferenceProfileId"] for p in pages for s in p["inferenceProfileSummaries"]]
    assert ids == [f"us.{HAIKU}", f"us.{SONNET_37}", f"eu.{SONNET_37}", "abc123"]
    apps = await asyncio.to_thread(control.list_inference_profiles, typeEquals="APPLICATION")
    (app,) = apps["inferenceProfileSummaries"]
    assert app["inferenceProfileArn"] == APP_PROFILE_ARN and app["type"] == "APPLICATION"
    assert app["models"] == [{"modelArn": f"arn:aws:bedrock:{REGION}::foundation-model/{HAIKU}"}]
    assert "nextToken" not in apps
    assert {r.query.get("type") for r in fake.requests_for("ListInferenceProfiles")} >= {
        "APPLICATION"
    }


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ("typeEquals=SYSTEM_DEFINED", "Unknown query parameter 'typeEquals'"),
        ("maxResults=0", "between 1 and 1000"),
        ("nextToken=bogus", "pagination token is invalid"),
    ],
    ids=["wire-name-is-type", "max-results-zero", "bad-token"],
)
async def test_list_inference_profiles_rejects_bad_queries(
    fake: FakeBedrock, query: str, text: str
) -> None:
    """Wrong parameter names, limits and tokens give a ValidationException."""
    status, _, data = await raw_call(fake, "GET", f"/inference-profiles?{query}")
    assert status == 400 and text in json.loads(data)["message"]


# --------------------------------------------------------------------------- embeddings


async def _invoke(
    client: Any, model_id: str, body: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    result = await asyncio.to_thread(
        client.invoke_model, modelId=model_id, body=json.dumps(body), contentType="application/json"
    )
    return json.loads(result["body"].read()), result["ResponseMetadata"]["HTTPHeaders"]


async def test_titan_v1_embedding_is_deterministic(fake: FakeBedrock, runtime: Any) -> None:
    """Titan v1 returns 1536 floats derived from the text, with token count headers."""
    body, headers = await _invoke(runtime, TITAN_EMBED_V1, {"inputText": "hello world"})
    assert body["embedding"] == embedding_vector("hello world", 1536, normalize=False)
    assert body["inputTextTokenCount"] == 2
    assert headers["x-amzn-bedrock-input-token-count"] == "2"
    assert headers["x-amzn-bedrock-output-token-count"] == "0"
    assert fake.requests[-1].operation == "InvokeModel"
    assert fake.requests[-1].body == {"inputText": "hello world"}


async def test_titan_v2_dimensions_and_types(runtime: Any) -> None:
    """Titan v2 honours dimensions, normalisation and binary embeddings."""
    request = {"inputText": "hi", "dimensions": 256, "embeddingTypes": ["float", "binary"]}
    body, _ = await _invoke(runtime, TITAN_EMBED_V2, request)
    assert body["embedding"] == embedding_vector("hi", 256)
    assert body["embeddingsByType"]["float"] == body["embedding"]
    assert set(body["embeddingsByType"]["binary"]) <= {0, 1}
    assert abs(sum(v * v for v in body["embedding"]) - 1.0) < 1e-9
    default, _ = await _invoke(runtime, TITAN_EMBED_V2, {"inputText": "hi"})
    assert len(default["embedding"]) == 1024


async def test_cohere_embeddings(runtime: Any) -> None:
    """Cohere v3 returns one 1024-float vector per text, in order."""
    body, headers = await _invoke(
        runtime, COHERE_EMBED_EN, {"texts": ["a b", "c"], "input_type": "search_document"}
    )
    assert body["embeddings"] == [embedding_vector("a b", 1024), embedding_vector("c", 1024)]
    assert body["response_type"] == "embeddings_floats" and body["texts"] == ["a b", "c"]
    assert headers["x-amzn-bedrock-input-token-count"] == "3"


@pytest.mark.parametrize(
    ("model_id", "body", "text"),
    [
        (TITAN_EMBED_V1, {}, "required key [inputText]"),
        (TITAN_EMBED_V1, {"inputText": "x", "dimensions": 256}, "extraneous key [dimensions]"),
        (TITAN_EMBED_V2, {"inputText": "x", "dimensions": 100}, "not a valid enum value"),
        (
            COHERE_EMBED_EN,
            {"texts": ["x"] * 97, "input_type": "search_query"},
            "maximum item count: 96",
        ),
        (COHERE_EMBED_EN, {"texts": ["x"]}, "required key [input_type]"),
    ],
    ids=[
        "titan-missing-text",
        "titan-v1-unknown-field",
        "titan-v2-bad-dims",
        "cohere-97-texts",
        "cohere-no-input-type",
    ],
)
async def test_embedding_bodies_are_validated(
    runtime: Any, model_id: str, body: dict[str, Any], text: str
) -> None:
    """Malformed embedding bodies give Bedrock's 'Malformed input request' ValidationException."""
    with pytest.raises(ClientError) as info:
        await _invoke(runtime, model_id, body)
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert text in info.value.response["Error"]["Message"]


async def test_concurrent_invokes_are_counted() -> None:
    """max_concurrent_invokes records how many InvokeModel calls overlapped."""
    async with FakeBedrock(invoke_delay=0.2) as server:
        path = model_path(TITAN_EMBED_V2, "invoke")
        results = await asyncio.gather(
            *(raw_call(server, "POST", path, {"inputText": f"t{n}"}) for n in range(4))
        )
    assert [status for status, _, _ in results] == [200] * 4
    assert server.max_concurrent_invokes == 4 and server.in_flight_invokes == 0


# --------------------------------------------------------------------------- timing, aborts


async def test_slow_trips_client_timeout(fake: FakeBedrock) -> None:
    """Slow holds the answer long enough for a client timeout to fire."""
    fake.enqueue(Slow(1.0))
    with pytest.raises(TimeoutError):
        await raw_call(fake, "POST", model_path(HAIKU, "converse"), HELLO, time_limit=0.2)
    await wait_until(lambda: fake.aborted_requests == 1)


async def test_hang_then_disconnect_counts_as_aborted_stream(fake: FakeBedrock) -> None:
    """A client leaving a hung ConverseStream sets stream_aborted."""
    fake.enqueue(Hang())
    with pytest.raises(TimeoutError):
        await raw_call(fake, "POST", model_path(HAIKU, "converse-stream"), HELLO, time_limit=0.2)
    await asyncio.wait_for(fake.stream_aborted.wait(), 2)
    await wait_until(lambda: fake.active_streams == 0)
    assert fake.aborted_streams == 1


async def test_disconnect_mid_stream_is_detected() -> None:
    """Closing the connection after the first bytes of a stream is seen as an abort."""
    async with FakeBedrock(stream_chunk_delay=0.05) as server:
        url = server.url + model_path(HAIKU, "converse-stream")
        raw = json.dumps(HELLO).encode()
        async with aiohttp.ClientSession() as session:
            resp = await session.post(
                yarl.URL(url, encoded=True), data=raw, headers=sign("POST", url, raw)
            )
            assert await resp.content.readany()
            assert server.active_streams == 1
            resp.close()
        await asyncio.wait_for(server.stream_aborted.wait(), 2)
        await wait_until(lambda: server.active_streams == 0)
        assert server.aborted_streams == 1 and server.completed_streams == 0
        assert server.requests[-1].aborted


# --------------------------------------------------------------------------- control endpoint


async def test_http_control_endpoint_scripts_and_reports(fake: FakeBedrock, runtime: Any) -> None:
    """POST /_fake/enqueue scripts the next call and GET /_fake/requests lists calls."""
    async with aiohttp.ClientSession() as session:
        script = [
            {
                "kind": "error",
                "status": 503,
                "code": "ServiceUnavailableException",
                "message": "down",
            },
            {"kind": "reply", "text": "scripted", "tool_uses": [{"name": "f", "input": {"a": 1}}]},
        ]
        async with session.post(fake.url + "/_fake/enqueue", json=script) as resp:
            assert (await resp.json()) == {"queued": 2}
        with pytest.raises(ClientError) as info:
            await asyncio.to_thread(runtime.converse, modelId=HAIKU, **HELLO)
        assert info.value.response["Error"]["Code"] == "ServiceUnavailableException"
        reply = await asyncio.to_thread(runtime.converse, modelId=HAIKU, **HELLO)
        assert reply["output"]["message"]["content"][0] == {"text": "scripted"}
        async with session.get(fake.url + "/_fake/requests") as resp:
            recorded = await resp.json()
        async with session.post(fake.url + "/_fake/enqueue", json={"kind": "nope"}) as resp:
            assert resp.status == 400
    assert [(r["operation"], r["status"], r["access_key_id"]) for r in recorded] == [
        ("Converse", 503, AKID),
        ("Converse", 200, AKID),
    ]


async def test_runs_out_of_process_until_sigterm(tmp_path: Path) -> None:
    """python -m tests.fakes.bedrock writes its port, serves botocore, and exits on SIGTERM."""
    port_file = tmp_path / "port"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.bedrock",
        "--port",
        "0",
        "--port-file",
        str(port_file),
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await wait_until(port_file.exists, seconds=15)
        port = int(port_file.read_text())
        client = SESSION.create_client(
            "bedrock-runtime",
            region_name=REGION,
            endpoint_url=f"http://127.0.0.1:{port}",
            aws_access_key_id=AKID,
            aws_secret_access_key=SECRET,
            config=NO_RETRY,
        )
        try:
            result = await asyncio.to_thread(client.converse, modelId=HAIKU, **copy.deepcopy(HELLO))
        finally:
            client.close()
        assert result["output"]["message"]["content"][0]["text"] == "echo: hello there world"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 10)
    assert code == 0
