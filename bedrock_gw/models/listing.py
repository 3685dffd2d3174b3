"""Bedrock's listings -> the models the gateway offers. Pure, no I/O.

A client can call a model by its base id only when the model supports on-demand throughput;
models that must go through an inference profile (Claude 3.7 and newer, for one) are offered
under their profile ids (``us.anthropic...``) and application profile ARNs instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any, Literal

__all__ = ["ModelEntry", "build_entries", "is_allowed", "to_openai_model"]

ModelKind = Literal["chat", "embedding"]


@dataclass(frozen=True, slots=True)
class ModelEntry:
    id: str
    """What clients send as ``model``: a base id, a profile id or an application profile ARN."""
    base_model_id: str
    """The foundation model behind it; capabilities and embedding families key on this."""
    provider: str
    kind: ModelKind
    input_modalities: frozenset[str]
    streaming: bool
    created: int
    alias_of: str | None = None
    """For a configured alias: the model id it stands for."""

    @property
    def bedrock_id(self) -> str:
        """The id to put in Bedrock's request path."""
        return self.alias_of or self.id


def build_entries(
    foundation_models: Iterable[Mapping[str, Any]],
    profiles: Iterable[Mapping[str, Any]],
) -> dict[str, ModelEntry]:
    """Merge ListFoundationModels and ListInferenceProfiles summaries into entries by id."""
    bases: dict[str, Mapping[str, Any]] = {}
    entries: dict[str, ModelEntry] = {}
    for summary in foundation_models:
        model_id = summary.get("modelId")
        if not isinstance(model_id, str):
            continue
        bases[model_id] = summary
        if "ON_DEMAND" in _strings(summary.get("inferenceTypesSupported")):
            entry = _entry(model_id, model_id, summary, created=0)
            if entry is not None:
                entries[model_id] = entry
    for profile in profiles:
        if profile.get("status", "ACTIVE") != "ACTIVE":
            continue
        profile_id = _profile_id(profile)
        base_id = _base_model_id(profile)
        if profile_id is None or base_id is None:
            continue
        entry = _entry(profile_id, base_id, bases.get(base_id, {}), created=_epoch(profile))
        if entry is not None:
            entries[profile_id] = entry
    return dict(sorted(entries.items()))


def is_allowed(model_id: str, allow: Sequence[str], deny: Sequence[str]) -> bool:
    return any(fnmatchcase(model_id, p) for p in allow) and not any(
        fnmatchcase(model_id, p) for p in deny
    )


def to_openai_model(entry: ModelEntry) -> dict[str, Any]:
    return {"id": entry.id, "object": "model", "created": entry.created, "owned_by": entry.provider}


def _entry(
    model_id: str, base_id: str, base: Mapping[str, Any], *, created: int
) -> ModelEntry | None:
    outputs = _strings(base.get("outputModalities")) or {"TEXT"}
    kind: ModelKind
    if "EMBEDDING" in outputs:
        kind = "embedding"
    elif "TEXT" in outputs:
        kind = "chat"
    else:
        return None  # image and video generators have no OpenAI chat or embeddings face
    provider = base.get("providerName")
    return ModelEntry(
        id=model_id,
        base_model_id=base_id,
        provider=(provider if isinstance(provider, str) else base_id.split(".", 1)[0]).lower(),
        kind=kind,
        input_modalities=frozenset(_strings(base.get("inputModalities")) or {"TEXT"}),
        streaming=bool(base.get("responseStreamingSupported", True)),
        created=created,
    )


def _profile_id(profile: Mapping[str, Any]) -> str | None:
    # Application profiles are called by ARN; system-defined ones by their short id.
    key = "inferenceProfileArn" if profile.get("type") == "APPLICATION" else "inferenceProfileId"
    value = profile.get(key)
    return value if isinstance(value, str) else None


def _base_model_id(profile: Mapping[str, Any]) -> str | None:
    models = profile.get("models")
    if not isinstance(models, list) or not models:
        return None
    arn = models[0].get("modelArn") if isinstance(models[0], Mapping) else None
    if not isinstance(arn, str) or "/" not in arn:
        return None
    return arn.rsplit("/", 1)[1]


def _strings(value: object) -> set[str]:
    return {v for v in value if isinstance(v, str)} if isinstance(value, list) else set()


def _epoch(profile: Mapping[str, Any]) -> int:
    value = profile.get("createdAt")
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
        except ValueError:
            return 0
    return 0
