"""Bedrock listings -> offered models, and the allow/deny filters."""

from __future__ import annotations

from typing import Any

import pytest

from bedrock_gw.models.listing import build_entries, is_allowed, to_openai_model

ARN = "arn:aws:bedrock:us-east-1::foundation-model/"


def _fm(
    model_id: str, types: list[str], outputs: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "modelId": model_id,
        "modelArn": ARN + model_id,
        "providerName": extra.pop("provider", "Anthropic"),
        "inputModalities": ["TEXT", "IMAGE"],
        "outputModalities": outputs or ["TEXT"],
        "responseStreamingSupported": extra.pop("streaming", True),
        "inferenceTypesSupported": types,
        **extra,
    }


FOUNDATION = [
    _fm("anthropic.claude-3-haiku-20240307-v1:0", ["ON_DEMAND"]),
    _fm("anthropic.claude-3-7-sonnet-20250219-v1:0", ["INFERENCE_PROFILE"]),
    _fm(
        "amazon.titan-embed-text-v2:0",
        ["ON_DEMAND"],
        ["EMBEDDING"],
        provider="Amazon",
        streaming=False,
    ),
    _fm("amazon.titan-image-generator-v2:0", ["ON_DEMAND"], ["IMAGE"], provider="Amazon"),
]
PROFILES = [
    {
        "inferenceProfileId": "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
        "inferenceProfileArn": "arn:aws:bedrock:us-east-1:1:inference-profile/us.anthropic.x",
        "models": [{"modelArn": ARN + "anthropic.claude-3-7-sonnet-20250219-v1:0"}],
        "status": "ACTIVE",
        "type": "SYSTEM_DEFINED",
        "createdAt": "2025-02-19T00:00:00Z",
    },
    {
        "inferenceProfileId": "abc123",
        "inferenceProfileArn": "arn:aws:bedrock:us-east-1:1:application-inference-profile/abc123",
        "models": [{"modelArn": ARN + "anthropic.claude-3-haiku-20240307-v1:0"}],
        "status": "ACTIVE",
        "type": "APPLICATION",
    },
]


def test_entries_offer_callable_ids_only() -> None:
    """On-demand bases, profile ids and application ARNs are offered; profile-only bases and
    image generators are not."""
    entries = build_entries(FOUNDATION, PROFILES)
    assert list(entries) == [
        "amazon.titan-embed-text-v2:0",
        "anthropic.claude-3-haiku-20240307-v1:0",
        "arn:aws:bedrock:us-east-1:1:application-inference-profile/abc123",
        "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
    ]


def test_profile_inherits_base_capabilities() -> None:
    """A profile entry knows its base model, provider and modalities."""
    entry = build_entries(FOUNDATION, PROFILES)["us.anthropic.claude-3-7-sonnet-20250219-v1:0"]
    assert entry.base_model_id == "anthropic.claude-3-7-sonnet-20250219-v1:0"
    assert (entry.provider, entry.kind, entry.streaming) == ("anthropic", "chat", True)
    assert entry.input_modalities == frozenset({"TEXT", "IMAGE"})
    assert to_openai_model(entry) == {
        "id": "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
        "object": "model",
        "created": 1739923200,
        "owned_by": "anthropic",
    }


def test_embedding_kind() -> None:
    """Models whose output is EMBEDDING are embedding models."""
    assert build_entries(FOUNDATION, [])["amazon.titan-embed-text-v2:0"].kind == "embedding"


@pytest.mark.parametrize(
    ("model_id", "allow", "deny", "expected"),
    [
        pytest.param("us.anthropic.x", ["*"], [], True, id="allow-all"),
        pytest.param("us.anthropic.x", ["*"], ["us.*"], False, id="denied"),
        pytest.param("us.anthropic.x", ["anthropic.*"], [], False, id="not-allowed"),
        pytest.param(
            "anthropic.claude", ["anthropic.*", "meta.*"], ["*titan*"], True, id="second-pattern"
        ),
    ],
)
def test_filters(model_id: str, allow: list[str], deny: list[str], expected: bool) -> None:
    """A model is offered when it matches an allow glob and no deny glob."""
    assert is_allowed(model_id, allow, deny) is expected
