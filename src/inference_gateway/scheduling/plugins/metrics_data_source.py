"""metrics-data-source: where model servers expose metrics (scheme and path).

Not a scheduling step: the scraper reads `scheme` (http) and `path` (/metrics) from it.
"""

from __future__ import annotations

from typing import Any

from inference_gateway.scheduling.params import get_bool, get_str


class MetricsDataSource:
    type_name = "metrics-data-source"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = parameters or {}
        self.name = name
        self.scheme = get_str(params, "scheme", "http")
        self.path = get_str(params, "path", "/metrics")
        self.insecure_skip_verify = get_bool(params, "insecureSkipVerify", True)
        if self.scheme not in ("http", "https"):
            raise ValueError(f"parameter 'scheme' must be http or https, got {self.scheme!r}")
        if not self.path.startswith("/"):
            raise ValueError(f"parameter 'path' must start with '/', got {self.path!r}")

    def accepts_extractor(self, extractor: Any) -> bool:
        return getattr(extractor, "extracts", "") == "metrics"
