"""One access-log line per request: who, what, how long, how many tokens; never prompts or keys."""

from __future__ import annotations

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from bedrock_gw.web.state import TRACE

__all__ = ["AccessLogger"]


class AccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        trace = request.get(TRACE) if isinstance(request, web.Request) else None
        fields = [
            f"{request.remote or '-'}",
            f'"{request.method} {request.path}"',
            str(response.status),
            f"{time * 1000:.1f}ms",
        ]
        if trace is not None:
            if trace.key is not None:
                fields.append(f"key={trace.key.name}")
            if trace.model is not None:
                fields.append(f"model={trace.model}")
            if trace.prompt_tokens is not None:
                fields.append(f"in={trace.prompt_tokens}")
            if trace.completion_tokens is not None:
                fields.append(f"out={trace.completion_tokens}")
            fields.extend(f"{name}={value}" for name, value in trace.extra.items())
        self.logger.info(" ".join(fields))
