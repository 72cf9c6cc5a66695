"""slo-headroom-tier-filter: keep the endpoints predicted to meet the request's latency
objectives (upstream v1.5 / llm-d), from the config's `predicted-latency-producer`.

Endpoints split into a positive tier (TTFT and TPOT headroom >= 0) and a negative tier (either
below 0, or no prediction). When both tiers have endpoints it keeps the positive one, except
with probability `epsilonExploreNeg` (0.01, in [0, 1]) the negative one, so endpoints that
were overloaded get occasional traffic and their predictions catch up with their recovery.
When only one tier has endpoints it keeps that tier; with no predictions at all (no producer,
or its predictor still learning) it keeps every endpoint. A request without objectives has
negative headroom everywhere (objective 0), so it keeps every endpoint.
`seed` (ours) makes the exploration draw deterministic.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.latency_predictions import LatencyPredictionSource, cycle_predictions
from inference_gateway.scheduling.params import get_float, reject_unknown
from inference_gateway.scheduling.plugins._shared import rng
from inference_gateway.scheduling.types import CycleState, SchedulingRequest

log = logging.getLogger(__name__)


class SloHeadroomTierFilter:
    type_name = "slo-headroom-tier-filter"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = parameters or {}
        reject_unknown(params, frozenset({"epsilonExploreNeg", "seed"}))
        self.name = name
        self.epsilon = get_float(params, "epsilonExploreNeg", 0.01, minimum=0.0, maximum=1.0)
        self._rng = rng(params)
        self._source: LatencyPredictionSource | None = None

    def link_latency_predictions(self, source: LatencyPredictionSource | None) -> None:
        if source is None:
            log.warning("%s: no predicted-latency-producer is configured; it keeps every endpoint", self.name)
        self._source = source

    def filter(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> Sequence[Endpoint]:
        if len(endpoints) <= 1:
            return endpoints
        table = cycle_predictions(state, self._source, request, endpoints)
        if table is None:
            return endpoints
        positive: list[Endpoint] = []
        negative: list[Endpoint] = []
        for e in endpoints:
            p = table.get(e)
            (positive if p is not None and p.positive else negative).append(e)
        if positive and negative:
            return negative if self._rng.random() < self.epsilon else positive
        return positive or negative
