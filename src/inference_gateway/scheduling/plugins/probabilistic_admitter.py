"""probabilistic-admitter (llm-d): shed Sheddable requests with a probability that rises
steeply with the pool's saturation; requests with priority >= 0 are always admitted.

saturation = mean over the candidate endpoints of max(waiting / queueDepthThreshold,
KV-cache usage / kvCacheUtilThreshold); an endpoint whose metrics never arrived counts 1.0.
A Sheddable request is refused with probability min(saturation^power x k, 1): with the
defaults (queueDepthThreshold 5, kvCacheUtilThreshold 0.8, power 5, k 300) about 2 % at
saturation 0.15 and all of them from (1/k)^(1/power) ~ 0.34. No candidates: admitted.

It runs after flow control / the saturation detector and before scheduling, as llm-d's
AdmitRequest plugins. Refused requests get 429 `admission_rejected` with the saturation and
probability in the message (llm-d's plugin reports ResourceExhausted, which its director
turns into a 500 "request cannot be admitted"; a 429 tells the client to retry).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.params import get_float, get_int, reject_unknown
from inference_gateway.scheduling.types import SchedulingRequest

_KNOWN = frozenset({"queueDepthThreshold", "kvCacheUtilThreshold", "power", "k"})


def _positive(value: float, key: str) -> float:
    if value <= 0:
        raise ValueError(f"parameter {key!r} must be > 0, got {value:g}")
    return value


class ProbabilisticAdmitter:
    type_name = "probabilistic-admitter"

    def __init__(
        self,
        name: str = type_name,
        parameters: dict[str, Any] | None = None,
        rand: Callable[[], float] | None = None,
    ) -> None:
        params = parameters or {}
        reject_unknown(params, _KNOWN)
        self.name = name
        self.queue_threshold = _positive(get_int(params, "queueDepthThreshold", 5), "queueDepthThreshold")
        self.kv_threshold = _positive(get_float(params, "kvCacheUtilThreshold", 0.8), "kvCacheUtilThreshold")
        self.power = _positive(get_float(params, "power", 5.0), "power")
        self.k = _positive(get_float(params, "k", 300.0), "k")
        self._rand = rand or random.random

    def saturation(self, endpoints: Sequence[Endpoint]) -> float:
        total = 0.0
        for e in endpoints:
            m = e.metrics
            if m.updated_at <= 0:
                total += 1.0  # no metrics yet: as llm-d, count it full
                continue
            total += max(m.waiting_queue / self.queue_threshold, m.kv_cache_usage / self.kv_threshold)
        return total / len(endpoints)

    def shed_probability(self, saturation: float) -> float:
        return min(saturation**self.power * self.k, 1.0)

    def admit_request(self, request: SchedulingRequest, endpoints: Sequence[Endpoint]) -> str | None:
        if request.priority >= 0 or not endpoints:
            return None
        saturation = self.saturation(endpoints)
        probability = self.shed_probability(saturation)
        if self._rand() < probability:
            return f"{self.type_name}: rejected, saturation={saturation:.3f} prob={probability:.2f}"
        return None
