"""served-model-filter: only endpoints that can serve the request's target model (a LoRA
adapter, or a base model) stay.

An endpoint can serve a model its `GET /v1/models` lists (metrics.inventory) or its metrics
show it serving. Where some endpoints can, only those stay, so an InferenceModel splitting
traffic between a base model and an adapter loaded on some pods never sends the adapter to a
pod without it. Where none is known to (the lists are not read yet, or the adapter was loaded a
moment ago), endpoints whose list is unknown stay, else all: the servers answer, and a 404
re-reads that server's list.

Parameters:
  dynamicLoading: the servers load adapters on demand (vLLM with a LoRA resolver plugin and
    VLLM_ALLOW_RUNTIME_LORA_UPDATING); endpoints with a free adapter slot stay too, so an
    adapter can spread beyond the pods that have it (default false)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.metrics.inventory import can_serve
from inference_gateway.scheduling.params import get_bool
from inference_gateway.scheduling.types import CycleState, SchedulingRequest


class ServedModelFilter:
    type_name = "served-model-filter"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = parameters or {}
        unknown = set(params) - {"dynamicLoading"}
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(sorted(unknown))}")
        self.name = name
        self.dynamic_loading = get_bool(params, "dynamicLoading", False)

    def filter(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> Sequence[Endpoint]:
        model = request.target_model
        serving: list[Endpoint] = []
        unknown: list[Endpoint] = []
        loadable: list[Endpoint] = []
        for e in endpoints:
            verdict = can_serve(e, model)
            if verdict:
                serving.append(e)
            elif self.dynamic_loading and e.metrics.adapter_slot_free():
                loadable.append(e)
            elif verdict is None:
                unknown.append(e)
        if len(serving) == len(endpoints):
            return endpoints
        if serving or loadable:
            return serving + loadable
        return unknown or endpoints
