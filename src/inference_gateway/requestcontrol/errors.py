"""OpenAI-style error responses the gateway returns instead of forwarding a request."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

_TYPES = {
    400: "invalid_request_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    503: "service_unavailable",
    504: "timeout",
}


@dataclass
class GatewayError(Exception):
    status: int
    message: str
    code: str
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)

    @property
    def error_type(self) -> str:
        return _TYPES.get(self.status, "server_error" if self.status >= 500 else "invalid_request_error")

    def body(self) -> bytes:
        return orjson.dumps({"error": {"message": self.message, "type": self.error_type, "code": self.code}})
