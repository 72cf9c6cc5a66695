"""sheddable-capacity filter: Sheddable requests only go to endpoints with spare capacity.

Non-sheddable requests pass through untouched; for Sheddable ones, endpoints at or above the
saturation thresholds (queue >= queueDepthThreshold, KV >= kvCacheUtilThreshold) are removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.saturation import SaturationConfig, SaturationDetector
from inference_gateway.scheduling.types import CycleState, SchedulingRequest


class SheddableCapacityFilter:
    type_name = "sheddable-capacity"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        self.name = name
        self.detector = SaturationDetector(SaturationConfig.from_params(parameters))

    def filter(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> Sequence[Endpoint]:
        if not request.sheddable:
            return endpoints
        return [e for e in endpoints if self.detector.has_capacity(e)]
