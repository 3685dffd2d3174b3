"""Converse wire shapes, named after the AWS shapes in botocore's ``bedrock-runtime`` model.

Requests and responses are kept apart; only the members the gateway uses are spelled out.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

__all__ = [
    "ContentBlock",
    "ConversationRole",
    "ConverseOutput",
    "ConverseRequest",
    "ConverseResponse",
    "InferenceConfiguration",
    "Message",
    "StopReason",
    "SystemContentBlock",
    "TokenUsage",
]

ConversationRole = Literal["user", "assistant"]

StopReason = Literal[
    "end_turn",
    "tool_use",
    "max_tokens",
    "stop_sequence",
    "guardrail_intervened",
    "content_filtered",
    "malformed_model_output",
    "malformed_tool_use",
    "model_context_window_exceeded",
]


# --- request ---------------------------------------------------------------------------


class ContentBlock(TypedDict, total=False):
    """Exactly one member is set."""

    text: str
    image: dict[str, Any]
    document: dict[str, Any]
    toolUse: dict[str, Any]
    toolResult: dict[str, Any]
    reasoningContent: dict[str, Any]
    cachePoint: dict[str, Any]


class SystemContentBlock(TypedDict, total=False):
    text: str
    cachePoint: dict[str, Any]


class Message(TypedDict):
    role: ConversationRole
    content: list[ContentBlock]


class InferenceConfiguration(TypedDict, total=False):
    maxTokens: int
    temperature: float
    topP: float
    stopSequences: list[str]


class ConverseRequest(TypedDict):
    messages: list[Message]
    system: NotRequired[list[SystemContentBlock]]
    inferenceConfig: NotRequired[InferenceConfiguration]
    toolConfig: NotRequired[dict[str, Any]]
    additionalModelRequestFields: NotRequired[dict[str, Any]]


# --- response --------------------------------------------------------------------------


class TokenUsage(TypedDict):
    inputTokens: int
    outputTokens: int
    totalTokens: int
    cacheReadInputTokens: NotRequired[int]
    cacheWriteInputTokens: NotRequired[int]


class ConverseOutput(TypedDict):
    message: Message


class ConverseResponse(TypedDict):
    output: ConverseOutput
    stopReason: StopReason
    usage: TokenUsage
    metrics: NotRequired[dict[str, Any]]
