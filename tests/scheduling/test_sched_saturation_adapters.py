"""adapterQueueIsLoad: requests an engine holds for a LoRA adapter slot are not load when the
detector is told so (the built-in default); upstream's detector counts every waiting request."""

from __future__ import annotations

import pytest
from sched_helpers import endpoint

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.config import ConfigError, load_config
from inference_gateway.scheduling.saturation import SaturationConfig, SaturationDetector


def blocked(name: str, waiting: int, kv: float = 0.0) -> Endpoint:
    """A pod running adapters a and b (both slots) with requests for c in its queue."""
    return endpoint(name, waiting=waiting, kv=kv, active=("a", "b"), queued_adapters=("c",), max_lora=2)


def detector(**params: object) -> SaturationDetector:
    return SaturationDetector(SaturationConfig.from_params({"queueDepthThreshold": 2, **params}))


def test_upstream_semantics_count_adapter_waits_as_load() -> None:
    e = blocked("p", 3)
    assert not detector().has_capacity(e)
    assert detector().describe(e) == "queue 3 >= 2"


def test_adapter_waits_are_not_load_when_configured() -> None:
    d = detector(adapterQueueIsLoad=False)
    e = blocked("p", 3)
    assert d.has_capacity(e)
    assert d.describe(e) == ""
    assert not d.is_saturated([e])


def test_a_queue_for_running_adapters_is_still_load() -> None:
    d = detector(adapterQueueIsLoad=False)
    # Every waiting adapter is in the batch: they wait for capacity, not for a slot.
    e = endpoint("p", waiting=3, active=("a", "b"), queued_adapters=("a",), max_lora=2)
    assert not d.has_capacity(e)
    assert not endpoint("q", waiting=3).metrics.waiting_adapters
    assert not d.has_capacity(endpoint("q", waiting=3))


def test_kv_still_counts_on_a_pod_waiting_for_adapters() -> None:
    d = detector(adapterQueueIsLoad=False, kvCacheUtilThreshold=0.9)
    e = blocked("p", 3, kv=0.95)
    assert not d.has_capacity(e)
    assert d.describe(e) == "kv-cache 0.95 >= 0.9"


def test_the_built_in_default_does_not_hold_a_pool_waiting_on_adapter_slots() -> None:
    d = load_config(None).saturation_detector()
    pods = [blocked(f"p{i}", 4) for i in range(3)]
    assert not d.is_saturated(pods)
    assert d.is_saturated([endpoint(f"q{i}", waiting=4) for i in range(3)])


def test_a_non_boolean_value_names_the_parameter() -> None:
    text = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: utilization-detector
  parameters: {adapterQueueIsLoad: "no"}
- type: queue-scorer
schedulingProfiles:
- name: default
  plugins: [{pluginRef: queue-scorer}]
"""
    with pytest.raises(ConfigError, match="adapterQueueIsLoad"):
        load_config(text)
