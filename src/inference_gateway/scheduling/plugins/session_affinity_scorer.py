"""session-affinity-scorer: keep a conversation on the endpoint that served it before.

The response carries a session token naming the served endpoint (header `headerName`,
default x-session-token, and a cookie when `cookieName` is set). A request presenting the
token scores 1.0 on that endpoint and 0 elsewhere; if the endpoint is gone or filtered out,
every candidate scores 0 and the other scorers decide. Tokens are base64 of "ip:port"; raw
"ip:port" and llm-d style base64("namespace/pod") tokens are accepted too.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.params import get_str
from inference_gateway.scheduling.types import CycleState, SchedulingRequest

DEFAULT_HEADER = "x-session-token"


class SessionAffinityScorer:
    type_name = "session-affinity-scorer"
    affinity = True  # where the request's state is, not load (interfaces.AffinityScorer)

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = parameters or {}
        self.name = name
        self.header = get_str(params, "headerName", DEFAULT_HEADER).lower()
        self.cookie = get_str(params, "cookieName", "")

    def score(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> list[float]:
        target = decode_token(self._token(request.headers))
        if not target:
            return [0.0] * len(endpoints)
        if ":" in target:
            return [1.0 if e.address == target else 0.0 for e in endpoints]
        return [1.0 if str(e.pod) == target else 0.0 for e in endpoints]

    def response_headers(self, request: SchedulingRequest, served: Endpoint) -> dict[str, str]:
        token = encode_token(served.address)
        headers = {self.header: token}
        if self.cookie:
            headers["set-cookie"] = f"{self.cookie}={token}; Path=/; HttpOnly; SameSite=Lax"
        return headers

    def _token(self, headers: dict[str, str]) -> str:
        token = headers.get(self.header, "")
        if token or not self.cookie:
            return token
        return cookie_value(headers.get("cookie", ""), self.cookie)


def encode_token(address: str) -> str:
    return base64.b64encode(address.encode()).decode()


def decode_token(token: str) -> str:
    token = token.strip()
    if not token:
        return ""
    if ":" in token:
        return token  # a raw ip:port (":" is not in the base64 alphabet)
    try:
        return base64.b64decode(token, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""


def cookie_value(header: str, name: str) -> str:
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"')
    return ""
