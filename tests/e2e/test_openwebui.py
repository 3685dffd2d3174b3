"""Open WebUI, driven over its HTTP API the way its web page drives it, through the gateway to
the fake Bedrock.

Two ways in: the API path (``POST /api/chat/completions`` without a chat) relays the gateway's
stream as it is; the UI path (a saved chat, a session and ``background_tasks``) has Open WebUI
parse the stream, save the message, then run its title, tags and follow-up tasks.
"""

from __future__ import annotations

import base64
import json
import struct
import time
import uuid
import zlib
from typing import Any

import pytest

from .conftest import OPENWEBUI_ENV, FakeBedrockProcess, OpenWebUI, openwebui_executable
from .harness import http_sse

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        openwebui_executable() is None,
        reason=f"{OPENWEBUI_ENV} is not set: run .ci/openwebui.sh to install Open WebUI and "
        "run these tests",
    ),
]

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
# A model that reasons on real Bedrock, called through its inference profile as it must be.
SONNET_37 = "us.anthropic.claude-3-7-sonnet-20250219-v1:0"

UI_FLOW_TIMEOUT = 60.0  # seconds for the UI path's stream and its three background tasks


def tiny_png() -> bytes:
    """A valid 2x2 RGB PNG, built by hand."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes([255, 0, 0, 0, 255, 0]) for _ in range(2))
    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def stream_chat(openwebui: OpenWebUI, payload: dict[str, Any]) -> list[dict[str, Any]]:
    return list(http_sse(f"{openwebui.url}/api/chat/completions", payload, token=openwebui.token))


def deltas(chunks: list[dict[str, Any]], field: str) -> str:
    return "".join(
        choice.get("delta", {}).get(field) or "" for c in chunks for choice in c.get("choices", [])
    )


def reply_content(completion: dict[str, Any]) -> str:
    assert "choices" in completion, completion
    content: str = completion["choices"][0]["message"]["content"]
    return content


def only_user_prompt(recorded: dict[str, Any]) -> str:
    """The text of a Converse request that carries exactly one user message."""
    messages = recorded["body"]["messages"]
    assert [m["role"] for m in messages] == ["user"], messages
    return "".join(block.get("text", "") for block in messages[0]["content"])


def test_lists_gateway_models(openwebui: OpenWebUI) -> None:
    """Open WebUI's model list shows the models the gateway serves from Bedrock."""
    ids = {m["id"] for m in openwebui.get("/api/models")["data"]}
    assert {HAIKU, SONNET_37} <= ids, sorted(ids)


def test_chat_streams_back(openwebui: OpenWebUI, fake: FakeBedrockProcess) -> None:
    """A streamed chat through Open WebUI arrives as deltas carrying the model's reply."""
    chunks = stream_chat(
        openwebui,
        {"model": HAIKU, "stream": True, "messages": [{"role": "user", "content": "hello there"}]},
    )
    assert deltas(chunks, "content") == "echo: hello there"
    assert [r["operation"] for r in fake.runtime_requests()] == ["ConverseStream"]


def test_title_task_returns_title(openwebui: OpenWebUI, fake: FakeBedrockProcess) -> None:
    """Open WebUI's title task gets the JSON title the model wrote, from a non-streamed call."""
    fake.enqueue({"kind": "reply", "text": '{"title": "Baking Sourdough Bread"}'})
    completion = openwebui.post(
        "/api/v1/tasks/title/completions",
        {
            "model": HAIKU,
            "messages": [
                {"role": "user", "content": "How do I bake sourdough bread?"},
                {"role": "assistant", "content": "Feed the starter, then mix flour and water."},
            ],
        },
    )
    assert json.loads(reply_content(completion)) == {"title": "Baking Sourdough Bread"}
    [call] = fake.runtime_requests()
    assert call["operation"] == "Converse"
    assert "sourdough" in only_user_prompt(call)


def test_tags_task_returns_tags(openwebui: OpenWebUI, fake: FakeBedrockProcess) -> None:
    """Open WebUI's tags task gets the JSON tags the model wrote, from a non-streamed call."""
    fake.enqueue({"kind": "reply", "text": '{"tags": ["Cooking", "Baking"]}'})
    completion = openwebui.post(
        "/api/v1/tasks/tags/completions",
        {
            "model": HAIKU,
            "messages": [
                {"role": "user", "content": "How do I bake sourdough bread?"},
                {"role": "assistant", "content": "Feed the starter, then mix flour and water."},
            ],
        },
    )
    assert json.loads(reply_content(completion)) == {"tags": ["Cooking", "Baking"]}
    [call] = fake.runtime_requests()
    assert call["operation"] == "Converse"
    assert "sourdough" in only_user_prompt(call)


def test_reasoning_streams_as_reasoning(openwebui: OpenWebUI, fake: FakeBedrockProcess) -> None:
    """The model's reasoning reaches Open WebUI's stream as reasoning_content, not as content."""
    reasoning = "The user greets me. A short greeting back fits."
    fake.enqueue({"kind": "reply", "text": "Hello!", "reasoning": reasoning})
    chunks = stream_chat(
        openwebui,
        {"model": SONNET_37, "stream": True, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert deltas(chunks, "reasoning_content") == reasoning
    assert deltas(chunks, "content") == "Hello!"


def test_image_reaches_bedrock_as_bytes(openwebui: OpenWebUI, fake: FakeBedrockProcess) -> None:
    """An image sent in a message reaches Bedrock as an image block holding the same bytes."""
    png = tiny_png()
    data_url = "data:image/png;base64," + base64.b64encode(png).decode()
    chunks = stream_chat(
        openwebui,
        {
            "model": HAIKU,
            "stream": True,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is in this picture?"},
                        {"type": "image_url", "image_url": {"url": data_url}},
                    ],
                }
            ],
        },
    )
    assert deltas(chunks, "content") == "echo: What is in this picture?"
    [call] = fake.runtime_requests()
    blocks = call["body"]["messages"][-1]["content"]
    images = [b["image"] for b in blocks if "image" in b]
    assert len(images) == 1, blocks
    assert images[0]["format"] == "png"
    assert base64.b64decode(images[0]["source"]["bytes"]) == png


def test_ui_chat_saves_reasoning_title_tags(openwebui: OpenWebUI, fake: FakeBedrockProcess) -> None:
    """A chat turn sent as the web page sends it is saved with its reasoning as reasoning,
    then gets the follow-ups, title and tags the model wrote."""
    reasoning = "Bread needs a starter; list the steps."
    answer = "Feed the starter, mix, fold, proof, bake."
    fake.enqueue(
        {"kind": "reply", "text": answer, "reasoning": reasoning},
        {"kind": "reply", "text": '{"follow_ups": ["How long should it proof?"]}'},
        {"kind": "reply", "text": '{"title": "Sourdough Steps"}'},
        {"kind": "reply", "text": '{"tags": ["Cooking", "Baking"]}'},
    )
    chat = openwebui.post(
        "/api/v1/chats/new",
        {"chat": {"title": "New Chat", "models": [SONNET_37], "history": {"messages": {}}}},
    )
    chat_id = chat["id"]
    user_id, reply_id = str(uuid.uuid4()), str(uuid.uuid4())
    started = openwebui.post(
        "/api/chat/completions",
        {
            "stream": True,
            "model": SONNET_37,
            "params": {},
            "features": {},
            "session_id": f"e2e-{uuid.uuid4().hex}",
            "chat_id": chat_id,
            "id": reply_id,
            "parent_id": None,
            "user_message": {
                "id": user_id,
                "parentId": None,
                "childrenIds": [reply_id],
                "role": "user",
                "content": "How do I bake sourdough bread?",
                "timestamp": int(time.time()),
                "models": [SONNET_37],
            },
            "background_tasks": {
                "title_generation": True,
                "tags_generation": True,
                "follow_up_generation": True,
            },
        },
    )
    assert started.get("status") is True, started

    deadline = time.monotonic() + UI_FLOW_TIMEOUT
    while True:
        saved = openwebui.get(f"/api/v1/chats/{chat_id}")
        message = saved["chat"]["history"]["messages"].get(reply_id, {})
        if message.get("error"):
            pytest.fail(f"Open WebUI saved an error: {message['error']}")
        if saved["meta"].get("tags") and message.get("done"):
            break
        if time.monotonic() > deadline:
            pytest.fail(f"chat not finished after {UI_FLOW_TIMEOUT:g} s: {saved}")
        time.sleep(0.25)

    items = message["output"]
    kinds = [item["type"] for item in items]
    assert kinds == ["reasoning", "message"], items
    texts = ["".join(part["text"] for part in item["content"]) for item in items]
    assert texts == [reasoning, answer]
    assert message["content"] == answer
    assert message.get("followUps") == ["How long should it proof?"]
    assert saved["title"] == "Sourdough Steps"
    assert saved["meta"]["tags"] == ["cooking", "baking"]

    calls = fake.runtime_requests()
    assert [c["operation"] for c in calls] == ["ConverseStream", "Converse", "Converse", "Converse"]
    assert fake.queued() == 0
    # The page's turn offers Open WebUI's built-in tools (native function calling).
    tool_names = {t["toolSpec"]["name"] for t in calls[0]["body"]["toolConfig"]["tools"]}
    assert "get_current_timestamp" in tool_names, tool_names
    for call in calls[1:]:
        assert "sourdough" in only_user_prompt(call).lower()
