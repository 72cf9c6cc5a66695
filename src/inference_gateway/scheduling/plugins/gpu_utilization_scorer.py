"""gpu-utilization-scorer: prefer endpoints whose GPUs are less busy, from DCGM.

score = 1 - utilisation, where utilisation is DCGM_FI_PROF_GR_ENGINE_ACTIVE when the exporter
has profiling fields, else DCGM_FI_DEV_GPU_UTIL (both averaged over the pod's GPUs; see
metrics/dcgm.py). Endpoints without fresh DCGM data (older than `maxAge`, default 5s) score
0.5, so a missing exporter neither attracts nor repels traffic. Needs a dcgm-data-source.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.metrics.dcgm import GPU_UTIL, GR_ENGINE_ACTIVE, fresh_gpu_value
from inference_gateway.scheduling.params import get_duration_s
from inference_gateway.scheduling.types import CycleState, SchedulingRequest

UNKNOWN_SCORE = 0.5


class GpuUtilizationScorer:
    type_name = "gpu-utilization-scorer"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = parameters or {}
        unknown = set(params) - {"maxAge"}
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(sorted(unknown))}")
        self.name = name
        self.max_age_s = get_duration_s(params, "maxAge", 5.0)

    def score(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> list[float]:
        now = time.monotonic()
        return [self._score(e, now) for e in endpoints]

    def _score(self, endpoint: Endpoint, now: float) -> float:
        busy = fresh_gpu_value(endpoint, GR_ENGINE_ACTIVE, self.max_age_s, now)
        if busy is None:
            busy = fresh_gpu_value(endpoint, GPU_UTIL, self.max_age_s, now)
        return UNKNOWN_SCORE if busy is None else 1.0 - busy
