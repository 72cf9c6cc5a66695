"""concurrency-detector: saturation from the requests this EPP has in flight, not scraped metrics.

The pool is saturated when its endpoints together hold maxConcurrency (100) in-flight requests
each; as a filter it drops endpoints at maxConcurrency x (1 + headroom). In-flight counts change
the instant a request is dispatched or completes, so bursts between two scrapes are seen.
concurrencyMode `tokens` (upstream counts in-flight tokens) is refused: we count requests only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.params import get_float, get_int, get_str
from inference_gateway.scheduling.saturation import SaturationDetector
from inference_gateway.scheduling.types import CycleState, SchedulingRequest


class ConcurrencyDetector(SaturationDetector):
    type_name = "concurrency-detector"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = parameters or {}
        super().__init__()
        self.name = name
        mode = get_str(params, "concurrencyMode", "requests")
        if mode == "tokens":
            raise ValueError("concurrencyMode 'tokens' is not supported (in-flight tokens are not tracked)")
        if mode != "requests":
            raise ValueError(f"unsupported concurrencyMode: {mode!r}")
        self.max_concurrency = get_int(params, "maxConcurrency", 100, minimum=1)
        self.headroom = get_float(params, "headroom", 0.0, minimum=0.0)
        get_int(params, "maxTokenConcurrency", 1_000_000, minimum=1)  # validated as upstream, unused

    def saturation(self, endpoints: Iterable[Endpoint]) -> float:
        """In-flight requests over capacity; 1.0 or more is saturated."""
        eps = list(endpoints)
        if not eps:
            return 1.0
        return sum(e.in_flight for e in eps) / (self.max_concurrency * len(eps))

    def is_saturated(self, endpoints: Iterable[Endpoint]) -> bool:
        return self.saturation(endpoints) >= 1.0

    def endpoint_saturated(self, endpoint: Endpoint, now: float | None = None) -> bool:
        return endpoint.in_flight >= self.max_concurrency

    def has_capacity(self, endpoint: Endpoint) -> bool:
        return endpoint.in_flight < self.max_concurrency

    def describe(self, endpoint: Endpoint, now: float | None = None) -> str:
        if endpoint.in_flight >= self.max_concurrency:
            return f"in-flight {endpoint.in_flight} >= {self.max_concurrency}"
        return ""

    def filter(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> Sequence[Endpoint]:
        limit = int(self.max_concurrency * (1.0 + self.headroom))
        return [e for e in endpoints if e.in_flight < limit]
