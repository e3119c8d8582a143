"""OpenAI-style error bodies, so OpenAI SDKs raise their usual exceptions with our message."""
from __future__ import annotations

import json

from fastapi.responses import JSONResponse


def error_body(message: str, type_: str, code: str) -> dict:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def error_response(status: int, message: str, type_: str, code: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(message, type_, code), status_code=status, headers=headers)


def sse_error(message: str, code: str) -> bytes:
    """An error event for a stream that already started (its status line is sent)."""
    return b"data: " + json.dumps(error_body(message, "upstream_error", code)).encode() + b"\n\n"
