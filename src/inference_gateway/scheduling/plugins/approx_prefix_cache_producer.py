"""approx-prefix-cache-producer: the approximate prefix index on its own, for plugins that read
prefix matches (prefix-cache-affinity-filter, no-hit-lru-scorer) without scoring on them.

Parameters as prefix-cache-scorer's. When a prefix-cache-scorer is configured too, both use the
scorer's index (upstream feeds the scorer from one producer); otherwise this plugin records each
primary pick (and the `prefill` profile's, as upstream) in its own index.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.plugins.prefix_cache_scorer import PrefixCacheScorer
from inference_gateway.scheduling.types import CycleState, SchedulingRequest, SchedulingResult

PREFILL_PROFILE = "prefill"


class ApproxPrefixCacheProducer:
    type_name = "approx-prefix-cache-producer"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        self.name = name
        self.cache = PrefixCacheScorer(f"{name}/index", parameters)
        self.shared = False

    def share(self, scorer: PrefixCacheScorer) -> None:
        """Use a configured scorer's index (the scorer records its own picks)."""
        self.cache, self.shared = scorer, True

    def match_ratio(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> list[float]:
        return self.cache.match_ratio(state, request, endpoints)

    def pre_request(self, state: CycleState, request: SchedulingRequest, result: SchedulingResult) -> None:
        if self.shared:
            return
        for profile in (result.primary_profile, PREFILL_PROFILE):
            picked = result.profiles.get(profile)
            if picked is not None and picked.picked:
                self.cache.on_picked(state, request, picked.picked[0])

    def endpoints_changed(self, addresses: Collection[str]) -> None:
        if not self.shared:
            self.cache.endpoints_changed(addresses)
