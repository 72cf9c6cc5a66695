"""engine-priority: pass each request's priority to model servers that schedule by priority.

vLLM started with `--scheduling-policy priority` orders its waiting queue by the integer
`priority` field of the request body (lower runs first, ties by arrival) and, when KV blocks
run out, preempts the running request with the largest (priority, arrival). The gateway's
priority (InferenceObjective `priority`, or the criticality band: Critical 1, Standard 0,
Sheddable -1) runs the other way, so by default this plugin writes `-priority`.

Off unless configured: vLLM with its default `fcfs` policy rejects any non-zero `priority`
with 400, so only pools whose servers run the priority policy should list this plugin. A
priority the client put in the body is kept unless `overrideClientPriority` is true.

Parameters:
  field: body field to write (default `priority`, as vLLM and SGLang name it)
  priorities: optional map from criticality (Critical / Standard / Sheddable) to the engine
    priority, e.g. {Critical: 0, Standard: 1, Sheddable: 2}; without it, -gateway priority
  overrideClientPriority: replace a `priority` the client sent (default false)
"""

from __future__ import annotations

from typing import Any

from inference_gateway.api.types import Criticality
from inference_gateway.scheduling.params import get_bool, get_str
from inference_gateway.scheduling.types import SchedulingRequest, SchedulingResult


class EnginePriority:
    type_name = "engine-priority"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = parameters or {}
        unknown = set(params) - {"field", "priorities", "overrideClientPriority"}
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(sorted(unknown))}")
        self.name = name
        self.field = get_str(params, "field", "priority")
        if not self.field:
            raise ValueError("parameter 'field' must not be empty")
        self.override_client = get_bool(params, "overrideClientPriority", False)
        self.by_criticality = _criticality_map(params.get("priorities"))

    def engine_priority(self, request: SchedulingRequest) -> int:
        if self.by_criticality is not None:
            return self.by_criticality.get(request.criticality, 0)
        return -request.priority

    def request_body(
        self, request: SchedulingRequest, result: SchedulingResult, body: dict[str, Any]
    ) -> bool:
        value = self.engine_priority(request)
        if self.field in body and (not self.override_client or body[self.field] == value):
            return False
        body[self.field] = value
        return True


def _criticality_map(raw: Any) -> dict[Criticality, int] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ValueError(
            f"parameter 'priorities' must map Critical/Standard/Sheddable to integers, got {raw!r}"
        )
    out: dict[Criticality, int] = {}
    for label, value in raw.items():
        try:
            criticality = Criticality.parse(str(label))
        except ValueError as exc:
            raise ValueError(f"parameter 'priorities': {exc}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"parameter 'priorities': {label} must be an integer, got {value!r}")
        out[criticality] = value
    return out
