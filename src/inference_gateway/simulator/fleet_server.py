"""One simulated vLLM server of a virtual-time fleet: its engine, KV-event log and simulated GPU,
and what a fleet run reports about it."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from inference_gateway.kvevents.hashing import VllmBlockHasher
from inference_gateway.kvevents.publisher import KVEventsConfig
from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.dcgm import SimulatedGpu
from inference_gateway.simulator.engine import Engine
from inference_gateway.simulator.fleet_types import EndpointSnapshot, RequestResult
from inference_gateway.simulator.kv_events import KVEventLog
from inference_gateway.simulator.profile import load_profile
from inference_gateway.simulator.report import summarize
from inference_gateway.simulator.stats import EngineStats


@dataclass
class ServerReport:
    name: str
    profile: str
    stats: EngineStats


@dataclass
class FleetResult:
    results: list[RequestResult]
    servers: list[ServerReport]
    sim_time: float
    wall_time: float
    incomplete: int = 0
    extra: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        return summarize(self.results)


VIRTUAL_HASH_SEED = "0"  # the PYTHONHASHSEED virtual servers hash their KV blocks with


class FleetServer:
    def __init__(self, index: int, config: ServerConfig) -> None:
        self.index = index
        self.config = config
        self.name = config.name or f"server-{index}"
        self.profile = load_profile(config.profile)
        self.engine = Engine(config.resolve(self.profile), self.profile)
        for adapter in config.lora_adapters:
            self.engine.lora.register(adapter)
        self.rng = random.Random(config.seed)
        self._now = 0.0
        self.gpu = SimulatedGpu(self.engine, lambda: self._now)
        # KV events (`kv_events_config`): vLLM's block hashes, seeded by VIRTUAL_HASH_SEED.
        self.hasher: VllmBlockHasher | None = None
        self.kv_log: KVEventLog | None = None
        if KVEventsConfig.parse(config.kv_events_config or "{}").active:
            bs = self.engine.cfg.block_size
            self.hasher = VllmBlockHasher(bs, VIRTUAL_HASH_SEED, config.prefix_caching_hash_algo)
            self.kv_log = KVEventLog(bs)
            self.engine.publish_kv_events(self.kv_log)

    def snapshot(self, now: float) -> EndpointSnapshot:
        e = self.engine
        self._now = now
        return EndpointSnapshot(
            index=self.index,
            name=self.name,
            model=self.config.served_model_name,
            updated_at=now,
            waiting_queue=e.num_waiting,
            running_requests=len(e.running),
            kv_cache_usage=e.pool.usage,
            active_adapters=frozenset(e.lora.running),
            waiting_adapters=frozenset(e.lora.waiting),
            max_active_adapters=e.cfg.max_loras,
            block_size=e.cfg.block_size,
            num_gpu_blocks=e.cfg.num_gpu_blocks,
            prefix_cache_hit_rate=e.stats.prefix_hit_rate,
            num_preemptions=e.stats.num_preemptions,
            itl_sum_seconds=e.stats.itl.total,
            itl_count=e.stats.itl.count,
            gpu_util=self.gpu.sample().util,
            adapters=frozenset(e.lora.registered),
        )

    def serves(self, model: str | None) -> bool:
        """Whether a request for `model` (None: the base model) finds it here, as vLLM checks
        before queueing it (a missing adapter is a 404)."""
        return model in (None, self.config.served_model_name) or model in self.engine.lora.registered
