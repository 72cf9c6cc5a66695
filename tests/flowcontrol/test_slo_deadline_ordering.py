"""slo-deadline-ordering-policy (upstream v1.5): queued requests go in order of arrival plus the
client's x-slo-ttft-ms; requests without an objective (or with a malformed one) after them,
first come first served."""

from __future__ import annotations

import asyncio

import pytest

from inference_gateway.flowcontrol import FlowRequest
from inference_gateway.runtime.pool import _slo_ttft_s
from inference_gateway.scheduling.config import load_config
from tests.flowcontrol.test_flow_controller import POOL, Gate, admit_all, make


async def test_tighter_objectives_dispatch_first_and_none_last() -> None:
    gate = Gate(saturated=True)
    ctl, _ = make(gate, priorityBands=[{"priority": 0, "orderingPolicyRef": "slo-deadline-ordering-policy"}])
    order: list[str] = []
    requests = [
        FlowRequest("none-1", 0, "f", 1, POOL),
        FlowRequest("slow", 0, "f", 1, POOL, slo_ttft_s=5.0),
        FlowRequest("none-2", 0, "f", 1, POOL),
        FlowRequest("fast", 0, "f", 1, POOL, slo_ttft_s=0.2),
    ]
    tasks = await admit_all(ctl, requests, order)
    gate.saturated = False
    ctl.notify()
    await asyncio.gather(*tasks)
    assert order == ["fast", "slow", "none-1", "none-2"]


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("250", 0.25), (" 1000 ", 1.0), ("0", 0.0), ("-5", None), ("soon", None), (None, None)],
)
def test_the_header_is_read_as_upstream_reads_it(header: str | None, seconds: float | None) -> None:
    assert _slo_ttft_s(header) == seconds


def test_configs_may_name_it_for_a_band() -> None:
    text = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
featureGates: [flowControl]
plugins:
- {name: slo-order, type: slo-deadline-ordering-policy}
flowControl:
  priorityBands:
  - {priority: 0, orderingPolicyRef: slo-order}
"""
    assert load_config(text).flow_control_enabled
