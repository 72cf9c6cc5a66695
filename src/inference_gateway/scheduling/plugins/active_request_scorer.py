"""active-request-scorer (llm-d): fewer in-flight requests from this EPP score higher.

score = (max - count) / max x maxBusyScore over the candidates; endpoints with at most
`idleThreshold` (0) in-flight requests score 1.0. In-flight counts come from the director's
ledger (upstream's inflight-load-producer), so they move the instant a request is dispatched or
completes. llm-d's `requestTimeout` is accepted and ignored as there (deprecated).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.params import get_float, get_int, get_str
from inference_gateway.scheduling.types import CycleState, SchedulingRequest


class ActiveRequestScorer:
    type_name = "active-request-scorer"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = parameters or {}
        self.name = name
        get_str(params, "requestTimeout", "")
        self.idle_threshold = get_int(params, "idleThreshold", 0, minimum=0)
        self.max_busy_score = get_float(params, "maxBusyScore", 1.0, minimum=0.0, maximum=1.0)

    def score(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> list[float]:
        busiest = max((e.in_flight for e in endpoints), default=0)
        idle, scale = self.idle_threshold, self.max_busy_score
        return [1.0 if e.in_flight <= idle else (busiest - e.in_flight) / busiest * scale for e in endpoints]
