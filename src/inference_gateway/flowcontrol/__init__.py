"""Flow control: priority bands, fair queueing between tenants, and admission when the pool is saturated.

Sits between request control (the director) and scheduling, as upstream's pkg/epp/flowcontrol.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from inference_gateway.datastore.ledger import InFlightLedger
from inference_gateway.flowcontrol.config import FlowControlConfig, FlowControlConfigError, parse_flow_control
from inference_gateway.flowcontrol.controller import Admission, FlowController
from inference_gateway.flowcontrol.detectors import AnySaturated, NeverSaturated
from inference_gateway.flowcontrol.metrics import FlowControlMetrics
from inference_gateway.flowcontrol.policies import register_flow_control_plugins
from inference_gateway.flowcontrol.types import (
    DEFAULT_FLOW_ID,
    FAIRNESS_HEADER,
    FlowControlRejected,
    FlowRequest,
    QueueOutcome,
    SaturationCheck,
)
from inference_gateway.scheduling.plugins.concurrency_detector import ConcurrencyDetector
from inference_gateway.scheduling.saturation import SaturationSignal

__all__ = [
    "DEFAULT_FLOW_ID",
    "FAIRNESS_HEADER",
    "Admission",
    "AnySaturated",
    "FlowControlConfig",
    "FlowControlConfigError",
    "FlowControlMetrics",
    "FlowControlRejected",
    "FlowController",
    "FlowRequest",
    "NeverSaturated",
    "QueueOutcome",
    "SaturationCheck",
    "build_flow_controller",
    "parse_flow_control",
    "register_flow_control_plugins",
]


def build_flow_controller(
    section: Any,
    detector: SaturationSignal | SaturationCheck,
    registry: CollectorRegistry | None = None,
    plugins: dict[str, Any] | None = None,
    metrics: FlowControlMetrics | None = None,
    ledger: InFlightLedger | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> FlowController | None:
    """From EndpointPickerConfig's `flowControl` section; None when it is disabled.

    `metrics` lets several controllers (one per pool runtime) share one set of collectors.
    `maxConcurrency` adds the in-flight detector to `detector` (either saturating is enough).
    `clock` times queue waits and TTLs (the virtual-time fleet gives its own).
    """
    config = parse_flow_control(section, plugins)
    if not config.enabled:
        return None
    if config.max_concurrency:
        in_flight = ConcurrencyDetector(parameters={"maxConcurrency": config.max_concurrency})
        detector = AnySaturated([detector, in_flight]).is_saturated
    metrics = metrics or FlowControlMetrics(registry)
    return FlowController(config, detector, metrics, clock=clock, ledger=ledger)
