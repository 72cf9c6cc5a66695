"""least-queue filter: keep endpoints in the lowest 1/N band of the queue range.

With queues spanning [min, max] over N endpoints, keep those with queue <= min + (max-min)/N:
several near-minimum endpoints survive instead of only the absolute minimum.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling import projection
from inference_gateway.scheduling.normalize import lowest_band
from inference_gateway.scheduling.params import get_bool
from inference_gateway.scheduling.types import CycleState, SchedulingRequest


class LeastQueueFilter:
    type_name = "least-queue"

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
            [projection.waiting(e) if self.projected else e.metrics.waiting_queue for e in endpoints],
            whole=True,
        )
