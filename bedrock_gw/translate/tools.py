"""OpenAI tools <-> Converse tool use. Pure, no I/O.

``tool_choice: "none"`` has no Converse equivalent. When no earlier turn used tools, the tools
are simply not sent. When the history holds tool turns, Converse insists on a ``toolConfig``,
which would let the model call tools again; so instead those turns are sent as plain text (see
``render_tool_call_as_text``) and no tools are offered.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from bedrock_gw.bedrock.converse_types import ContentBlock
from bedrock_gw.errors import InvalidRequest
from bedrock_gw.openai.chat_request import ToolCall

__all__ = [
    "history_tool_config",
    "render_tool_call_as_text",
    "render_tool_result_as_text",
    "tool_config",
    "tool_result_block",
    "tool_use_block",
]

# Converse's toolSpec.name pattern: letters, digits, '_' and '-', 1 to 64 characters.
_MAX_NAME = 64


def tool_config(
    tools: list[dict[str, Any]], tool_choice: Any, *, extra_tools: Iterable[dict[str, Any]] = ()
) -> dict[str, Any] | None:
    """The Converse ``toolConfig`` for OpenAI ``tools`` and ``tool_choice`` (None: no tools)."""
    specs = [_tool_spec(tool, index) for index, tool in enumerate(tools)]
    specs.extend(extra_tools)
    if not specs or tool_choice == "none":
        return None
    config: dict[str, Any] = {"tools": specs}
    choice = _tool_choice(tool_choice, {spec["toolSpec"]["name"] for spec in specs})
    if choice is not None:
        config["toolChoice"] = choice
    return config


def history_tool_config(names: Iterable[str]) -> dict[str, Any]:
    """A ``toolConfig`` naming the tools used in the history, for a request sent without tools
    (Converse rejects tool blocks without one). The schemas are unknown, so they are open."""
    return {
        "tools": [
            {"toolSpec": {"name": name, "inputSchema": {"json": {"type": "object"}}}}
            for name in sorted(set(names))
        ]
    }


def _tool_spec(tool: Mapping[str, Any], index: int) -> dict[str, Any]:
    param = f"tools[{index}]"
    function = tool.get("function")
    if tool.get("type") != "function" or not isinstance(function, Mapping):
        raise InvalidRequest("only tools of type 'function' are supported", param=param)
    name = function.get("name")
    if not isinstance(name, str) or not name or len(name) > _MAX_NAME:
        raise InvalidRequest("function.name must be 1 to 64 characters", param=f"{param}.function")
    schema = function.get("parameters") or {"type": "object", "properties": {}}
    if not isinstance(schema, Mapping):
        raise InvalidRequest("function.parameters must be a JSON schema object", param=param)
    spec: dict[str, Any] = {"name": name, "inputSchema": {"json": dict(schema)}}
    description = function.get("description")
    if isinstance(description, str) and description:
        spec["description"] = description
    return {"toolSpec": spec}


def _tool_choice(choice: Any, names: set[str]) -> dict[str, Any] | None:
    if choice is None or choice == "auto":
        return {"auto": {}}
    if choice == "required":
        return {"any": {}}
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, Mapping) else None
        if name not in names:
            raise InvalidRequest(f"tool_choice names an unknown tool {name!r}", param="tool_choice")
        return {"tool": {"name": name}}
    raise InvalidRequest(
        "tool_choice must be 'none', 'auto', 'required' or a named function", param="tool_choice"
    )


def tool_use_block(call: ToolCall, param: str) -> ContentBlock:
    return {
        "toolUse": {
            "toolUseId": call.id,
            "name": call.function.name,
            "input": _arguments(call, param),
        }
    }


def _arguments(call: ToolCall, param: str) -> dict[str, Any]:
    text = call.function.arguments.strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidRequest(
            f"tool call {call.id!r} has arguments that are not valid JSON", param=param
        ) from exc
    if not isinstance(value, dict):
        raise InvalidRequest(
            f"tool call {call.id!r} has arguments that are not a JSON object", param=param
        )
    return value


def tool_result_block(tool_call_id: str, text: str) -> ContentBlock:
    """A ``toolResult``; content that is a JSON object is kept as JSON, anything else as text."""
    content: list[dict[str, Any]]
    try:
        value = json.loads(text) if text.lstrip().startswith("{") else None
    except ValueError:
        value = None
    if isinstance(value, dict):
        content = [{"json": value}]
    else:
        # Converse rejects empty text; an empty tool output is still an answer.
        content = [{"text": text if text else "(empty)"}]
    return {"toolResult": {"toolUseId": tool_call_id, "content": content}}


def render_tool_call_as_text(call: ToolCall) -> str:
    return f"[called tool {call.function.name} with arguments {call.function.arguments or '{}'}]"


def render_tool_result_as_text(tool_call_id: str, text: str) -> str:
    return f"[result of tool call {tool_call_id}: {text}]"
