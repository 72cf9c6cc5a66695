"""latency-scorer: scores endpoints by predicted latency headroom (upstream v1.5's scorer), or,
configured alone, our SLO-aware scorer and filter on its own online predictor.

**With a `predicted-latency-producer`** in the config it scores the producer's predictions as
upstream does (headroom = objective - predicted, ms):
- endpoints with non-negative TTFT and TPOT headroom are scored and the others get 0;
- when every endpoint misses, those with no request in flight from the producer are scored
  alone (idle pods absorb traffic first), else the least severe bucket: only TPOT missed, then
  only TTFT missed, then both;
- within the scored set |headroom| is min-max normalised per dimension and blended
  `ttftWeight x nTTFT + tpotWeight x nTPOT` (a dimension with no spread gets weight 0);
  `headroomSelectionStrategy: least` (default) prefers the endpoint closest to its objective
  (bin packing), `most` the one with the most headroom (negative headroom always uses least);
- without predictions (predictor still learning): the composite of free KV cache, relative
  queue depth and prefix-cache match, weighted `compositeKVWeight`, `compositeQueueWeight`,
  `compositePrefixWeight`.
As upstream's it is no filter then; `slo-headroom-tier-filter` and `latency-slo-admitter` do that.

**Alone** (ours, as before upstream had the type) it runs a private producer (the same code,
streaming mode) and:
- as a scorer: headroom h = min over the request's objectives of (objective - predicted) /
  objective, score = clamp((h + 1) / 2, 0, 1), so the endpoint with the most headroom scores
  highest; a request without objectives scores by predicted TTFT (lowest best);
- as a filter: a request with objectives keeps the endpoints predicted to meet them; if none
  does, a Sheddable request keeps none (the director answers 429, it is shed) and any other
  request keeps every endpoint; a Sheddable request held only to `sheddableTTFT` is not shed
  while no endpoint has a request waiting (projected);
- while the predictor has fewer than `minSamples` observations it neither filters nor scores
  (every endpoint scores 1).
Objectives: headers `x-slo-ttft-ms` / `x-slo-tpot-ms`, else `objectives` {name: {ttft, tpot}}
by the request's InferenceObjective, else, for a Sheddable request, `sheddableTTFT` /
`sheddableTPOT` (the bar it must be predicted to clear to be admitted at all), else
`defaultTTFT` / `defaultTPOT`; `minSamples` (30). Those belong to the producer when there is
one (set them there; here they are an error).

Upstream's parameters: ttftWeight (0.8), tpotWeight (0.2), headroomSelectionStrategy (least |
most), compositeKVWeight, compositeQueueWeight, compositePrefixWeight (1 each); all >= 0.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling import projection
from inference_gateway.scheduling.latency import LatencyPredictor
from inference_gateway.scheduling.latency_predictions import (
    LatencyPrediction,
    LatencyPredictionSource,
    RequestPredictions,
    cycle_predictions,
)
from inference_gateway.scheduling.normalize import inverse_min_max
from inference_gateway.scheduling.params import get_float, get_str, reject_unknown
from inference_gateway.scheduling.plugins.predicted_latency_producer import (
    OURS,
    PredictedLatencyProducer,
    ProducerClient,
)
from inference_gateway.scheduling.types import CycleState, SchedulingRequest

log = logging.getLogger(__name__)

WEIGHTS = ("ttftWeight", "tpotWeight", "compositeKVWeight", "compositeQueueWeight", "compositePrefixWeight")
UPSTREAM = frozenset({*WEIGHTS, "headroomSelectionStrategy"})
STRATEGIES = ("least", "most")
W_MAX = 100
EPS = 1e-9


class LatencyScorer(ProducerClient):
    type_name = "latency-scorer"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = dict(parameters or {})
        reject_unknown(params, OURS | UPSTREAM)
        self.name = name
        defaults = {"ttftWeight": 0.8, "tpotWeight": 0.2}
        w = {k: get_float(params, k, defaults.get(k, 1.0), minimum=0.0) for k in WEIGHTS}
        self.ttft_weight, self.tpot_weight = w["ttftWeight"], w["tpotWeight"]
        self.composite = (w["compositeKVWeight"], w["compositeQueueWeight"], w["compositePrefixWeight"])
        self.strategy = get_str(params, "headroomSelectionStrategy", "least")
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"parameter 'headroomSelectionStrategy' must be least or most, got {self.strategy!r}"
            )
        self._ours = {k: v for k, v in params.items() if k in OURS}
        self._upstream_set = sorted(k for k in params if k in UPSTREAM)
        # Our standalone mode; replaced by the config's producer when it has one.
        self._own(PredictedLatencyProducer(f"{name}/predictor", {**self._ours, "streamingMode": True}, {}))
        self._prefix: Any = None

    # --- wiring ---------------------------------------------------------------------
    def link_latency_predictions(self, source: LatencyPredictionSource | None) -> None:
        if source is None:
            if self._upstream_set:
                log.warning(
                    "%s: %s apply with a predicted-latency-producer; without one this scorer runs"
                    " its own predictor and scores by relative headroom",
                    self.name,
                    ", ".join(self._upstream_set),
                )
            return
        if self._ours:
            keys = ", ".join(sorted(self._ours))
            raise ValueError(
                f"parameter(s) {keys} belong to predicted-latency-producer {source.name!r} when the"
                " config has one; set them there"
            )
        self._use(source)

    def link_prefix_cache(self, prefix: Any) -> None:
        self._prefix = prefix

    @property
    def predictor(self) -> LatencyPredictor:
        return self.producer.predictor

    def slo(self, request: SchedulingRequest) -> tuple[float | None, float | None]:
        """(TTFT ms, TPOT ms) objectives of the request; None where it has none."""
        return self.producer.slo(request)

    # --- filter (standalone only) ----------------------------------------------------
    def filter(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> Sequence[Endpoint]:
        if self._private is None or not endpoints:
            return endpoints
        table = cycle_predictions(state, self._private, request, endpoints)
        if table is None or not table.has_slo:
            return endpoints
        meeting = [e for e in endpoints if (_relative_headroom(table, table.get(e)) or 0.0) >= 0]
        if meeting or not request.sheddable:
            return meeting or endpoints
        if self._private.held_to_sheddable_bar(request) and not any(projection.waiting(e) for e in endpoints):
            # The bar sheds batch that load would delay. With nothing waiting anywhere, what
            # misses it is its own long prompt, which a pool with room should still serve.
            return endpoints
        return []

    # --- scores ---------------------------------------------------------------------------
    def score(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> list[float]:
        table = cycle_predictions(state, self._source, request, endpoints)
        if self._private is not None:
            return _standalone_scores(table, endpoints)
        infos = [table.get(e) if table is not None else None for e in endpoints]
        if not any(infos):
            return self._composite(state, request, endpoints)
        return self._headroom_scores(infos)

    def _headroom_scores(self, infos: list[LatencyPrediction | None]) -> list[float]:
        """Upstream's scorer over per-endpoint predictions (None: no prediction, headroom 0)."""
        scores = [0.0] * len(infos)
        room = [(p.ttft_headroom, p.tpot_headroom) if p is not None else (0.0, 0.0) for p in infos]
        negative = {i for i, p in enumerate(infos) if p is not None and not p.positive}
        positive = [i for i in range(len(infos)) if i not in negative]
        if positive:
            self._bucket(positive, room, scores, force_least=False)
            return scores
        idle = [i for i in negative if (p := infos[i]) is not None and p.dispatched == 0]
        if idle:
            self._bucket(idle, room, scores, force_least=True)
            return scores
        tpot_only = [i for i in negative if room[i][0] >= 0 > room[i][1]]
        ttft_only = [i for i in negative if room[i][1] >= 0 > room[i][0]]
        both = [i for i in negative if i not in tpot_only and i not in ttft_only]
        for bucket in (tpot_only, ttft_only, both):
            if bucket:
                self._bucket(bucket, room, scores, force_least=True)
                break
        return scores

    def _bucket(
        self, members: list[int], room: list[tuple[float, float]], scores: list[float], force_least: bool
    ) -> None:
        total = self.ttft_weight + self.tpot_weight
        alpha, beta = (self.ttft_weight / total, self.tpot_weight / total) if total > 0 else (1.0, 0.0)
        ttft = [abs(room[i][0]) for i in members]
        tpot = [abs(room[i][1]) for i in members]
        ttft_range, tpot_range = max(ttft) - min(ttft), max(tpot) - min(tpot)
        # A dimension with no spread would only compress the scores: weight it 0.
        if ttft_range <= EPS < tpot_range:
            alpha, beta = 0.0, 1.0
        elif tpot_range <= EPS < ttft_range:
            alpha, beta = 1.0, 0.0
        least = force_least or self.strategy == "least"
        for k, i in enumerate(members):
            n_ttft = (ttft[k] - min(ttft)) / ttft_range if ttft_range > EPS else 0.5
            n_tpot = (tpot[k] - min(tpot)) / tpot_range if tpot_range > EPS else 0.5
            combined = alpha * n_ttft + beta * n_tpot
            weight = int(((1.0 - combined) if least else combined) * W_MAX) + 1
            scores[i] = min(1.0, weight / W_MAX)

    def _composite(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> list[float]:
        """Upstream's fallback while there are no predictions."""
        wkv, wq, wprefix = self.composite
        total = wkv + wq + wprefix
        wkv, wq, wprefix = (wkv / total, wq / total, wprefix / total) if total > 0 else (1.0, 0.0, 0.0)
        queues = [projection.waiting(e) for e in endpoints]
        max_q = max(queues, default=0)
        prefix = (
            self._prefix.match_ratio(state, request, endpoints)
            if self._prefix is not None and wprefix > 0
            else [0.0] * len(endpoints)
        )
        out = []
        for e, q, p in zip(endpoints, queues, prefix, strict=True):
            rel_queue = (max_q - q) / max_q if max_q > 0 else 1.0
            composite = wkv * (1.0 - projection.kv_usage(e)) + wq * rel_queue + wprefix * p
            out.append(min(1.0, max(0.0, round(W_MAX * composite) / W_MAX)))
        return out


def _relative_headroom(table: RequestPredictions, p: LatencyPrediction | None) -> float | None:
    """min over the request's objectives of (objective - predicted) / objective."""
    if p is None:
        return None
    pairs = ((table.ttft_slo, p.ttft_ms), (table.tpot_slo, p.tpot_ms))
    rooms = [(slo - v) / slo for slo, v in pairs if slo is not None]
    return min(rooms) if rooms else None


def _standalone_scores(table: RequestPredictions | None, endpoints: Sequence[Endpoint]) -> list[float]:
    if table is None:
        return [1.0] * len(endpoints)
    preds = [table.get(e) for e in endpoints]
    if not table.has_slo:
        return inverse_min_max([p.ttft_ms if p is not None else 0.0 for p in preds])
    rooms = [_relative_headroom(table, p) or 0.0 for p in preds]
    return [min(1.0, max(0.0, (h + 1.0) / 2.0)) for h in rooms]
