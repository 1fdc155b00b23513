"""Errors in each API's own format, with a message a developer can act on (never a value).

OpenAI:    {"error": {"message", "type", "param", "code"}}
Anthropic: {"type": "error", "error": {"type", "message"}}

Errors inside an SSE stream that has started are written by `sse.StreamRewriter.error_events`.
"""

from __future__ import annotations

import json
from typing import Literal

Style = Literal["openai", "anthropic"]

# HTTP status -> the error type both APIs use for it.
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    413: "request_too_large",
    415: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
}


class GatewayError(Exception):
    """A refusal or failure answered in the API's format. `rule` names why in the audit trail (the
    message, which may quote the request, is never recorded); without one, the status names it."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        rule: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.rule = rule

    @property
    def type(self) -> str:
        return _TYPES.get(self.status, "api_error")


def error_body(style: Style, error: GatewayError) -> bytes:
    if style == "anthropic":
        data: dict[str, object] = {"type": "error", "error": {"type": error.type, "message": error.message}}
    else:
        data = {
            "error": {"message": error.message, "type": error.type, "param": error.param, "code": error.code}
        }
    return json.dumps(data, ensure_ascii=False).encode("utf-8")
