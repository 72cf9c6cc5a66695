"""The EPP's pool runtimes: one per InferencePool that has its own EndpointPickerConfig, and a
default one (built from the EPP-wide config) for every other pool.

Pools are named by "namespace/name", or by bare name for any namespace. Each runtime keeps
its own plugin state (prefix index, session affinity), saturation detector and flow-control
queues, so configured pools never see each other's endpoints or history.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.datastore.store import Datastore
from inference_gateway.metrics.scraper import ScrapeTarget
from inference_gateway.runtime.pool import PoolRuntime


class PoolRuntimes:
    def __init__(self, default: PoolRuntime, per_pool: Mapping[str, PoolRuntime] | None = None) -> None:
        self.default = default
        self.per_pool = dict(per_pool or {})
        self._resolved: dict[str, PoolRuntime] = {}
        self._by_address: dict[str, PoolRuntime] = {}

    def for_pool(self, pool: str) -> PoolRuntime:
        """`pool` is "namespace/name" (SchedulingRequest.pool)."""
        found = self._resolved.get(pool)
        if found is None:
            name = pool.rpartition("/")[2]
            found = self.per_pool.get(pool) or self.per_pool.get(name) or self.default
            self._resolved[pool] = found
        return found

    def __iter__(self) -> Iterator[PoolRuntime]:
        """Each runtime once, the default first."""
        yield self.default
        yield from (r for r in self.per_pool.values() if r is not self.default)

    def for_endpoint(self, endpoint: Endpoint) -> PoolRuntime:
        return self._by_address.get(endpoint.address, self.default)

    def scrape_target(self, endpoint: Endpoint) -> ScrapeTarget:
        return self.for_endpoint(endpoint).scrape_target()

    def plugins(self) -> dict[str, object]:
        """Every runtime's plugins by a name unique across runtimes: the default runtime's by
        their own name, a pool's as "<pool>/<name>" (prefix-sync and metrics labels use it)."""
        found: dict[str, object] = dict(self.default.config.plugins)
        for pool, runtime in self.per_pool.items():
            if runtime is not self.default:
                found.update({f"{pool}/{name}": p for name, p in runtime.config.plugins.items()})
        return found

    def datastore_changed(self, store: Datastore) -> None:
        """Re-learn which pool each endpoint belongs to; plugins drop state for vanished ones."""
        by_address: dict[str, PoolRuntime] = {}
        for view in store.pools():
            runtime = self.for_pool(str(view.pool.ref))
            for endpoint in view.endpoints:
                by_address.setdefault(endpoint.address, runtime)
        self._by_address = by_address
        addresses = {e.address for e in store.endpoints()}
        for runtime in self:
            runtime.endpoints_changed(addresses)

    async def close(self) -> None:
        for runtime in self:
            await runtime.close()
