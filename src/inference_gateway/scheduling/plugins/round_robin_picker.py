"""round-robin-picker: among the endpoints scoring within `tolerance` of the best total, the one
picked least recently; the others follow as fallbacks in the same order.

Round robin spaces consecutive requests across endpoints, which keeps any one engine from
prefilling a burst in the same iteration (a request that waits for another's prefill starts
later); the tolerance keeps it away from endpoints the scorers rank clearly worse. With a
tolerance at least the sum of the weights it is plain round robin; with 0 it is max-score
with round-robin tie-breaking.

Parameters: tolerance (0.5), maxNumOfEndpoints (3).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.params import get_float
from inference_gateway.scheduling.plugins._shared import max_endpoints
from inference_gateway.scheduling.types import CycleState

DEFAULT_TOLERANCE = 0.5


class RoundRobinPicker:
    type_name = "round-robin-picker"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = parameters or {}
        self.name = name
        self.max_endpoints = max_endpoints(params)
        self.tolerance = get_float(params, "tolerance", DEFAULT_TOLERANCE, minimum=0.0)
        self._last: dict[str, int] = {}  # address -> pick number when it was last picked
        self._picks = 0

    def pick(self, state: CycleState, endpoints: Sequence[Endpoint], totals: list[float]) -> list[Endpoint]:
        floor = max(totals) - self.tolerance
        last = self._last
        # Least recently picked first; never-picked endpoints (-1) before all others.
        if self.max_endpoints == 1 and (eligible := [i for i, t in enumerate(totals) if t >= floor]):
            # the common case, one endpoint: one pass, no sort
            best = min(eligible, key=lambda i: (last.get(endpoints[i].address, -1), -totals[i]))
            chosen = [endpoints[best]]
        else:
            order = sorted(
                range(len(endpoints)),
                key=lambda i: (totals[i] < floor, last.get(endpoints[i].address, -1), -totals[i]),
            )
            chosen = [endpoints[i] for i in order[: self.max_endpoints]]
        self._picks += 1
        last[chosen[0].address] = self._picks
        if len(last) > 4 * len(endpoints) + 64:  # forget endpoints long gone
            keep = {e.address for e in endpoints}
            self._last = {a: n for a, n in last.items() if a in keep}
        return chosen
