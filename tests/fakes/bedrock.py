"""A fake Amazon Bedrock (runtime and control plane) serving the real wire protocol.

In process::

    async with FakeBedrock() as fake:
        fake.enqueue(Reply(text="hi"))
        ...  # point the client at fake.url

Out of process (for a daemon under test)::

    python -m tests.fakes.bedrock --host 127.0.0.1 --port 0 --port-file PATH
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import json
import os
import signal
import time
import uuid
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from .behaviours import (
    Behaviour,
    Error,
    Hang,
    Held,
    Reply,
    Slow,
    StreamEvents,
    StreamException,
    behaviour_from_json,
)
from .catalogue import Catalogue, FoundationModel, check_model_can, default_catalogue
from .converse_validation import validate_converse
from .embeddings import SCHEMAS
from .errors import AwsError, error_response, validation
from .eventstream import event_frame, exception_frame
from .replies import converse_response, echo_reply, stream_events
from .sigv4 import SigV4Verifier
from .streaming import send_frames

DEFAULT_CREDENTIALS: dict[str, tuple[str, str | None]] = {"AKIDFAKE": ("fake-secret", None)}
RUNTIME_OPERATIONS = {
    "converse": "Converse",
    "converse-stream": "ConverseStream",
    "invoke": "InvokeModel",
}
EVENTSTREAM_CONTENT_TYPE = "application/vnd.amazon.eventstream"


@dataclass
class RecordedRequest:
    """One request as the fake saw it (recorded even when it was rejected)."""

    operation: str
    method: str
    raw_path: str
    model_id: str | None
    body: Any
    headers: dict[str, str]
    query: dict[str, str] = field(default_factory=dict)
    # The access key id that validly signed the request (None when unsigned or rejected).
    access_key_id: str | None = None
    # The Bedrock API key when the request used 'Authorization: Bearer'.
    api_key: str | None = None
    status: int | None = None
    aborted: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except (UnicodeDecodeError, ValueError):
        return None


def _encode_token(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> dict[str, Any]:
    try:
        padded = token + "=" * (-len(token) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        value = None
    if not isinstance(value, dict) or not isinstance(value.get("offset"), int):
        raise validation("The pagination token is invalid.")
    return value


class FakeBedrock:
    """Runtime and control plane of Bedrock on one local port, scriptable and observable."""

    def __init__(
        self,
        credentials: Mapping[str, tuple[str, str | None]] | None = None,
        region: str = "us-east-1",
        stream_chunk_delay: float = 0.0,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        page_size: int = 2,
        invoke_delay: float = 0.0,
        api_keys: Collection[str] = (),
        catalogue: Catalogue | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.credentials = dict(credentials if credentials is not None else DEFAULT_CREDENTIALS)
        self.region = region
        self.stream_chunk_delay = stream_chunk_delay
        self.host = host
        self.port = port
        self.page_size = page_size
        # Every InvokeModel takes at least this long, so concurrency becomes observable.
        self.invoke_delay = invoke_delay
        self.api_keys = set(api_keys)
        self.catalogue = catalogue if catalogue is not None else default_catalogue()
        self.verifier = SigV4Verifier(self.credentials, region)
        if clock is not None:
            self.verifier.clock = clock

        self.behaviours: deque[Behaviour] = deque()
        self.requests: list[RecordedRequest] = []
        self.active_streams = 0
        self.completed_streams = 0
        self.aborted_streams = 0
        self.stream_aborted = asyncio.Event()
        self.aborted_requests = 0
        self.in_flight_invokes = 0
        self.max_concurrent_invokes = 0

        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        # handler_cancellation: a client that goes away cancels its handler, which is how the
        # fake notices aborted streams. A short shutdown keeps close() fast with hung handlers.
        self._runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=0.5, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBedrock:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        if self._runner is None:
            raise RuntimeError("FakeBedrock is not started")
        return f"http://{self.host}:{self.port}"

    # ----------------------------------------------------------------- scripting

    def enqueue(self, *behaviours: Behaviour) -> None:
        """Queue behaviours; each runtime call (any model) takes the oldest one."""
        self.behaviours.extend(behaviours)

    def reset(self) -> None:
        self.behaviours.clear()
        self.requests.clear()
        self.aborted_streams = self.aborted_requests = self.completed_streams = 0
        self.max_concurrent_invokes = 0
        self.stream_aborted.clear()

    def requests_for(self, operation: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.operation == operation]

    def model(self, model_id: str) -> FoundationModel | None:
        return self.catalogue.model(model_id)

    # ----------------------------------------------------------------- dispatch

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.raw_path.partition("?")[0]
        if raw_path.startswith("/_fake/"):
            return await self._control(request, raw_path)
        request_id = str(uuid.uuid4())
        record = RecordedRequest(
            operation="Unknown",
            method=request.method,
            raw_path=request.raw_path,
            model_id=None,
            body=None,
            headers=dict(request.headers),
            query=dict(request.query),
        )
        self.requests.append(record)
        try:
            response = await self._route(request, raw_path, record, request_id)
        except AwsError as err:
            response = error_response(err, request_id)
        except asyncio.CancelledError:
            record.aborted = True
            if record.operation in ("Converse", "InvokeModel"):
                self.aborted_requests += 1
            raise
        if record.status is None:
            record.status = response.status
        return response

    async def _route(
        self, request: web.Request, raw_path: str, record: RecordedRequest, request_id: str
    ) -> web.StreamResponse:
        parts = raw_path.split("/")
        method = request.method
        if method == "POST" and len(parts) == 4 and parts[1] == "model":
            operation = RUNTIME_OPERATIONS.get(parts[3])
            if operation is not None and parts[2]:
                record.operation = operation
                # Model ids arrive percent-encoded ('%3A', and '%2F' inside ARNs).
                record.model_id = unquote(parts[2])
                return await self._runtime(request, record, request_id)
        if method == "GET" and raw_path == "/foundation-models":
            record.operation = "ListFoundationModels"
            await self._authenticate(request, record, runtime=False)
            return self._json(self._list_foundation_models(request), request_id)
        if method == "GET" and len(parts) == 3 and parts[1] == "foundation-models" and parts[2]:
            record.operation = "GetFoundationModel"
            record.model_id = unquote(parts[2])
            await self._authenticate(request, record, runtime=False)
            return self._json(self._get_foundation_model(record.model_id), request_id)
        if method == "GET" and raw_path == "/inference-profiles":
            record.operation = "ListInferenceProfiles"
            await self._authenticate(request, record, runtime=False)
            return self._json(self._list_inference_profiles(request), request_id)
        raise AwsError("UnknownOperationException", f"No operation matches {method} {raw_path}")

    async def _authenticate(
        self, request: web.Request, record: RecordedRequest, *, runtime: bool
    ) -> bytes:
        body = await request.read()
        record.body = _parse_json(body)
        authorization = request.headers.get("Authorization", "")
        if authorization.startswith("Bearer ") and runtime:
            # Bedrock API keys work on the runtime only.
            token = authorization.removeprefix("Bearer ").strip()
            if token not in self.api_keys:
                raise AwsError(
                    "UnrecognizedClientException", "The API key included in the request is invalid."
                )
            record.api_key = token
            return body
        record.access_key_id = self.verifier.verify(
            request.method, request.raw_path, request.headers.items(), body
        )
        return body

    @staticmethod
    def _json(
        payload: Any, request_id: str, headers: Mapping[str, str] | None = None
    ) -> web.Response:
        return web.Response(
            body=json.dumps(payload).encode(),
            content_type="application/json",
            headers={"x-amzn-RequestId": request_id, **(headers or {})},
        )

    # ----------------------------------------------------------------- control plane

    @staticmethod
    def _check_query(request: web.Request, allowed: Collection[str]) -> dict[str, str]:
        # Deliberately strict: a misspelt parameter (e.g. 'typeEquals', whose wire name is
        # 'type') would be ignored by AWS and silently widen the result.
        query = dict(request.query)
        for key in query:
            if key not in allowed:
                raise validation(
                    f"Unknown query parameter '{key}'. Allowed: {', '.join(sorted(allowed))}."
                )
        return query

    def _list_foundation_models(self, request: web.Request) -> dict[str, Any]:
        query = self._check_query(
            request, ("byProvider", "byCustomizationType", "byOutputModality", "byInferenceType")
        )
        models = self.catalogue.models
        if "byProvider" in query:
            models = [m for m in models if m.provider.lower() == query["byProvider"].lower()]
        if "byOutputModality" in query:
            models = [m for m in models if query["byOutputModality"] in m.output_modalities]
        if "byInferenceType" in query:
            models = [m for m in models if query["byInferenceType"] in m.inference_types]
        if "byCustomizationType" in query:
            models = []
        return {"modelSummaries": [m.summary(self.region) for m in models]}

    def _get_foundation_model(self, identifier: str) -> dict[str, Any]:
        prefix = f"arn:aws:bedrock:{self.region}::foundation-model/"
        model = self.catalogue.model(identifier.removeprefix(prefix))
        if model is None:
            raise AwsError("ResourceNotFoundException", "The specified model was not found.")
        return {"modelDetails": model.summary(self.region)}

    def _list_inference_profiles(self, request: web.Request) -> dict[str, Any]:
        query = self._check_query(request, ("type", "maxResults", "nextToken"))
        kind = query.get("type")
        if kind is not None and kind not in ("SYSTEM_DEFINED", "APPLICATION"):
            raise validation(
                f"1 validation error detected: Value '{kind}' at 'typeEquals' failed to "
                "satisfy constraint: Member must satisfy enum value set: "
                "[SYSTEM_DEFINED, APPLICATION]"
            )
        limit = self.page_size
        if "maxResults" in query:
            try:
                asked = int(query["maxResults"])
            except ValueError:
                raise validation("maxResults must be an integer.") from None
            if not 1 <= asked <= 1000:
                raise validation(
                    f"1 validation error detected: Value '{asked}' at 'maxResults' failed to "
                    "satisfy constraint: Member must have value between 1 and 1000"
                )
            limit = min(asked, self.page_size)
        offset = 0
        if "nextToken" in query:
            token = _decode_token(query["nextToken"])
            if token.get("type") != kind:
                raise validation("The pagination token is invalid.")
            offset = token["offset"]
        profiles = [p for p in self.catalogue.profiles if kind is None or p.type == kind]
        page = profiles[offset : offset + limit]
        out: dict[str, Any] = {"inferenceProfileSummaries": [p.summary(self.region) for p in page]}
        if offset + limit < len(profiles):
            out["nextToken"] = _encode_token({"offset": offset + limit, "type": kind})
        return out

    # ----------------------------------------------------------------- runtime

    def _next_behaviour(self) -> Behaviour | None:
        return self.behaviours.popleft() if self.behaviours else None

    async def _before_answer(self, behaviour: Behaviour | None) -> Behaviour | None:
        """Apply the waiting behaviours; return what is left to shape the answer."""
        if isinstance(behaviour, Slow):
            await asyncio.sleep(behaviour.seconds)
            return None
        if isinstance(behaviour, Hang):
            await self._closing.wait()
            raise AwsError("ServiceUnavailableException", "fake-bedrock is shutting down.")
        if isinstance(behaviour, Held):
            if not behaviour.after_events:  # else the stream waits midway (see _stream)
                await behaviour.release.wait()
            return behaviour.then
        return behaviour

    @staticmethod
    def _misuse(behaviour: Behaviour, operation: str) -> AwsError:
        # Loud on purpose: a test queued something that cannot apply to this call.
        return AwsError(
            "InternalServerException",
            f"fake-bedrock: {type(behaviour).__name__} does not apply to {operation}.",
        )

    async def _runtime(
        self, request: web.Request, record: RecordedRequest, request_id: str
    ) -> web.StreamResponse:
        started = time.monotonic()
        raw = await self._authenticate(request, record, runtime=True)
        assert record.model_id is not None
        model = self.catalogue.resolve(record.model_id, self.region)
        check_model_can(model, record.operation)
        if record.operation == "InvokeModel":
            return await self._invoke(model, raw, request_id)
        if record.body is None:
            raise AwsError("SerializationException", "Could not parse the request body as JSON.")
        validate_converse(record.body, model)
        behaviour = self._next_behaviour()
        if isinstance(behaviour, Error):
            raise AwsError(behaviour.code, behaviour.message, behaviour.status)
        if record.operation == "ConverseStream":
            return await self._stream(request, record, request_id, behaviour, started)
        behaviour = await self._before_answer(behaviour)
        if behaviour is None:
            behaviour = echo_reply(record.body)
        if not isinstance(behaviour, Reply):
            raise self._misuse(behaviour, "Converse")
        latency = int((time.monotonic() - started) * 1000)
        return self._json(converse_response(behaviour, record.body, latency), request_id)

    def _stream_plan(
        self, behaviour: Behaviour | None, body: dict[str, Any], latency: int
    ) -> tuple[list[bytes], float]:
        if isinstance(behaviour, StreamEvents):
            return [event_frame(t, p) for t, p in behaviour.events], behaviour.delay
        reply = behaviour if isinstance(behaviour, Reply) else echo_reply(body)
        frames = [event_frame(t, p) for t, p in stream_events(reply, body, latency)]
        if isinstance(behaviour, StreamException):
            frames = frames[: behaviour.after_events]
            frames.append(exception_frame(behaviour.exception_type, behaviour.message))
        elif behaviour is not None and not isinstance(behaviour, Reply):
            raise self._misuse(behaviour, "ConverseStream")
        return frames, self.stream_chunk_delay

    async def _stream(
        self,
        request: web.Request,
        record: RecordedRequest,
        request_id: str,
        behaviour: Behaviour | None,
        started: float,
    ) -> web.StreamResponse:
        self.active_streams += 1
        held = behaviour if isinstance(behaviour, Held) and behaviour.after_events else None
        try:
            behaviour = await self._before_answer(behaviour)
            latency = int((time.monotonic() - started) * 1000)
            frames, delay = self._stream_plan(behaviour, record.body, latency)
            resp = web.StreamResponse(
                status=200,
                headers={
                    "Content-Type": EVENTSTREAM_CONTENT_TYPE,
                    "x-amzn-RequestId": request_id,
                },
            )
            # Chunked, no Content-Length: the client cannot know where the body ends.
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            record.status = 200
            try:
                if held is not None:
                    await send_frames(resp, frames[: held.after_events], delay)
                    await held.release.wait()
                    frames = frames[held.after_events :]
                await send_frames(resp, frames, delay)
                await resp.write_eof()
            except ConnectionError:
                # The client went away between writes, before its handler was cancelled.
                self._note_stream_abort(record)
                return resp
            self.completed_streams += 1
            return resp
        except asyncio.CancelledError:
            # handler_cancellation: the client disconnected (before or during the stream).
            if not self._closing.is_set():
                self._note_stream_abort(record)
            raise
        finally:
            self.active_streams -= 1

    def _note_stream_abort(self, record: RecordedRequest) -> None:
        record.aborted = True
        self.aborted_streams += 1
        self.stream_aborted.set()

    async def _invoke(self, model: FoundationModel, raw: bytes, request_id: str) -> web.Response:
        self.in_flight_invokes += 1
        self.max_concurrent_invokes = max(self.max_concurrent_invokes, self.in_flight_invokes)
        started = time.monotonic()
        try:
            behaviour = self._next_behaviour()
            if isinstance(behaviour, Error):
                raise AwsError(behaviour.code, behaviour.message, behaviour.status)
            behaviour = await self._before_answer(behaviour)
            if behaviour is not None:
                raise self._misuse(behaviour, "InvokeModel")
            if self.invoke_delay > 0:
                await asyncio.sleep(self.invoke_delay)
            assert model.invoke_schema is not None
            result, input_tokens = SCHEMAS[model.invoke_schema](raw)
            latency = int((time.monotonic() - started) * 1000)
            return self._json(
                result,
                request_id,
                {
                    "X-Amzn-Bedrock-Input-Token-Count": str(input_tokens),
                    "X-Amzn-Bedrock-Output-Token-Count": "0",
                    "X-Amzn-Bedrock-Invocation-Latency": str(latency),
                },
            )
        finally:
            self.in_flight_invokes -= 1

    # ----------------------------------------------------------------- control endpoint

    async def _control(self, request: web.Request, raw_path: str) -> web.Response:
        if request.method == "POST" and raw_path == "/_fake/enqueue":
            try:
                payload = await request.json()
                items = payload if isinstance(payload, list) else [payload]
                behaviours = [behaviour_from_json(item) for item in items]
            except (ValueError, TypeError, KeyError) as exc:
                return web.json_response({"error": str(exc)}, status=400)
            self.enqueue(*behaviours)
            return web.json_response({"queued": len(self.behaviours)})
        if request.method == "GET" and raw_path == "/_fake/requests":
            return web.json_response([r.to_json() for r in self.requests])
        if request.method == "GET" and raw_path == "/_fake/state":
            return web.json_response(
                {
                    "queued": len(self.behaviours),
                    "active_streams": self.active_streams,
                    "completed_streams": self.completed_streams,
                    "aborted_streams": self.aborted_streams,
                    "aborted_requests": self.aborted_requests,
                    "max_concurrent_invokes": self.max_concurrent_invokes,
                }
            )
        if request.method == "POST" and raw_path == "/_fake/reset":
            self.reset()
            return web.json_response({"reset": True})
        return web.json_response({"error": f"no control route {raw_path}"}, status=404)


# --------------------------------------------------------------------- out of process


def _credential(text: str) -> tuple[str, tuple[str, str | None]]:
    akid, secret, *token = text.split(":", 2)
    return akid, (secret, token[0] if token else None)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run the fake Bedrock until SIGTERM/SIGINT.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", type=Path, help="write the bound port here once listening")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--stream-chunk-delay", type=float, default=0.0)
    parser.add_argument("--invoke-delay", type=float, default=0.0)
    parser.add_argument("--page-size", type=int, default=2)
    parser.add_argument(
        "--credential",
        action="append",
        type=_credential,
        help="AKID:SECRET[:SESSION_TOKEN]; repeatable (default AKIDFAKE:fake-secret)",
    )
    parser.add_argument("--api-key", action="append", default=[], help="accepted Bearer key")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeBedrock(
        dict(args.credential) if args.credential else None,
        region=args.region,
        stream_chunk_delay=args.stream_chunk_delay,
        host=args.host,
        port=args.port,
        page_size=args.page_size,
        invoke_delay=args.invoke_delay,
        api_keys=args.api_key,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await fake.start()
    try:
        if args.port_file is not None:
            # Write then rename, so a poller never reads a half-written port.
            tmp = args.port_file.with_name(args.port_file.name + ".tmp")
            tmp.write_text(f"{fake.port}\n")
            os.replace(tmp, args.port_file)
        await stop.wait()
    finally:
        await fake.close()


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
