"""Label filters for disaggregated prefill/decode, as llm-d's inference scheduler names them.

`by-label` keeps endpoints whose pod label `label` has one of `validValues` (and, with
`allowsNoLabel`, those without the label). `prefill-filter`, `decode-filter` and `encode-filter`
are fixed instances over llm-d's role label `llm-d.ai/role`:

| role label value | encode-filter | prefill-filter | decode-filter |
|---|---|---|---|
| `encode` | kept | removed | removed |
| `encode-prefill` | kept | kept | removed |
| `prefill` | removed | kept | removed |
| `decode` | removed | removed | kept |
| `both`, `prefill-decode` | removed | kept | kept |
| `encode-prefill-decode` | kept | kept | kept |
| (no label) | removed | removed | kept |
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.params import get_bool, get_str
from inference_gateway.scheduling.types import CycleState, SchedulingRequest

ROLE_LABEL = "llm-d.ai/role"
ROLE_PREFILL = "prefill"
ROLE_DECODE = "decode"
ROLE_BOTH = "both"
ROLE_PREFILL_DECODE = "prefill-decode"  # llm-d's newer spelling of "both"
ROLE_ENCODE = "encode"
ROLE_ENCODE_PREFILL = "encode-prefill"
ROLE_ALL = "encode-prefill-decode"


class ByLabelFilter:
    type_name = "by-label"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = parameters or {}
        self.name = name
        self.label = get_str(params, "label", "")
        if not self.label:
            raise ValueError("parameter 'label' is required")
        values = params.get("validValues") or []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ValueError(f"parameter 'validValues' must be a list of strings, got {values!r}")
        self.valid_values = frozenset(values)
        self.allows_no_label = get_bool(params, "allowsNoLabel", False)

    def filter(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> Sequence[Endpoint]:
        key, valid, missing_ok = self.label, self.valid_values, self.allows_no_label
        kept = [
            e for e in endpoints if (value := e.labels.get(key)) in valid or (value is None and missing_ok)
        ]
        return endpoints if len(kept) == len(endpoints) else kept


class PrefillFilter(ByLabelFilter):
    """Endpoints that may run a prefill: role prefill, both or prefill-decode."""

    type_name = "prefill-filter"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(
            name,
            {
                "label": ROLE_LABEL,
                "validValues": [ROLE_PREFILL, ROLE_ENCODE_PREFILL, ROLE_PREFILL_DECODE, ROLE_BOTH, ROLE_ALL],
            },
        )


class DecodeFilter(ByLabelFilter):
    """Endpoints that may decode: role decode, both, prefill-decode, or no role label."""

    type_name = "decode-filter"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(
            name,
            {
                "label": ROLE_LABEL,
                "validValues": [ROLE_DECODE, ROLE_BOTH, ROLE_PREFILL_DECODE, ROLE_ALL],
                "allowsNoLabel": True,
            },
        )


class EncodeFilter(ByLabelFilter):
    """Endpoints that may run a multimodal encoder: role encode, encode-prefill or all three."""

    type_name = "encode-filter"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(
            name, {"label": ROLE_LABEL, "validValues": [ROLE_ENCODE, ROLE_ENCODE_PREFILL, ROLE_ALL]}
        )
