"""Shared arithmetic of load scorers and filters (upstream's min-max scoring and 1/N bands)."""

from __future__ import annotations

from collections.abc import Sequence

from inference_gateway.datastore.endpoint import Endpoint


def inverse_min_max(values: Sequence[float]) -> list[float]:
    """Lower is better: the minimum scores 1.0, the maximum 0.0; all equal -> all 1.0."""
    lo, hi = min(values), max(values)
    if hi == lo:
        return [1.0] * len(values)
    span = float(hi - lo)
    return [(hi - v) / span for v in values]


def lowest_band(endpoints: Sequence[Endpoint], values: Sequence[float], *, whole: bool) -> list[Endpoint]:
    """Endpoints whose value is within the lowest 1/N of the [min, max] range (N = len).

    `whole` rounds the band width down to an integer, as upstream does for queue lengths.
    """
    lo, hi = min(values), max(values)
    width = (hi - lo) // len(values) if whole else (hi - lo) / len(values)
    limit = lo + width
    return [e for e, v in zip(endpoints, values, strict=True) if v <= limit]
