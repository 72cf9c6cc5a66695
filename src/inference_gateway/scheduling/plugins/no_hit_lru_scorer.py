"""no-hit-lru-scorer (llm-d): spread requests that hit no cached prefix anywhere ("cold") over
the endpoints that served cold requests least recently, so new prefixes land evenly.

For a cold request, endpoints that never served one score highest (1.0 down, in candidate
order), then the least recently used; scores fall linearly to 0 over the candidates. A request
with a prefix hit anywhere scores 0.5 everywhere (neutral). `lruSize` (1024) bounds the memory of
endpoints. Matches come from the configured prefix cache, as for prefix-cache-affinity-filter.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.params import get_int, get_str
from inference_gateway.scheduling.plugins.prefix_cache_affinity_filter import PrefixMatches
from inference_gateway.scheduling.types import CycleState, SchedulingRequest


class NoHitLRUScorer:
    type_name = "no-hit-lru-scorer"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = parameters or {}
        self.name = name
        size = get_int(params, "lruSize", 1024)
        self.lru_size = size if size > 0 else 1024
        get_str(
            params, "prefixPluginType", ""
        )  # llm-d names where matches come from; here the one prefix cache
        get_str(params, "prefixPluginName", "")
        self.lru: OrderedDict[str, None] = OrderedDict()  # least recently used first
        self.prefix: PrefixMatches | None = None

    def link_prefix_cache(self, prefix: PrefixMatches | None) -> None:
        self.prefix = prefix

    def score(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> list[float]:
        cold = self.prefix is None or not any(self.prefix.match_ratio(state, request, endpoints))
        state[self.name] = cold
        if not cold:
            return [0.5] * len(endpoints)
        n = len(endpoints)
        if n == 1:
            return [1.0]
        position = {address: i for i, address in enumerate(self.lru)}
        never = [e for e in endpoints if e.address not in position]
        rank = {e.address: i for i, e in enumerate(never)}
        for e in endpoints:
            if e.address in position:
                rank[e.address] = len(never) + position[e.address]
        return [max(0.0, 1.0 - rank[e.address] / (n - 1)) for e in endpoints]

    def on_picked(self, state: CycleState, request: SchedulingRequest, endpoint: Endpoint) -> None:
        if not state.get(self.name):
            return
        self.lru.pop(endpoint.address, None)
        self.lru[endpoint.address] = None
        while len(self.lru) > self.lru_size:
            self.lru.popitem(last=False)
