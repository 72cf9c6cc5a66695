"""One EPP, several InferencePools: a scheduler per pool, chosen by the request's pool.

`PoolSchedulers` is a drop-in `Scheduler` for the director. Pools named in `per_pool` (by
"namespace/name", or by bare name for any namespace) use their own EndpointPickerConfig's
scheduler; every other pool uses the default one. Each scheduler keeps its own plugin state
(prefix index, session affinity), so pools never see each other's endpoints or history.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.profile import Scheduler
from inference_gateway.scheduling.types import CycleState, SchedulingRequest, SchedulingResult


class PoolSchedulers(Scheduler):
    def __init__(self, default: Scheduler, per_pool: Mapping[str, Scheduler]) -> None:
        # The default scheduler's profiles stay visible as `.profiles` for callers that inspect them.
        super().__init__(default.profiles, default.handler)
        self.default = default
        self.per_pool = dict(per_pool)
        self._resolved: dict[str, Scheduler] = {}

    def for_pool(self, pool: str) -> Scheduler:
        """`pool` is "namespace/name" (SchedulingRequest.pool)."""
        found = self._resolved.get(pool)
        if found is None:
            name = pool.rpartition("/")[2]
            found = self.per_pool.get(pool) or self.per_pool.get(name) or self.default
            self._resolved[pool] = found
        return found

    def schedule(
        self, request: SchedulingRequest, endpoints: Sequence[Endpoint], explain: bool = False
    ) -> tuple[SchedulingResult, CycleState]:
        return self.for_pool(request.pool).schedule(request, endpoints, explain)

    def bind(self, state: CycleState, request: SchedulingRequest, result: SchedulingResult) -> None:
        self.for_pool(request.pool).bind(state, request, result)

    def request_body(
        self, request: SchedulingRequest, result: SchedulingResult, body: dict[str, Any]
    ) -> bool:
        return self.for_pool(request.pool).request_body(request, result, body)

    def response_headers(self, request: SchedulingRequest, served: Endpoint) -> dict[str, str]:
        return self.for_pool(request.pool).response_headers(request, served)

    def observe_latency(self, request_id: str, ttft_s: float | None, tpot_s: float | None) -> None:
        for scheduler in {id(s): s for s in (self.default, *self.per_pool.values())}.values():
            scheduler.observe_latency(request_id, ttft_s, tpot_s)

    def endpoints_changed(self, addresses: Collection[str]) -> None:
        for scheduler in {id(s): s for s in (self.default, *self.per_pool.values())}.values():
            scheduler.endpoints_changed(addresses)
