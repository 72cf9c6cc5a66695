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


# Upstream's error codes (pkg/common/error), the `error_code` label of its error metric.
_CANONICAL = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    413: "BadRequest",
    429: "ResourceExhausted",
    500: "Internal",
    503: "ServiceUnavailable",
}


def canonical_code(status: int) -> str:
    """Upstream's name for an EPP-side error status; any model-server failure is ModelServerError."""
    return _CANONICAL.get(status, "Internal" if status >= 500 else "Unknown")


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

    @property
    def canonical_code(self) -> str:
        return canonical_code(self.status)

    def body(self) -> bytes:
        return orjson.dumps({"error": {"message": self.message, "type": self.error_type, "code": self.code}})
