"""kv-cache-utilization-scorer: score = 1 - KV-cache usage (0..1)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling import projection
from inference_gateway.scheduling.params import get_bool
from inference_gateway.scheduling.types import CycleState, SchedulingRequest


class KVCacheUtilizationScorer:
    type_name = "kv-cache-utilization-scorer"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        self.name = name
        # Corrected by the in-flight ledger since the scrape (scheduling/projection.py).
        self.projected = get_bool(parameters or {}, "projected", True)

    def score(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> list[float]:
        return [
            1.0 - (projection.kv_usage(e) if self.projected else e.metrics.kv_cache_usage) for e in endpoints
        ]
