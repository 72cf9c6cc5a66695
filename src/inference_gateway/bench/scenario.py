"""Scenario files (bench/*.yaml): a workload, routing policies, and the runs to make with them.

A scenario may hold any of four sections: `virtual` (simulated fleet in virtual time, the
real scheduler code), `realtime` (simulated pods behind a real Envoy, with and without the
EPP), `overhead` (the gateway's own added latency against an instant backend) and `sync`
(prefix sync between two EPP replicas on loopback). `smoke`
shrinks every section to seconds for `make test`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from inference_gateway.bench.overhead_modes import KNOWN_MODES
from inference_gateway.bench.peers import PEER_KINDS
from inference_gateway.bench.policies import PolicySpec
from inference_gateway.bench.workloads import WorkloadSpec
from inference_gateway.simulator.config import ServerConfig

_SERVER_FIELDS = frozenset(f.name for f in dataclasses.fields(ServerConfig))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerGroup(_Section):
    """Servers of one kind in a mixed fleet: `count` servers with these ServerConfig fields
    (over the section's `server`), e.g. their own `lora_adapters`: adapters spread over pods."""

    name: str
    count: int = Field(ge=1)
    server: dict[str, Any] = Field(default_factory=dict)


class VirtualSection(_Section):
    qps: list[float]
    duration_s: float = 600.0
    servers: int = 4
    server: dict[str, Any] = Field(default_factory=dict)  # simulator ServerConfig fields
    fleet: list[ServerGroup] = Field(default_factory=list)  # a mixed fleet; replaces `servers`
    scrape_interval_s: float = 0.05
    staleness_s: float = 0.0
    sample_interval_s: float = 1.0
    policies: list[str]
    workers: int = 2
    with_text: bool = False


class RealtimeSection(_Section):
    stack: Path = Path("bench/stack")
    qps: list[float]
    duration_s: float = 60.0
    pods: int | None = None
    time_scale: float = 1.0
    simulator_args: list[str] = Field(default_factory=list)
    # Pods of several kinds: each group copies the stack's first pod group (replacing them all,
    # and `pods`), with its own REALTIME_SERVER_FIELDS, e.g. `lora_adapters`.
    fleet: list[ServerGroup] = Field(default_factory=list)
    policies: list[str]


# ServerConfig fields a real-time pod group takes: the simulator's command-line options of the
# same name (`--max-loras`), its profile, and its preloaded adapters (`--lora`).
REALTIME_SERVER_FIELDS = frozenset(
    {"profile", "lora_adapters", "max_loras", "max_cpu_loras", "max_num_seqs", "max_num_batched_tokens",
     "num_gpu_blocks", "block_size", "max_model_len", "seed"}
)  # fmt: skip


class OverheadSection(_Section):
    qps: list[float] = Field(default_factory=lambda: [1.0, 10.0, 100.0, 250.0, 500.0, 1000.0])
    duration_s: float = 10.0
    repeats: int = 3
    pods: int = 4
    prompt_tokens: int = 64
    large_prompt_bytes: int = 220_000
    large_qps: float = 5.0
    large_duration_s: float = 10.0
    profile_s: float = 5.0
    epp_policy: str | None = None  # EPP config for the overhead runs (a policy of kind epp)
    decision_sizes: list[int] = Field(default_factory=lambda: [10, 100, 1000])
    decision_policies: list[str] = Field(default_factory=list)
    decision_iterations: int = 2000
    micro_iterations: int = 0  # > 0: prefix hashing/matching and /metrics parsing (bench/micro.py)
    itl_tokens: int = 0  # > 0: a streaming row, tokens itl_ms apart, inter-token latency compared
    itl_ms: float = 5.0
    itl_qps: float = 50.0
    # The EPP also as `epp --workers N` processes: "N" or "N:asyncio" / "N:uvloop" (event loop).
    epp_processes: list[str] = Field(default_factory=list)
    envoy_concurrency: int = 1  # Envoy worker threads: connections to each EPP (spread over workers)
    modes: list[str] | None = None  # the in-process paths to measure (default: all of overhead.MODES)


class SyncSection(_Section):
    """Prefix sync between two EPP replicas on loopback gRPC, in real time."""

    lag_samples: int = Field(default=200, ge=1)
    flush_intervals_s: list[float] = Field(default_factory=lambda: [0.02, 0.0])
    throughput_updates: int = Field(default=50_000, ge=0)
    blocks_per_update: int = Field(default=64, ge=1)


class Scenario(_Section):
    name: str
    description: str = ""
    seeds: list[int] = Field(default_factory=lambda: [1])
    workload: WorkloadSpec = Field(default_factory=WorkloadSpec)
    policies: dict[str, PolicySpec] = Field(default_factory=dict)
    virtual: VirtualSection | None = None
    realtime: RealtimeSection | None = None
    overhead: OverheadSection | None = None
    sync: SyncSection | None = None
    smoke: dict[str, Any] = Field(default_factory=dict)
    base_dir: Path = Path(".")  # relative paths (profiles, stack, dataset) resolve from here

    def policy(self, name: str) -> PolicySpec:
        try:
            return self.policies[name]
        except KeyError:
            raise ValueError(f"scenario {self.name}: no policy named {name!r}") from None

    def check(self) -> Scenario:
        for section in (self.virtual, self.realtime):
            for name in section.policies if section else []:
                self.policy(name)
        if self.virtual:
            self._check_servers("virtual", self.virtual.server, self.virtual.fleet)
        if self.realtime:
            self._check_servers("realtime", {}, self.realtime.fleet, REALTIME_SERVER_FIELDS)
        if self.virtual and self.virtual.fleet:
            self.virtual.servers = sum(group.count for group in self.virtual.fleet)
        for name, policy in self.policies.items():
            if policy.roles is not None and policy.kind != "epp":
                raise ValueError(f"policy {name}: roles need kind epp (a disagg profile handler)")
            if policy.roles is not None and policy.replicated:
                raise ValueError(f"policy {name}: roles (disaggregation) run with one EPP replica only")
            servers = self.virtual.servers if self.virtual else len(policy.roles or ())
            if policy.roles is not None and len(policy.roles) != servers:
                raise ValueError(f"policy {name}: {len(policy.roles)} roles for {servers} servers")
        if self.realtime:
            for name in self.realtime.policies:
                if self.policy(name).kind not in ("round-robin", "epp", *PEER_KINDS):
                    raise ValueError(
                        f"realtime policy {name}: Envoy round-robin, the EPP or a peer router only"
                    )
                if self.policy(name).replicated:
                    raise ValueError(f"realtime policy {name}: EPP replicas run in virtual time only")
        for name in self.virtual.policies if self.virtual else []:
            if self.policy(name).kind in PEER_KINDS:
                raise ValueError(f"virtual policy {name}: peer routers run in real time only")
        if self.overhead:
            for name in [*self.overhead.decision_policies, *filter(None, [self.overhead.epp_policy])]:
                if self.policy(name).kind != "epp":
                    raise ValueError(f"overhead policy {name} must be of kind epp")
            for mode in self.overhead.modes or ():
                if mode not in KNOWN_MODES:
                    raise ValueError(f"overhead mode {mode!r}: one of {', '.join(KNOWN_MODES)}")
            for spec in self.overhead.epp_processes:
                workers, _, loop = spec.partition(":")
                if not workers.isdigit() or int(workers) < 1 or loop not in ("", "asyncio", "uvloop"):
                    raise ValueError(f"overhead epp_processes {spec!r}: N, N:asyncio or N:uvloop")
        return self

    def _check_servers(
        self,
        section: str,
        server: dict[str, Any],
        fleet: list[ServerGroup],
        allowed: frozenset[str] = _SERVER_FIELDS,
    ) -> None:
        """Every server's fields are ServerConfig's (those `allowed`), of the right types; every
        adapter the workload asks for is on some server (else every request for it would fail)."""
        sections = [(f"{section}.server", server)] if server else []
        sections += [(f"{section}.fleet[{i}].server", g.server) for i, g in enumerate(fleet)]
        for where, fields in sections:
            unknown = sorted(set(fields) - allowed)
            if unknown and unknown[0] in _SERVER_FIELDS:
                raise ValueError(f"{where}.{unknown[0]}: not settable on a {section} pod")
            if unknown:
                raise ValueError(f"{where}.{unknown[0]}: not a simulator server field")
            try:
                _SERVER_CONFIG.validate_python(fields)
            except ValidationError as exc:
                first = exc.errors()[0]
                path = ".".join(str(part) for part in first["loc"])
                raise ValueError(f"{where}.{path}: {first['msg']}") from None
        w = self.workload
        if w.kind != "multi-lora" or not fleet:
            return
        wanted = [f"{w.adapter_prefix}{i}" for i in range(w.adapters)]
        default = server.get("lora_adapters", wanted)
        held = {a for g in fleet for a in g.server.get("lora_adapters", default)}
        missing = [a for a in wanted if a not in held]
        if missing:
            raise ValueError(f"{section}.fleet: adapter {missing[0]} of the workload is on no server")

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else self.base_dir / path

    def smoke_version(self) -> Scenario:
        """Seconds-long version of every section (plus the scenario's own `smoke` overrides)."""
        data = self.model_dump()
        if data["virtual"]:
            data["virtual"].update(qps=data["virtual"]["qps"][:2], duration_s=5.0, workers=1)
        if data["realtime"]:
            data["realtime"].update(qps=data["realtime"]["qps"][:1], duration_s=2.0, pods=2, time_scale=0.1)
        data["workload"]["output"] = {"median": 8, "mean": 10, "min": 2, "max": 16}
        if data["overhead"]:
            data["overhead"].update(
                qps=[20], duration_s=1.0, large_qps=2, large_duration_s=1.0, profile_s=0, repeats=1,
                decision_sizes=[10], decision_iterations=50,
                micro_iterations=min(data["overhead"]["micro_iterations"], 5),
            )  # fmt: skip
        if data["sync"]:
            sync = data["sync"]
            sync.update(lag_samples=5, throughput_updates=min(sync["throughput_updates"], 500))
        data["seeds"] = data["seeds"][:1]
        _deep_update(data, self.smoke)
        return Scenario.model_validate(data).check()


_SERVER_CONFIG: TypeAdapter[ServerConfig] = TypeAdapter(ServerConfig)


def _deep_update(target: dict[str, Any], overrides: dict[str, Any]) -> None:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_update(target[key], value)
        else:
            target[key] = value


def load_scenario(path: Path, root: Path | None = None) -> Scenario:
    """Parse a scenario file; relative paths inside resolve from `root` (default: the cwd)."""
    try:
        data = yaml.safe_load(path.read_text())
        if not isinstance(data, dict):
            raise ValueError("must be a YAML mapping")
        data.setdefault("base_dir", str(root or Path.cwd()))
        scenario = Scenario.model_validate(data)
        if scenario.workload.dataset is not None:
            scenario.workload.dataset = scenario.resolve(scenario.workload.dataset)
        return scenario.check()
    except (ValidationError, ValueError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
