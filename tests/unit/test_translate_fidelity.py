"""Tools, images, documents, reasoning, structured output, caching and model quirks:
OpenAI request -> Converse body, table-driven with plain data."""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import Any

import pytest

from bedrock_gw.errors import InvalidRequest
from bedrock_gw.models.capabilities import DEFAULT, Capabilities, capabilities_for
from bedrock_gw.openai.chat_request import ChatCompletionRequest
from bedrock_gw.translate.chat_request import JSON_TOOL, ChatOptions, ConversePlan, to_converse
from bedrock_gw.translate.content import ContentLimits, sanitize_document_name

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
PDF = base64.b64encode(b"%PDF-1.4 fake").decode()
LIMITS = ContentLimits(
    max_image_bytes=1000, max_document_bytes=1000, images_allowed=True, documents_allowed=True
)
CLAUDE_37 = capabilities_for("anthropic.claude-3-7-sonnet-20250219-v1:0")
CLAUDE_45 = capabilities_for("anthropic.claude-sonnet-4-5-20250929-v1:0")
WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
WEATHER_SPEC = {
    "toolSpec": {
        "name": "weather",
        "description": "Weather for a city",
        "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}},
    }
}
CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
}
TOOL_TURNS = [
    {"role": "user", "content": "weather?"},
    {"role": "assistant", "content": None, "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
]


def _plan(
    messages: list[dict[str, Any]],
    caps: Capabilities = DEFAULT,
    limits: ContentLimits = LIMITS,
    caching: bool = False,
    **params: Any,
) -> ConversePlan:
    request = ChatCompletionRequest.model_validate({"model": "m", "messages": messages, **params})
    return to_converse(request, ChatOptions(caps, limits, prompt_caching=caching))


TOOL_CASES = [
    pytest.param(
        {"tools": [WEATHER]},
        {"tools": [WEATHER_SPEC], "toolChoice": {"auto": {}}},
        id="tools-auto-by-default",
    ),
    pytest.param(
        {"tools": [WEATHER], "tool_choice": "required"},
        {"tools": [WEATHER_SPEC], "toolChoice": {"any": {}}},
        id="required-is-any",
    ),
    pytest.param(
        {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "weather"}}},
        {"tools": [WEATHER_SPEC], "toolChoice": {"tool": {"name": "weather"}}},
        id="named-function",
    ),
    pytest.param({"tools": [WEATHER], "tool_choice": "none"}, None, id="none-sends-no-tools"),
    pytest.param({"tools": []}, None, id="empty-tools-list"),
]


@pytest.mark.parametrize(("params", "tool_config"), TOOL_CASES)
def test_tool_config(params: dict[str, Any], tool_config: dict[str, Any] | None) -> None:
    """tools and tool_choice map faithfully; 'none' never becomes auto."""
    body = _plan([{"role": "user", "content": "hi"}], **params).body
    assert body.get("toolConfig") == tool_config


def test_tool_turns_become_tool_blocks() -> None:
    """Assistant tool_calls -> toolUse, tool messages -> toolResult in a user turn."""
    body = _plan(
        [*TOOL_TURNS, {"role": "tool", "tool_call_id": "call_2", "content": '{"t": 20}'}],
        tools=[WEATHER],
    ).body
    assert body["messages"] == [
        {"role": "user", "content": [{"text": "weather?"}]},
        {
            "role": "assistant",
            "content": [
                {"toolUse": {"toolUseId": "call_1", "name": "weather", "input": {"city": "Oslo"}}}
            ],
        },
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": "call_1", "content": [{"text": "sunny"}]}},
                {"toolResult": {"toolUseId": "call_2", "content": [{"json": {"t": 20}}]}},
            ],
        },
    ]


def test_empty_arguments_are_empty_object() -> None:
    """A call with arguments '' is sent with input {}."""
    call = {**CALL, "function": {"name": "weather", "arguments": ""}}
    body = _plan(
        [TOOL_TURNS[0], {"role": "assistant", "tool_calls": [call]}, TOOL_TURNS[2]], tools=[WEATHER]
    ).body
    assert body["messages"][1]["content"][0]["toolUse"]["input"] == {}


def test_invalid_arguments_are_400() -> None:
    """Arguments that are not JSON get a clear 400 naming the call."""
    call = {**CALL, "function": {"name": "weather", "arguments": "{oops"}}
    with pytest.raises(InvalidRequest) as caught:
        _plan(
            [TOOL_TURNS[0], {"role": "assistant", "tool_calls": [call]}, TOOL_TURNS[2]],
            tools=[WEATHER],
        )
    assert caught.value.param == "messages[1].tool_calls[0]"


def test_history_without_tools_builds_tool_config() -> None:
    """Tool turns in a request without tools still get the toolConfig Converse demands."""
    body = _plan(TOOL_TURNS).body
    assert body["toolConfig"] == {
        "tools": [{"toolSpec": {"name": "weather", "inputSchema": {"json": {"type": "object"}}}}]
    }


def test_tool_choice_none_with_history_renders_text() -> None:
    """With tool_choice none, earlier tool turns go as text so no tool can be called."""
    body = _plan(TOOL_TURNS, tools=[WEATHER], tool_choice="none").body
    assert "toolConfig" not in body
    assert all(
        "toolUse" not in b and "toolResult" not in b for m in body["messages"] for b in m["content"]
    )
    assert "weather" in body["messages"][1]["content"][0]["text"]


def test_tools_for_model_without_tools() -> None:
    """A model without tool use is offered no tools under auto (Open WebUI always sends its
    built-in tools), but requiring a tool call from it is a 400."""
    no_tools = replace(DEFAULT, tools=False)
    body = _plan([{"role": "user", "content": "x"}], no_tools, tools=[WEATHER]).body
    assert "toolConfig" not in body
    with pytest.raises(InvalidRequest, match="tools"):
        _plan([{"role": "user", "content": "x"}], no_tools, tools=[WEATHER], tool_choice="required")


def _parts(*parts: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "text", "text": "look"}, *parts]}]


def test_image_data_url() -> None:
    """A data URL image becomes an image block carrying the same bytes."""
    body = _plan(
        _parts({"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}})
    ).body
    assert body["messages"][0]["content"][1] == {
        "image": {"format": "png", "source": {"bytes": PNG}}
    }


def test_document_file_part() -> None:
    """A base64 file part becomes a document block with a sanitised name."""
    part = {
        "type": "file",
        "file": {
            "file_data": f"data:application/pdf;base64,{PDF}",
            "filename": "My report (v2).final.pdf",
        },
    }
    body = _plan(_parts(part)).body
    assert body["messages"][0]["content"][1] == {
        "document": {"format": "pdf", "name": "My report (v2)-final", "source": {"bytes": PDF}}
    }


@pytest.mark.parametrize(
    ("part", "limits", "match"),
    [
        pytest.param(
            {"type": "image_url", "image_url": {"url": f"data:image/bmp;base64,{PNG}"}},
            LIMITS,
            "png, jpeg, gif or webp",
            id="bmp",
        ),
        pytest.param(
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            LIMITS,
            "disabled",
            id="remote-off",
        ),
        pytest.param(
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}},
            LIMITS,
            "base64",
            id="bad-base64",
        ),
        pytest.param(
            {
                "type": "image_url",
                "image_url": {
                    "url": f"data:image/png;base64,{base64.b64encode(bytes(2000)).decode()}"
                },
            },
            LIMITS,
            "limit",
            id="too-big",
        ),
        pytest.param(
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            replace(LIMITS, images_allowed=False),
            "does not accept images",
            id="text-only-model",
        ),
        pytest.param(
            {"type": "file", "file": {"file_data": PDF, "filename": "x.pdf"}},
            replace(LIMITS, documents_allowed=False),
            "does not accept documents",
            id="no-documents",
        ),
        pytest.param(
            {"type": "file", "file": {"file_data": PDF, "filename": "x.exe"}},
            LIMITS,
            "document type",
            id="exe",
        ),
        pytest.param(
            {"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}},
            LIMITS,
            "audio",
            id="audio",
        ),
    ],
)
def test_content_rejections(part: dict[str, Any], limits: ContentLimits, match: str) -> None:
    """Unsupported or oversized content gets a clear 400 naming the part."""
    with pytest.raises(InvalidRequest, match=match) as caught:
        _plan(_parts(part), limits=limits)
    assert caught.value.param == "messages[0].content[1]"


def test_remote_image_when_fetched() -> None:
    """A remote image URL fetched by the HTTP layer is sent as bytes."""
    limits = replace(
        LIMITS, fetched_images={"https://example.com/cat.png": ("image/png", b"\x89PNG")}
    )
    body = _plan(
        _parts({"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}),
        limits=limits,
    ).body
    assert (
        body["messages"][0]["content"][1]["image"]["source"]["bytes"]
        == base64.b64encode(b"\x89PNG").decode()
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("report.v2", "report-v2", id="dot"),
        pytest.param("a   b", "a b", id="spaces"),
        pytest.param("ünïcode/../path", "n-code-path", id="unicode-and-slashes"),
        pytest.param("[ok] (fine)-name", "[ok] (fine)-name", id="allowed-punctuation"),
    ],
)
def test_sanitize_document_name(name: str, expected: str) -> None:
    """Document names keep only what Bedrock accepts."""
    assert sanitize_document_name(name) == expected


REASONING_CASES = [
    pytest.param(
        CLAUDE_37,
        {"reasoning_effort": "low"},
        {
            "additionalModelRequestFields": {
                "thinking": {"type": "enabled", "budget_tokens": 1024}
            },
            "inferenceConfig": {"maxTokens": 5120},
        },
        id="claude-low-sets-budget-and-room",
    ),
    pytest.param(
        CLAUDE_37,
        {
            "reasoning_effort": "high",
            "max_tokens": 8000,
            "temperature": 0.3,
            "top_p": 0.5,
            "top_k": 5,
        },
        {
            "additionalModelRequestFields": {
                "thinking": {"type": "enabled", "budget_tokens": 7999}
            },
            "inferenceConfig": {"maxTokens": 8000},
        },
        id="claude-high-within-max-tokens-drops-sampling",
    ),
    pytest.param(
        CLAUDE_37,
        {"thinking": {"type": "enabled", "budget_tokens": 2000}, "max_tokens": 3000},
        {
            "additionalModelRequestFields": {
                "thinking": {"type": "enabled", "budget_tokens": 2000}
            },
            "inferenceConfig": {"maxTokens": 3000},
        },
        id="explicit-budget",
    ),
    pytest.param(
        capabilities_for("openai.gpt-oss-120b-1:0"),
        {"reasoning_effort": "high"},
        {"additionalModelRequestFields": {"reasoning_effort": "high"}},
        id="gpt-oss-effort",
    ),
    pytest.param(
        capabilities_for("amazon.nova-2-lite-v1:0"),
        {"reasoning_effort": "medium"},
        {
            "additionalModelRequestFields": {
                "reasoningConfig": {"type": "enabled", "maxReasoningEffort": "medium"}
            }
        },
        id="nova-effort",
    ),
    pytest.param(CLAUDE_37, {"reasoning_effort": "none"}, {}, id="effort-none-is-off"),
    pytest.param(
        capabilities_for("deepseek.r1-v1:0"),
        {"reasoning_effort": "high"},
        {},
        id="always-reasoning-family",
    ),
]


@pytest.mark.parametrize(("caps", "params", "expected"), REASONING_CASES)
def test_reasoning(caps: Capabilities, params: dict[str, Any], expected: dict[str, Any]) -> None:
    """reasoning_effort / thinking map per family; with Claude thinking, sampling is dropped."""
    body = _plan([{"role": "user", "content": "q"}], caps, **params).body
    assert {
        k: v for k, v in body.items() if k in ("additionalModelRequestFields", "inferenceConfig")
    } == expected


def test_reasoning_refused_for_plain_model() -> None:
    """Asking a model without reasoning to reason is a 400, not silently ignored."""
    with pytest.raises(InvalidRequest, match="reasoning"):
        _plan(
            [{"role": "user", "content": "q"}],
            capabilities_for("meta.llama3-8b-instruct-v1:0"),
            reasoning_effort="high",
        )


def test_thinking_blocks_rebuilt_from_reasoning_details() -> None:
    """Signed thinking and redacted blocks returned earlier are replayed before the tool use."""
    details = [
        {
            "type": "reasoning.text",
            "text": "hmm",
            "signature": "sig",
            "format": "anthropic-claude-v1",
            "index": 0,
        },
        {"type": "reasoning.encrypted", "data": "cmVk", "index": 1},
    ]
    messages = [
        TOOL_TURNS[0],
        {"role": "assistant", "content": None, "tool_calls": [CALL], "reasoning_details": details},
        TOOL_TURNS[2],
    ]
    body = _plan(messages, CLAUDE_37, tools=[WEATHER], reasoning_effort="low").body
    assert body["messages"][1]["content"][:2] == [
        {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "sig"}}},
        {"reasoningContent": {"redactedContent": "cmVk"}},
    ]
    assert "thinking" in body["additionalModelRequestFields"]


def test_open_tool_loop_without_thinking_blocks_turns_thinking_off() -> None:
    """A history whose last tool call lost its thinking still works: thinking is off for it."""
    plan = _plan(TOOL_TURNS, CLAUDE_37, tools=[WEATHER], reasoning_effort="low")
    assert plan.thinking is False
    assert "additionalModelRequestFields" not in plan.body


def test_temperature_and_top_p_together_refused_where_forbidden() -> None:
    """Claude 4.5 takes temperature or top_p, not both: a clear 400."""
    with pytest.raises(InvalidRequest, match="not both"):
        _plan([{"role": "user", "content": "q"}], CLAUDE_45, temperature=0.5, top_p=0.9)


@pytest.mark.parametrize(
    ("caps", "expected"),
    [
        pytest.param(CLAUDE_37, {"additionalModelRequestFields": {"top_k": 7}}, id="claude"),
        pytest.param(
            capabilities_for("amazon.nova-pro-v1:0"),
            {"additionalModelRequestFields": {"inferenceConfig": {"topK": 7}}},
            id="nova",
        ),
    ],
)
def test_top_k(caps: Capabilities, expected: dict[str, Any]) -> None:
    """top_k goes where each family takes it."""
    body = _plan([{"role": "user", "content": "q"}], caps, top_k=7).body
    assert {k: v for k, v in body.items() if k == "additionalModelRequestFields"} == expected


def test_top_k_refused_elsewhere() -> None:
    """top_k on a family without it is a 400."""
    with pytest.raises(InvalidRequest, match="top_k"):
        _plan(
            [{"role": "user", "content": "q"}],
            capabilities_for("meta.llama3-8b-instruct-v1:0"),
            top_k=7,
        )


def test_prefill_refused_where_forbidden() -> None:
    """A conversation ending with the assistant is refused for families without prefill."""
    caps = capabilities_for("anthropic.claude-opus-4-6-v1")
    with pytest.raises(InvalidRequest, match="ends with an assistant"):
        _plan([{"role": "user", "content": "q"}, {"role": "assistant", "content": "{"}], caps)
    body = _plan(
        [{"role": "user", "content": "q"}, {"role": "assistant", "content": "{"}], CLAUDE_37
    ).body
    assert body["messages"][-1] == {"role": "assistant", "content": [{"text": "{"}]}


def test_system_prompt_folded_for_families_without_it() -> None:
    """Families without system prompts get the system text at the start of the first user turn."""
    body = _plan(
        [{"role": "system", "content": "rules"}, {"role": "user", "content": "q"}],
        capabilities_for("mistral.mistral-7b-instruct-v0:2"),
    ).body
    assert "system" not in body
    assert body["messages"][0]["content"] == [{"text": "rules"}, {"text": "q"}]


@pytest.mark.parametrize(
    ("response_format", "schema"),
    [
        pytest.param({"type": "json_object"}, {"type": "object"}, id="json-object"),
        pytest.param(
            {
                "type": "json_schema",
                "json_schema": {
                    "name": "person",
                    "schema": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}},
                        "required": ["name"],
                    },
                },
            },
            {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
            id="json-schema",
        ),
    ],
)
def test_response_format_forces_a_json_tool(
    response_format: dict[str, Any], schema: dict[str, Any]
) -> None:
    """JSON response formats force one tool whose input schema is the wanted JSON."""
    plan = _plan([{"role": "user", "content": "q"}], response_format=response_format)
    assert plan.json_tool == JSON_TOOL
    config = plan.body["toolConfig"]
    assert config["toolChoice"] == {"tool": {"name": JSON_TOOL}}
    assert config["tools"][0]["toolSpec"]["inputSchema"] == {"json": schema}


def test_cache_control_markers_become_cache_points() -> None:
    """cache_control on a part puts a cachePoint right after it, on families that cache."""
    messages = [
        {
            "role": "system",
            "content": [
                {"type": "text", "text": "long rules", "cache_control": {"type": "ephemeral"}}
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "doc", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "q"},
            ],
        },
    ]
    body = _plan(messages, CLAUDE_37).body
    assert body["system"] == [{"text": "long rules"}, {"cachePoint": {"type": "default"}}]
    assert body["messages"][0]["content"] == [
        {"text": "doc"},
        {"cachePoint": {"type": "default"}},
        {"text": "q"},
    ]
    plain = _plan(messages, capabilities_for("meta.llama3-8b-instruct-v1:0")).body
    assert "cachePoint" not in str(plain)


def test_automatic_caching_switch() -> None:
    """With chat.prompt_caching on, cache points follow the system prompt and the last user turn."""
    messages = [
        {"role": "system", "content": "rules"},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
    ]
    body = _plan(messages, CLAUDE_37, caching=True).body
    assert body["system"][-1] == {"cachePoint": {"type": "default"}}
    assert body["messages"][-1]["content"][-1] == {"cachePoint": {"type": "default"}}
    assert body["messages"][0]["content"] == [{"text": "a"}]
