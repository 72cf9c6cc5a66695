"""load-aware-scorer (llm-d): an idle endpoint scores 0.5; a queue scores less, down to 0 at
`threshold` (128) waiting requests: 0.5 x (1 - min(waiting, threshold) / threshold).

Absolute, not relative to the other candidates (unlike queue-scorer), so its weight means the
same thing however loaded the pool is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.params import get_int
from inference_gateway.scheduling.types import CycleState, SchedulingRequest

DEFAULT_THRESHOLD = 128


class LoadAwareScorer:
    type_name = "load-aware-scorer"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        self.name = name
        threshold = get_int(parameters or {}, "threshold", DEFAULT_THRESHOLD)
        self.threshold = float(threshold if threshold > 0 else DEFAULT_THRESHOLD)  # llm-d: <= 0 means default

    def score(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> list[float]:
        limit = self.threshold
        return [0.5 * (1.0 - min(e.metrics.waiting_queue, limit) / limit) for e in endpoints]
