"""model-server-protocol-metrics (alias core-metrics-extractor): engine metric mappings.

Not a scheduling step: it carries upstream's extractor parameters (engineLabelKey,
defaultEngine, engineConfigs) from the EndpointPickerConfig to the metrics scraper.
"""

from __future__ import annotations

from typing import Any

from inference_gateway.metrics.mappings import MappingRegistry


class ModelServerMetrics:
    type_name = "model-server-protocol-metrics"
    extracts = "metrics"  # a dataLayer extractor for metrics-data-source

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        self.name = name
        self.mappings = MappingRegistry.from_params(parameters or {})


class CoreMetricsExtractor(ModelServerMetrics):
    type_name = "core-metrics-extractor"
