"""Saturation detection: is an endpoint (or a whole pool) out of good capacity?

Matches upstream's utilization detector and its config keys (queueDepthThreshold,
kvCacheUtilThreshold, metricsStalenessThreshold). An endpoint is saturated when its metrics
are stale or failing, its waiting queue is at or above the queue threshold, or its KV-cache
utilisation is at or above the KV threshold (both projected: the last scrape plus what this EPP
sent and saw finish since); a pool is saturated when every candidate is.
With `adapterQueueIsLoad: false` (ours; upstream counts every waiting request) the queue
threshold does not apply to an endpoint whose queue holds requests for adapters outside its
batch: with every adapter slot taken they wait for a slot to free, not for capacity, and
counting them made a multi-LoRA pool look saturated at a fraction of its throughput (flow
control then held requests in the gateway; docs/benchmarks.md "Multi-LoRA"). KV still counts.
Used by the pool runtime (shedding Sheddable requests), the sheddable-capacity filter and flow
control.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling import projection
from inference_gateway.scheduling.params import get_bool, get_duration_s, get_float, get_int

DEFAULT_QUEUE_DEPTH_THRESHOLD = 5
DEFAULT_KV_CACHE_UTIL_THRESHOLD = 0.8
DEFAULT_METRICS_STALENESS_S = 2.0


@dataclass(frozen=True, slots=True)
class SaturationConfig:
    queue_depth_threshold: int = DEFAULT_QUEUE_DEPTH_THRESHOLD
    kv_cache_util_threshold: float = DEFAULT_KV_CACHE_UTIL_THRESHOLD
    metrics_staleness_s: float = DEFAULT_METRICS_STALENESS_S
    adapter_queue_is_load: bool = True

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> SaturationConfig:
        """Upstream's `saturationDetector` section / utilization-detector parameters."""
        p = params or {}
        return cls(
            queue_depth_threshold=get_int(p, "queueDepthThreshold", DEFAULT_QUEUE_DEPTH_THRESHOLD, minimum=1),
            kv_cache_util_threshold=get_float(
                p, "kvCacheUtilThreshold", DEFAULT_KV_CACHE_UTIL_THRESHOLD, minimum=0.0, maximum=1.0
            ),
            metrics_staleness_s=get_duration_s(p, "metricsStalenessThreshold", DEFAULT_METRICS_STALENESS_S),
            adapter_queue_is_load=get_bool(p, "adapterQueueIsLoad", True),
        )


@runtime_checkable
class SaturationSignal(Protocol):
    """What flow control and shedding ask of any detector (the class below, its plugin
    subclasses, or a combination of them)."""

    def is_saturated(self, endpoints: list[Endpoint]) -> bool: ...


class SaturationDetector:
    def __init__(self, config: SaturationConfig | None = None, clock: Callable[[], float] = time.monotonic):
        self.config = config or SaturationConfig()
        self.clock = clock  # what metrics timestamps are compared with

    def endpoint_saturated(self, endpoint: Endpoint, now: float | None = None) -> bool:
        cfg = self.config
        m = endpoint.metrics
        if not endpoint.metrics_ok:
            return True
        if (self.clock() if now is None else now) - m.updated_at > cfg.metrics_staleness_s:
            return True
        return not self.has_capacity(endpoint)

    def has_capacity(self, endpoint: Endpoint) -> bool:
        """Load thresholds only (no staleness): what the sheddable-capacity filter keeps. Reads
        the projected state (the scrape plus what this EPP sent and saw finish since)."""
        cfg = self.config
        return (
            projection.waiting(endpoint) < cfg.queue_depth_threshold or self._waits_on_adapters(endpoint)
        ) and projection.kv_usage(endpoint) < cfg.kv_cache_util_threshold

    def _waits_on_adapters(self, endpoint: Endpoint) -> bool:
        """Its queue holds requests for adapters it is not running, and that does not count."""
        m = endpoint.metrics
        return not self.config.adapter_queue_is_load and not m.waiting_adapters <= m.active_adapters

    def is_saturated(self, endpoints: Iterable[Endpoint]) -> bool:
        """True when no endpoint has good capacity (also when there are none).

        A pool where *no* endpoint has fresh metrics is not called saturated: the gateway is blind
        then (metrics port blocked, scraper broken), and holding every request back until its TTL
        would turn a monitoring fault into an outage. Requests are routed on what is known instead.
        """
        now = self.clock()
        any_endpoint = any_fresh = False
        for e in endpoints:
            any_endpoint = True
            if self._fresh(e, now):
                any_fresh = True
                if self.has_capacity(e):
                    return False
        return any_fresh or not any_endpoint

    def _fresh(self, endpoint: Endpoint, now: float) -> bool:
        return endpoint.metrics_ok and now - endpoint.metrics.updated_at <= self.config.metrics_staleness_s

    def describe(self, endpoint: Endpoint, now: float | None = None) -> str:
        """Why an endpoint counts as saturated, for logs and explanations ('' when it is not)."""
        cfg = self.config
        m = endpoint.metrics
        age = (self.clock() if now is None else now) - m.updated_at
        if not endpoint.metrics_ok or age > cfg.metrics_staleness_s:
            return f"metrics stale ({age:.1f}s old)" if m.updated_at else "no metrics yet"
        waiting, kv = projection.waiting(endpoint), projection.kv_usage(endpoint)
        if waiting >= cfg.queue_depth_threshold and not self._waits_on_adapters(endpoint):
            return f"queue {waiting} >= {cfg.queue_depth_threshold}"
        if kv >= cfg.kv_cache_util_threshold:
            return f"kv-cache {kv:.2f} >= {cfg.kv_cache_util_threshold}"
        return ""
