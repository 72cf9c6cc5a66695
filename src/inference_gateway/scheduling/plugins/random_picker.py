"""random-picker: uniform random choice, ignoring scores (a baseline and a tie-breaker)."""

from __future__ import annotations

from collections.abc import Sequence

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.plugins._shared import SeededPicker
from inference_gateway.scheduling.types import CycleState


class RandomPicker(SeededPicker):
    type_name = "random-picker"

    def pick(self, state: CycleState, endpoints: Sequence[Endpoint], totals: list[float]) -> list[Endpoint]:
        return self._rng.sample(list(endpoints), min(self.max_endpoints, len(endpoints)))
