"""OpenAI chat request -> Converse request. Pure: no I/O, inputs are never mutated.

Decisions that change the shape of a conversation (all forced by Converse's rules):
- system and developer messages, wherever they stand, become Converse ``system`` blocks in
  order (for a family without system prompts they open the first user turn instead);
- consecutive messages of the same role are merged into one turn (tool results are user turns);
- a conversation that starts with the assistant gets a short user turn in front of it, because
  Converse requires the first turn to be the user's;
- an assistant message with no content is left out (Converse rejects empty text blocks);
- ``tool_choice: "none"`` with tool turns in the history sends those turns as text (tools.py);
- a model without tool use is offered no tools under ``auto`` (it cannot call them anyway);
  only ``required`` or a named function for such a model is refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bedrock_gw.bedrock.converse_types import (
    ContentBlock,
    ConversationRole,
    ConverseRequest,
    InferenceConfiguration,
    Message,
    SystemContentBlock,
)
from bedrock_gw.errors import InvalidRequest
from bedrock_gw.models.capabilities import Capabilities
from bedrock_gw.openai.chat_request import (
    AssistantMessage,
    ChatCompletionRequest,
    DeveloperMessage,
    SystemMessage,
    TextPart,
    ToolMessage,
    UserMessage,
)
from bedrock_gw.translate import tools as tool_mapping
from bedrock_gw.translate.content import ContentLimits, content_blocks
from bedrock_gw.translate.reasoning import ReasoningPlan, reasoning_blocks, reasoning_plan

__all__ = ["LEADING_USER_TURN", "ChatOptions", "ConversePlan", "to_converse"]

LEADING_USER_TURN = "(conversation start)"
"""Text of the user turn put before a conversation that the assistant opens."""

JSON_TOOL = "json_response"
"""Name of the tool forced to carry a ``response_format`` JSON answer."""

_MAX_STOP_SEQUENCES = 4
_MAX_CACHE_POINTS = 4
_CACHE_POINT: ContentBlock = {"cachePoint": {"type": "default"}}

ToolMode = Literal["off", "native", "history", "text"]


@dataclass(frozen=True, slots=True)
class ChatOptions:
    """What the translation needs to know besides the request: the model and the config."""

    capabilities: Capabilities
    content: ContentLimits
    prompt_caching: bool = False
    reasoning_budgets: Mapping[str, int] | None = None


@dataclass(frozen=True, slots=True)
class ConversePlan:
    body: ConverseRequest
    json_tool: str | None = None
    """The forced tool whose input is the JSON answer (``response_format``), if any."""
    thinking: bool = False


_DEFAULT_BUDGETS: Mapping[str, int] = {"low": 1024, "medium": 4096, "high": 16384}


def to_converse(request: ChatCompletionRequest, options: ChatOptions) -> ConversePlan:
    """Build the Converse request body (everything but the model id, which goes in the path)."""
    caps = options.capabilities
    _reject_unsupported(request, caps)
    reasoning = reasoning_plan(request, caps, options.reasoning_budgets or _DEFAULT_BUDGETS)
    if reasoning.thinking and _open_tool_loop_without_thinking(request):
        reasoning = ReasoningPlan()
    thinking = reasoning.thinking
    mode = _tool_mode(request, caps)
    system, turns = _conversation(request, options, mode, thinking)
    if system and not caps.system_prompt:
        text = "\n\n".join(block["text"] for block in system if "text" in block)
        turns = _prepend_to_first_user(turns, text)
        system = []
    if not turns:
        raise InvalidRequest(
            "messages must contain at least one user or assistant message with content",
            param="messages",
        )
    if turns[0]["role"] == "assistant":
        turns.insert(0, {"role": "user", "content": [{"text": LEADING_USER_TURN}]})
    if turns[-1]["role"] == "assistant" and not caps.prefill:
        raise InvalidRequest(
            "this model does not accept a conversation that ends with an assistant message",
            param="messages",
        )
    if caps.prompt_caching:
        system, turns = _cache_points(system, turns, automatic=options.prompt_caching)
    else:
        system, turns = _without_cache_points(system), [_strip_cache(turn) for turn in turns]
    body: ConverseRequest = {"messages": turns}
    if system:
        body["system"] = system
    json_tool = _add_tools(body, request, mode, turns)
    _add_inference(body, request, caps, reasoning)
    if reasoning.additional_fields:
        _merge_additional(body, reasoning.additional_fields)
    return ConversePlan(body, json_tool, thinking)


def _reject_unsupported(request: ChatCompletionRequest, caps: Capabilities) -> None:
    if request.n is not None and request.n > 1:
        raise InvalidRequest("n > 1 is not supported: Bedrock returns one choice", param="n")
    if request.tools and not caps.tools and request.tool_choice not in (None, "auto", "none"):
        raise InvalidRequest("this model does not support tools", param="tools")
    fmt = (request.response_format or {}).get("type")
    if fmt not in (None, "text", "json_object", "json_schema"):
        raise InvalidRequest(
            f"response_format type {fmt!r} is not supported", param="response_format"
        )
    if fmt in ("json_object", "json_schema"):
        if not caps.tools:
            raise InvalidRequest(
                "JSON response_format needs tool support, which this model lacks",
                param="response_format",
            )
        if request.tools:
            raise InvalidRequest(
                "response_format JSON together with tools is not supported", param="response_format"
            )


def _tool_mode(request: ChatCompletionRequest, caps: Capabilities) -> ToolMode:
    history = any(
        isinstance(m, ToolMessage) or (isinstance(m, AssistantMessage) and m.tool_calls)
        for m in request.messages
    )
    # A model without tool use, offered tools under "auto", is a model that chose not to call
    # them: Open WebUI offers its built-in tools on every turn, whatever the model.
    if request.tool_choice == "none" or not caps.tools:
        return "text" if history else "off"
    if request.tools:
        return "native"
    return "history" if history else "off"


def _open_tool_loop_without_thinking(request: ChatCompletionRequest) -> bool:
    """Claude requires the assistant turn of an open tool loop to start with its signed
    thinking; a client that dropped it cannot continue with thinking on, so it is turned off."""
    for message in reversed(request.messages):
        if isinstance(message, ToolMessage):
            continue
        if isinstance(message, AssistantMessage) and message.tool_calls:
            return not reasoning_blocks(message.reasoning_details or [])
        return False
    return False


def _conversation(
    request: ChatCompletionRequest, options: ChatOptions, mode: ToolMode, thinking: bool
) -> tuple[list[SystemContentBlock], list[Message]]:
    system: list[SystemContentBlock] = []
    turns: list[Message] = []
    for index, message in enumerate(request.messages):
        where = f"messages[{index}]"
        if isinstance(message, SystemMessage | DeveloperMessage):
            system.extend(_system_blocks(message.content))
            continue
        role: ConversationRole
        if isinstance(message, UserMessage):
            role, blocks = "user", _user_blocks(message, options.content, where)
        elif isinstance(message, AssistantMessage):
            role, blocks = "assistant", _assistant_blocks(message, mode, thinking, where)
        else:
            role, blocks = "user", _tool_result_blocks(message, mode)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1] = {"role": role, "content": [*turns[-1]["content"], *blocks]}
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def _system_blocks(content: str | list[TextPart]) -> list[SystemContentBlock]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks: list[SystemContentBlock] = []
    for part in content:
        if part.text:
            blocks.append({"text": part.text})
        if part.cache_control is not None:
            blocks.append({"cachePoint": {"type": "default"}})
    return blocks


def _user_blocks(message: UserMessage, limits: ContentLimits, where: str) -> list[ContentBlock]:
    if isinstance(message.content, str):
        if not message.content:
            raise InvalidRequest(f"{where} has empty content", param=f"{where}.content")
        return [{"text": message.content}]
    blocks: list[ContentBlock] = []
    for block, cache_after in content_blocks(message.content, limits, f"{where}.content"):
        blocks.append(block)
        if cache_after:
            blocks.append(_CACHE_POINT)
    if not any("cachePoint" not in block for block in blocks):
        raise InvalidRequest(f"{where} has empty content", param=f"{where}.content")
    return blocks


def _assistant_blocks(
    message: AssistantMessage, mode: ToolMode, thinking: bool, where: str
) -> list[ContentBlock]:
    blocks: list[ContentBlock] = []
    if thinking and message.reasoning_details:
        blocks.extend(reasoning_blocks(message.reasoning_details))
    text = _text_of(message.content)
    calls = message.tool_calls or []
    if mode == "text" and calls:
        text = "\n".join([text, *(tool_mapping.render_tool_call_as_text(c) for c in calls)]).strip()
    if text.strip():
        blocks.append({"text": text})
    if mode != "text":
        blocks.extend(
            tool_mapping.tool_use_block(call, f"{where}.tool_calls[{i}]")
            for i, call in enumerate(calls)
        )
    # Thinking blocks alone are not a turn.
    return blocks if any("reasoningContent" not in b for b in blocks) else []


def _tool_result_blocks(message: ToolMessage, mode: ToolMode) -> list[ContentBlock]:
    text = _text_of(
        [part for part in message.content if isinstance(part, TextPart)]
        if isinstance(message.content, list)
        else message.content
    )
    if mode == "text":
        return [{"text": tool_mapping.render_tool_result_as_text(message.tool_call_id, text)}]
    return [tool_mapping.tool_result_block(message.tool_call_id, text)]


def _text_of(content: str | list[TextPart] | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.text for part in content)


def _prepend_to_first_user(turns: list[Message], text: str) -> list[Message]:
    for index, turn in enumerate(turns):
        if turn["role"] == "user":
            merged: Message = {"role": "user", "content": [{"text": text}, *turn["content"]]}
            return [*turns[:index], merged, *turns[index + 1 :]]
    return [{"role": "user", "content": [{"text": text}]}, *turns]


def _cache_points(
    system: list[SystemContentBlock], turns: list[Message], *, automatic: bool
) -> tuple[list[SystemContentBlock], list[Message]]:
    """Explicit markers always; with automatic caching also after the system prompt and the
    last user turn, so the next request of the conversation reuses the prefix. At most four."""
    if automatic:
        if system and "cachePoint" not in system[-1]:
            system = [*system, {"cachePoint": {"type": "default"}}]
        for index in range(len(turns) - 1, -1, -1):
            turn = turns[index]
            if turn["role"] == "user" and "cachePoint" not in turn["content"][-1]:
                turns = [*turns]
                turns[index] = {"role": "user", "content": [*turn["content"], _CACHE_POINT]}
                break
    budget = _MAX_CACHE_POINTS
    # Keep the last points: they cover the longest prefixes.
    kept_turns: list[Message] = []
    for turn in reversed(turns):
        content: list[ContentBlock] = []
        for block in reversed(turn["content"]):
            if "cachePoint" in block:
                if budget == 0:
                    continue
                budget -= 1
            content.append(block)
        kept_turns.append({"role": turn["role"], "content": content[::-1]})
    kept_system: list[SystemContentBlock] = []
    for sys_block in reversed(system):
        if "cachePoint" in sys_block:
            if budget == 0:
                continue
            budget -= 1
        kept_system.append(sys_block)
    return kept_system[::-1], kept_turns[::-1]


def _without_cache_points(system: list[SystemContentBlock]) -> list[SystemContentBlock]:
    return [block for block in system if "cachePoint" not in block]


def _strip_cache(turn: Message) -> Message:
    return {"role": turn["role"], "content": [b for b in turn["content"] if "cachePoint" not in b]}


def _add_tools(
    body: ConverseRequest, request: ChatCompletionRequest, mode: ToolMode, turns: list[Message]
) -> str | None:
    response_format = request.response_format or {}
    if response_format.get("type") in ("json_object", "json_schema"):
        body["toolConfig"] = {
            "tools": [_json_tool(response_format)],
            "toolChoice": {"tool": {"name": JSON_TOOL}},
        }
        return JSON_TOOL
    if mode == "native":
        config = tool_mapping.tool_config(request.tools or [], request.tool_choice)
        if config is not None:
            body["toolConfig"] = config
    elif mode == "history":
        names = [
            block["toolUse"]["name"]
            for turn in turns
            for block in turn["content"]
            if "toolUse" in block
        ]
        body["toolConfig"] = tool_mapping.history_tool_config(names)
    return None


def _json_tool(response_format: Mapping[str, Any]) -> dict[str, Any]:
    schema: Any = {"type": "object"}
    description = "Give the answer as this tool's input: a JSON object."
    if response_format.get("type") == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, Mapping) or not isinstance(spec.get("schema"), Mapping):
            raise InvalidRequest(
                "response_format.json_schema.schema must be a JSON schema object",
                param="response_format",
            )
        schema = dict(spec["schema"])
        if isinstance(spec.get("description"), str):
            description = f"{description} {spec['description']}"
    if schema.get("type") != "object":
        raise InvalidRequest(
            "response_format schemas must describe a JSON object", param="response_format"
        )
    return {
        "toolSpec": {"name": JSON_TOOL, "description": description, "inputSchema": {"json": schema}}
    }


def _add_inference(
    body: ConverseRequest,
    request: ChatCompletionRequest,
    caps: Capabilities,
    reasoning: ReasoningPlan,
) -> None:
    config: InferenceConfiguration = {}
    max_tokens = reasoning.max_tokens or request.max_completion_tokens or request.max_tokens
    if max_tokens is not None:
        config["maxTokens"] = max_tokens
    # With thinking on, Claude only takes its default sampling: those parameters are dropped.
    if not reasoning.thinking:
        if (
            request.temperature is not None
            and request.top_p is not None
            and not caps.temperature_with_top_p
        ):
            raise InvalidRequest("this model accepts temperature or top_p, not both", param="top_p")
        if request.temperature is not None:
            config["temperature"] = request.temperature
        if request.top_p is not None:
            config["topP"] = request.top_p
        if request.top_k is not None:
            _add_top_k(body, caps, request.top_k)
    if request.stop is not None:
        stops = [request.stop] if isinstance(request.stop, str) else list(request.stop)
        stops = [stop for stop in stops if stop]
        if len(stops) > _MAX_STOP_SEQUENCES:
            raise InvalidRequest(
                f"at most {_MAX_STOP_SEQUENCES} stop sequences are supported", param="stop"
            )
        if stops:
            config["stopSequences"] = stops
    if config:
        body["inferenceConfig"] = config


def _add_top_k(body: ConverseRequest, caps: Capabilities, top_k: int) -> None:
    if caps.top_k in {"anthropic", "plain"}:
        _merge_additional(body, {"top_k": top_k})
    elif caps.top_k == "nova":
        _merge_additional(body, {"inferenceConfig": {"topK": top_k}})
    else:
        raise InvalidRequest("this model does not support top_k", param="top_k")


def _merge_additional(body: ConverseRequest, fields: Mapping[str, Any]) -> None:
    merged = dict(body.get("additionalModelRequestFields", {}))
    merged.update(json.loads(json.dumps(fields)))  # a deep copy of plain JSON data
    body["additionalModelRequestFields"] = merged
