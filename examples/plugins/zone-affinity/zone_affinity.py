"""zone-affinity-scorer: prefer endpoints in the client's zone.

The client (or the gateway in front of it) names its zone in a request header; an endpoint's
zone is a label of its pod. Endpoints in that zone score 1.0, the others 0.0; a request that
names no zone scores every endpoint 1.0, so the other scorers decide alone.

    plugins:
    - type: zone-affinity-scorer
      parameters: {header: x-client-zone, label: topology.kubernetes.io/zone}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.params import get_str
from inference_gateway.scheduling.types import CycleState, SchedulingRequest


class ZoneAffinityScorer:
    """A Scorer (inference_gateway.scheduling.interfaces.Scorer): one score in 0..1 per endpoint."""

    type_name = "zone-affinity-scorer"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = parameters or {}
        self.name = name
        self.header = get_str(params, "header", "x-client-zone").lower()  # ext_proc lower-cases names
        self.label = get_str(params, "label", "topology.kubernetes.io/zone")

    def score(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> list[float]:
        zone = request.headers.get(self.header)
        if not zone:
            return [1.0] * len(endpoints)
        return [1.0 if e.labels.get(self.label) == zone else 0.0 for e in endpoints]
