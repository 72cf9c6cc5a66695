"""max-score-picker: highest total wins, random among ties; the next best follow as fallbacks."""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.plugins._shared import SeededPicker
from inference_gateway.scheduling.types import CycleState


class MaxScorePicker(SeededPicker):
    type_name = "max-score-picker"

    def pick(self, state: CycleState, endpoints: Sequence[Endpoint], totals: list[float]) -> list[Endpoint]:
        k = self.max_endpoints
        best = max(totals)
        ties = [i for i, t in enumerate(totals) if t == best]
        if len(ties) >= k:
            return [endpoints[i] for i in self._rng.sample(ties, k)]
        if len(ties) > 1:
            self._rng.shuffle(ties)
        # Runners-up are ordered by score only; their ties matter little (they are fallbacks).
        rest = heapq.nlargest(k, range(len(totals)), key=totals.__getitem__)
        order = ties + [i for i in rest if totals[i] != best]
        return [endpoints[i] for i in order[:k]]
