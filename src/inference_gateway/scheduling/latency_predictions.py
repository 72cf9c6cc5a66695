"""What the predicted-latency family shares: one request's latency predictions per endpoint
(upstream's LatencyPredictionInfo endpoint attribute) and how consumers read them.

`predicted-latency-producer` owns the one online predictor of a config (scheduling/latency.py)
and answers `predictions(request, endpoints)`; the scorer, filters and admitter that read them
are linked to it at config load (`LatencyPredictionConsumer`). Within a scheduling cycle the
table is kept in the cycle state (`state_key`), so every plugin of the cycle reads the same
predictions, as upstream's plugins read the same endpoint attributes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.latency import Features
from inference_gateway.scheduling.types import CycleState, SchedulingRequest

TTFT_HEADER = "x-slo-ttft-ms"
TPOT_HEADER = "x-slo-tpot-ms"
STATE_KEY = "predicted-latency/predictions"


def header_ms(headers: Mapping[str, str], name: str) -> float | None:
    """A positive number of milliseconds from a header; anything else is no objective."""
    raw = headers.get(name)
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if value > 0 else None


@dataclass(frozen=True, slots=True)
class LatencyPrediction:
    """One endpoint's predicted latency for one request, and its headroom (objective minus
    prediction, ms; negative when the prediction misses the objective or there is none)."""

    ttft_ms: float
    tpot_ms: float
    ttft_headroom: float
    tpot_headroom: float
    ttft_valid: bool
    tpot_valid: bool
    dispatched: int  # requests the producer sent to the endpoint that have not finished

    @property
    def valid(self) -> bool:
        return self.ttft_valid and self.tpot_valid

    @property
    def positive(self) -> bool:
        return self.ttft_headroom >= 0 and self.tpot_headroom >= 0


@dataclass(slots=True)
class RequestPredictions:
    """The request's objectives (ms; None where it has none) and the predictions by address."""

    ttft_slo: float | None
    tpot_slo: float | None
    by_address: dict[str, LatencyPrediction] = field(default_factory=dict)
    features: dict[str, Features] = field(default_factory=dict)  # what each was predicted on

    @property
    def has_slo(self) -> bool:
        return self.ttft_slo is not None or self.tpot_slo is not None

    def get(self, endpoint: Endpoint) -> LatencyPrediction | None:
        return self.by_address.get(endpoint.address)


class LatencyPredictionSource(Protocol):
    """The producer, as its consumers see it."""

    name: str

    def predictions(
        self, request: SchedulingRequest, endpoints: Sequence[Endpoint], state: CycleState | None = None
    ) -> RequestPredictions | None:
        """None while there are no predictions (predictor still learning, or turned off)."""
        ...


@runtime_checkable
class LatencyPredictionConsumer(Protocol):
    """A plugin that reads the config's predicted-latency-producer (linked at config load;
    None when the config has none)."""

    def link_latency_predictions(self, source: LatencyPredictionSource | None) -> None: ...


@dataclass(frozen=True, slots=True)
class LatencyOutcome:
    """A finished request's measured and predicted latency and its objectives (seconds; None
    where not measured, not predicted or no objective)."""

    ttft_s: float
    tpot_s: float | None
    predicted_ttft_s: float
    predicted_tpot_s: float | None
    ttft_slo_s: float | None
    tpot_slo_s: float | None


class PredictionSink(Protocol):
    """Where the producer reports for metrics (observability/prediction_metrics.py)."""

    def prediction_duration(self, model: str, target_model: str, seconds: float) -> None: ...

    def request_latency(self, model: str, target_model: str, outcome: LatencyOutcome) -> None: ...


@runtime_checkable
class ReportsPredictions(Protocol):
    """A plugin whose predictions the EPP exports as upstream's predicted-latency metrics."""

    def report_predictions(self, sink: PredictionSink) -> None: ...


def state_key(source: LatencyPredictionSource) -> str:
    return f"{STATE_KEY}/{source.name}"


def cycle_predictions(
    state: CycleState,
    source: LatencyPredictionSource | None,
    request: SchedulingRequest,
    endpoints: Sequence[Endpoint],
) -> RequestPredictions | None:
    """The cycle's predictions, asked of the producer once per cycle (endpoints a later plugin
    sees that the first did not are predicted then)."""
    if source is None:
        return None
    key = state_key(source)
    table: RequestPredictions | None = state.get(key)
    if table is not None and all(e.address in table.by_address for e in endpoints):
        return table
    missing = [e for e in endpoints if table is None or e.address not in table.by_address]
    fresh = source.predictions(request, missing, state)
    if fresh is None:
        return table
    if table is not None:
        table.by_address.update(fresh.by_address)
        table.features.update(fresh.features)
        return table
    state[key] = fresh
    return fresh
