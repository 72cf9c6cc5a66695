"""lora-affinity-scorer: prefer endpoints that already serve the requested adapter.

As upstream v1.5: 1.0 adapter active; 0.8 room to load another adapter (or the engine has not
reported its adapter slots yet: a fresh vLLM publishes them only after its first request); 0.6
adapter waiting to load; else 0.

Parameters (both off by default, so a config that names the scorer scores exactly as upstream):
  adaptersOnly: a request for a base model scores 0 on every endpoint, which adds exactly
    nothing to any total (a constant 1.0 would, in floating point, move near-ties). Upstream
    scores any target model by adapter slots, so base-model traffic drifts to pods with a free
    adapter slot whatever their load. A model is an adapter when a candidate's model list
    names it as one or its metrics show it running or waiting (default false)
  drainBlocked: on a full endpoint where an adapter waits without running, the adapters that
    run there score 0.6, not 1.0 (default false). vLLM admits the waiting adapter only once
    one of the batch's adapters has no request left running; while those keep getting all
    their traffic there (they score 1.0) that never happens, and the waiting adapter's
    requests starve for as long as the load lasts. At 0.6 their traffic prefers another
    endpoint that runs them (1.0) or has a free slot (0.8), so the batch drains; with no such
    endpoint it still comes here (0.6 beats a full endpoint's 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.metrics.inventory import served_models
from inference_gateway.scheduling.params import get_bool, reject_unknown
from inference_gateway.scheduling.types import CycleState, SchedulingRequest

ACTIVE = 1.0
HAS_SLOT = 0.8
WAITING = 0.6
DRAINING = 0.6  # active, on an endpoint that blocks another adapter (drainBlocked)


class LoraAffinityScorer:
    type_name = "lora-affinity-scorer"
    affinity = True  # where the request's state is, not load (interfaces.AffinityScorer)

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = parameters or {}
        reject_unknown(params, frozenset({"adaptersOnly", "drainBlocked"}))
        self.name = name
        self.adapters_only = get_bool(params, "adaptersOnly", False)
        self.drain_blocked = get_bool(params, "drainBlocked", False)

    def score(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> list[float]:
        model = request.target_model
        if self.adapters_only and not is_adapter(model, endpoints):
            return [0.0] * len(endpoints)
        return [adapter_score(e, model, self.drain_blocked) for e in endpoints]


def is_adapter(model: str, endpoints: Sequence[Endpoint]) -> bool:
    """Some endpoint runs `model` as an adapter or lists it as one. The first endpoint that
    names it a base model settles it (its model list, or the engine's metrics, which vLLM
    labels with the base model's name), so a base-model request looks at one pod, not all."""
    for e in endpoints:
        m = e.metrics
        if model in m.active_adapters or model in m.waiting_adapters:
            return True
        if model in m.served_models:
            return False
        served = served_models(e)
        if served is not None:
            if model in served.adapters:
                return True
            if model in served.base:
                return False
    return False


def blocks_an_adapter(endpoint: Endpoint) -> bool:
    """Every adapter slot of the batch is taken and some adapter waits without running."""
    m = endpoint.metrics
    if m.max_active_adapters is None or len(m.active_adapters) < m.max_active_adapters:
        return False
    return not m.waiting_adapters <= m.active_adapters


def adapter_score(endpoint: Endpoint, adapter: str, drain_blocked: bool = False) -> float:
    m = endpoint.metrics
    if adapter in m.active_adapters:
        return DRAINING if drain_blocked and blocks_an_adapter(endpoint) else ACTIVE
    if m.adapter_slot_free():
        return HAS_SLOT
    if adapter in m.waiting_adapters:
        return WAITING
    return 0.0
