"""low-queue filter: keep endpoints whose waiting queue is at most `threshold` (default 128)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling import projection
from inference_gateway.scheduling.params import get_bool, get_int
from inference_gateway.scheduling.types import CycleState, SchedulingRequest

DEFAULT_THRESHOLD = 128


class LowQueueFilter:
    type_name = "low-queue"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        self.name = name
        # Corrected by the in-flight ledger since the scrape (scheduling/projection.py).
        self.projected = get_bool(parameters or {}, "projected", True)
        self.threshold = get_int(parameters or {}, "threshold", DEFAULT_THRESHOLD, minimum=0)

    def filter(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> Sequence[Endpoint]:
        limit = self.threshold
        return [
            e
            for e in endpoints
            if (projection.waiting(e) if self.projected else e.metrics.waiting_queue) <= limit
        ]
