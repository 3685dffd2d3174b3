"""What each model family can do: one table of data, looked up by base model id prefix.

Translation asks this table instead of testing model names here and there. To support a new
model, add a row: the first row whose prefix matches the base model id wins, so put specific
prefixes before general ones. Unknown models get ``DEFAULT``, which is permissive: Bedrock
then has the last word and its validation message reaches the client.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

__all__ = ["DEFAULT", "FAMILIES", "Capabilities", "capabilities_for"]

ReasoningStyle = Literal["none", "anthropic_budget", "openai_effort", "nova_effort", "always"]
"""How a family reasons: not at all; Claude's ``thinking`` with a token budget; an effort level
(gpt-oss's ``reasoning_effort``, Nova 2's ``reasoningConfig``); or always (DeepSeek-R1)."""

TopKStyle = Literal["none", "anthropic", "nova", "plain"]
"""Where ``top_k`` goes: nowhere; ``additionalModelRequestFields.top_k``; Nova's
``additionalModelRequestFields.inferenceConfig.topK``; or ``additionalModelRequestFields.top_k``
for families that name it plainly (Mistral, Llama do not take it through Converse)."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    tools: bool = True
    tool_streaming: bool = True
    """Tool use works with ConverseStream (some families only answer tools unstreamed)."""
    images: bool = True
    documents: bool = True
    system_prompt: bool = True
    reasoning: ReasoningStyle = "none"
    prompt_caching: bool = False
    temperature_with_top_p: bool = True
    """False where the model rejects both being set."""
    prefill: bool = True
    """Whether the conversation may end with an assistant turn for the model to continue."""
    top_k: TopKStyle = "none"
    max_output_tokens: int | None = None
    native_structured_output: bool = False
    """Converse ``outputConfig.textFormat`` with a JSON schema is honoured."""


DEFAULT = Capabilities()

_CLAUDE_3 = Capabilities(top_k="anthropic", max_output_tokens=4096)
_CLAUDE_35 = replace(_CLAUDE_3, max_output_tokens=8192)
_CLAUDE_THINKING = replace(
    _CLAUDE_35, reasoning="anthropic_budget", prompt_caching=True, max_output_tokens=64000
)
_CLAUDE_45 = replace(_CLAUDE_THINKING, temperature_with_top_p=False)
_CLAUDE_46 = replace(_CLAUDE_45, prefill=False, max_output_tokens=128000)
_NOVA = Capabilities(top_k="nova", prompt_caching=True, max_output_tokens=10000)
_LLAMA = Capabilities(documents=True, images=False, tool_streaming=False, max_output_tokens=2048)
_MISTRAL = Capabilities(images=False, tool_streaming=False, max_output_tokens=8192)

FAMILIES: Sequence[tuple[str, Capabilities]] = (
    ("anthropic.claude-opus-4-6", _CLAUDE_46),
    ("anthropic.claude-sonnet-4-6", _CLAUDE_46),
    ("anthropic.claude-opus-4-5", _CLAUDE_45),
    ("anthropic.claude-sonnet-4-5", _CLAUDE_45),
    ("anthropic.claude-haiku-4-5", _CLAUDE_45),
    ("anthropic.claude-opus-4", replace(_CLAUDE_THINKING, max_output_tokens=32000)),
    ("anthropic.claude-sonnet-4", _CLAUDE_THINKING),
    ("anthropic.claude-3-7-sonnet", _CLAUDE_THINKING),
    ("anthropic.claude-3-5-haiku", replace(_CLAUDE_35, prompt_caching=True, images=False)),
    ("anthropic.claude-3-5", _CLAUDE_35),
    ("anthropic.claude-3", _CLAUDE_3),
    ("anthropic.claude", Capabilities(images=False, documents=False, top_k="anthropic")),
    ("amazon.nova-micro", replace(_NOVA, images=False, documents=False)),
    ("amazon.nova-2", replace(_NOVA, reasoning="nova_effort", max_output_tokens=65000)),
    ("amazon.nova", _NOVA),
    ("amazon.titan-text", Capabilities(tools=False, images=False, documents=False)),
    ("meta.llama3-2-11b", replace(_LLAMA, images=True)),
    ("meta.llama3-2-90b", replace(_LLAMA, images=True)),
    ("meta.llama4", replace(_LLAMA, images=True, max_output_tokens=8192)),
    ("meta.llama3-1", _LLAMA),
    ("meta.llama3-3", _LLAMA),
    ("meta.llama", replace(_LLAMA, tools=False)),
    ("mistral.mistral-large", _MISTRAL),
    ("mistral.pixtral", replace(_MISTRAL, images=True)),
    ("mistral.mistral-7b", replace(_MISTRAL, tools=False, system_prompt=False)),
    ("mistral.mixtral", replace(_MISTRAL, tools=False, system_prompt=False)),
    ("mistral.", _MISTRAL),
    ("cohere.command-r", Capabilities(images=False, tool_streaming=False)),
    ("cohere.command", Capabilities(tools=False, images=False, documents=False)),
    ("deepseek.r1", Capabilities(tools=False, images=False, reasoning="always")),
    ("deepseek.", Capabilities(images=False)),
    ("openai.gpt-oss", Capabilities(images=False, documents=False, reasoning="openai_effort")),
    ("qwen.", Capabilities(images=False)),
)


def capabilities_for(base_model_id: str) -> Capabilities:
    # Regional profile ids ("us.anthropic...") share the base model's row.
    for prefix, capabilities in FAMILIES:
        if base_model_id.startswith(prefix):
            return capabilities
    return DEFAULT
