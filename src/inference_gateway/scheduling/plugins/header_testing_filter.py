"""header-based-testing-filter: upstream's conformance filter. Keeps the endpoints the request's
`test-epp-endpoint-selection` header lists ("ip" or "ip:port", comma-separated, in that order);
no header keeps none. Only for conformance tests: it lets a client choose the endpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.types import CycleState, SchedulingRequest

SELECTION_HEADER = "test-epp-endpoint-selection"


def _host_port(item: str) -> tuple[str, str]:
    if item.startswith("["):  # [v6]:port or [v6]
        host, _, rest = item[1:].partition("]")
        return host, rest.removeprefix(":")
    if item.count(":") == 1:
        host, _, port = item.partition(":")
        return host, port
    return item, ""  # bare IPv4 or IPv6


class HeaderBasedTestingFilter:
    type_name = "header-based-testing-filter"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        self.name = name

    def filter(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> Sequence[Endpoint]:
        wanted = request.headers.get(SELECTION_HEADER, "")
        by_ip = {e.ip: e for e in reversed(endpoints)}  # first endpoint of each IP wins
        by_address = {f"{e.ip}:{e.port}": e for e in endpoints}
        kept: list[Endpoint] = []
        seen: set[str] = set()
        for raw in wanted.split(","):
            host, port = _host_port(raw.strip())
            found = by_address.get(f"{host}:{port}") if port else by_ip.get(host)
            if found is not None and found.ip not in seen:
                seen.add(found.ip)
                kept.append(found)
        return kept
