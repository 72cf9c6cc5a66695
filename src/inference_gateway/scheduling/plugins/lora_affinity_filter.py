"""lora-affinity filter: prefer endpoints with the adapter loaded or queued.

Endpoints split into "affinity" (adapter active or waiting) and "available" (room for one
more adapter, or slots not reported yet). When both exist, affinity wins with probability
`threshold` (default 0.999) so an adapter can still spread to new endpoints; otherwise
whichever group is non-empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.params import get_float
from inference_gateway.scheduling.plugins._shared import rng
from inference_gateway.scheduling.types import CycleState, SchedulingRequest

DEFAULT_THRESHOLD = 0.999


class LoraAffinityFilter:
    type_name = "lora-affinity"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = parameters or {}
        self.name = name
        self.threshold = get_float(params, "threshold", DEFAULT_THRESHOLD, minimum=0.0, maximum=1.0)
        self._rng = rng(params)

    def filter(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> Sequence[Endpoint]:
        adapter = request.target_model
        affinity: list[Endpoint] = []
        available: list[Endpoint] = []
        for e in endpoints:
            m = e.metrics
            if adapter in m.active_adapters or adapter in m.waiting_adapters:
                affinity.append(e)
            elif m.adapter_slot_free():
                available.append(e)
        if affinity and available:
            return affinity if self._rng.random() < self.threshold else available
        return affinity or available
