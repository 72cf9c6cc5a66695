"""latency-scorer: SLO-aware routing on an online latency predictor (scheduling/latency.py).

Objectives per request: headers `x-slo-ttft-ms` and `x-slo-tpot-ms` (as upstream's
latency-predictor work), else those of the request's InferenceObjective (`objectives`, by the
name in x-gateway-inference-objective), else `defaultTTFT` / `defaultTPOT`. For each
candidate it predicts TTFT and TPOT from the endpoint's projected load and the prompt length.

As a scorer: headroom h = min over the request's objectives of (objective - predicted) /
objective, score = clamp((h + 1) / 2, 0, 1), so the endpoint with the most headroom scores
highest; a request without objectives scores by predicted TTFT (lowest best).
As a filter: a request with objectives keeps the endpoints predicted to meet them; if none
does, a Sheddable request keeps none (the director answers 429, it is shed) and any other
request keeps every endpoint. While the predictor has fewer than `minSamples` observations it
neither filters nor scores (every endpoint scores 1).

It learns from each request's measured TTFT and TPOT (the director reports them, and so do
the simulators' drivers). Parameters: objectives {name: {ttft: 200ms, tpot: 50ms}},
defaultTTFT, defaultTPOT (durations; none by default), minSamples (30).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.requestcontrol.resolve import OBJECTIVE_HEADER
from inference_gateway.scheduling.latency import Features, LatencyPredictor, features
from inference_gateway.scheduling.normalize import inverse_min_max
from inference_gateway.scheduling.params import get_duration_s, get_int
from inference_gateway.scheduling.projection import prompt_tokens
from inference_gateway.scheduling.types import CycleState, SchedulingRequest

TTFT_HEADER = "x-slo-ttft-ms"
TPOT_HEADER = "x-slo-tpot-ms"


def _header_ms(headers: dict[str, str], name: str) -> float | None:
    raw = headers.get(name)
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if value > 0 else None


class LatencyScorer:
    type_name = "latency-scorer"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = dict(parameters or {})
        unknown = set(params) - {"objectives", "defaultTTFT", "defaultTPOT", "minSamples"}
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(sorted(unknown))}")
        self.name = name
        self.default = (self._ms(params, "defaultTTFT"), self._ms(params, "defaultTPOT"))
        self.objectives: dict[str, tuple[float | None, float | None]] = {}
        raw = params.get("objectives") or {}
        if not isinstance(raw, dict):
            raise ValueError("parameter 'objectives' must map objective names to {ttft, tpot}")
        for objective, slo in raw.items():
            if not isinstance(slo, dict) or not set(slo) <= {"ttft", "tpot"}:
                raise ValueError(f"objectives.{objective} must be a mapping with ttft and/or tpot")
            self.objectives[str(objective)] = (self._ms(slo, "ttft"), self._ms(slo, "tpot"))
        self.predictor = LatencyPredictor(get_int(params, "minSamples", 30, minimum=1))

    @staticmethod
    def _ms(params: dict[str, Any], key: str) -> float | None:
        if params.get(key) is None:
            return None
        seconds = get_duration_s(params, key, 0.0)
        if seconds <= 0:
            raise ValueError(f"parameter '{key}' must be a positive duration")
        return seconds * 1000.0

    def slo(self, request: SchedulingRequest) -> tuple[float | None, float | None]:
        """(TTFT ms, TPOT ms) objectives of the request; None where it has none."""
        named = self.objectives.get(request.headers.get(OBJECTIVE_HEADER, ""), (None, None))
        ttft = _header_ms(request.headers, TTFT_HEADER) or named[0] or self.default[0]
        tpot = _header_ms(request.headers, TPOT_HEADER) or named[1] or self.default[1]
        return ttft, tpot

    def _predictions(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> list[tuple[float, float]]:
        key = f"{self.name}/predictions"
        cached = state.get(key)
        if cached is not None and cached[0] == [e.address for e in endpoints]:
            return list(cached[1])
        tokens = prompt_tokens(request)
        feats = [features(e, tokens) for e in endpoints]
        state[f"{self.name}/features"] = {e.address: f for e, f in zip(endpoints, feats, strict=True)}
        preds = [self.predictor.predict(e.address, f) for e, f in zip(endpoints, feats, strict=True)]
        state[key] = ([e.address for e in endpoints], preds)
        return preds

    def _headroom(self, request: SchedulingRequest, pred: tuple[float, float]) -> float | None:
        ttft_slo, tpot_slo = self.slo(request)
        rooms = [(slo - p) / slo for slo, p in ((ttft_slo, pred[0]), (tpot_slo, pred[1])) if slo is not None]
        return min(rooms) if rooms else None

    def filter(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> Sequence[Endpoint]:
        if not endpoints or not self.predictor.warm or self.slo(request) == (None, None):
            return endpoints
        preds = self._predictions(state, request, endpoints)
        meeting = [e for e, p in zip(endpoints, preds, strict=True) if (self._headroom(request, p) or 0) >= 0]
        if meeting or request.sheddable:
            return meeting
        return endpoints

    def score(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> list[float]:
        if not self.predictor.warm:
            return [1.0] * len(endpoints)
        preds = self._predictions(state, request, endpoints)
        if self.slo(request) == (None, None):
            return inverse_min_max([p[0] for p in preds])
        return [min(1.0, max(0.0, ((self._headroom(request, p) or 0.0) + 1.0) / 2.0)) for p in preds]

    def on_picked(self, state: CycleState, request: SchedulingRequest, endpoint: Endpoint) -> None:
        feats: dict[str, Features] | None = state.get(f"{self.name}/features")
        f = feats.get(endpoint.address) if feats else None
        if f is None:
            f = features(endpoint, prompt_tokens(request))
        self.predictor.dispatched(request.request_id, endpoint.address, f)

    def observe_latency(self, request_id: str, ttft_s: float | None, tpot_s: float | None) -> None:
        self.predictor.observed(
            request_id,
            None if ttft_s is None else ttft_s * 1000.0,
            None if tpot_s is None else tpot_s * 1000.0,
        )

    def endpoints_changed(self, addresses: Collection[str]) -> None:
        self.predictor.forget(set(addresses))
