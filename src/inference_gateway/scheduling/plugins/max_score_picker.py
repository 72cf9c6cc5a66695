"""max-score-picker: highest total wins, random among ties; the rest follow as fallbacks."""

from __future__ import annotations

import random
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.types import CycleState


class MaxScorePicker:
    type_name = "max-score-picker"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = parameters or {}
        self.name = name
        self.max_fallbacks = int(params.get("maxNumOfEndpoints", 3)) - 1
        self._rng = random.Random(params.get("seed"))

    def pick(self, state: CycleState, endpoints: list[Endpoint], totals: list[float]) -> list[Endpoint]:
        # The random key breaks ties without favouring list order.
        order = sorted(range(len(endpoints)), key=lambda i: (-totals[i], self._rng.random()))
        return [endpoints[i] for i in order[: 1 + max(0, self.max_fallbacks)]]
