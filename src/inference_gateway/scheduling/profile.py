"""A scheduling profile (filters -> weighted scorers -> picker) and the scheduler that runs profiles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.interfaces import Filter, Picker, PostPick, ProfileHandler, Scorer
from inference_gateway.scheduling.types import (
    CycleState,
    ProfileResult,
    SchedulingError,
    SchedulingRequest,
    SchedulingResult,
    ScorerBreakdown,
)


@dataclass
class WeightedScorer:
    scorer: Scorer
    weight: float


@dataclass
class SchedulingProfile:
    name: str
    filters: list[Filter] = field(default_factory=list)
    scorers: list[WeightedScorer] = field(default_factory=list)
    picker: Picker | None = None
    post_pick: list[PostPick] = field(default_factory=list)

    def run(
        self,
        state: CycleState,
        request: SchedulingRequest,
        endpoints: list[Endpoint],
        explain: bool = False,
    ) -> ProfileResult:
        candidates = endpoints
        filtered_out: dict[str, list[str]] = {}
        for f in self.filters:
            kept = f.filter(state, request, candidates)
            if explain and len(kept) != len(candidates):
                kept_set = set(kept)
                filtered_out[f.name] = [e.name for e in candidates if e not in kept_set]
            candidates = kept
            if not candidates:
                break
        totals = [0.0] * len(candidates)
        breakdown: list[ScorerBreakdown] = []
        if candidates:
            for ws in self.scorers:
                scores = ws.scorer.score(state, request, candidates)
                weight = ws.weight
                for i, s in enumerate(scores):
                    totals[i] += weight * (0.0 if s < 0.0 else 1.0 if s > 1.0 else s)
                if explain:
                    breakdown.append(ScorerBreakdown(ws.scorer.name, weight, list(scores)))
        assert self.picker is not None, f"profile {self.name} has no picker"
        picked = self.picker.pick(state, candidates, totals) if candidates else []
        return ProfileResult(self.name, candidates, totals, picked, breakdown, filtered_out)


class Scheduler:
    def __init__(self, profiles: dict[str, SchedulingProfile], handler: ProfileHandler) -> None:
        if not profiles:
            raise ValueError("a scheduler needs at least one profile")
        self.profiles = profiles
        self.handler = handler
        self._names: Sequence[str] = tuple(profiles)

    def schedule(
        self, request: SchedulingRequest, endpoints: list[Endpoint], explain: bool = False
    ) -> tuple[SchedulingResult, CycleState]:
        if not endpoints:
            raise SchedulingError(503, "no ready endpoints in the pool", "no_endpoints")
        state = CycleState()
        results: dict[str, ProfileResult] = {}
        while True:
            todo = self.handler.pick_profiles(request, self._names, results)
            if not todo:
                break
            for name in todo:
                results[name] = self.profiles[name].run(state, request, endpoints, explain)
        primary = self.handler.primary(results)
        if not results.get(primary) or not results[primary].picked:
            raise SchedulingError(503, "no endpoint passed the scheduling filters", "no_capacity")
        return SchedulingResult(primary, results), state

    def bind(self, state: CycleState, request: SchedulingRequest, result: SchedulingResult) -> None:
        """Tell post-pick plugins which endpoint each profile settled on."""
        for name, res in result.profiles.items():
            if res.picked:
                for plugin in self.profiles[name].post_pick:
                    plugin.on_picked(state, request, res.picked[0])
