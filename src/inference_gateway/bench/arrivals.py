"""Arrival processes: when each request of an open-loop run is sent."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Literal

ArrivalKind = Literal["poisson", "constant", "closed"]


def arrival_times(kind: ArrivalKind, qps: float, duration_s: float, seed: int) -> Iterator[float]:
    """Offsets in seconds from the start, up to `duration_s`.

    poisson: exponential gaps with mean 1/qps (independent users); constant: exactly 1/qps.
    """
    if qps <= 0:
        raise ValueError("qps must be > 0")
    if kind == "closed":
        raise ValueError("closed-loop runs have no arrival schedule; use a concurrency")
    rng = random.Random(seed)
    t = 0.0
    i = 0
    while True:
        if kind == "poisson":
            t += rng.expovariate(qps)
        else:
            i += 1
            t = (i - 1) / qps
        if t >= duration_s:
            return
        yield t
