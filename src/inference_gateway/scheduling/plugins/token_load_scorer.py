"""token-load-scorer (GIE v1.5 / llm-d): fewer estimated tokens in flight score higher.

score = 1 - min(1, tokens / queueThresholdTokens); an endpoint with nothing in flight scores 1.
Upstream's inflight-load-producer estimates each request as its input tokens plus 1.5x that
for the output (SimpleTokenEstimator); here the director's ledger holds each in-flight
request's prompt tokens (`Endpoint.in_flight_tokens`, text at 4 characters a token plus media),
so the load is that sum times the same 2.5. `queueThresholdTokens` (default 4194304 = 128
requests of 32K tokens; <= 0 means the default, as upstream).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.params import get_int, reject_unknown
from inference_gateway.scheduling.types import CycleState, SchedulingRequest

DEFAULT_THRESHOLD_TOKENS = 4194304
# Upstream's estimate of a request: input + OutputRatio (1.5) x input.
INPUT_AND_OUTPUT = 2.5


class TokenLoadScorer:
    type_name = "token-load-scorer"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = parameters or {}
        reject_unknown(params, frozenset({"queueThresholdTokens"}))
        self.name = name
        threshold = get_int(params, "queueThresholdTokens", DEFAULT_THRESHOLD_TOKENS)
        self.threshold_tokens = float(threshold if threshold > 0 else DEFAULT_THRESHOLD_TOKENS)

    def score(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> list[float]:
        limit = self.threshold_tokens
        return [1.0 - min(limit, e.in_flight_tokens * INPUT_AND_OUTPUT) / limit for e in endpoints]
