"""least-KV-cache filter: keep endpoints in the lowest 1/N band of the KV-cache usage range."""

from __future__ import annotations

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling import projection
from inference_gateway.scheduling.plugins._shared import LowestBandFilter


class LeastKVCacheFilter(LowestBandFilter):
    type_name = "least-KV-cache"

    def signal(self, endpoint: Endpoint) -> float:
        return projection.kv_usage(endpoint) if self.projected else endpoint.metrics.kv_cache_usage
