"""Upstream's predicted-latency metric families, exported when a plugin predicts latency."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.epp import EndpointPicker, EPPOptions
from inference_gateway.scheduling.config import DEFAULT_CONFIG
from inference_gateway.scheduling.latency import features
from inference_gateway.scheduling.plugins.predicted_latency_producer import PredictedLatencyProducer
from inference_gateway.scheduling.types import SchedulingRequest
from tests.helpers import make_store

PRODUCER = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: predicted-latency-producer
  parameters: {streamingMode: true, minSamples: 5}
- type: slo-headroom-tier-filter
- type: latency-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins: [{pluginRef: slo-headroom-tier-filter}, {pluginRef: latency-scorer}, {pluginRef: max-score-picker}]
"""
FAMILIES = {
    "inference_objective_request_predicted_ttft_seconds": ("histogram", {"model_name", "target_model_name"}),
    "inference_objective_request_predicted_tpot_seconds": ("histogram", {"model_name", "target_model_name"}),
    "inference_objective_request_ttft_prediction_duration_seconds": (
        "histogram",
        {"model_name", "target_model_name"},
    ),
    "inference_objective_request_tpot_prediction_duration_seconds": (
        "histogram",
        {"model_name", "target_model_name"},
    ),
    "inference_objective_request_slo_violation": ("counter", {"model_name", "target_model_name", "type"}),
    "inference_objective_inference_request_metric": ("gauge", {"model_name", "target_model_name", "type"}),
}


def families(registry: CollectorRegistry) -> dict[str, tuple[str, set[str]]]:
    out: dict[str, tuple[str, set[str]]] = {}
    for family in registry.collect():
        labels = {k for s in family.samples for k in s.labels if k != "le"}
        out[family.name] = (family.type, labels)
    return out


def train(producer: PredictedLatencyProducer, endpoints: list[Endpoint]) -> None:
    rng = random.Random(1)
    for i in range(50):
        e = endpoints[i % len(endpoints)]
        producer.predictor.dispatched(f"t{i}", e.address, features(e, 0))
        producer.observe_latency(f"t{i}", 0.05 + rng.random() / 100, 0.01 + rng.random() / 1000)


def test_predicted_latency_families_are_exported_with_upstreams_names_types_and_labels() -> None:
    store = make_store()
    epp = EndpointPicker(EPPOptions(config_text=PRODUCER), store=store)
    producer = epp.runtimes.default.config.plugins["predicted-latency-producer"]
    assert isinstance(producer, PredictedLatencyProducer)
    endpoints = list(store.endpoints())
    train(producer, endpoints)
    scheduler = epp.runtimes.default.scheduler
    req = SchedulingRequest(
        "r1", "m", "m-target", prompt="hello", headers={"x-slo-ttft-ms": "20", "x-slo-tpot-ms": "100"}
    )
    result, state = scheduler.schedule(req, endpoints)
    scheduler.bind(state, req, result)
    scheduler.observe_latency("r1", 0.2, 0.02)  # TTFT 200 ms misses 20 ms; TPOT 20 ms meets 100 ms

    registry = epp.metrics.registry
    seen = families(registry)
    for name, (kind, labels) in FAMILIES.items():
        assert seen.get(name, (None, set()))[0] == kind, name
        assert seen[name][1] == labels, name
    sample = registry.get_sample_value
    objective = {"model_name": "m", "target_model_name": "m-target"}
    assert sample("inference_objective_request_predicted_ttft_seconds_count", objective) == 1
    assert sample("inference_objective_request_predicted_tpot_seconds_count", objective) == 1
    assert (sample("inference_objective_request_ttft_prediction_duration_seconds_count", objective) or 0) >= 1
    assert sample("inference_objective_request_slo_violation_total", {**objective, "type": "ttft"}) == 1
    assert sample("inference_objective_request_slo_violation_total", {**objective, "type": "tpot"}) is None
    gauge = "inference_objective_inference_request_metric"
    assert sample(gauge, {**objective, "type": "ttft_slo_violation"}) == 1.0
    assert sample(gauge, {**objective, "type": "tpot_slo_violation"}) == 0.0
    assert sample(gauge, {**objective, "type": "ttft"}) == 0.2


def test_no_predicted_latency_families_without_a_predicting_plugin() -> None:
    epp = EndpointPicker(EPPOptions(config_text=DEFAULT_CONFIG), store=make_store())
    assert not any("predict" in name for name in families(epp.metrics.registry))
