"""Endpoints (one per pod x target port) and the live metrics attached to each."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from inference_gateway.api.types import ObjectRef


@dataclass(slots=True)
class EndpointMetrics:
    """The engine state the scheduler reads, refreshed by the scraper."""

    waiting_queue: int = 0
    running_requests: int = 0
    kv_cache_usage: float = 0.0
    active_adapters: frozenset[str] = frozenset()
    waiting_adapters: frozenset[str] = frozenset()
    # None: the engine has not reported its adapter slots (vLLM publishes its LoRA info only
    # once it has served a request), which means "unknown", not "no room".
    max_active_adapters: int | None = None
    # KV-cache geometry from the engine's cache-info metric; 0 means "not reported".
    block_size: int = 0
    num_gpu_blocks: int = 0
    served_models: frozenset[str] = frozenset()
    # The engine's inter-token latency histogram: cumulative sum (s) and count (tokens timed).
    # None when the engine does not export it. Their rates give its decode speed.
    itl_sum_seconds: float | None = None
    itl_count: float | None = None
    itl_read_at: float = 0.0  # when they were read (the scraper reads them every ~0.5 s)
    updated_at: float = 0.0
    scrape_failures: int = 0
    # The in-flight ledger when this snapshot was taken (scheduling/projection.py); None until
    # marked.
    in_flight_at_scrape: int | None = None
    in_flight_tokens_at_scrape: int = 0

    def age(self, now: float | None = None) -> float:
        return (now if now is not None else time.monotonic()) - self.updated_at

    def adapter_slot_free(self) -> bool:
        """Room to bring one more adapter into the batch; True while the engine has not said."""
        if self.max_active_adapters is None:
            return True
        return len(self.active_adapters) + len(self.waiting_adapters) < self.max_active_adapters


@dataclass(slots=True)
class EndpointLoad:
    """What this EPP dispatched to the endpoint and has not seen complete; written only by
    the in-flight ledger (datastore/ledger.py)."""

    requests: int = 0
    prompt_tokens: int = 0

    def add(self, prompt_tokens: int) -> None:
        self.requests += 1
        self.prompt_tokens += prompt_tokens

    def remove(self, prompt_tokens: int) -> None:
        self.requests = max(0, self.requests - 1)
        self.prompt_tokens = max(0, self.prompt_tokens - prompt_tokens)


@dataclass(slots=True, eq=False)
class Endpoint:
    """A schedulable target: one port of one pod. Identity is the address."""

    name: str
    pod: ObjectRef
    ip: str
    port: int
    labels: dict[str, str]
    rank: int = 0
    metrics: EndpointMetrics = field(default_factory=EndpointMetrics)
    load: EndpointLoad = field(default_factory=EndpointLoad)
    ready: bool = True
    metrics_ok: bool = True
    address: str = ""
    # Values other sources attach by key (e.g. metrics/dcgm.py's GPU fields); plugins read them by key.
    attributes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.address = f"{self.ip}:{self.port}"

    @property
    def in_flight(self) -> int:
        """Requests this EPP has in flight on the endpoint (the ledger's count)."""
        return self.load.requests

    @property
    def in_flight_tokens(self) -> int:
        """Estimated prompt tokens of those requests."""
        return self.load.prompt_tokens

    @property
    def engine(self) -> str:
        return self.labels.get("inference.networking.k8s.io/engine-type", "vllm")

    def __hash__(self) -> int:
        return hash(self.address)

    def __repr__(self) -> str:
        return f"Endpoint({self.name}@{self.address})"
