"""random-picker: uniform random choice, ignoring scores (a baseline and a tie-breaker)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.plugins._shared import max_endpoints, rng
from inference_gateway.scheduling.types import CycleState


class RandomPicker:
    type_name = "random-picker"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = parameters or {}
        self.name = name
        self.max_endpoints = max_endpoints(params)
        self._rng = rng(params)

    def pick(self, state: CycleState, endpoints: Sequence[Endpoint], totals: list[float]) -> list[Endpoint]:
        return self._rng.sample(list(endpoints), min(self.max_endpoints, len(endpoints)))
