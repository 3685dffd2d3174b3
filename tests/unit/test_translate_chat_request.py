"""OpenAI chat request -> Converse request, table-driven with plain data."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bedrock_gw.errors import InvalidRequest
from bedrock_gw.models.capabilities import DEFAULT, Capabilities
from bedrock_gw.openai.chat_request import ChatCompletionRequest
from bedrock_gw.translate.chat_request import (
    LEADING_USER_TURN,
    ChatOptions,
    ConversePlan,
    to_converse,
)
from bedrock_gw.translate.content import ContentLimits

LIMITS = ContentLimits(
    max_image_bytes=1000, max_document_bytes=1000, images_allowed=True, documents_allowed=True
)


def _req(messages: list[dict[str, Any]], **params: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": "m", "messages": messages, **params})


def _plan(
    request: ChatCompletionRequest,
    caps: Capabilities = DEFAULT,
    limits: ContentLimits = LIMITS,
    *,
    caching: bool = False,
) -> ConversePlan:
    return to_converse(request, ChatOptions(caps, limits, prompt_caching=caching))


CASES = [
    pytest.param(
        [{"role": "user", "content": "hi"}],
        {},
        {"messages": [{"role": "user", "content": [{"text": "hi"}]}]},
        id="single-user-string",
    ),
    pytest.param(
        [
            {"role": "system", "content": "be brief"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            },
        ],
        {},
        {
            "system": [{"text": "be brief"}],
            "messages": [{"role": "user", "content": [{"text": "a"}, {"text": "b"}]}],
        },
        id="system-and-text-parts",
    ),
    pytest.param(
        [
            {"role": "developer", "content": "rules"},
            {"role": "user", "content": "q"},
            {"role": "system", "content": [{"type": "text", "text": "late"}]},
        ],
        {},
        {
            "system": [{"text": "rules"}, {"text": "late"}],
            "messages": [{"role": "user", "content": [{"text": "q"}]}],
        },
        id="developer-and-late-system-become-system-blocks",
    ),
    pytest.param(
        [
            {"role": "user", "content": "one"},
            {"role": "user", "content": "two"},
            {"role": "assistant", "content": "three"},
            {"role": "assistant", "content": "four"},
            {"role": "user", "content": "five"},
        ],
        {},
        {
            "messages": [
                {"role": "user", "content": [{"text": "one"}, {"text": "two"}]},
                {"role": "assistant", "content": [{"text": "three"}, {"text": "four"}]},
                {"role": "user", "content": [{"text": "five"}]},
            ]
        },
        id="same-role-turns-merged",
    ),
    pytest.param(
        [
            {"role": "assistant", "content": "Hello! How can I help?"},
            {"role": "user", "content": "hi"},
        ],
        {},
        {
            "messages": [
                {"role": "user", "content": [{"text": LEADING_USER_TURN}]},
                {"role": "assistant", "content": [{"text": "Hello! How can I help?"}]},
                {"role": "user", "content": [{"text": "hi"}]},
            ]
        },
        id="assistant-first-gets-user-turn",
    ),
    pytest.param(
        [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": "b"},
        ],
        {},
        {"messages": [{"role": "user", "content": [{"text": "a"}, {"text": "b"}]}]},
        id="empty-assistant-dropped-and-neighbours-merged",
    ),
    pytest.param(
        [{"role": "user", "content": "x"}],
        {"max_tokens": 10, "temperature": 0.5, "top_p": 0.9, "stop": "END"},
        {
            "messages": [{"role": "user", "content": [{"text": "x"}]}],
            "inferenceConfig": {
                "maxTokens": 10,
                "temperature": 0.5,
                "topP": 0.9,
                "stopSequences": ["END"],
            },
        },
        id="inference-parameters",
    ),
    pytest.param(
        [{"role": "user", "content": "x"}],
        {"max_tokens": 10, "max_completion_tokens": 20, "stop": ["a", "b"]},
        {
            "messages": [{"role": "user", "content": [{"text": "x"}]}],
            "inferenceConfig": {"maxTokens": 20, "stopSequences": ["a", "b"]},
        },
        id="max-completion-tokens-wins",
    ),
    pytest.param(
        [{"role": "user", "content": "x"}],
        {"seed": 3, "frequency_penalty": 1, "presence_penalty": 1, "user": "u", "logit_bias": {}},
        {"messages": [{"role": "user", "content": [{"text": "x"}]}]},
        id="ignored-parameters-not-forwarded",
    ),
]


@pytest.mark.parametrize(("messages", "params", "expected"), CASES)
def test_to_converse(
    messages: list[dict[str, Any]], params: dict[str, Any], expected: dict[str, Any]
) -> None:
    """Each OpenAI request maps to exactly this Converse body."""
    assert _plan(_req(messages, **params)).body == expected


def test_does_not_mutate_input() -> None:
    """Translation leaves the parsed request untouched."""
    request = _req([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], stop=["x"])
    before = copy.deepcopy(request.model_dump())
    _plan(request)
    assert request.model_dump() == before


ERRORS = [
    pytest.param([{"role": "user", "content": "x"}], {"n": 2}, "n", id="n-above-one"),
    pytest.param([{"role": "user", "content": ""}], {}, "messages[0].content", id="empty-user"),
    pytest.param([{"role": "system", "content": "only"}], {}, "messages", id="system-only"),
    pytest.param(
        [{"role": "user", "content": "x"}],
        {"stop": ["1", "2", "3", "4", "5"]},
        "stop",
        id="too-many-stops",
    ),
]


@pytest.mark.parametrize(("messages", "params", "param"), ERRORS)
def test_rejections(messages: list[dict[str, Any]], params: dict[str, Any], param: str) -> None:
    """Requests Converse cannot honour fail with a 400 naming the parameter."""
    with pytest.raises(InvalidRequest) as caught:
        _plan(_req(messages, **params))
    assert caught.value.param == param
    assert caught.value.status == 400
