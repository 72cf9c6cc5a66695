"""Routing policies for the virtual-time fleet: reference balancers, and `epp`, the EPP itself
(its Director and PoolRuntime, built from an EndpointPickerConfig: simulator/gateway.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from inference_gateway.simulator.fleet_types import (
    EndpointSnapshot,
    Preempting,
    RequestResult,
    Scheduler,
    SimRequest,
)
from inference_gateway.simulator.gateway import VirtualGateway, seeded_config
from inference_gateway.simulator.pd_fleet import PDPick
from inference_gateway.simulator.schedulers import (
    LeastRequestsScheduler,
    RandomScheduler,
    RoundRobinScheduler,
)

PolicyKind = Literal["round-robin", "random", "least-queue", "epp"]


class PolicySpec(BaseModel):
    """A routing policy by kind; `epp` takes an EndpointPickerConfig file (none: the default).

    `roles` (epp only) labels virtual server i `llm-d.ai/role: roles[i]` (null: no label) and
    runs the fleet disaggregated: prefill, decode and encode stages on the servers the
    EPP's disagg profile handler names (simulator/pd_fleet.py)."""

    model_config = ConfigDict(extra="forbid")
    kind: PolicyKind
    config: Path | None = None
    description: str = ""
    roles: list[str | None] | None = None

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
    return VirtualGateway(seeded_config(spec.config_text(base), seed), roles=spec.roles or ())


class SamplingScheduler:
    """Wraps a policy and records the fleet's visible engine state every `interval_s`."""

    def __init__(self, inner: Scheduler, interval_s: float = 1.0) -> None:
        self.inner = inner
        self.interval_s = interval_s
        self.series: list[dict[str, float]] = []
        self._next = 0.0

    def pick(self, request: SimRequest, endpoints: Sequence[EndpointSnapshot]) -> int | None:
        self._sample(request, endpoints)
        return self.inner.pick(request, endpoints)

    def _sample(self, request: SimRequest, endpoints: Sequence[EndpointSnapshot]) -> None:
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

    def pick_pd(self, request: SimRequest, endpoints: Sequence[EndpointSnapshot]) -> PDPick | None:
        """The disaggregated pick (P/D fleets), sampled like `pick`."""
        self._sample(request, endpoints)
        pick_pd = getattr(self.inner, "pick_pd", None)
        if pick_pd is None:
            index = self.inner.pick(request, endpoints)
            return None if index is None else PDPick(index)
        return pick_pd(request, endpoints)  # type: ignore[no-any-return]

    def bind_abort(self, abort: Callable[[int | str], bool]) -> None:
        if isinstance(self.inner, Preempting):
            self.inner.bind_abort(abort)

    def on_kv_events(self, server: int, payload: bytes) -> None:
        sink = getattr(self.inner, "on_kv_events", None)
        if sink is not None:
            sink(server, payload)

    def on_finished(self, result: RequestResult) -> None:
        observer = getattr(self.inner, "on_finished", None)
        if observer is not None:
            observer(result)
