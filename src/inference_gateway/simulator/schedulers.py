"""Reference schedulers for the virtual-time fleet."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from inference_gateway.simulator.fleet_types import EndpointSnapshot, SimRequest


class RoundRobinScheduler:
    """What a plain Kubernetes Service does (kube-proxy round-robin)."""

    def __init__(self) -> None:
        self._next = 0

    def pick(self, request: SimRequest, endpoints: Sequence[EndpointSnapshot]) -> int | None:
        i = self._next % len(endpoints)
        self._next = i + 1
        return i


class RandomScheduler:
    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)

    def pick(self, request: SimRequest, endpoints: Sequence[EndpointSnapshot]) -> int | None:
        return self._rng.randrange(len(endpoints))


class LeastRequestsScheduler:
    """Fewest waiting+running requests in the (possibly stale) snapshot; ties rotate."""

    def __init__(self) -> None:
        self._turn = 0

    def pick(self, request: SimRequest, endpoints: Sequence[EndpointSnapshot]) -> int | None:
        n = len(endpoints)
        self._turn += 1
        order = [(self._turn + k) % n for k in range(n)]
        return min(order, key=lambda i: endpoints[i].waiting_queue + endpoints[i].running_requests)


class OraclePrefixScheduler:
    """Knows every server's KV cache (the fleet's CacheOracle lookup, which no real router
    has): the server holding the longest cached prefix of the prompt; among equals, the fewest
    waiting + running requests, then rotating. The reference hit rate for prefix-aware routers."""

    def __init__(self) -> None:
        self._lookup: Callable[[SimRequest], list[int]] | None = None
        self._turn = 0

    def bind_cache_lookup(self, lookup: Callable[[SimRequest], list[int]]) -> None:
        self._lookup = lookup

    def pick(self, request: SimRequest, endpoints: Sequence[EndpointSnapshot]) -> int | None:
        if self._lookup is None:
            raise RuntimeError("the oracle policy runs only in a fleet that binds its cache lookup")
        held = self._lookup(request)
        n = len(endpoints)
        self._turn += 1
        order = [(self._turn + k) % n for k in range(n)]
        load = [e.waiting_queue + e.running_requests for e in endpoints]
        return min(order, key=lambda i: (-held[i], load[i]))
