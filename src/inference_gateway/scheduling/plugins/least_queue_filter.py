"""least-queue filter: keep endpoints in the lowest 1/N band of the queue range.

With queues spanning [min, max] over N endpoints, keep those with queue <= min + (max-min)/N:
several near-minimum endpoints survive instead of only the absolute minimum.
"""

from __future__ import annotations

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling import projection
from inference_gateway.scheduling.plugins._shared import LowestBandFilter


class LeastQueueFilter(LowestBandFilter):
    type_name = "least-queue"
    whole_numbers = True

    def signal(self, endpoint: Endpoint) -> float:
        return projection.waiting(endpoint) if self.projected else endpoint.metrics.waiting_queue
