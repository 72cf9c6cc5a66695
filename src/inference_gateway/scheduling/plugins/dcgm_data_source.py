"""dcgm-data-source: where the EPP reads GPU metrics from NVIDIA dcgm-exporter.

Not a scheduling step: the EPP starts a metrics.dcgm.DcgmSource from it, which attaches each
pod's GPU fields to its endpoints as `dcgm.*` attributes (gpu-utilization-scorer reads them).

Parameters:
  exporters: URLs of dcgm-exporter pages, e.g. [http://10.0.3.7:9400/metrics] (one per node)
  endpointPath: also scrape this path on every endpoint's own address (sidecar exporters; the
    simulator serves /dcgm/metrics); default none
  interval: scrape period (default 1s, dcgm-exporter's own collection interval)
  timeout: per-scrape timeout (default 1s)
"""

from __future__ import annotations

from typing import Any

from inference_gateway.metrics.dcgm import DcgmConfig
from inference_gateway.scheduling.params import get_duration_s, get_str


class DcgmDataSource:
    type_name = "dcgm-data-source"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = parameters or {}
        unknown = set(params) - {"exporters", "endpointPath", "interval", "timeout"}
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(sorted(unknown))}")
        self.name = name
        exporters = params.get("exporters") or []
        if not isinstance(exporters, list) or not all(
            isinstance(u, str) and u.startswith(("http://", "https://")) for u in exporters
        ):
            raise ValueError(f"parameter 'exporters' must be a list of http(s) URLs, got {exporters!r}")
        path = get_str(params, "endpointPath", "")
        if path and not path.startswith("/"):
            raise ValueError(f"parameter 'endpointPath' must start with '/', got {path!r}")
        if not exporters and not path:
            raise ValueError("set 'exporters' or 'endpointPath' (or both)")
        interval = get_duration_s(params, "interval", 1.0)
        if interval <= 0:
            raise ValueError("parameter 'interval' must be > 0")
        self.config = DcgmConfig(list(exporters), path, interval, get_duration_s(params, "timeout", 1.0))
