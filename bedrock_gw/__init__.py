"""bedrock-gw: an OpenAI-compatible gateway to Amazon Bedrock for home servers."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
