"""kv-cache-utilization-scorer: score = 1 - KV-cache usage (0..1)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.types import CycleState, SchedulingRequest


class KVCacheUtilizationScorer:
    type_name = "kv-cache-utilization-scorer"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        self.name = name

    def score(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> list[float]:
        return [1.0 - e.metrics.kv_cache_usage for e in endpoints]
