"""A scheduling profile (filters -> weighted scorers -> picker) and the scheduler that runs profiles.

Hot path: one list of totals per scorer pass and nothing else proportional to the endpoint
count; explanations are only materialised when asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from time import perf_counter

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.interfaces import (
    EndToEndFeedback,
    Filter,
    LatencyFeedback,
    Picker,
    Plugin,
    PostPick,
    PreRequest,
    ProfileHandler,
    Scorer,
)
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


# (extension point, plugin, seconds it took): the EPP's plugin-duration histogram.
PluginTimer = Callable[[str, Plugin, float], None]


@dataclass
class SchedulingProfile:
    name: str
    filters: list[Filter] = field(default_factory=list)
    scorers: list[WeightedScorer] = field(default_factory=list)
    picker: Picker | None = None
    post_pick: list[PostPick] = field(default_factory=list)
    timer: PluginTimer | None = None

    def plugins(self) -> list[Plugin]:
        found: list[Plugin] = [*self.filters, *(ws.scorer for ws in self.scorers), *self.post_pick]
        if self.picker is not None:
            found.append(self.picker)
        return found

    def run(
        self,
        state: CycleState,
        request: SchedulingRequest,
        endpoints: Sequence[Endpoint],
        explain: bool = False,
    ) -> ProfileResult:
        assert self.picker is not None, f"profile {self.name} has no picker"
        filtered_out: dict[str, list[str]] = {}
        candidates = self._filter(state, request, endpoints, filtered_out if explain else None)
        if not candidates:
            return ProfileResult(self.name, candidates, [], [], [], filtered_out, self.picker.name)
        totals, breakdown = self._score(state, request, candidates, explain)
        started = perf_counter()
        picked = self.picker.pick(state, candidates, totals)
        if self.timer is not None:
            self.timer("Picker", self.picker, perf_counter() - started)
        return ProfileResult(self.name, candidates, totals, picked, breakdown, filtered_out, self.picker.name)

    def _filter(
        self,
        state: CycleState,
        request: SchedulingRequest,
        endpoints: Sequence[Endpoint],
        filtered_out: dict[str, list[str]] | None,
    ) -> Sequence[Endpoint]:
        candidates = endpoints
        timer = self.timer
        for f in self.filters:
            started = perf_counter()
            kept = f.filter(state, request, candidates)
            if timer is not None:
                timer("Filter", f, perf_counter() - started)
            if filtered_out is not None and len(kept) != len(candidates):
                kept_set = set(kept)
                filtered_out[f.name] = [e.name for e in candidates if e not in kept_set]
            candidates = kept
            if not candidates:
                break
        return candidates

    def _score(
        self, state: CycleState, request: SchedulingRequest, candidates: Sequence[Endpoint], explain: bool
    ) -> tuple[list[float], list[ScorerBreakdown]]:
        n = len(candidates)
        totals: list[float] | None = None
        breakdown: list[ScorerBreakdown] = []
        timer = self.timer
        for ws in self.scorers:
            started = perf_counter()
            scores = ws.scorer.score(state, request, candidates)
            if timer is not None:
                timer("Scorer", ws.scorer, perf_counter() - started)
            if len(scores) != n:
                raise RuntimeError(f"scorer {ws.scorer.name} returned {len(scores)} scores for {n} endpoints")
            w = ws.weight
            if totals is None:
                totals = [w * (0.0 if s < 0.0 else 1.0 if s > 1.0 else s) for s in scores]
            else:
                totals = [
                    t + w * (0.0 if s < 0.0 else 1.0 if s > 1.0 else s)
                    for t, s in zip(totals, scores, strict=True)
                ]
            if explain:
                clamped = [0.0 if s < 0.0 else 1.0 if s > 1.0 else s for s in scores]
                breakdown.append(ScorerBreakdown(ws.scorer.name, w, clamped))
        return (totals if totals is not None else [0.0] * n), breakdown


class Scheduler:
    def __init__(
        self,
        profiles: dict[str, SchedulingProfile],
        handler: ProfileHandler,
        plugins: Iterable[Plugin] = (),
    ) -> None:
        if not profiles:
            raise ValueError("a scheduler needs at least one profile")
        self.profiles = profiles
        self.handler = handler
        self._names: Sequence[str] = tuple(profiles)
        in_profiles = (p for prof in profiles.values() for p in prof.plugins())
        self._plugins = _unique([handler, *plugins, *in_profiles])
        self._pre_request_plugins = [p for p in self._plugins if isinstance(p, PreRequest)]
        self._latency_plugins = [p for p in self._plugins if isinstance(p, LatencyFeedback)]
        self._e2e_plugins = [p for p in self._plugins if isinstance(p, EndToEndFeedback)]

    def schedule(
        self,
        request: SchedulingRequest,
        endpoints: Sequence[Endpoint],
        explain: bool = False,
        state: CycleState | None = None,
    ) -> tuple[SchedulingResult, CycleState]:
        """One cycle; `state` carries what plugins already computed for this request (e.g. its
        prompt's block hashes), so they are not computed again."""
        if not endpoints:
            raise SchedulingError(503, "no ready endpoints in the pool", "no_endpoints")
        state = CycleState() if state is None else state
        results: dict[str, ProfileResult] = {}
        while True:
            todo = self.handler.pick_profiles(state, request, self._names, results)
            if not todo:
                break
            for name in todo:
                results[name] = self.profiles[name].run(state, request, endpoints, explain)
        primary = self.handler.primary(results)
        if not results.get(primary) or not results[primary].picked:
            if request.sheddable:  # e.g. sheddable-capacity removed every endpoint
                raise SchedulingError(
                    429, "no capacity for sheddable requests; retry later", "pool_saturated"
                )
            # As upstream: a failed scheduling cycle is ResourceExhausted (429).
            raise SchedulingError(429, "no endpoint passed the scheduling filters", "no_capacity")
        return SchedulingResult(primary, results), state

    def bind(self, state: CycleState, request: SchedulingRequest, result: SchedulingResult) -> None:
        """Tell post-pick plugins which endpoint each profile settled on."""
        for name, res in result.profiles.items():
            if res.picked:
                for plugin in self.profiles[name].post_pick:
                    plugin.on_picked(state, request, res.picked[0])
        for pre in self._pre_request_plugins:
            pre.pre_request(state, request, result)

    def time_plugins(self, timer: PluginTimer | None) -> None:
        """Report each filter, scorer and picker call's duration to `timer`."""
        for profile in self.profiles.values():
            profile.timer = timer

    def plugins(self) -> list[Plugin]:
        """Every plugin the scheduler runs (handler included), each once."""
        return list(self._plugins)

    def observe_latency(
        self, request_id: str, ttft_s: float | None, tpot_s: float | None, e2e_s: float | None = None
    ) -> None:
        """A request's end: its measured TTFT, TPOT and end-to-end latency (None when not
        measured), for plugins that learn (end to end first, then TTFT and TPOT)."""
        if e2e_s is not None:
            for e2e_plugin in self._e2e_plugins:
                e2e_plugin.observe_end_to_end(request_id, e2e_s)
        for plugin in self._latency_plugins:
            plugin.observe_latency(request_id, ttft_s, tpot_s)


def _unique(plugins: Iterable[Plugin]) -> list[Plugin]:
    seen: dict[int, Plugin] = {}
    for p in plugins:
        seen.setdefault(id(p), p)
    return list(seen.values())
