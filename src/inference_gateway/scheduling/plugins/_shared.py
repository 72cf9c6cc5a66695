"""Parameters shared by pickers and filters."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.normalize import lowest_band
from inference_gateway.scheduling.params import get_bool, get_int
from inference_gateway.scheduling.types import CycleState, SchedulingRequest

# Upstream defaults to 1; we return the pick plus two fallbacks so Envoy can retry another
# endpoint when the first refuses the connection (x-gateway-destination-endpoint list).
DEFAULT_MAX_ENDPOINTS = 3


def max_endpoints(params: dict[str, Any]) -> int:
    return get_int(params, "maxNumOfEndpoints", DEFAULT_MAX_ENDPOINTS, minimum=1)


def rng(params: dict[str, Any]) -> random.Random:
    """`seed` makes a picker deterministic (tests, simulations)."""
    seed = params.get("seed")
    if seed is not None and not isinstance(seed, int | str):
        raise ValueError(f"parameter 'seed' must be an integer or string, got {seed!r}")
    return random.Random(seed)


class SeededPicker:
    """Common construction of pickers: how many endpoints to return, and a (seedable) RNG."""

    type_name = ""

    def __init__(self, name: str | None = None, parameters: dict[str, Any] | None = None) -> None:
        params = parameters or {}
        self.name = name or self.type_name
        self.max_endpoints = max_endpoints(params)
        self._rng = rng(params)


class LowestBandFilter:
    """Common body of the least-* filters: keep the endpoints in the lowest 1/N band of one
    signal's range, read through the in-flight projection unless `projected: false`."""

    type_name = ""
    whole_numbers = False  # counts (queues) vs fractions (KV usage): see normalize.lowest_band

    def __init__(self, name: str | None = None, parameters: dict[str, Any] | None = None) -> None:
        self.name = name or self.type_name
        # Corrected by the in-flight ledger since the scrape (scheduling/projection.py).
        self.projected = get_bool(parameters or {}, "projected", True)

    def signal(self, endpoint: Endpoint) -> float:
        raise NotImplementedError

    def filter(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> Sequence[Endpoint]:
        if not endpoints:
            return endpoints
        return lowest_band(endpoints, [self.signal(e) for e in endpoints], whole=self.whole_numbers)
