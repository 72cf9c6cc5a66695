"""utilization-detector: the pool is saturated when no endpoint has fresh metrics below the
queue-depth and KV-cache thresholds (upstream's default `saturationDetector`).

Parameters as upstream: queueDepthThreshold (5), kvCacheUtilThreshold (0.8),
metricsStalenessThreshold (200ms upstream; 2s here, one missed scrape at our 1s default interval).
"""

from __future__ import annotations

from typing import Any

from inference_gateway.scheduling.saturation import SaturationConfig, SaturationDetector


class UtilizationDetector(SaturationDetector):
    type_name = "utilization-detector"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(SaturationConfig.from_params(parameters))
        self.name = name
