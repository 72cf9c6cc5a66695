"""served-model-filter: only endpoints that can serve the request's target model (a LoRA
adapter, or a base model) stay.

An endpoint can serve a model its `GET /v1/models` lists (metrics.inventory) or its metrics
show it serving. Where some endpoint's list names the model, only the endpoints that can serve
it stay, so an InferenceModel splitting traffic between a base model and an adapter loaded on
some pods never sends the adapter to a pod without it (a pod whose list is not read yet, just
added, waits for its list). Otherwise only endpoints whose list is known and lacks the model
go: metrics alone (an adapter running somewhere) do not rule out pods whose list is unknown, or
every request for an adapter would stay on the pods that ran it first, however long their
queues, wherever the lists cannot be read. Where nothing is left, all stay: the servers
answer, and a 404 re-reads that server's list.

Parameters:
  dynamicLoading: the servers load adapters on demand (vLLM with a LoRA resolver plugin and
    VLLM_ALLOW_RUNTIME_LORA_UPDATING); endpoints with a free adapter slot stay too, so an
    adapter can spread beyond the pods that have it (default false)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.metrics.inventory import can_serve, served_models
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
        keep: list[Endpoint] = []  # can serve it (or load it)
        unknown: list[Endpoint] = []
        listed = False  # some endpoint's model list names it: the inventory is working
        for e in endpoints:
            verdict = can_serve(e, model)
            if verdict:
                keep.append(e)
                if not listed:
                    served = served_models(e)
                    listed = served is not None and served.serves(model)
            elif self.dynamic_loading and e.metrics.adapter_slot_free():
                keep.append(e)
            elif verdict is None:
                unknown.append(e)
        if len(keep) == len(endpoints):
            return endpoints
        if not listed and unknown:
            kept = {id(e) for e in keep + unknown}
            return [e for e in endpoints if id(e) in kept]
        return keep or endpoints
