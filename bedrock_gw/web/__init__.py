"""The HTTP edge: aiohttp routes, middlewares, SSE writing and the access log."""
