"""OpenAI's error shape, so OpenAI SDKs raise their usual exceptions (NotFoundError,
RateLimitError, APIStatusError...) with our message."""
from __future__ import annotations

import json

from aiohttp import web


def error_body(message: str, err_type: str, code: str, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": err_type, "param": param, "code": code}}


def error_response(status: int, message: str, err_type: str, code: str, param: str | None = None,
                   headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(error_body(message, err_type, code, param), status=status, headers=headers)


def sse_error(message: str, code: str) -> bytes:
    """An error event for a stream that already started (its status line is sent)."""
    return b"data: " + json.dumps(error_body(message, "upstream_error", code)).encode() + b"\n\n"


def not_found(server: str):
    """A handler for every path the app does not serve, answering in OpenAI's shape."""
    async def handler(request: web.Request) -> web.Response:
        return error_response(404, f"{request.method} {request.path} is not served by this {server}",
                              "invalid_request_error", "not_found")
    return handler
