"""lora-affinity-scorer: prefer endpoints that already serve the requested adapter.

1.0 adapter active; 0.8 room to load another adapter (or the engine has not reported its
adapter slots yet: a fresh vLLM publishes them only after its first request); 0.6 adapter
waiting to load; else 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.types import CycleState, SchedulingRequest

ACTIVE = 1.0
HAS_SLOT = 0.8
WAITING = 0.6


class LoraAffinityScorer:
    type_name = "lora-affinity-scorer"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        self.name = name

    def score(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> list[float]:
        return [adapter_score(e, request.target_model) for e in endpoints]


def adapter_score(endpoint: Endpoint, adapter: str) -> float:
    m = endpoint.metrics
    if adapter in m.active_adapters:
        return ACTIVE
    if m.adapter_slot_free():
        return HAS_SLOT
    if adapter in m.waiting_adapters:
        return WAITING
    return 0.0
