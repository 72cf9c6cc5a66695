"""Configuration of one simulated model server (shared by the HTTP server and the fleet)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Literal

from inference_gateway.media import MediaTokenRule
from inference_gateway.simulator.profile import ModelProfile
from inference_gateway.simulator.waiting import SCHEDULING_POLICIES, SchedulingPolicy

MetricsFlavor = Literal["vllm", "sglang", "trtllm"]
MaxTokensMode = Literal["exact", "cap"]
DEFAULT_KV_BANDWIDTH_GB_S = 25.0
DEFAULT_KV_LATENCY_MS = 1.0


@dataclass(frozen=True, slots=True)
class LengthDistribution:
    """A clipped log-normal length distribution (sigma=0 gives a fixed length)."""

    median: float = 150.0
    sigma: float = 1.0
    minimum: int = 1
    maximum: int = 2048

    def sample(self, rng: random.Random) -> int:
        value = self.median
        if self.sigma > 0:
            value = rng.lognormvariate(math.log(self.median), self.sigma)
        return int(min(self.maximum, max(self.minimum, round(value))))


@dataclass(frozen=True, slots=True)
class KVTransfer:
    """Moving a prompt's KV cache from a prefill pod to a decode pod.

    bandwidth_gb_s: effective throughput of one transfer, in GB/s (1e9 bytes/s); 25 GB/s is
    about half of one 400 Gb/s RDMA NIC. latency_ms: fixed cost per transfer (handshake,
    completion notice).
    """

    bandwidth_gb_s: float = DEFAULT_KV_BANDWIDTH_GB_S
    latency_ms: float = DEFAULT_KV_LATENCY_MS

    def __post_init__(self) -> None:
        if self.bandwidth_gb_s <= 0:
            raise ValueError("KV transfer bandwidth must be > 0")
        if self.latency_ms < 0:
            raise ValueError("KV transfer latency must be >= 0")

    def wire_seconds(self, tokens: int, bytes_per_token: int) -> float:
        """Time the bytes occupy the link (without the fixed latency)."""
        return tokens * bytes_per_token / (self.bandwidth_gb_s * 1e9)

    def seconds(self, tokens: int, bytes_per_token: int) -> float:
        return self.latency_ms / 1000.0 + self.wire_seconds(tokens, bytes_per_token)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Fully resolved engine limits (no Nones): what the scheduler and KV cache run with."""

    max_num_seqs: int
    max_num_batched_tokens: int
    num_gpu_blocks: int
    block_size: int
    max_loras: int
    max_cpu_loras: int
    max_model_len: int
    enable_prefix_caching: bool
    scheduling_policy: SchedulingPolicy = "fcfs"


@dataclass
class ServerConfig:
    """One vLLM-like server. None means "take it from the profile" (or vLLM's default)."""

    served_model_name: str = "meta-llama/Llama-2-7b-hf"
    lora_adapters: list[str] = field(default_factory=list)
    profile: str = "h100-llama2-7b"
    metrics_flavor: MetricsFlavor = "vllm"
    time_scale: float = 1.0
    encode_only: bool = False  # E/P/D encode pod: runs its encoder only (simulator/encode_disagg.py)
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192
    num_gpu_blocks: int | None = None
    block_size: int | None = None
    max_loras: int = 1
    max_cpu_loras: int | None = None
    max_model_len: int | None = None
    enable_prefix_caching: bool = True
    # vLLM's --scheduling-policy: fcfs, or priority (requests' `priority` field, lower first)
    scheduling_policy: SchedulingPolicy = "fcfs"
    enable_lora: bool = True
    seed: int = 0
    output_len: LengthDistribution = field(default_factory=LengthDistribution)
    max_tokens_mode: MaxTokensMode = "exact"
    name: str | None = None
    namespace: str = "default"  # the pod's namespace, as the DCGM page labels it
    # Multimodal: how the served model counts image / audio tokens (inference_gateway.media).
    media: MediaTokenRule = field(default_factory=MediaTokenRule)
    # P/D: how this server, as a decode pod, pulls KV caches from prefill pods.
    kv_transfer: KVTransfer = field(default_factory=KVTransfer)
    faults: list[str] = field(default_factory=list)  # simulator/faults.py specs
    # vLLM's --kv-events-config JSON (kvevents/publisher.py); None publishes nothing.
    kv_events_config: str | None = None
    # vLLM's --prefix-caching-hash-algo for the published hashes: sha256_cbor | xxhash_cbor.
    prefix_caching_hash_algo: str = "sha256_cbor"

    def resolve(self, profile: ModelProfile) -> EngineConfig:
        """Merge with the profile and check the limits vLLM itself enforces at startup."""
        block_size = self.block_size or profile.block_size
        num_blocks = self.num_gpu_blocks or profile.num_gpu_blocks
        max_cpu = self.max_cpu_loras if self.max_cpu_loras is not None else self.max_loras
        if self.max_num_batched_tokens < self.max_num_seqs:
            raise ValueError("max_num_batched_tokens must be >= max_num_seqs (as in vLLM)")
        if max_cpu < self.max_loras:
            raise ValueError("max_cpu_loras must be >= max_loras (as in vLLM)")
        if self.time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        if self.scheduling_policy not in SCHEDULING_POLICIES:
            raise ValueError(f"scheduling_policy must be one of {', '.join(SCHEDULING_POLICIES)}")
        max_len = self.max_model_len or profile.max_model_len
        # vLLM refuses to start when one max-length sequence cannot fit; we clamp instead so
        # tiny KV caches (for preemption experiments) still start.
        max_len = min(max_len, num_blocks * block_size)
        return EngineConfig(
            max_num_seqs=self.max_num_seqs,
            max_num_batched_tokens=self.max_num_batched_tokens,
            num_gpu_blocks=num_blocks,
            block_size=block_size,
            max_loras=self.max_loras,
            max_cpu_loras=max_cpu,
            max_model_len=max_len,
            enable_prefix_caching=self.enable_prefix_caching,
            scheduling_policy=self.scheduling_policy,
        )

    @property
    def display_name(self) -> str:
        return self.name or self.served_model_name
