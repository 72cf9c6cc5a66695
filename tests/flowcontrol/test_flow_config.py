"""The flowControl section: upstream field names, quantities, durations, policy refs, errors."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from inference_gateway.flowcontrol import (
    FlowControlConfigError,
    FlowController,
    build_flow_controller,
    parse_flow_control,
)
from inference_gateway.flowcontrol.config import parse_duration, parse_quantity
from inference_gateway.flowcontrol.policies import EDFOrdering, GlobalStrictFairness, RoundRobinFairness
from inference_gateway.scheduling.config import load_config
from inference_gateway.scheduling.registry import default_registry

EXAMPLE = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
featureGates: [flowControl]
plugins:
- type: queue-scorer
- type: max-score-picker
- type: global-strict-fairness-policy
  name: strict
- type: edf-ordering-policy
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
  - pluginRef: max-score-picker
flowControl:
  maxBytes: 2Gi
  maxRequests: 5k
  defaultRequestTTL: 1m30s
  defaultPriorityBand:
    maxRequests: 50
    orderingPolicyRef: edf-ordering-policy
  priorityBands:
  - priority: 100
    maxBytes: 500M
    fairnessPolicyRef: strict
  - priority: -1
    maxRequests: 10
"""


def test_upstream_style_config_loads_with_policy_plugins_by_name() -> None:
    registry = default_registry()
    epp = load_config(EXAMPLE, registry)
    cfg = parse_flow_control(epp.sections["flowControl"], epp.plugins)
    assert cfg.enabled and cfg.max_bytes == 2 * 2**30 and cfg.max_requests == 5000
    assert cfg.default_request_ttl_s == 90.0
    high = cfg.band(100)
    assert high.max_bytes == 500_000_000 and isinstance(high.fairness, GlobalStrictFairness)
    assert high.fairness is epp.plugins["strict"]
    assert high.max_requests == 50  # inherited from the template
    assert isinstance(high.ordering, EDFOrdering)
    assert cfg.band(-1).max_requests == 10 and cfg.band(-1).name == "Sheddable"
    dynamic = cfg.band(7)
    assert dynamic.name == "priority-7" and dynamic.max_requests == 50


def test_defaults() -> None:
    cfg = parse_flow_control(None)
    assert cfg.enabled and cfg.default_request_ttl_s == 30.0 and cfg.reject_sheddable
    band = cfg.band(1)
    assert band.name == "Critical" and band.max_bytes == 1_000_000_000 and band.max_requests == 0
    assert isinstance(band.fairness, RoundRobinFairness)


def test_zero_ttl_means_wait_until_cancelled() -> None:
    assert parse_flow_control({"defaultRequestTTL": "0s"}).default_request_ttl_s is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, 0), (1000, 1000), ("500M", 500_000_000), ("1Gi", 2**30), ("1.5k", 1500), ("2e3", 2000)],
)
def test_quantities(raw: Any, expected: int) -> None:
    assert parse_quantity(raw, "x") == expected


@pytest.mark.parametrize(
    ("raw", "expected"), [("30s", 30.0), ("250ms", 0.25), ("1h1m", 3660.0), (2, 2.0), ("0", 0.0)]
)
def test_durations(raw: Any, expected: float) -> None:
    assert parse_duration(raw, "x") == pytest.approx(expected)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"maxByte": 1}, "unknown field(s) maxByte"),
        ({"maxBytes": "lots"}, "not a quantity"),
        ({"maxRequests": -1}, "must not be negative"),
        ({"defaultRequestTTL": "soon"}, "not a duration"),
        ({"recheckInterval": "0s"}, "must be positive"),
        ({"enabled": "yes"}, "true or false"),
        ({"priorityBands": [{"maxBytes": 1}]}, "priorityBands[0].priority is required"),
        ({"priorityBands": [{"priority": 1}, {"priority": 1}]}, "duplicate priority 1"),
        (
            {"priorityBands": [{"priority": 1, "fairnessPolicyRef": "lottery"}]},
            "unknown fairness policy 'lottery'",
        ),
        ({"defaultPriorityBand": {"orderingPolicyRef": "lifo"}}, "unknown ordering policy 'lifo'"),
    ],
)
def test_errors_name_the_field(section: dict[str, Any], message: str) -> None:
    with pytest.raises(FlowControlConfigError, match=re.escape(message)):
        parse_flow_control(section)


def test_build_respects_enabled_and_adds_the_concurrency_detector() -> None:
    assert build_flow_controller(yaml.safe_load("enabled: false"), lambda e: False) is None
    ctl = build_flow_controller({"maxConcurrency": 2}, lambda e: False, CollectorRegistry())
    assert isinstance(ctl, FlowController)
