"""capacity-load-scorer: load normalised by each pod's measured speed, for mixed accelerators.

Queue and KV scorers treat every pod alike, but an L4 decodes about 8x slower than an H100:
the same number of requests is far more load on it. This scorer learns each endpoint's decode
speed from its metrics, tokens per second per running sequence:

    speed = d(generation_tokens_total) / integral(running_requests dt)

accumulated over at least `windowSeconds` of scrapes, then smoothed with an EWMA (`alpha`).
The scorer reads the scrapes it sees when it schedules; two more than `maxGapSeconds` apart
say too little about what ran in between, so such a gap starts a new window.
The load a new request would join, counted in time rather than requests, is

    cost = (max(running + waiting, in_flight) + 1) / speed

and the score is cheapest_cost / cost (1.0 for the cheapest endpoint). A pod that runs
sequences k times slower therefore receives about 1/k of the requests in flight on a fast
one. `in_flight` (requests this EPP sent that have not finished) covers picks made since the
last scrape. Until an endpoint has a speed sample it is assumed to run at the median learned
speed of the candidates (all equal when nothing is known yet), so new pods are tried and
engines without a generation-token counter are scored by load alone.
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
    """Running per-endpoint state: the last scrape seen and the window being accumulated."""

    last_at: float
    last_tokens: float
    last_running: int
    window_s: float = 0.0
    window_tokens: float = 0.0
    window_busy: float = 0.0  # sequence-seconds: integral of running requests over time
    speed: float | None = None  # tokens / s / running sequence


class CapacityLoadScorer:
    type_name = "capacity-load-scorer"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = parameters or {}
        self.name = name
        self.window_s = get_float(params, "windowSeconds", 1.0, minimum=0.0)
        self.alpha = get_float(params, "alpha", 0.3, minimum=0.01, maximum=1.0)
        self.max_gap_s = get_float(params, "maxGapSeconds", 5.0, minimum=0.0)
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
        """Fold a scrape not seen yet into the endpoint's estimate; return its speed."""
        m = e.metrics
        est = self._estimates.get(e.address)
        if m.generation_tokens is None or not m.updated_at:
            return est.speed if est is not None else None
        if est is None:
            self._estimates[e.address] = SpeedEstimate(m.updated_at, m.generation_tokens, m.running_requests)
            return None
        dt = m.updated_at - est.last_at
        if dt == 0:
            return est.speed
        tokens = m.generation_tokens - est.last_tokens
        # An engine restart resets its counters; a long gap hides what ran: start a new window.
        if dt < 0 or dt > self.max_gap_s or tokens < 0:
            est.window_s = est.window_tokens = est.window_busy = 0.0
        else:
            est.window_s += dt
            est.window_tokens += tokens
            est.window_busy += dt * (est.last_running + m.running_requests) / 2
        est.last_at, est.last_tokens, est.last_running = m.updated_at, m.generation_tokens, m.running_requests
        if est.window_s >= self.window_s:
            self._close_window(est)
        return est.speed

    def _close_window(self, est: SpeedEstimate) -> None:
        # An idle window (nothing ran, nothing generated) says nothing about speed.
        if est.window_busy > 0 and est.window_tokens > 0:
            sample = est.window_tokens / est.window_busy
            est.speed = sample if est.speed is None else est.speed + self.alpha * (sample - est.speed)
        est.window_s = est.window_tokens = est.window_busy = 0.0
