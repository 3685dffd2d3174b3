"""``POST /v1/chat/completions`` request body, as OpenAI documents it.

Top-level parameters are closed: an unknown one is rejected with 400, as OpenAI itself does.
Parameters OpenAI defines but Bedrock has no equivalent for are accepted and listed in
``IGNORED_PARAMETERS``; they never reach Bedrock. Fields inside messages that carry no meaning
for the model (client annotations) are ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "IGNORED_PARAMETERS",
    "AssistantMessage",
    "CacheControl",
    "ChatCompletionRequest",
    "ChatMessage",
    "ContentPart",
    "DeveloperMessage",
    "FilePart",
    "ImagePart",
    "ReasoningDetail",
    "StreamOptions",
    "SystemMessage",
    "TextPart",
    "ThinkingConfig",
    "ToolCall",
    "ToolMessage",
    "UserMessage",
]

IGNORED_PARAMETERS: frozenset[str] = frozenset(
    {"frequency_penalty", "presence_penalty", "seed", "logit_bias", "user", "min_p"}
)
"""Accepted for compatibility, never forwarded: Bedrock's Converse has no equivalent."""


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class CacheControl(_Part):
    type: Literal["ephemeral"] = "ephemeral"


class TextPart(_Part):
    type: Literal["text"]
    text: str
    cache_control: CacheControl | None = None
    """Anthropic-style marker: cache the prompt up to and including this part."""


class ImageUrl(_Part):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(_Part):
    type: Literal["image_url"]
    image_url: ImageUrl
    cache_control: CacheControl | None = None


class FileData(_Part):
    file_data: str | None = None
    """Base64 data, optionally as a data URL."""
    file_id: str | None = None
    filename: str | None = None


class FilePart(_Part):
    type: Literal["file"]
    file: FileData
    cache_control: CacheControl | None = None


class InputAudio(_Part):
    data: str
    format: str


class AudioPart(_Part):
    type: Literal["input_audio"]
    input_audio: InputAudio


ContentPart = Annotated[TextPart | ImagePart | FilePart | AudioPart, Field(discriminator="type")]


class FunctionCall(_Part):
    name: str
    arguments: str = ""
    """JSON text; OpenAI clients send ``""`` for a call without arguments."""


class ToolCall(_Part):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ReasoningDetail(_Part):
    """One item of an OpenRouter-style ``reasoning_details`` list, as this gateway returns it.

    Clients send these back unchanged on later assistant turns so that Claude's signed thinking
    blocks can be rebuilt (needed for thinking together with tool use).
    """

    type: Literal["reasoning.text", "reasoning.encrypted", "reasoning.summary"]
    text: str | None = None
    signature: str | None = None
    data: str | None = None
    """Redacted thinking, base64, for ``reasoning.encrypted``."""
    summary: str | None = None
    format: str | None = None
    index: int | None = None
    id: str | None = None


class SystemMessage(_Part):
    role: Literal["system"]
    content: str | list[TextPart]
    name: str | None = None


class DeveloperMessage(_Part):
    """The newer name for a system message; Open WebUI may send its system prompt this way."""

    role: Literal["developer"]
    content: str | list[TextPart]
    name: str | None = None


class UserMessage(_Part):
    role: Literal["user"]
    content: str | list[ContentPart]
    name: str | None = None


class AssistantMessage(_Part):
    role: Literal["assistant"]
    content: str | list[TextPart] | None = None
    tool_calls: list[ToolCall] | None = None
    refusal: str | None = None
    name: str | None = None
    reasoning_content: str | None = None
    """Reasoning text shown to the user earlier; informational (it carries no signature)."""
    reasoning_details: list[ReasoningDetail] | None = None


class ToolMessage(_Part):
    role: Literal["tool"]
    content: str | list[ContentPart]
    tool_call_id: str


ChatMessage = Annotated[
    SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage,
    Field(discriminator="role"),
]


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    include_usage: bool = False
    """Send a last chunk with ``usage`` and no choices before ``[DONE]``."""


class ThinkingConfig(BaseModel):
    """Extension: an explicit thinking budget, as Anthropic's API spells it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["enabled", "disabled"]
    budget_tokens: int | None = Field(default=None, ge=1024)


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    """Newer name of ``max_tokens``; wins when both are sent."""
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stop: str | list[str] | None = None
    n: int | None = Field(default=None, ge=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None = None
    thinking: ThinkingConfig | None = None
    """Extension: Claude's thinking budget, overriding ``reasoning_effort``."""
    top_k: int | None = Field(default=None, ge=1)
    """Extension: top-k sampling, for families that support it."""

    # Accepted, never forwarded: see IGNORED_PARAMETERS.
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    seed: int | None = None
    logit_bias: dict[str, float] | None = None
    user: str | None = None
    min_p: float | None = None
