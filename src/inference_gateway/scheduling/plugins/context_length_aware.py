"""context-length-aware (llm-d): send a request to pods declared for its context length.

Each pod may carry the label `label` (default `llm-d.ai/context-length-range`) with a
`min-max` token range. The request's length is the token-producer's count when one is
configured, else estimated as llm-d does: a quarter of the prompt's UTF-8 bytes
(completions' `prompt`; chat messages' string contents, structured parts count nothing).
Scores, as llm-d's calculateRangeScore:

- in range: 0.3 + 0.7 x (0.7 / (1 + width/10000) + 0.3 x headroom/width), 1.0 for a
  zero-width range: tighter ranges and more headroom rank higher, always above 0.3;
- out of range: 0.3 / (1 + distance/1000), so the nearest range wins among misses;
- no label: 0.5; an unparsable label: 0.0.

With `enableFiltering: true` it is also a filter: pods whose range does not hold the length
are removed (unlabelled pods stay, unparsable ones go).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.params import get_bool, get_str, reject_unknown
from inference_gateway.scheduling.types import CycleState, SchedulingRequest

log = logging.getLogger(__name__)

DEFAULT_LABEL = "llm-d.ai/context-length-range"
NO_LABEL_SCORE = 0.5
MAX_FALLBACK_SCORE = 0.3
TOKENS_PER_BYTE = 0.25


def parse_range(text: str) -> tuple[int, int]:
    bounds = text.split("-")
    if len(bounds) != 2:
        raise ValueError(f"invalid range format: {text!r} (expected 'min-max')")
    low, high = int(bounds[0].strip()), int(bounds[1].strip())
    if low > high:
        raise ValueError(f"min ({low}) cannot be greater than max ({high})")
    return low, high


def range_score(length: int, low: int, high: int) -> float:
    if low <= length <= high:
        width = high - low
        if width == 0:
            return 1.0
        width_score = 1.0 / (1.0 + width / 10000.0)
        position_score = (high - length) / width
        raw = 0.7 * width_score + 0.3 * position_score
        return MAX_FALLBACK_SCORE + raw * (1.0 - MAX_FALLBACK_SCORE)
    distance = length - high if length > high else low - length
    return MAX_FALLBACK_SCORE / (1.0 + distance / 1000.0)


def estimated_tokens(request: SchedulingRequest) -> int:
    if request.tokens is not None and request.tokens.token_ids:
        return len(request.tokens.token_ids)  # a token-producer's exact count
    if request.messages is not None:
        size = sum(
            len(m["content"].encode())
            for m in request.messages
            if isinstance(m, dict) and isinstance(m.get("content"), str)
        )
    else:
        size = len(request.prompt.encode())
    return int(size * TOKENS_PER_BYTE)


class ContextLengthAware:
    type_name = "context-length-aware"

    def __init__(self, name: str = type_name, parameters: dict[str, Any] | None = None) -> None:
        params = parameters or {}
        reject_unknown(params, frozenset({"label", "enableFiltering"}))
        self.name = name
        self.label = get_str(params, "label", DEFAULT_LABEL)
        if not self.label:
            raise ValueError("parameter 'label' must be specified")
        self.enable_filtering = get_bool(params, "enableFiltering", False)

    def _range(self, endpoint: Endpoint) -> tuple[int, int] | None:
        """The endpoint's range; None without the label; raises ValueError when unparsable."""
        text = endpoint.labels.get(self.label)
        return None if text is None else parse_range(text)

    def filter(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> Sequence[Endpoint]:
        if not self.enable_filtering:
            return endpoints
        length = estimated_tokens(request)
        kept: list[Endpoint] = []
        for endpoint in endpoints:
            try:
                bounds = self._range(endpoint)
            except ValueError as exc:
                log.warning("%s: endpoint %s: %s", self.name, endpoint.name, exc)
                continue
            if bounds is None or bounds[0] <= length <= bounds[1]:
                kept.append(endpoint)
        return kept

    def score(
        self, state: CycleState, request: SchedulingRequest, endpoints: Sequence[Endpoint]
    ) -> list[float]:
        length = estimated_tokens(request)
        scores: list[float] = []
        for endpoint in endpoints:
            try:
                bounds = self._range(endpoint)
            except ValueError:
                scores.append(0.0)
                continue
            scores.append(NO_LABEL_SCORE if bounds is None else range_score(length, *bounds))
        return scores
