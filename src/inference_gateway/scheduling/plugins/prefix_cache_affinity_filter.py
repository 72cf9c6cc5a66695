"""prefix-cache-affinity-filter: keep only the endpoints whose cached prefix covers at least
`affinityThreshold` (0.80) of the prompt, when any does; otherwise keep all.

With probability `explorationProbability` (0.01) it keeps all anyway, so other endpoints keep
learning the prefix. It also keeps all when the best sticky endpoint's predicted TTFT is more
than `maxTTFTPenaltyMs` (5000; 0 turns the check off) worse than the best other endpoint's
(queueing there costs more than the cache saves); the predictions come from the config's
`predicted-latency-producer`, and without one (or while it learns) the check never fires.
Matches come from the configured prefix cache (prefix-cache-scorer or
approx-prefix-cache-producer); with none configured the filter keeps every endpoint, as upstream.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any, Protocol

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.latency_predictions import (
    LatencyPredictionSource,
    RequestPredictions,
    cycle_predictions,
)
from inference_gateway.scheduling.params import get_float
from inference_gateway.scheduling.plugins._shared import rng
from inference_gateway.scheduling.types import CycleState, SchedulingRequest

log = logging.getLogger(__name__)


class PrefixMatches(Protocol):
    def match_ratio(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> list[float]: ...


class PrefixCacheAffinityFilter:
    type_name = "prefix-cache-affinity-filter"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = parameters or {}
        self.name = name
        self.threshold = get_float(params, "affinityThreshold", 0.80, maximum=1.0)
        self.exploration = get_float(params, "explorationProbability", 0.01, minimum=0.0, maximum=1.0)
        self.max_ttft_penalty_ms = get_float(params, "maxTTFTPenaltyMs", 5000.0, minimum=0.0)
        self._rng = rng(params)
        self.prefix: PrefixMatches | None = None
        self._latency: LatencyPredictionSource | None = None

    def link_latency_predictions(self, source: LatencyPredictionSource | None) -> None:
        self._latency = source

    def link_prefix_cache(self, prefix: PrefixMatches | None) -> None:
        if prefix is None:
            log.warning(
                "%s: no prefix cache plugin is configured; the filter keeps every endpoint", self.name
            )
        self.prefix = prefix

    def filter(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> Sequence[Endpoint]:
        if len(endpoints) <= 1 or self.threshold <= 0 or self.prefix is None:
            return endpoints
        if self._rng.random() < self.exploration:
            return endpoints
        ratios = self.prefix.match_ratio(state, request, endpoints)
        sticky = [e for e, r in zip(endpoints, ratios, strict=True) if r >= self.threshold]
        if not sticky or len(sticky) == len(endpoints) or self.max_ttft_penalty_ms <= 0:
            return sticky or endpoints
        table = cycle_predictions(state, self._latency, request, endpoints)
        if table is not None:
            others = [e for e in endpoints if e not in sticky]
            if _best_ttft(table, sticky) - _best_ttft(table, others) > self.max_ttft_penalty_ms:
                return endpoints  # the cache saves less than the queue there costs
        return sticky


def _best_ttft(table: RequestPredictions, endpoints: Sequence[Endpoint]) -> float:
    """Lowest predicted TTFT (ms); infinite when none is predicted, as upstream's MaxFloat64."""
    return min((p.ttft_ms for e in endpoints if (p := table.get(e)) is not None), default=math.inf)
