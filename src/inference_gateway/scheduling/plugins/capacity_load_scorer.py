"""capacity-load-scorer: load normalised by each pod's measured speed, for mixed accelerators.

Queue and KV scorers treat every pod alike, but an L4 decodes about 6x slower than an H100, so
the same number of requests is far more load on it. This scorer learns each endpoint's decode
speed in tokens per second per running sequence, from the rates of its inter-token-latency
histogram counters (vLLM `vllm:inter_token_latency_seconds`, SGLang and trtllm-serve
equivalents):

    speed = d(itl_count) / d(itl_sum)       # tokens timed / seconds spent on them

These are counters, so the rate over any interval is exact, however rarely the scorer looks.
Each sample covers at least `windowSeconds` of scrapes and feeds an EWMA (`alpha`). The load a
new request would join is counted in time rather than in requests:

    cost = (max(running + waiting, in_flight) + 1) / speed

and the score is cheapest_cost / cost (1.0 for the cheapest endpoint). A pod that runs
sequences k times slower therefore receives about 1/k of the requests in flight on a fast one.
`in_flight` (requests this EPP sent that have not finished) covers picks made since the last
scrape. An endpoint without a speed sample yet counts as running at the median learned speed
of the candidates, or all count as equal when nothing is known. So new pods are tried, and
engines without the histogram are scored by load alone.
"""

from __future__ import annotations

import statistics
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.params import get_bool, get_float
from inference_gateway.scheduling.types import CycleState, SchedulingRequest


@dataclass(slots=True)
class SpeedEstimate:
    """Per-endpoint state: where the current window started, and the smoothed speed."""

    start_at: float
    start_sum: float
    start_count: float
    speed: float | None = None  # tokens / s / running sequence


class CapacityLoadScorer:
    type_name = "capacity-load-scorer"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = parameters or {}
        self.name = name
        self.window_s = get_float(params, "windowSeconds", 1.0, minimum=0.0)
        self.alpha = get_float(params, "alpha", 0.3, minimum=0.01, maximum=1.0)
        self.use_in_flight = get_bool(params, "useInFlight", True)
        self._estimates: dict[str, SpeedEstimate] = {}

    def score(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> list[float]:
        speeds = [self._observe(e) for e in endpoints]
        known = [s for s in speeds if s is not None]
        prior = statistics.median(known) if known else 1.0
        costs = [
            (self._load(e) + 1) / (s if s is not None else prior)
            for e, s in zip(endpoints, speeds, strict=True)
        ]
        cheapest = min(costs)
        return [cheapest / c for c in costs]

    def speed(self, address: str) -> float | None:
        """The learned tokens/s per running sequence of an endpoint (None until sampled)."""
        est = self._estimates.get(address)
        return est.speed if est is not None else None

    def endpoints_changed(self, addresses: Collection[str]) -> None:
        for gone in set(self._estimates) - set(addresses):
            del self._estimates[gone]

    def _load(self, e: Endpoint) -> int:
        queued = e.metrics.running_requests + e.metrics.waiting_queue
        return max(queued, e.in_flight) if self.use_in_flight else queued

    def _observe(self, e: Endpoint) -> float | None:
        """Close the endpoint's window if it is long enough; return its speed."""
        m = e.metrics
        est = self._estimates.get(e.address)
        if m.itl_sum_seconds is None or m.itl_count is None or not m.updated_at:
            return est.speed if est is not None else None
        if est is None:
            self._estimates[e.address] = SpeedEstimate(m.updated_at, m.itl_sum_seconds, m.itl_count)
            return None
        seconds = m.itl_sum_seconds - est.start_sum
        tokens = m.itl_count - est.start_count
        elapsed = m.updated_at - est.start_at
        if seconds < 0 or tokens < 0 or elapsed < 0:  # engine restarted: counters reset
            est.start_at, est.start_sum, est.start_count = m.updated_at, m.itl_sum_seconds, m.itl_count
        elif elapsed >= self.window_s and tokens > 0 and seconds > 0:
            sample = tokens / seconds
            est.speed = sample if est.speed is None else est.speed + self.alpha * (sample - est.speed)
            est.start_at, est.start_sum, est.start_count = m.updated_at, m.itl_sum_seconds, m.itl_count
        # An idle window (no tokens) stays open: it says nothing about speed.
        return est.speed
