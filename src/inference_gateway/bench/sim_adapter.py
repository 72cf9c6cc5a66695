"""Routing policies for the virtual-time fleet, including the gateway's real scheduler.

`GatewayScheduler` puts the EPP's own Scheduler (built from an EndpointPickerConfig, exactly
as the EPP builds it) behind the fleet's `pick(request, snapshots)` protocol: each scrape
snapshot becomes the EndpointMetrics of a real Endpoint, Sheddable requests are dropped while
the pool is saturated (the director's rule, with the config's saturation detector), and the
picked endpoint's in-flight count is kept as the director keeps it. Flow control (queueing
in the EPP) is not modelled: requests go to the model servers' own queues.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict

from inference_gateway.api.types import Criticality, ObjectRef
from inference_gateway.datastore.endpoint import Endpoint, EndpointMetrics
from inference_gateway.scheduling.config import DEFAULT_CONFIG, load_config
from inference_gateway.scheduling.types import SchedulingError, SchedulingRequest
from inference_gateway.simulator.fleet_types import EndpointSnapshot, RequestResult, Scheduler, SimRequest
from inference_gateway.simulator.schedulers import (
    LeastRequestsScheduler,
    RandomScheduler,
    RoundRobinScheduler,
)

PolicyKind = Literal["round-robin", "random", "least-queue", "epp"]
_METRIC_FIELDS = frozenset(f.name for f in dataclasses.fields(EndpointMetrics))


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


def make_policy(spec: PolicySpec, seed: int, base_model: str, base: Path | None = None) -> Scheduler:
    if spec.kind == "round-robin":
        return RoundRobinScheduler()
    if spec.kind == "random":
        return RandomScheduler(seed)
    if spec.kind == "least-queue":
        return LeastRequestsScheduler()
    return GatewayScheduler(spec.config_text(base), base_model, seed)


def seeded_config(config_text: str | None, seed: int) -> str:
    """The config with `seed` given to every picker that has none, so runs repeat exactly."""
    doc = yaml.safe_load(config_text if config_text is not None else DEFAULT_CONFIG)
    for plugin in doc.get("plugins") or []:
        if isinstance(plugin, dict) and str(plugin.get("type", "")).endswith("-picker"):
            params = plugin.setdefault("parameters", {}) or {}
            params.setdefault("seed", seed)
            plugin["parameters"] = params
    return yaml.safe_dump(doc, sort_keys=False)


def metrics_from_snapshot(snap: EndpointSnapshot) -> EndpointMetrics:
    values: dict[str, Any] = {
        "waiting_queue": snap.waiting_queue,
        "running_requests": snap.running_requests,
        "kv_cache_usage": snap.kv_cache_usage,
        "active_adapters": snap.active_adapters,
        "waiting_adapters": snap.waiting_adapters,
        "max_active_adapters": snap.max_active_adapters,
        "block_size": snap.block_size,
        "num_gpu_blocks": snap.num_gpu_blocks,
        "served_models": frozenset({snap.model}),
        # Plugins compare against time.monotonic(); the fleet already models staleness.
        "updated_at": time.monotonic(),
    }
    return EndpointMetrics(**{k: v for k, v in values.items() if k in _METRIC_FIELDS})


class GatewayScheduler:
    """The EPP's Scheduler behind the virtual fleet's Scheduler protocol."""

    def __init__(self, config_text: str | None, base_model: str, seed: int | None = None) -> None:
        config = load_config(seeded_config(config_text, seed) if seed is not None else config_text)
        self.scheduler = config.scheduler
        self.saturation = config.saturation_detector()
        self.base_model = base_model
        self.shed = 0
        self.endpoints: list[Endpoint] = []
        self._index: dict[str, int] = {}
        self._seen: list[float] = []
        self._picked: dict[int | str, Endpoint] = {}
        self.decisions = 0
        self.decision_seconds = 0.0

    def _sync(self, snapshots: Sequence[EndpointSnapshot]) -> None:
        if len(self.endpoints) != len(snapshots):
            self.endpoints = [
                Endpoint(
                    s.name, ObjectRef("default", s.name), f"10.0.{s.index // 250}.{s.index % 250}", 8000, {}
                )
                for s in snapshots
            ]
            self._index = {e.address: i for i, e in enumerate(self.endpoints)}
            self._seen = [-1.0] * len(snapshots)
        for i, snap in enumerate(snapshots):
            if snap.updated_at != self._seen[i]:
                self._seen[i] = snap.updated_at
                self.endpoints[i].metrics = metrics_from_snapshot(snap)

    def pick(self, request: SimRequest, endpoints: Sequence[EndpointSnapshot]) -> int | None:
        self._sync(endpoints)
        model = request.model or self.base_model
        priority = request.priority
        sreq = SchedulingRequest(
            request_id=str(request.request_id),
            model=model,
            target_model=model,
            prompt=request.prompt or "",
            criticality=Criticality(max(-1, min(1, priority))),
            priority=priority,
            body_size=4 * request.prompt_tokens,
        )
        started = time.perf_counter()
        if sreq.sheddable and self.saturation.is_saturated(self.endpoints):
            self.shed += 1
            return None
        try:
            result, state = self.scheduler.schedule(sreq, self.endpoints)
        except SchedulingError:
            return None
        self.scheduler.bind(state, sreq, result)
        self.decision_seconds += time.perf_counter() - started
        self.decisions += 1
        picked = result.endpoints[0]
        picked.in_flight += 1
        self._picked[request.request_id] = picked
        return self._index[picked.address]

    def on_finished(self, result: RequestResult) -> None:
        endpoint = self._picked.pop(result.request_id, None)
        if endpoint is not None:
            endpoint.in_flight = max(0, endpoint.in_flight - 1)


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

    def on_finished(self, result: RequestResult) -> None:
        observer = getattr(self.inner, "on_finished", None)
        if observer is not None:
            observer(result)
