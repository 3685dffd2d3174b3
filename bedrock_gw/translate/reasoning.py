"""Reasoning: OpenAI's ``reasoning_effort`` (or an explicit thinking budget) -> each family's
request fields, and Claude's signed thinking blocks <-> ``reasoning_details``. Pure, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bedrock_gw.bedrock.converse_types import ContentBlock
from bedrock_gw.errors import InvalidRequest
from bedrock_gw.models.capabilities import Capabilities
from bedrock_gw.openai.chat_request import ChatCompletionRequest, ReasoningDetail

__all__ = [
    "CLAUDE_FORMAT",
    "MIN_THINKING_BUDGET",
    "ReasoningPlan",
    "reasoning_blocks",
    "reasoning_detail",
    "reasoning_plan",
]

MIN_THINKING_BUDGET = 1024
"""Claude's smallest thinking budget."""
CLAUDE_FORMAT = "anthropic-claude-v1"
_OFF = (None, "none", "minimal")
# Room left for the answer when the client set no max_tokens and thinking takes a budget.
_ANSWER_ROOM = 4096


@dataclass(frozen=True, slots=True)
class ReasoningPlan:
    additional_fields: dict[str, Any] = field(default_factory=dict)
    thinking: bool = False
    """Claude thinking is on: sampling parameters must go and signed blocks be replayed."""
    max_tokens: int | None = None
    """The maxTokens to send, when thinking needs room beyond its budget."""


def reasoning_plan(
    request: ChatCompletionRequest, capabilities: Capabilities, budgets: Mapping[str, int]
) -> ReasoningPlan:
    effort = request.reasoning_effort
    explicit = request.thinking
    wants = (explicit is not None and explicit.type == "enabled") or effort not in _OFF
    if not wants or capabilities.reasoning == "always":
        return ReasoningPlan()
    style = capabilities.reasoning
    if style == "none":
        raise InvalidRequest(
            "this model does not support reasoning",
            param="reasoning_effort" if effort else "thinking",
        )
    level = effort if effort not in _OFF else "medium"
    if style == "openai_effort":
        return ReasoningPlan({"reasoning_effort": level})
    if style == "nova_effort":
        return ReasoningPlan({"reasoningConfig": {"type": "enabled", "maxReasoningEffort": level}})
    budget = (explicit.budget_tokens if explicit is not None else None) or budgets[str(level)]
    return _claude_plan(request, capabilities, budget)


def _claude_plan(
    request: ChatCompletionRequest, capabilities: Capabilities, budget: int
) -> ReasoningPlan:
    limit = request.max_completion_tokens or request.max_tokens
    if limit is None:
        limit = budget + _ANSWER_ROOM
        if capabilities.max_output_tokens is not None:
            limit = min(limit, capabilities.max_output_tokens)
    # As with OpenAI's reasoning models, max tokens bounds reasoning and answer together.
    budget = min(budget, limit - 1)
    if budget < MIN_THINKING_BUDGET:
        raise InvalidRequest(
            f"max_tokens must be above {MIN_THINKING_BUDGET} for this model to reason",
            param="max_tokens",
        )
    return ReasoningPlan(
        {"thinking": {"type": "enabled", "budget_tokens": budget}}, thinking=True, max_tokens=limit
    )


def reasoning_blocks(details: list[ReasoningDetail]) -> list[ContentBlock]:
    """Claude's thinking blocks rebuilt from ``reasoning_details`` the client sent back."""
    blocks: list[ContentBlock] = []
    for detail in details:
        if detail.type == "reasoning.text" and detail.text is not None and detail.signature:
            blocks.append(
                {
                    "reasoningContent": {
                        "reasoningText": {"text": detail.text, "signature": detail.signature}
                    }
                }
            )
        elif detail.type == "reasoning.encrypted" and detail.data:
            blocks.append({"reasoningContent": {"redactedContent": detail.data}})
    return blocks


def reasoning_detail(block: Mapping[str, Any], index: int) -> dict[str, Any] | None:
    """The ``reasoning_details`` item for a Converse ``reasoningContent`` block."""
    text_part = block.get("reasoningText")
    if isinstance(text_part, Mapping) and isinstance(text_part.get("text"), str):
        detail: dict[str, Any] = {
            "type": "reasoning.text",
            "text": text_part["text"],
            "format": CLAUDE_FORMAT,
            "index": index,
        }
        if isinstance(text_part.get("signature"), str):
            detail["signature"] = text_part["signature"]
        return detail
    redacted = block.get("redactedContent")
    if isinstance(redacted, str):
        return {
            "type": "reasoning.encrypted",
            "data": redacted,
            "format": CLAUDE_FORMAT,
            "index": index,
        }
    return None
