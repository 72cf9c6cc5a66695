"""The EPP's own scheduler (any EndpointPickerConfig) driving the virtual-time fleet.

Each fleet server is an `Endpoint` whose metrics are copied from the snapshot the fleet shows
(so they are as stale as the fleet's scrape settings make them, and `updated_at` is virtual
time), and whose `in_flight` counts this scheduler's picks until they finish, as the EPP's
director counts them. Scheduling, post-pick hooks and plugin state are the production code's.

    from inference_gateway.simulator.epp_scheduler import EPPFleetScheduler
    result = run_fleet(workload, servers, EPPFleetScheduler(config_text))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inference_gateway.api.types import ObjectRef
from inference_gateway.datastore.endpoint import Endpoint, EndpointMetrics
from inference_gateway.metrics.dcgm import GPU_UTIL
from inference_gateway.metrics.dcgm import UPDATED_AT as DCGM_UPDATED_AT
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import EndpointPickerConfig, load_config
from inference_gateway.scheduling.projection import mark_scraped, prompt_tokens
from inference_gateway.scheduling.types import SchedulingError, SchedulingRequest
from inference_gateway.simulator.fleet_types import EndpointSnapshot, RequestResult, SimRequest


def snapshot_metrics(snap: EndpointSnapshot, updated_at: float | None = None) -> EndpointMetrics:
    """The EndpointMetrics the EPP would hold after scraping this simulated server."""
    return EndpointMetrics(
        waiting_queue=snap.waiting_queue,
        running_requests=snap.running_requests,
        kv_cache_usage=snap.kv_cache_usage,
        active_adapters=snap.active_adapters,
        waiting_adapters=snap.waiting_adapters,
        max_active_adapters=snap.max_active_adapters,
        block_size=snap.block_size,
        num_gpu_blocks=snap.num_gpu_blocks,
        served_models=frozenset({snap.model}),
        itl_sum_seconds=snap.itl_sum_seconds,
        itl_count=float(snap.itl_count),
        updated_at=snap.updated_at if updated_at is None else updated_at,
    )


def attach_gpu(endpoint: Endpoint, snap: EndpointSnapshot, updated_at: float) -> None:
    """The DCGM attributes the EPP's dcgm-data-source would attach (metrics/dcgm.py)."""
    endpoint.attributes[GPU_UTIL] = snap.gpu_util
    endpoint.attributes[DCGM_UPDATED_AT] = updated_at


class EPPFleetScheduler:
    def __init__(self, config_text: str | None = None, pool: str = "sim/pool") -> None:
        self.config: EndpointPickerConfig = load_config(config_text)
        self.runtime = PoolRuntime(self.config)
        self.scheduler = self.config.scheduler
        self.pool = pool
        self.endpoints: list[Endpoint] = []
        self._seen: list[float] = []
        self._index: dict[str, int] = {}
        self._picked: dict[int | str, tuple[Endpoint, int]] = {}

    def pick(self, request: SimRequest, snapshots: Sequence[EndpointSnapshot]) -> int | None:
        self._refresh(snapshots)
        model = request.model or snapshots[0].model
        req = SchedulingRequest(
            request_id=str(request.request_id),
            model=model,
            target_model=model,
            prompt=request.prompt or "",
            priority=request.priority,
            pool=self.pool,
        )
        try:
            result, state = self.scheduler.schedule(req, self.endpoints)
        except SchedulingError:
            return None
        self.scheduler.bind(state, req, result)
        body: dict[str, Any] = {}  # what body plugins (engine-priority) would write upstream
        if self.runtime.edit_body(req, result, body):
            request.engine_priority = int(body.get("priority", 0))
        chosen = result.endpoints[0]
        tokens = prompt_tokens(req)
        chosen.load.add(tokens)
        self._picked[request.request_id] = (chosen, tokens)
        return self._index[chosen.address]

    def on_finished(self, result: RequestResult) -> None:
        picked = self._picked.pop(result.request_id, None)
        if picked is not None:
            picked[0].load.remove(picked[1])
            ok = result.status == "ok" and result.first_token >= 0
            self.scheduler.observe_latency(
                str(result.request_id),
                result.ttft if ok else None,
                result.tpot if ok and result.output_tokens > 1 else None,
            )

    def _refresh(self, snapshots: Sequence[EndpointSnapshot]) -> None:
        if len(self.endpoints) != len(snapshots):
            self._build(snapshots)
        for i, snap in enumerate(snapshots):
            if snap.updated_at != self._seen[i]:
                self._seen[i] = snap.updated_at
                self.endpoints[i].metrics = snapshot_metrics(snap)
                mark_scraped(self.endpoints[i])
                attach_gpu(self.endpoints[i], snap, snap.updated_at)

    def _build(self, snapshots: Sequence[EndpointSnapshot]) -> None:
        self.endpoints = [
            Endpoint(
                s.name, ObjectRef("sim", s.name), f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", 8000, {}
            )
            for i, s in enumerate(snapshots)
        ]
        self._seen = [-1.0] * len(snapshots)
        self._index = {e.address: i for i, e in enumerate(self.endpoints)}
        self.runtime.endpoints_changed(set(self._index))
