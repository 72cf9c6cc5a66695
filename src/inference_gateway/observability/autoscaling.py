"""Signals for scaling model servers per pool and per model (Kubernetes HPA via prometheus-adapter).

All per-pod values are averages over the pool's ready pods, so an HPA uses them with a `Value`
target and computes desired = ceil(current replicas x value / target) (the HPA algorithm;
`tests/autoscaling` checks it on a simulated load ramp):

  inference_pool_average_queue_size{name}                  (upstream) waiting requests per pod
  inference_pool_average_kv_cache_utilization{name}        (upstream) KV-cache use, 0..1
  inference_model_in_flight_requests_per_pod{name, model_name}
      requests the EPP routed for this target model and that have not finished, per ready pod
  inference_model_time_to_first_token_p90_seconds{name, model_name}
  inference_pool_time_to_first_token_p90_seconds{name}
      p90 over the last `window_s` of the time from the request reaching the EPP to the first
      response byte from the pod: queueing (EPP and engine), adapter loading and prefill
  inference_model_adapter_pods{name, model_name, state}
      for LoRA adapters: ready pods where the adapter is `active` or only `waiting` (requests
      queued behind an adapter load)
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from inference_gateway.api.types import ObjectRef
from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.datastore.store import Datastore

if TYPE_CHECKING:
    from inference_gateway.requestcontrol.director import RequestContext
    from inference_gateway.requestcontrol.errors import GatewayError

Key = tuple[str, str]  # (pool name, target model)


class AutoscalingSignals(Collector):
    """A RequestObserver of the director and a Prometheus collector of the gauges above."""

    def __init__(self, store: Datastore, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.store = store
        self.window_s = window_s
        self.clock = clock
        self.in_flight: Counter[Key] = Counter()
        self._ttft: dict[Key, deque[tuple[float, float]]] = {}
        self._routed: set[str] = set()

    # --- RequestObserver ---------------------------------------------------
    def on_routed(self, ctx: RequestContext) -> None:
        key = _key(ctx)
        if key is not None:
            self.in_flight[key] += 1
            self._routed.add(ctx.request_id)

    def on_error(self, ctx: RequestContext, error: GatewayError) -> None:
        pass

    def on_complete(self, ctx: RequestContext) -> None:
        key = _key(ctx)
        if key is None or ctx.request_id not in self._routed:
            return
        self._routed.discard(ctx.request_id)
        self.in_flight[key] -= 1
        if self.in_flight[key] <= 0:
            del self.in_flight[key]
        if ctx.first_byte_at > 0:
            samples = self._ttft.setdefault(key, deque())
            samples.append((ctx.first_byte_at, ctx.first_byte_at - ctx.started))

    # --- collector -----------------------------------------------------------
    def collect(self) -> Iterator[GaugeMetricFamily]:
        in_flight = GaugeMetricFamily(
            "inference_model_in_flight_requests_per_pod",
            "Requests routed for the target model and not finished, per ready pod of the pool.",
            labels=["name", "model_name"],
        )
        model_p90 = GaugeMetricFamily(
            "inference_model_time_to_first_token_p90_seconds",
            "p90 time from the EPP to the first response byte, over the last window, per target model.",
            labels=["name", "model_name"],
        )
        pool_p90 = GaugeMetricFamily(
            "inference_pool_time_to_first_token_p90_seconds",
            "p90 time from the EPP to the first response byte, over the last window, per pool.",
            labels=["name"],
        )
        adapters = GaugeMetricFamily(
            "inference_model_adapter_pods",
            "Ready pods where a LoRA adapter is active, or only waiting (queued behind a load).",
            labels=["name", "model_name", "state"],
        )
        pods = self._ready_pods()
        for (pool, model), n in self.in_flight.items():
            in_flight.add_metric([pool, model], n / max(pods.get(pool, 0), 1))
        per_pool: dict[str, list[float]] = {}
        for (pool, model), values in self._window().items():
            model_p90.add_metric([pool, model], _p90(values))
            per_pool.setdefault(pool, []).extend(values)
        for pool, values in per_pool.items():
            pool_p90.add_metric([pool], _p90(values))
        for (pool, model, state), n in self._adapter_pods().items():
            adapters.add_metric([pool, model, state], n)
        yield in_flight
        yield model_p90
        yield pool_p90
        yield adapters

    def _ready_pods(self) -> dict[str, int]:
        return {v.pool.ref.name: len({e.pod for e in v.ready_endpoints()}) for v in self.store.pools()}

    def _window(self) -> dict[Key, list[float]]:
        horizon = self.clock() - self.window_s
        out: dict[Key, list[float]] = {}
        for key in list(self._ttft):
            samples = self._ttft[key]
            while samples and samples[0][0] < horizon:
                samples.popleft()
            if samples:
                out[key] = [s for _, s in samples]
            else:
                del self._ttft[key]
        return out

    def _adapter_pods(self) -> Counter[tuple[str, str, str]]:
        counts: Counter[tuple[str, str, str]] = Counter()
        for view in self.store.pools():
            for pod_endpoints in _by_pod(view.ready_endpoints()).values():
                m = pod_endpoints[0].metrics
                for adapter in m.active_adapters:
                    counts[(view.pool.ref.name, adapter, "active")] += 1
                for adapter in m.waiting_adapters - m.active_adapters:
                    counts[(view.pool.ref.name, adapter, "waiting")] += 1
        return counts


def _by_pod(endpoints: Iterable[Endpoint]) -> dict[ObjectRef, list[Endpoint]]:
    out: dict[ObjectRef, list[Endpoint]] = {}
    for e in endpoints:
        out.setdefault(e.pod, []).append(e)
    return out


def _key(ctx: RequestContext) -> Key | None:
    res = ctx.resolution
    if res is None:
        return None
    return res.view.pool.ref.name, res.target_model


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]
