"""Upstream's predicted-latency metric families (pkg/epp/metrics, v1.5.0), fed by the plugins
that predict latency (predicted-latency-producer, a standalone latency-scorer).

    inference_objective_request_predicted_ttft_seconds        histogram  model_name, target_model_name
    inference_objective_request_predicted_tpot_seconds        histogram  model_name, target_model_name
    inference_objective_request_ttft_prediction_duration_seconds  histogram  (same)
    inference_objective_request_tpot_prediction_duration_seconds  histogram  (same)
    inference_objective_request_slo_violation_total           counter    ..., type (ttft | tpot)
    inference_objective_inference_request_metric              gauge      ..., type (the last value
        of ttft, tpot, predicted_ttft, predicted_tpot, ttft_prediction_duration,
        tpot_prediction_duration, ttft_slo_violation, tpot_slo_violation)

Predicted values are those of the endpoint the request was sent to, recorded when it ends.
One prediction gives TTFT and TPOT together, so its duration is recorded under both names.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from inference_gateway.scheduling.latency_predictions import LatencyOutcome

OBJECTIVE = ("model_name", "target_model_name")
GENERAL_LATENCY_BUCKETS = (
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30,
    45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600,
)  # fmt: skip
TPOT_BUCKETS = (
    0.0005, 0.00205, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.125, 0.15, 0.2, 0.3, 0.4, 0.5,
    0.6, 0.8, 1, 1.5, 2, 3, 4.5, 6, 12, 18, 24, 30, 36, 48, 60, 90, 120, 180, 270, 360,
)  # fmt: skip
PREDICTION_BUCKETS = (0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class PredictionMetrics:
    """A PredictionSink on a Prometheus registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.predicted_ttft = Histogram(
            "inference_objective_request_predicted_ttft_seconds",
            "Inference model Predicted TTFT distribution in seconds for each model and target model.",
            OBJECTIVE,
            buckets=GENERAL_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft_duration = Histogram(
            "inference_objective_request_ttft_prediction_duration_seconds",
            "Duration taken to generate TTFT predictions in seconds for each model and target model.",
            OBJECTIVE,
            buckets=PREDICTION_BUCKETS,
            registry=r,
        )
        self.predicted_tpot = Histogram(
            "inference_objective_request_predicted_tpot_seconds",
            "Inference model Predicted TPOT distribution in seconds for each model and target model.",
            OBJECTIVE,
            buckets=TPOT_BUCKETS,
            registry=r,
        )
        self.tpot_duration = Histogram(
            "inference_objective_request_tpot_prediction_duration_seconds",
            "Duration taken to generate TPOT predictions in seconds for each model and target model.",
            OBJECTIVE,
            buckets=PREDICTION_BUCKETS,
            registry=r,
        )
        self.violations = Counter(
            "inference_objective_request_slo_violation_total",
            "Counter of SLO violations for each model, target model, and violation type.",
            (*OBJECTIVE, "type"),
            registry=r,
        )
        self.gauges = Gauge(
            "inference_objective_inference_request_metric",
            "Consolidated gauge for various inference request metrics including TTFT, TPOT, SLOs,"
            " and prediction durations.",
            (*OBJECTIVE, "type"),
            registry=r,
        )
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def _child(self, metric: Any, *values: str) -> Any:
        key = (id(metric), values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def prediction_duration(self, model: str, target_model: str, seconds: float) -> None:
        for histogram, kind in ((self.ttft_duration, "ttft"), (self.tpot_duration, "tpot")):
            self._child(histogram, model, target_model).observe(seconds)
            self._child(self.gauges, model, target_model, f"{kind}_prediction_duration").set(seconds)

    def request_latency(self, model: str, target_model: str, outcome: LatencyOutcome) -> None:
        o = outcome
        self._record(model, target_model, "ttft", o.ttft_s, o.predicted_ttft_s, o.ttft_slo_s)
        if o.tpot_s is not None and o.predicted_tpot_s is not None:
            self._record(model, target_model, "tpot", o.tpot_s, o.predicted_tpot_s, o.tpot_slo_s)

    def _record(
        self, model: str, target: str, kind: str, actual: float, predicted: float, slo: float | None
    ) -> None:
        histogram = self.predicted_ttft if kind == "ttft" else self.predicted_tpot
        self._child(histogram, model, target).observe(predicted)
        self._child(self.gauges, model, target, kind).set(actual)
        self._child(self.gauges, model, target, f"predicted_{kind}").set(predicted)
        if slo is None:
            return
        violated = actual > slo
        self._child(self.gauges, model, target, f"{kind}_slo_violation").set(1.0 if violated else 0.0)
        if violated:
            self._child(self.violations, model, target, kind).inc()
