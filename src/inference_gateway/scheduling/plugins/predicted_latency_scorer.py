"""predicted-latency-scorer: upstream v1.5's all-in-one SLO-aware scorer (its "old monolith",
kept beside the decomposed family), on the in-process predictor.

It picks one endpoint and scores it 1, every other 0, as upstream's:
1. affinity gate: the endpoints whose prefix-cache match is at least `affinityGateTauGlobal`
   (0.99), if any, unless exploring (probability `epsilonExploreSticky`, 0.01) or the best of
   them is predicted more than `affinityMaxTTFTPenaltyMs` (5000) slower to first token than
   the best endpoint overall;
2. tiers: positive headroom (TTFT and TPOT objectives met) and negative; when both exist the
   negative tier is taken with probability `epsilonExploreNeg` (0.01);
3. positive tier: the affinity gate again with `affinityGateTau` (0.80), then a weighted draw
   over the normalised headroom blended `headroomTTFTWeight` / `headroomTPOTWeight` (0.8 /
   0.2; TTFT only without `streamingMode`): `least` (default) favours the endpoint closest to
   its objectives, `most` the one with the most headroom;
4. negative tier: endpoints with nothing in flight first; then weights by the blended deficit
   (`negHeadroomTTFTWeight` / `negHeadroomTPOTWeight`, 0.8 / 0.2), all violation classes
   drawn together;
`composite-least`, `composite-most` and `composite-only` strategies draw by the composite of
free KV cache, relative queue and prefix match (`compositeKVWeight`, `compositeQueueWeight`,
`compositePrefixWeight`, 1 each), and so does every request while there are no predictions.
`selectionMode: max` takes the heaviest instead of drawing (`linear`, default).

Predictions come from the config's `predicted-latency-producer` when it has one (its
parameters then decide headroom); alone, this scorer runs a private producer with its own
`samplingMean`, `maxSampledTokens`, `sloBufferFactor`, `contextTTL`, `streamingMode` (true
here, as upstream's default for this type) and `endpointRoleLabel`. Prefix matches come from
the configured prefix cache. `seed` (ours) makes the draws deterministic.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling import projection
from inference_gateway.scheduling.latency_predictions import (
    LatencyPrediction,
    LatencyPredictionSource,
    cycle_predictions,
)
from inference_gateway.scheduling.params import get_bool, get_float, get_int, get_str, reject_unknown
from inference_gateway.scheduling.plugins._shared import rng
from inference_gateway.scheduling.plugins.predicted_latency_producer import (
    PredictedLatencyProducer,
    ProducerClient,
    warn_if_sidecar,
)
from inference_gateway.scheduling.types import CycleState, SchedulingRequest

NON_NEGATIVE = (
    "negHeadroomTTFTWeight", "negHeadroomTPOTWeight", "headroomTTFTWeight", "headroomTPOTWeight",
    "compositeKVWeight", "compositeQueueWeight", "compositePrefixWeight", "affinityMaxTTFTPenaltyMs",
)  # fmt: skip
DEFAULTS = {"affinityMaxTTFTPenaltyMs": 5000.0, "negHeadroomTPOTWeight": 0.2, "headroomTPOTWeight": 0.2}
PROBABILITIES = {"epsilonExploreSticky": 0.01, "epsilonExploreNeg": 0.01}
GATES = {"affinityGateTau": 0.80, "affinityGateTauGlobal": 0.99}
FORWARDED = ("samplingMean", "sloBufferFactor", "contextTTL", "streamingMode", "endpointRoleLabel")
STRATEGIES = ("least", "most", "composite-least", "composite-most", "composite-only")
KNOWN = frozenset(
    {*NON_NEGATIVE, *PROBABILITIES, *GATES, *FORWARDED}
    | {"maxSampledTokens", "headroomSelectionStrategy", "selectionMode", "seed"}
)
W_MAX, MIN_WEIGHT, NEG_RANGE, EPS = 100, 1, 80, 1e-9


class PredictedLatencyScorer(ProducerClient):
    type_name = "predicted-latency-scorer"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = parameters or {}
        reject_unknown(params, KNOWN)
        self.name = name
        weights = {k: get_float(params, k, DEFAULTS.get(k, _default(k)), 0.0) for k in NON_NEGATIVE}
        self.neg_weights = (weights["negHeadroomTTFTWeight"], weights["negHeadroomTPOTWeight"])
        self.pos_weights = (weights["headroomTTFTWeight"], weights["headroomTPOTWeight"])
        self.composite = (
            weights["compositeKVWeight"],
            weights["compositeQueueWeight"],
            weights["compositePrefixWeight"],
        )
        self.max_penalty_ms = weights["affinityMaxTTFTPenaltyMs"]
        self.explore_sticky, self.explore_neg = (
            get_float(params, k, v, 0.0, 1.0) for k, v in PROBABILITIES.items()
        )
        self.tau, self.tau_global = (get_float(params, k, v, 0.0, 1.0) for k, v in GATES.items())
        self.strategy = get_str(params, "headroomSelectionStrategy", "least")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"parameter 'headroomSelectionStrategy' must be one of {', '.join(STRATEGIES)}")
        self.max_mode = get_str(params, "selectionMode", "linear")
        if self.max_mode not in ("linear", "max"):
            raise ValueError(f"parameter 'selectionMode' must be linear or max, got {self.max_mode!r}")
        self.streaming = get_bool(params, "streamingMode", True)
        forwarded = {k: params[k] for k in FORWARDED if k in params}
        forwarded["streamingMode"] = self.streaming
        samples = get_int(params, "maxSampledTokens", 0, minimum=0)
        forwarded["maxDecodeTokenSamplesForPrediction"] = samples
        self._own(PredictedLatencyProducer(f"{name}/predictor", forwarded, environ={}))
        self._rng = rng(params)
        self._prefix: Any = None

    def link_latency_predictions(self, source: LatencyPredictionSource | None) -> None:
        if source is None:  # upstream's monolith talks to the sidecar itself
            warn_if_sidecar(self.name, os.environ)
        else:
            self._use(source)
            self.streaming = self.producer.streaming

    def link_prefix_cache(self, prefix: Any) -> None:
        self._prefix = prefix

    def score(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> list[float]:
        if not endpoints:
            return []
        table = cycle_predictions(state, self._source, request, endpoints)
        prefix = self._prefix.match_ratio(state, request, endpoints) if self._prefix is not None else None
        cands = [
            _Cand(e, table.get(e) if table is not None else None, prefix[i] if prefix is not None else 0.0)
            for i, e in enumerate(endpoints)
        ]
        chosen = self._select(cands)
        return [1.0 if c is chosen else 0.0 for c in cands]

    # --- selection ----------------------------------------------------------------------
    def _select(self, cands: list[_Cand]) -> _Cand:
        if any(c.p is None for c in cands) or self.strategy == "composite-only":
            return self._composite_pick(cands, least=False)
        cands, _ = self._gate(cands, self.tau_global)
        positive = [c for c in cands if c.p is not None and c.p.positive]
        negative = [c for c in cands if c not in positive]
        if positive and (not negative or self._rng.random() >= self.explore_neg):
            return self._positive(positive)
        return self._negative(negative)

    def _gate(self, cands: list[_Cand], threshold: float) -> tuple[list[_Cand], bool]:
        """Keep the endpoints that hold the prefix, unless exploring or their queue costs more."""
        if threshold <= 0:
            return cands, False
        sticky = [c for c in cands if c.prefix >= threshold]
        if not sticky or self._rng.random() < self.explore_sticky:
            return cands, False
        if self.max_penalty_ms > 0 and _best_ttft(sticky) - _best_ttft(cands) > self.max_penalty_ms:
            return cands, False
        return sticky, True

    def _settled(self, cands: list[_Cand]) -> tuple[list[_Cand], _Cand | None]:
        """The candidates after the affinity gate, and the pick when no weighted draw is needed
        (one candidate left, or a composite strategy)."""
        if len(cands) == 1:
            return cands, cands[0]
        cands, sticky = self._gate(cands, self.tau)
        if sticky and len(cands) == 1:
            return cands, cands[0]
        if self.strategy.startswith("composite-"):
            return cands, self._composite_pick(cands, least=self.strategy == "composite-least")
        return cands, None

    def _positive(self, cands: list[_Cand]) -> _Cand:
        cands, settled = self._settled(cands)
        if settled is not None:
            return settled
        alpha, beta = _normalised(*self.pos_weights) if self.streaming else (1.0, 0.0)
        ttft = _norm([c.room[0] for c in cands])
        tpot = _norm([c.room[1] for c in cands])
        weights = []
        for a, b in zip(ttft, tpot, strict=True):
            combined = alpha * a + beta * b
            share = combined if self.strategy == "most" else 1.0 - combined
            weights.append(int(share * (W_MAX - MIN_WEIGHT)) + MIN_WEIGHT + 1)
        return self._draw(cands, weights)

    def _negative(self, cands: list[_Cand]) -> _Cand:
        idle = [c for c in cands if c.p is not None and c.p.dispatched == 0]
        cands, settled = self._settled(idle or cands)
        if settled is not None:
            return settled
        alpha, beta = _normalised(*self.neg_weights) if self.streaming else (1.0, 0.0)
        weights: dict[int, int] = {}
        classes: dict[tuple[bool, bool], list[int]] = {}
        for i, c in enumerate(cands):
            classes.setdefault((c.room[0] < 0, c.room[1] < 0), []).append(i)
        for (ttft_neg, tpot_neg), members in classes.items():
            if not (ttft_neg or tpot_neg):
                weights.update((i, MIN_WEIGHT) for i in members)
                continue
            ttft = _norm([max(0.0, -cands[i].room[0]) for i in members], flat=0.0)
            tpot = _norm([max(0.0, -cands[i].room[1]) for i in members], flat=0.0)
            for i, a, b in zip(members, ttft, tpot, strict=True):
                weights[i] = int((1.0 - (alpha * a + beta * b)) * NEG_RANGE) + MIN_WEIGHT + 1
        return self._draw(cands, [weights[i] for i in range(len(cands))])

    def _composite_pick(self, cands: list[_Cand], least: bool) -> _Cand:
        wkv, wq, wprefix = _normalised3(*self.composite)
        queues = [projection.waiting(c.endpoint) for c in cands]
        lo, hi = min(queues), max(queues)
        weights = []
        for c, q in zip(cands, queues, strict=True):
            rel_queue = (hi - q) / (hi - lo) if hi > lo else 1.0
            kv_free = 1.0 - projection.kv_usage(c.endpoint)
            w = round(
                MIN_WEIGHT + (W_MAX - MIN_WEIGHT) * (wkv * kv_free + wq * rel_queue + wprefix * c.prefix)
            )
            weights.append(MIN_WEIGHT + W_MAX - w if least else w)
        return self._draw(cands, weights)

    def _draw(self, cands: list[_Cand], weights: list[int]) -> _Cand:
        total = sum(weights)
        if total <= 0:
            return cands[0]
        if self.max_mode == "max":
            return cands[weights.index(max(weights))]
        pick = self._rng.randrange(total)
        for c, w in zip(cands, weights, strict=True):
            if pick < w:
                return c
            pick -= w
        return cands[0]


class _Cand:
    __slots__ = ("endpoint", "p", "prefix", "room")

    def __init__(self, endpoint: Endpoint, p: LatencyPrediction | None, prefix: float) -> None:
        self.endpoint, self.p, self.prefix = endpoint, p, prefix
        self.room = (p.ttft_headroom, p.tpot_headroom) if p is not None else (0.0, 0.0)


def _default(key: str) -> float:
    """Upstream's defaults: 0.8 for the TTFT weights, 1 for the composite weights."""
    return 0.8 if "TTFT" in key else 1.0


def _best_ttft(cands: Sequence[_Cand]) -> float:
    return min((c.p.ttft_ms for c in cands if c.p is not None and c.p.ttft_ms > 0), default=math.inf)


def _normalised(a: float, b: float) -> tuple[float, float]:
    return (a / (a + b), b / (a + b)) if a + b > 0 else (1.0, 0.0)


def _normalised3(a: float, b: float, c: float) -> tuple[float, float, float]:
    total = a + b + c
    return (a / total, b / total, c / total) if total > 0 else (1.0, 0.0, 0.0)


def _norm(values: list[float], flat: float = 0.5) -> list[float]:
    """Min-max to [0, 1]; `flat` for every value when they do not spread."""
    lo, hi = min(values), max(values)
    if hi - lo <= EPS:
        return [flat] * len(values)
    return [(v - lo) / (hi - lo + EPS) for v in values]
