"""data-parallel-profile-handler (llm-d, deprecated there in favour of single-profile-handler
with Istio >= 1.28.1): data-parallel pods whose ranks listen on several ports, fronted by one
port.

The single scheduling profile picks an endpoint (one rank: pod ip and rank port) as usual.
The gateway is then told to send the request to the pod's `primaryPort` (default 8000, llm-d's
routing sidecar or the rank-0 server), and the picked rank travels in the request header
`x-data-parallel-host-port: ip:port`, which the primary forwards to. Fallbacks are the other
picks' pods, also at `primaryPort`, each pod once. `primaryPort: 0` leaves the picked port in
place (llm-d would route to port 0). Exactly one scheduling profile, checked at load
(llm-d fails every request instead). The in-flight ledger still counts the picked rank.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.params import get_int, reject_unknown
from inference_gateway.scheduling.plugins.single_profile_handler import SingleProfileHandler
from inference_gateway.scheduling.types import SchedulingRequest, SchedulingResult

DATA_PARALLEL_HEADER = "x-data-parallel-host-port"
DEFAULT_PRIMARY_PORT = 8000


class DataParallelProfileHandler(SingleProfileHandler):
    """Profiles as single-profile-handler; the route and the rank header are its own."""

    type_name = "data-parallel-profile-handler"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = parameters or {}
        reject_unknown(params, frozenset({"primaryPort"}))
        self.name = name
        self.primary_port = get_int(params, "primaryPort", DEFAULT_PRIMARY_PORT, minimum=0)
        if self.primary_port > 65535:
            raise ValueError(f"invalid primaryPort: must be between 1 and 65535, got {self.primary_port}")

    def check_profiles(self, names: Collection[str]) -> None:
        if len(names) != 1:
            raise ValueError(f"requires exactly one scheduling profile, got {len(names)}")

    def route_address(self, endpoint: Endpoint) -> str:
        return f"{endpoint.ip}:{self.primary_port}" if self.primary_port else endpoint.address

    def request_headers(self, request: SchedulingRequest, result: SchedulingResult) -> dict[str, str]:
        picked = result.endpoints
        return {DATA_PARALLEL_HEADER: picked[0].address if picked else ""}
