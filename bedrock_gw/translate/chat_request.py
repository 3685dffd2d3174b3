"""OpenAI chat request -> Converse request. Pure: no I/O, inputs are never mutated.

Decisions that change the shape of a conversation (all forced by Converse's rules):
- system and developer messages, wherever they stand, become Converse ``system`` blocks in order;
- consecutive messages of the same role are merged into one turn;
- a conversation that starts with the assistant gets a short user turn in front of it, because
  Converse requires the first turn to be the user's;
- an assistant message with no content is left out (Converse rejects empty text blocks).
"""

from __future__ import annotations

from collections.abc import Sequence

from bedrock_gw.bedrock.converse_types import (
    ContentBlock,
    ConversationRole,
    ConverseRequest,
    InferenceConfiguration,
    Message,
    SystemContentBlock,
)
from bedrock_gw.errors import InvalidRequest
from bedrock_gw.openai.chat_request import (
    AssistantMessage,
    ChatCompletionRequest,
    ChatMessage,
    DeveloperMessage,
    SystemMessage,
    TextPart,
    ToolMessage,
    UserMessage,
)

__all__ = ["LEADING_USER_TURN", "to_converse"]

LEADING_USER_TURN = "(conversation start)"
"""Text of the user turn put before a conversation that the assistant opens."""

_MAX_STOP_SEQUENCES = 4


def to_converse(request: ChatCompletionRequest) -> ConverseRequest:
    """Build the Converse request body (everything but the model id, which goes in the path)."""
    _reject_unsupported(request)
    system: list[SystemContentBlock] = []
    turns: list[Message] = []
    for index, message in enumerate(request.messages):
        if isinstance(message, SystemMessage | DeveloperMessage):
            text = _text_of(message.content)
            if text:
                system.append({"text": text})
            continue
        role, blocks = _turn(message, index)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1] = {"role": role, "content": [*turns[-1]["content"], *blocks]}
        else:
            turns.append({"role": role, "content": blocks})
    if not turns:
        raise InvalidRequest(
            "messages must contain at least one user or assistant message with content",
            param="messages",
        )
    if turns[0]["role"] == "assistant":
        turns.insert(0, {"role": "user", "content": [{"text": LEADING_USER_TURN}]})
    body: ConverseRequest = {"messages": turns}
    if system:
        body["system"] = system
    inference = _inference_config(request)
    if inference:
        body["inferenceConfig"] = inference
    return body


def _reject_unsupported(request: ChatCompletionRequest) -> None:
    if request.n is not None and request.n > 1:
        raise InvalidRequest("n > 1 is not supported: Bedrock returns one choice", param="n")
    if request.tools:
        raise InvalidRequest("tools are not supported by this gateway yet", param="tools")
    if request.tool_choice not in (None, "none", "auto"):
        raise InvalidRequest(
            "tool_choice needs tools, which are not supported yet", param="tool_choice"
        )
    if request.response_format and request.response_format.get("type") not in (None, "text"):
        raise InvalidRequest(
            "response_format other than text is not supported yet", param="response_format"
        )
    if request.reasoning_effort is not None:
        raise InvalidRequest(
            "reasoning_effort is not supported by this gateway yet", param="reasoning_effort"
        )


def _turn(message: ChatMessage, index: int) -> tuple[ConversationRole, list[ContentBlock]]:
    where = f"messages[{index}]"
    if isinstance(message, UserMessage):
        blocks = _user_blocks(message, where)
        if not blocks:
            raise InvalidRequest(f"{where} has empty content", param=f"{where}.content")
        return "user", blocks
    if isinstance(message, AssistantMessage):
        if message.tool_calls:
            raise InvalidRequest(
                "assistant tool_calls are not supported by this gateway yet",
                param=f"{where}.tool_calls",
            )
        text = _text_of(message.content) if message.content is not None else ""
        return "assistant", [{"text": text}] if text.strip() else []
    if isinstance(message, ToolMessage):
        raise InvalidRequest(
            "tool messages are not supported by this gateway yet", param=f"{where}.role"
        )
    raise InvalidRequest(f"{where} has an unsupported role", param=f"{where}.role")


def _user_blocks(message: UserMessage, where: str) -> list[ContentBlock]:
    if isinstance(message.content, str):
        return [{"text": message.content}] if message.content else []
    blocks: list[ContentBlock] = []
    for part_index, part in enumerate(message.content):
        if isinstance(part, TextPart):
            if part.text:
                blocks.append({"text": part.text})
            continue
        raise InvalidRequest(
            f"content parts of type {part.type!r} are not supported by this gateway yet",
            param=f"{where}.content[{part_index}]",
        )
    return blocks


def _text_of(content: str | Sequence[TextPart]) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.text for part in content)


def _inference_config(request: ChatCompletionRequest) -> InferenceConfiguration:
    config: InferenceConfiguration = {}
    max_tokens = request.max_completion_tokens or request.max_tokens
    if max_tokens is not None:
        config["maxTokens"] = max_tokens
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.stop is not None:
        stops = [request.stop] if isinstance(request.stop, str) else list(request.stop)
        stops = [stop for stop in stops if stop]
        if len(stops) > _MAX_STOP_SEQUENCES:
            raise InvalidRequest(
                f"at most {_MAX_STOP_SEQUENCES} stop sequences are supported", param="stop"
            )
        if stops:
            config["stopSequences"] = stops
    return config
