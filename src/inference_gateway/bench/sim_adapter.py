"""Routing policies for the virtual-time fleet, including the gateway's real scheduler.

`GatewayScheduler` is the simulator's `EPPFleetScheduler` (the EPP's own Scheduler, built from
an EndpointPickerConfig exactly as the EPP builds it, over Endpoints whose metrics come from
the fleet's scrape snapshots, with in-flight counts kept as the director keeps them) plus the
director's Sheddable shedding while the pool is saturated. Flow control (queueing in the
EPP) is not modelled: requests go to the model servers' own queues.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict

from inference_gateway.requestcontrol.preemption import SheddablePreemption
from inference_gateway.scheduling.config import DEFAULT_CONFIG
from inference_gateway.simulator.epp_scheduler import EPPFleetScheduler, attach_gpu, snapshot_metrics
from inference_gateway.simulator.fleet_types import (
    EndpointSnapshot,
    Preempting,
    RequestResult,
    Scheduler,
    SimRequest,
)
from inference_gateway.simulator.schedulers import (
    LeastRequestsScheduler,
    RandomScheduler,
    RoundRobinScheduler,
)

PolicyKind = Literal["round-robin", "random", "least-queue", "epp"]


class PolicySpec(BaseModel):
    """A routing policy by kind; `epp` takes an EndpointPickerConfig file (none: the default)."""

    model_config = ConfigDict(extra="forbid")
    kind: PolicyKind
    config: Path | None = None
    description: str = ""

    def config_text(self, base: Path | None = None) -> str | None:
        if self.config is None:
            return None
        path = self.config if self.config.is_absolute() or base is None else base / self.config
        return path.read_text()


def make_policy(spec: PolicySpec, seed: int, base: Path | None = None) -> Scheduler:
    if spec.kind == "round-robin":
        return RoundRobinScheduler()
    if spec.kind == "random":
        return RandomScheduler(seed)
    if spec.kind == "least-queue":
        return LeastRequestsScheduler()
    return GatewayScheduler(spec.config_text(base), seed)


def seeded_config(config_text: str | None, seed: int) -> str:
    """The config with `seed` given to every picker that has none, so runs repeat exactly."""
    doc = yaml.safe_load(config_text if config_text is not None else DEFAULT_CONFIG)
    for plugin in doc.get("plugins") or []:
        if isinstance(plugin, dict) and str(plugin.get("type", "")).endswith("-picker"):
            params = plugin.setdefault("parameters", {}) or {}
            params.setdefault("seed", seed)
            plugin["parameters"] = params
    return yaml.safe_dump(doc, sort_keys=False)


class GatewayScheduler(EPPFleetScheduler):
    """The simulator's EPP fleet scheduler, plus what the benchmark needs from the director:
    seeded pickers, Sheddable requests dropped while the pool is saturated, decision timing."""

    def __init__(self, config_text: str | None, seed: int | None = None) -> None:
        super().__init__(seeded_config(config_text, seed) if seed is not None else config_text)
        self.saturation = self.config.saturation_detector()
        self.preemption = next(
            (p for p in self.config.plugins.values() if isinstance(p, SheddablePreemption)), None
        )
        self._abort: Callable[[int | str], bool] | None = None
        self._sheddable: dict[int, dict[int | str, float]] = {}  # server -> {request: arrival}
        self.preempted = 0
        self.shed = 0
        self.decisions = 0
        self.decision_seconds = 0.0

    def _refresh(self, snapshots: Sequence[EndpointSnapshot]) -> None:
        if len(self.endpoints) != len(snapshots):
            self._build(snapshots)
        for i, snap in enumerate(snapshots):
            if snap.updated_at != self._seen[i]:
                self._seen[i] = snap.updated_at
                # Staleness checks compare with time.monotonic(); the fleet models staleness itself.
                wall = time.monotonic()
                self.endpoints[i].metrics = snapshot_metrics(snap, updated_at=wall)
                attach_gpu(self.endpoints[i], snap, wall)

    def pick(self, request: SimRequest, snapshots: Sequence[EndpointSnapshot]) -> int | None:
        started = time.perf_counter()
        if request.priority < 0:
            self._refresh(snapshots)
            if self.saturation.is_saturated(self.endpoints):
                self.shed += 1
                return None
        picked = super().pick(request, snapshots)
        if picked is not None and self.preemption is not None:
            self._preempt_for(request, picked)
        self.decision_seconds += time.perf_counter() - started
        self.decisions += 1
        return picked

    def bind_abort(self, abort: Callable[[int | str], bool]) -> None:
        self._abort = abort

    def _preempt_for(self, request: SimRequest, picked: int) -> None:
        """The director's sheddable-preemption, on the fleet (requestcontrol/preemption.py)."""
        assert self.preemption is not None
        if request.priority < 0:
            self._sheddable.setdefault(picked, {})[request.request_id] = request.arrival
            return
        detector = self.preemption.detector
        if request.priority <= 0 or any(detector.has_capacity(e) for e in self.endpoints):
            return
        victims = self._sheddable.get(picked)
        if victims and self._abort is not None:
            youngest = max(victims, key=victims.__getitem__)
            del victims[youngest]
            if self._abort(youngest):
                self.preempted += 1

    def on_finished(self, result: RequestResult) -> None:
        super().on_finished(result)
        victims = self._sheddable.get(result.endpoint)
        if victims is not None:
            victims.pop(result.request_id, None)


class SamplingScheduler:
    """Wraps a policy and records the fleet's visible engine state every `interval_s`."""

    def __init__(self, inner: Scheduler, interval_s: float = 1.0) -> None:
        self.inner = inner
        self.interval_s = interval_s
        self.series: list[dict[str, float]] = []
        self._next = 0.0

    def pick(self, request: SimRequest, endpoints: Sequence[EndpointSnapshot]) -> int | None:
        if request.arrival >= self._next:
            self._next = request.arrival + self.interval_s
            for s in endpoints:
                self.series.append(
                    {
                        "t": request.arrival,
                        "pod": s.index,
                        "kv": s.kv_cache_usage,
                        "waiting": s.waiting_queue,
                        "running": s.running_requests,
                    }
                )
        return self.inner.pick(request, endpoints)

    def bind_abort(self, abort: Callable[[int | str], bool]) -> None:
        if isinstance(self.inner, Preempting):
            self.inner.bind_abort(abort)

    def on_finished(self, result: RequestResult) -> None:
        observer = getattr(self.inner, "on_finished", None)
        if observer is not None:
            observer(result)
