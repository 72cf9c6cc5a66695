"""Saturation signals flow control can use besides scheduling's metric-based detector.

Scraped metrics lag (one scrape interval); a burst released from the queue between two scrapes
is invisible to a metrics-only detector. The concurrency detector (upstream's
`concurrency-detector`, requests mode) counts the in-flight requests the director tracks per
endpoint, which change the instant a request is dispatched or completes.
"""

from __future__ import annotations

from collections.abc import Sequence

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.flowcontrol.types import SaturationCheck, SaturationDetector, saturation_check


class ConcurrencyDetector:
    """Saturated when the candidates hold `max_concurrency` in-flight requests each on average."""

    type_name = "concurrency-detector"

    def __init__(self, max_concurrency: int) -> None:
        if max_concurrency <= 0:
            raise ValueError("maxConcurrency must be positive")
        self.max_concurrency = max_concurrency

    def is_saturated(self, endpoints: list[Endpoint]) -> bool:
        if not endpoints:
            return True
        return sum(e.in_flight for e in endpoints) >= self.max_concurrency * len(endpoints)


class AnySaturated:
    """Saturated when any of the given detectors says so."""

    def __init__(self, detectors: Sequence[SaturationDetector | SaturationCheck]) -> None:
        self._checks = [saturation_check(d) for d in detectors]

    def is_saturated(self, endpoints: list[Endpoint]) -> bool:
        return any(check(endpoints) for check in self._checks)


class NeverSaturated:
    """Flow control as pure accounting: everything passes straight through."""

    def is_saturated(self, endpoints: list[Endpoint]) -> bool:
        return False
