"""latency-slo-admitter: refuse a Sheddable request that no endpoint is predicted to serve
within its latency objectives (upstream v1.5 / llm-d), from the config's
`predicted-latency-producer`.

Requests with priority >= 0 are always admitted, and so are requests without objectives
(`x-slo-ttft-ms` / `x-slo-tpot-ms`, or the producer's per-objective defaults). A Sheddable
request is refused only when all of these hold:
- no endpoint has a valid prediction (predicted TTFT and TPOT under the objectives);
- no endpoint is idle (no running request, as this EPP projects it);
- no endpoint is cold (KV cache under 2 %, where predictions are least reliable).
With no predictions (no producer, or its predictor still learning) it admits (fail open).

It is one of the AdmitRequest plugins the pool runs after flow control and before scheduling
(runtime/pool.py); a refusal is 429 `admission_rejected` (upstream's director answers 429 for
its admission errors too). No parameters.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling import projection
from inference_gateway.scheduling.latency_predictions import LatencyPredictionSource
from inference_gateway.scheduling.params import reject_unknown
from inference_gateway.scheduling.types import SchedulingRequest

log = logging.getLogger(__name__)

COLD_KV = 0.02


class LatencySloAdmitter:
    type_name = "latency-slo-admitter"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        reject_unknown(parameters or {}, frozenset())
        self.name = name
        self._source: LatencyPredictionSource | None = None

    def link_latency_predictions(self, source: LatencyPredictionSource | None) -> None:
        if source is None:
            log.warning("%s: no predicted-latency-producer is configured; it admits every request", self.name)
        self._source = source

    def admit_request(self, request: SchedulingRequest, endpoints: Sequence[Endpoint]) -> str | None:
        if request.priority >= 0 or self._source is None or not endpoints:
            return None
        table = self._source.predictions(request, endpoints)
        if table is None or not table.has_slo:
            return None
        predictions = [table.get(e) for e in endpoints]
        if not any(predictions):
            return None
        if any(p is not None and p.valid for p in predictions):
            return None
        if any(projection.running(e) == 0 for e in endpoints):
            return None  # an idle endpoint likely serves it whatever the prediction says
        if any(projection.kv_usage(e) < COLD_KV for e in endpoints):
            return None  # a cold endpoint: the predictor has not seen it loaded
        best = min(p.ttft_ms for p in predictions if p is not None)
        return (
            f"{self.type_name}: no endpoint is predicted to meet the request's latency objectives"
            f" (best predicted TTFT {best:.0f} ms)"
        )
