"""Engine counters and histograms, kept as plain numbers (cheap to update in virtual time)
and rendered into Prometheus families only when /metrics is scraped."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

# vLLM's bucket boundaries (vllm/v1/metrics/loggers.py).
# fmt: off
TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
    10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)
ITL_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0,
)
LATENCY_BUCKETS = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
    240.0, 480.0, 960.0, 1920.0, 7680.0,
)
# fmt: on


class Histogram:
    __slots__ = ("bounds", "count", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.count = 0
        self.total = 0.0

    def observe(self, value: float, n: int = 1) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += n
        self.count += n
        self.total += value * n

    def cumulative(self) -> list[tuple[str, float]]:
        """(le, cumulative count) pairs in Prometheus order, ending with +Inf."""
        out: list[tuple[str, float]] = []
        running = 0
        for bound, c in zip(self.bounds, self.counts, strict=False):
            running += c
            out.append((repr(float(bound)), float(running)))
        out.append(("+Inf", float(self.count)))
        return out


@dataclass
class EngineStats:
    prompt_tokens: int = 0
    generation_tokens: int = 0
    num_preemptions: int = 0
    first_preemption_step: int = -1
    prefix_queries: int = 0
    prefix_hits: int = 0
    # Prompt tokens by where their KV came from, counted at first admission (vLLM's
    # prompt_tokens_by_source: local_cache_hit, external_kv_transfer, local_compute).
    prompt_tokens_cache_hit: int = 0
    prompt_tokens_kv_transfer: int = 0
    prompt_tokens_computed: int = 0
    lora_loads: int = 0
    encoder_tokens: int = 0  # image / audio embedding tokens the encoder computed
    steps: int = 0
    busy_time: float = 0.0
    finished: dict[str, int] = field(default_factory=lambda: {"stop": 0, "length": 0, "abort": 0})
    ttft: Histogram = field(default_factory=lambda: Histogram(TTFT_BUCKETS))
    itl: Histogram = field(default_factory=lambda: Histogram(ITL_BUCKETS))
    e2e: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS))
    queue_time: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS))

    @property
    def prefix_hit_rate(self) -> float:
        return self.prefix_hits / self.prefix_queries if self.prefix_queries else 0.0
