"""Combinators over saturation detectors for flow control (the detectors themselves are
plugins: scheduling.saturation, scheduling/plugins/*_detector.py)."""

from __future__ import annotations

from collections.abc import Sequence

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.flowcontrol.types import SaturationCheck, saturation_check
from inference_gateway.scheduling.saturation import SaturationSignal


class AnySaturated:
    """Saturated when any of the given detectors says so."""

    def __init__(self, detectors: Sequence[SaturationSignal | SaturationCheck]) -> None:
        self._checks = [saturation_check(d) for d in detectors]

    def is_saturated(self, endpoints: list[Endpoint]) -> bool:
        return any(check(endpoints) for check in self._checks)


class NeverSaturated:
    """Flow control as pure accounting: everything passes straight through."""

    def is_saturated(self, endpoints: list[Endpoint]) -> bool:
        return False
