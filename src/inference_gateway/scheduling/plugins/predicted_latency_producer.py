"""predicted-latency-producer: per-endpoint TTFT/TPOT predictions for each request, learned
in-process (upstream v1.5 / llm-d type and parameters; no sidecar).

Upstream trains XGBoost models in sidecars (`PREDICTION_SERVER_URL`, `TRAINING_SERVER_URL`).
Here the producer owns the config's one online predictor (scheduling/latency.py: recursive
least squares per endpoint on its projected load and the request's uncached prompt tokens,
learned from each request's measured TTFT and TPOT). The sidecar environment variables are
accepted and ignored, with one warning saying so.

For each request and endpoint it predicts TTFT and TPOT (ms) and the headroom against the
request's objectives, as upstream:

    ttft headroom = ttftSLO - predicted TTFT            (ttftSLO 0 when the request has none)
    tpot headroom = bufferedTPOT - predicted TPOT       (streamingMode only)
    bufferedTPOT  = tpotSLO x sloBufferFactor, and no more than the tightest TPOT objective
                    among the requests still running on the endpoint x sloBufferFactor

Without `streamingMode` (upstream's default) TPOT is neutralised (valid, headroom 0), and so it
is for endpoints whose `endpointRoleLabel` label says `prefill`. Objectives come from the
headers `x-slo-ttft-ms` / `x-slo-tpot-ms`, then (ours) `objectives` by the request's
InferenceObjective name, then, for Sheddable requests only, `sheddableTTFT` / `sheddableTPOT`,
then `defaultTTFT` / `defaultTPOT`. The sheddable pair is an admission bar, not a promise: a
Sheddable request is shed (latency-scorer's filter, latency-slo-admitter) when no endpoint is
predicted to start it within it, so batch work stops taking capacity while the pods still have
room for requests with objectives, before every pod is saturated (docs/benchmarks.md "Mixed
SLOs": a 30 ms bar on a 4-pod fleet at 110-120 % load).

`latency-scorer`, `slo-headroom-tier-filter`, `latency-slo-admitter`, `predicted-latency-scorer`
and `prefix-cache-affinity-filter` read the predictions (linked at config load). While the
predictor has fewer than `minSamples` observations, or with `predictInPrepareData` /
`predictInProduce` false, there are no predictions and they fall back as upstream's do when
the sidecar is down. It learns, as upstream's: with `streamingMode`, each streamed response's
measured TTFT and TPOT; without it, each successful response's end-to-end latency, which is
then what "TTFT" predicts and `x-slo-ttft-ms` is held against.

Parameters (upstream's): samplingMean (1000, > 0), maxDecodeTokenSamplesForPrediction (0,
>= 0) — upstream samples in-stream TPOT predictions with them; here TPOT is the measured
average per request, so they are validated and have no effect —, sloBufferFactor (1, > 0),
contextTTL (5m), streamingMode (false), endpointRoleLabel (""), predictInPrepareData (true;
llm-d: predictInProduce). Ours: objectives {name: {ttft, tpot}}, defaultTTFT, defaultTPOT,
sheddableTTFT, sheddableTPOT, minSamples (30). Metrics (upstream's names): predicted TTFT/TPOT,
prediction durations and SLO violations per model (observability/prediction_metrics.py).
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.requestcontrol.resolve import OBJECTIVE_HEADER
from inference_gateway.scheduling.latency import LatencyPredictor, features
from inference_gateway.scheduling.latency_predictions import (
    TPOT_HEADER,
    TTFT_HEADER,
    LatencyOutcome,
    LatencyPrediction,
    LatencyPredictionSource,
    PredictionSink,
    RequestPredictions,
    header_ms,
    state_key,
)
from inference_gateway.scheduling.params import (
    get_bool,
    get_duration_s,
    get_float,
    get_int,
    get_str,
    reject_unknown,
)
from inference_gateway.scheduling.projection import prompt_tokens
from inference_gateway.scheduling.types import CycleState, SchedulingRequest, SchedulingResult

log = logging.getLogger(__name__)

UPSTREAM = frozenset(
    {
        "samplingMean",
        "maxDecodeTokenSamplesForPrediction",
        "sloBufferFactor",
        "contextTTL",
        "streamingMode",
        "endpointRoleLabel",
        "predictInPrepareData",
        "predictInProduce",
    }
)
OURS = frozenset({"objectives", "defaultTTFT", "defaultTPOT", "sheddableTTFT", "sheddableTPOT", "minSamples"})
# Upstream's latency-predictor client reads these (sidecars/latencypredictorasync).
SIDECAR_ENV = ("PREDICTION_SERVER_URL", "PREDICTION_SERVERS", "TRAINING_SERVER_URL")
PREFILL_ROLE = "prefill"


def warn_if_sidecar(name: str, environ: Mapping[str, str]) -> None:
    """Upstream's sidecar settings are accepted and ignored, with one warning saying so."""
    named = [k for k in SIDECAR_ENV if environ.get(k)]
    if named:
        log.warning(
            "%s: %s set; no latency-predictor sidecar is used here, predictions come from the"
            " in-process online predictor (docs/compatibility.md)",
            name,
            ", ".join(named),
        )


@dataclass(slots=True)
class _Bound:
    """A request sent to an endpoint, until its latency comes back (or contextTTL passes)."""

    created: float
    model: str
    target_model: str
    slo: tuple[float | None, float | None]
    address: str
    predicted: tuple[float, float] | None  # (TTFT ms, TPOT ms) there, when predicted
    e2e_s: float | None = None  # measured end to end, once known


def slo_ms(params: Mapping[str, Any], key: str) -> float | None:
    if params.get(key) is None:
        return None
    seconds = get_duration_s(params, key, 0.0)
    if seconds <= 0:
        raise ValueError(f"parameter {key!r} must be a positive duration")
    return seconds * 1000.0


def parse_objectives(raw: Any) -> dict[str, tuple[float | None, float | None]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError("parameter 'objectives' must map objective names to {ttft, tpot}")
    out: dict[str, tuple[float | None, float | None]] = {}
    for name, slo in raw.items():
        if not isinstance(slo, dict) or not set(slo) <= {"ttft", "tpot"}:
            raise ValueError(f"parameter 'objectives.{name}' must be a mapping with ttft and/or tpot")
        out[str(name)] = (slo_ms(slo, "ttft"), slo_ms(slo, "tpot"))
    return out


class PredictedLatencyProducer:
    type_name = "predicted-latency-producer"

    def __init__(
        self,
        name: str = type_name,
        parameters: dict[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        params = parameters or {}
        reject_unknown(params, UPSTREAM | OURS)
        self.name = name
        if get_float(params, "samplingMean", 1000.0) <= 0:
            raise ValueError(f"parameter 'samplingMean' must be > 0, got {params['samplingMean']!r}")
        get_int(params, "maxDecodeTokenSamplesForPrediction", 0, minimum=0)
        self.buffer = get_float(params, "sloBufferFactor", 1.0)
        if self.buffer <= 0:
            raise ValueError(f"parameter 'sloBufferFactor' must be > 0, got {self.buffer:g}")
        self.context_ttl_s = get_duration_s(params, "contextTTL", 300.0)
        self.streaming = get_bool(params, "streamingMode", False)
        self.role_label = get_str(params, "endpointRoleLabel", "")
        self.predict_enabled = get_bool(params, "predictInPrepareData", True) and get_bool(
            params, "predictInProduce", True
        )
        self.default_slo = (slo_ms(params, "defaultTTFT"), slo_ms(params, "defaultTPOT"))
        self.sheddable_slo = (slo_ms(params, "sheddableTTFT"), slo_ms(params, "sheddableTPOT"))
        self.objectives = parse_objectives(params.get("objectives"))
        self.predictor = LatencyPredictor(get_int(params, "minSamples", 30, minimum=1))
        self.clock = time.monotonic
        self._bound: OrderedDict[str, _Bound] = OrderedDict()
        # address -> {request id: its TPOT objective in ms (0: none)}, requests not yet finished
        self._running: dict[str, dict[str, float]] = {}
        self._prefix: Any = None
        self._sinks: list[PredictionSink] = []
        warn_if_sidecar(name, os.environ if environ is None else environ)

    # --- wiring ---------------------------------------------------------------------
    def link_prefix_cache(self, prefix: Any) -> None:
        """Upstream's producer consumes PrefixCacheMatchInfo: cached tokens cost no prefill."""
        self._prefix = prefix

    def report_predictions(self, sink: PredictionSink) -> None:
        self._sinks.append(sink)

    # --- objectives and predictions ---------------------------------------------------
    def slo(self, request: SchedulingRequest) -> tuple[float | None, float | None]:
        """(TTFT ms, TPOT ms) objectives of the request; None where it has none."""
        named = self.objectives.get(request.headers.get(OBJECTIVE_HEADER, ""), (None, None))
        # A Sheddable request without its own objective is held to the sheddable bar (the
        # admission bar for work nobody waits on), every other one to the defaults.
        fallback = self.sheddable_slo if request.sheddable else (None, None)
        ttft = header_ms(request.headers, TTFT_HEADER) or named[0] or fallback[0] or self.default_slo[0]
        tpot = header_ms(request.headers, TPOT_HEADER) or named[1] or fallback[1] or self.default_slo[1]
        return ttft, tpot

    def held_to_sheddable_bar(self, request: SchedulingRequest) -> bool:
        """A Sheddable request whose TTFT objective is `sheddableTTFT`, not one of its own."""
        if not request.sheddable or self.sheddable_slo[0] is None:
            return False
        named = self.objectives.get(request.headers.get(OBJECTIVE_HEADER, ""), (None, None))
        return not (header_ms(request.headers, TTFT_HEADER) or named[0])

    def _expire(self) -> None:
        """Forget requests whose latency never came back (upstream's contextTTL)."""
        horizon = self.clock() - self.context_ttl_s
        while self._bound:
            rid, bound = next(iter(self._bound.items()))
            if bound.created > horizon:
                break
            self._forget(rid)

    def predictions(
        self, request: SchedulingRequest, endpoints: Sequence[Endpoint], state: CycleState | None = None
    ) -> RequestPredictions | None:
        """The request's predictions for `endpoints`; None while there are none to give."""
        if not self.predict_enabled or not self.predictor.warm:
            return None
        started = time.perf_counter()
        table = self._predict(request, endpoints, state if state is not None else CycleState())
        elapsed = time.perf_counter() - started
        for sink in self._sinks:
            sink.prediction_duration(request.model, request.target_model, elapsed)
        return table

    def _predict(
        self, request: SchedulingRequest, endpoints: Sequence[Endpoint], state: CycleState
    ) -> RequestPredictions:
        ttft_slo, tpot_slo = self.slo(request)
        table = RequestPredictions(ttft_slo, tpot_slo)
        tokens = prompt_tokens(request)
        cached = self._prefix.match_ratio(state, request, endpoints) if self._prefix is not None else None
        for i, e in enumerate(endpoints):
            uncached = round(tokens * (1.0 - cached[i])) if cached is not None else tokens
            f = table.features[e.address] = features(e, uncached)
            ttft, tpot = self.predictor.predict(e.address, f)
            ttft_room = (ttft_slo or 0.0) - ttft
            if self.streaming and not self._is_prefill(e):
                buffered = (tpot_slo or 0.0) * self.buffer
                tightest = self._tightest_tpot(e.address)
                if tightest > 0:
                    buffered = min(buffered, tightest * self.buffer)
                tpot_room, tpot_ok = buffered - tpot, tpot < buffered
            else:
                tpot_room, tpot_ok = 0.0, True
            table.by_address[e.address] = LatencyPrediction(
                ttft, tpot, ttft_room, tpot_room, ttft < (ttft_slo or 0.0), tpot_ok, self.dispatched(e)
            )
        return table

    def _is_prefill(self, endpoint: Endpoint) -> bool:
        return bool(self.role_label) and endpoint.labels.get(self.role_label) == PREFILL_ROLE

    def _tightest_tpot(self, address: str) -> float:
        objectives = [v for v in self._running.get(address, {}).values() if v > 0]
        return min(objectives) if objectives else 0.0

    def dispatched(self, endpoint: Endpoint) -> int:
        return len(self._running.get(endpoint.address, ()))

    # --- learning -----------------------------------------------------------------------
    def pre_request(self, state: CycleState, request: SchedulingRequest, result: SchedulingResult) -> None:
        """The request is bound: remember where it went and the features it was predicted on."""
        if not result.endpoints:
            return
        target = result.endpoints[0]
        table: RequestPredictions | None = state.get(state_key(self))
        f = table.features.get(target.address) if table is not None else None
        prediction = table.by_address.get(target.address) if table is not None else None
        if f is None:
            f = features(target, prompt_tokens(request))
        self.predictor.dispatched(request.request_id, target.address, f)
        if prediction is not None:
            predicted: tuple[float, float] | None = (prediction.ttft_ms, prediction.tpot_ms)
        else:
            predicted = self.predictor.predict(target.address, f) if self.predictor.warm else None
        self._expire()
        slo = self.slo(request)
        self._bound[request.request_id] = _Bound(
            self.clock(), request.model, request.target_model, slo, target.address, predicted
        )
        self._running.setdefault(target.address, {})[request.request_id] = slo[1] or 0.0

    def observe_end_to_end(self, request_id: str, e2e_s: float) -> None:
        bound = self._bound.get(request_id)
        if bound is not None:
            bound.e2e_s = e2e_s

    def observe_latency(self, request_id: str, ttft_s: float | None, tpot_s: float | None) -> None:
        """The request ended; learn from its measured latency (None: not measured). Without
        streamingMode the "TTFT" learned and predicted is the end-to-end latency, as upstream's."""
        ctx = self._forget(request_id)
        if not self.streaming:
            ttft_s = ctx.e2e_s if ctx is not None else None
        self.predictor.observed(
            request_id,
            None if ttft_s is None else ttft_s * 1000.0,
            None if tpot_s is None else tpot_s * 1000.0,
        )
        if ctx is None or ctx.predicted is None or ttft_s is None:
            return
        tpot_known = self.streaming and tpot_s is not None
        outcome = LatencyOutcome(
            ttft_s=ttft_s,
            tpot_s=tpot_s if tpot_known else None,
            predicted_ttft_s=ctx.predicted[0] / 1000.0,
            predicted_tpot_s=ctx.predicted[1] / 1000.0 if tpot_known else None,
            ttft_slo_s=None if ctx.slo[0] is None else ctx.slo[0] / 1000.0,
            tpot_slo_s=None if ctx.slo[1] is None else ctx.slo[1] / 1000.0,
        )
        for sink in self._sinks:
            sink.request_latency(ctx.model, ctx.target_model, outcome)

    def _forget(self, request_id: str) -> _Bound | None:
        ctx = self._bound.pop(request_id, None)
        if ctx is not None:
            running = self._running.get(ctx.address)
            if running is not None:
                running.pop(request_id, None)
                if not running:
                    del self._running[ctx.address]
        return ctx

    def endpoints_changed(self, addresses: Collection[str]) -> None:
        keep = set(addresses)
        self.predictor.forget(keep)
        for address in [a for a in self._running if a not in keep]:
            del self._running[address]


class ProducerClient:
    """A scorer that reads the config's producer, or, configured without one, runs a private
    producer (latency-scorer, predicted-latency-scorer): the same predictor code either way.
    Learning hooks go to the private producer only; a config's producer gets them itself."""

    _private: PredictedLatencyProducer | None
    _source: LatencyPredictionSource

    def _own(self, producer: PredictedLatencyProducer) -> None:
        self._private = self._source = producer

    def _use(self, source: LatencyPredictionSource) -> None:
        self._private, self._source = None, source

    @property
    def producer(self) -> PredictedLatencyProducer:
        source = self._private if self._private is not None else self._source
        assert isinstance(source, PredictedLatencyProducer)
        return source

    def pre_request(self, state: CycleState, request: SchedulingRequest, result: SchedulingResult) -> None:
        if self._private is not None:
            self._private.pre_request(state, request, result)

    def observe_latency(self, request_id: str, ttft_s: float | None, tpot_s: float | None) -> None:
        if self._private is not None:
            self._private.observe_latency(request_id, ttft_s, tpot_s)

    def observe_end_to_end(self, request_id: str, e2e_s: float) -> None:
        if self._private is not None:
            self._private.observe_end_to_end(request_id, e2e_s)

    def endpoints_changed(self, addresses: Collection[str]) -> None:
        if self._private is not None:
            self._private.endpoints_changed(addresses)

    def report_predictions(self, sink: PredictionSink) -> None:
        if self._private is not None:
            self._private.report_predictions(sink)
