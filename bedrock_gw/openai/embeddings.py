"""``POST /v1/embeddings`` request body, as OpenAI documents it, plus one extension."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["EmbeddingRequest"]


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1)
    input: str | list[str] | list[int] | list[list[int]]
    """Text or texts to embed; token arrays are part of OpenAI's API but Bedrock takes text only."""
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None
    """Accepted, never forwarded."""
    input_type: (
        Literal["search_document", "search_query", "classification", "clustering"] | None
    ) = None
    """Extension for Cohere models (their ``input_type``); default ``search_document``."""
