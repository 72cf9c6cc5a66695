"""Routing policies for the virtual-time fleet: reference balancers, and `epp`, the EPP itself
(its Director and PoolRuntime, built from an EndpointPickerConfig: simulator/gateway.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from inference_gateway.bench.peers import PEER_KINDS, PeerRouterSpec, check_policy
from inference_gateway.simulator.fleet_types import (
    CacheOracle,
    EndpointSnapshot,
    Holding,
    Preempting,
    RequestResult,
    Scheduler,
    SimRequest,
)
from inference_gateway.simulator.gateway import VirtualGateway, seeded_config
from inference_gateway.simulator.pd_fleet import PDPick
from inference_gateway.simulator.replicas import ReplicaSet, ReplicaSetOptions
from inference_gateway.simulator.schedulers import (
    LeastRequestsScheduler,
    OraclePrefixScheduler,
    RandomScheduler,
    RoundRobinScheduler,
)

PolicyKind = Literal[
    "round-robin", "random", "least-queue", "oracle-prefix", "epp", "sglang-router", "vllm-router"
]


class PolicySpec(BaseModel):
    """A routing policy by kind; `epp` takes an EndpointPickerConfig file (none: the default);
    the peer routers (real time only) take their own policy name and extra command-line args.

    An `epp` policy may run as several replicas behind a round-robin Service (`replicas`),
    their prefix indexes synced `sync_delay_s` after each pick (None: not synced), each
    replica landing the pods' scrapes on its own ticks of `scrape_interval_s` (virtual time).

    `roles` (epp only) labels virtual server i `llm-d.ai/role: roles[i]` (null: no label) and
    runs the fleet disaggregated: prefill, decode and encode stages on the servers the EPP's
    disagg profile handler names (simulator/pd_fleet.py).
    """

    model_config = ConfigDict(extra="forbid")
    kind: PolicyKind
    config: Path | None = None
    description: str = ""
    router_policy: str | None = None
    router_args: list[str] = Field(default_factory=list)
    replicas: int = Field(default=1, ge=1)
    sync_delay_s: float | None = Field(default=None, ge=0)
    scrape_interval_s: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _replicas_are_epp(self) -> PolicySpec:
        if self.replicated and self.kind != "epp":
            raise ValueError("replicas, sync_delay_s and scrape_interval_s apply to kind epp only")
        return self

    @model_validator(mode="after")
    def _router_fields(self) -> PolicySpec:
        if self.kind in PEER_KINDS:
            check_policy(self.kind, self.router_policy)  # type: ignore[arg-type]
        elif self.router_policy is not None or self.router_args:
            raise ValueError(f"router_policy / router_args apply to {' and '.join(PEER_KINDS)} only")
        return self

    @property
    def replicated(self) -> bool:
        """Runs as a replica set (several replicas, sync, or per-replica scrape ticks)."""
        return self.replicas > 1 or self.sync_delay_s is not None or self.scrape_interval_s > 0

    @property
    def peer(self) -> PeerRouterSpec | None:
        if self.kind not in PEER_KINDS or self.router_policy is None:
            return None
        return PeerRouterSpec(self.kind, self.router_policy, tuple(self.router_args))  # type: ignore[arg-type]

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
    if spec.kind == "oracle-prefix":
        return OraclePrefixScheduler()
    if spec.kind in PEER_KINDS:
        raise ValueError(f"{spec.kind} is a separate process: it runs in real time only")
    if spec.replicated:
        options = ReplicaSetOptions(
            replicas=spec.replicas,
            sync=spec.sync_delay_s is not None,
            delay_s=spec.sync_delay_s or 0.0,
            config_text=spec.config_text(base),
            seed=seed,
            scrape_interval_s=spec.scrape_interval_s,
        )
        return ReplicaSet(options)
    # flow control holds requests in the gateway; the disaggregated fleet places on arrival only
    config = seeded_config(spec.config_text(base), seed)
    return VirtualGateway(config, roles=spec.roles or (), holding=not spec.roles)


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

    def bind_cache_lookup(self, lookup: Callable[[SimRequest], list[int]]) -> None:
        if isinstance(self.inner, CacheOracle):
            self.inner.bind_cache_lookup(lookup)

    def on_kv_events(self, server: int, payload: bytes) -> None:
        sink = getattr(self.inner, "on_kv_events", None)
        if sink is not None:
            sink(server, payload)

    def on_finished(self, result: RequestResult) -> None:
        observer = getattr(self.inner, "on_finished", None)
        if observer is not None:
            observer(result)

    @property
    def holding(self) -> int:
        return self.inner.holding if isinstance(self.inner, Holding) else 0

    def bind_dispatch(self, dispatch: Callable[[SimRequest, int | None], None]) -> None:
        if isinstance(self.inner, Holding):
            self.inner.bind_dispatch(dispatch)

    def advance(self, now: float, snapshots: Sequence[EndpointSnapshot]) -> float | None:
        return self.inner.advance(now, snapshots) if isinstance(self.inner, Holding) else None
