"""least-KV-cache filter: keep endpoints in the lowest 1/N band of the KV-cache usage range."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling import projection
from inference_gateway.scheduling.normalize import lowest_band
from inference_gateway.scheduling.params import get_bool
from inference_gateway.scheduling.types import CycleState, SchedulingRequest


class LeastKVCacheFilter:
    type_name = "least-KV-cache"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        self.name = name
        # Corrected by the in-flight ledger since the scrape (scheduling/projection.py).
        self.projected = get_bool(parameters or {}, "projected", True)

    def filter(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> Sequence[Endpoint]:
        if not endpoints:
            return endpoints
        return lowest_band(
            endpoints,
            [projection.kv_usage(e) if self.projected else e.metrics.kv_cache_usage for e in endpoints],
            whole=False,
        )
