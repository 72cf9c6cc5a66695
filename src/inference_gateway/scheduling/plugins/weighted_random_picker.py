"""weighted-random-picker: random pick with probability proportional to the total score.

Weighted sampling without replacement by A-Res (Efraimidis-Spirakis): key = U ** (1 / weight),
keep the largest keys. Zero-score endpoints are only used when nothing scored above zero.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.plugins._shared import SeededPicker
from inference_gateway.scheduling.types import CycleState


class WeightedRandomPicker(SeededPicker):
    type_name = "weighted-random-picker"

    def pick(self, state: CycleState, endpoints: Sequence[Endpoint], totals: list[float]) -> list[Endpoint]:
        k = min(self.max_endpoints, len(endpoints))
        if not any(t > 0.0 for t in totals):
            return self._rng.sample(list(endpoints), k)
        rand = self._rng.random
        keys = [(1.0 - rand()) ** (1.0 / t) if t > 0.0 else 0.0 for t in totals]
        order = heapq.nlargest(k, range(len(keys)), key=keys.__getitem__)
        return [endpoints[i] for i in order]
