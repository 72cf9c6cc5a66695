"""The datastore: pools, models, pods and the endpoints derived from them.

All mutation happens on the event loop (sources and the scraper run there), so no locks are
needed; readers on the hot path get immutable tuples and dict lookups, O(1) per request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from inference_gateway.api.manifests import ResourceSet
from inference_gateway.api.types import (
    MATCH_ANY_MODEL,
    InferenceModel,
    InferenceModelRewrite,
    InferenceObjective,
    InferencePool,
    ObjectRef,
    Pod,
)
from inference_gateway.datastore.endpoint import Endpoint

log = logging.getLogger(__name__)


@dataclass
class PoolView:
    """Everything the request path needs about one pool, rebuilt on every change."""

    pool: InferencePool
    endpoints: tuple[Endpoint, ...] = ()
    models: dict[str, InferenceModel] = field(default_factory=dict)
    rejected_models: dict[ObjectRef, str] = field(default_factory=dict)
    objectives: dict[str, InferenceObjective] = field(default_factory=dict)
    rewrites: dict[str, InferenceModelRewrite] = field(default_factory=dict)

    def ready_endpoints(self) -> tuple[Endpoint, ...]:
        return tuple(e for e in self.endpoints if e.ready)


class Datastore:
    def __init__(self) -> None:
        self._pools: dict[ObjectRef, InferencePool] = {}
        self._models: dict[ObjectRef, InferenceModel] = {}
        self._objectives: dict[ObjectRef, InferenceObjective] = {}
        self._rewrites: dict[ObjectRef, InferenceModelRewrite] = {}
        self._pods: dict[ObjectRef, Pod] = {}
        self._endpoints: dict[str, Endpoint] = {}
        self._views: dict[ObjectRef, PoolView] = {}
        self._listeners: list[Callable[[], None]] = []
        self.synced = False

    # --- reads (hot path) -------------------------------------------------
    def pools(self) -> list[PoolView]:
        return list(self._views.values())

    def pool(self, ref: ObjectRef) -> PoolView | None:
        return self._views.get(ref)

    def endpoints(self) -> list[Endpoint]:
        return list(self._endpoints.values())

    def endpoint(self, address: str) -> Endpoint | None:
        return self._endpoints.get(address)

    def models(self) -> list[InferenceModel]:
        return list(self._models.values())

    def model_status(self) -> dict[ObjectRef, str]:
        """Per InferenceModel: 'Accepted', 'ModelNameInUse' or 'Pending' (pool unknown)."""
        status: dict[ObjectRef, str] = {}
        for ref, model in self._models.items():
            view = self._views.get(model.pool)
            if view is None:
                status[ref] = "Pending"
            elif ref in view.rejected_models:
                status[ref] = "ModelNameInUse"
            else:
                status[ref] = "Accepted"
        return status

    # --- writes -----------------------------------------------------------
    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def replace_all(self, resources: ResourceSet) -> None:
        """Make the store hold exactly these resources (file source reloads)."""
        self._pools = {p.ref: p for p in resources.pools}
        self._models = {m.ref: m for m in resources.models}
        self._objectives = {o.ref: o for o in resources.objectives}
        self._rewrites = {r.ref: r for r in resources.rewrites}
        self._pods = {p.ref: p for p in resources.pods}
        self._rebuild()

    def upsert(
        self, obj: InferencePool | InferenceModel | InferenceObjective | InferenceModelRewrite | Pod
    ) -> None:
        self._table_for(obj)[obj.ref] = obj
        self._rebuild()

    def delete(self, kind: type, ref: ObjectRef) -> None:
        table = self._table_for_type(kind)
        if table.pop(ref, None) is not None:
            self._rebuild()

    def _table_for(self, obj: object) -> dict:
        return self._table_for_type(type(obj))

    def _table_for_type(self, kind: type) -> dict:
        tables: dict[type, dict] = {
            InferencePool: self._pools,
            InferenceModel: self._models,
            InferenceObjective: self._objectives,
            InferenceModelRewrite: self._rewrites,
            Pod: self._pods,
        }
        return tables[kind]

    def _rebuild(self) -> None:
        endpoints: dict[str, Endpoint] = {}
        views: dict[ObjectRef, PoolView] = {}
        for ref, pool in self._pools.items():
            view = PoolView(pool, self._pool_endpoints(pool, endpoints))
            self._attach_models(view)
            views[ref] = view
        self._endpoints = endpoints
        self._views = views
        for listener in self._listeners:
            listener()

    def _pool_endpoints(self, pool: InferencePool, out: dict[str, Endpoint]) -> tuple[Endpoint, ...]:
        result: list[Endpoint] = []
        pods = sorted(
            (p for p in self._pods.values() if p.ref.namespace == pool.ref.namespace),
            key=lambda p: p.ref.name,
        )
        for pod in pods:
            if not pod.ip or not pool.selects(pod.labels):
                continue
            for rank, port in enumerate(pool.target_ports):
                endpoint = self._reuse_endpoint(pod, rank, port)
                out[endpoint.address] = endpoint
                result.append(endpoint)
        return tuple(result)

    def _reuse_endpoint(self, pod: Pod, rank: int, port: int) -> Endpoint:
        """Keep the Endpoint object (and its metrics) when a pod is re-applied unchanged."""
        address = f"{pod.ip}:{port}"
        existing = self._endpoints.get(address)
        name = f"{pod.ref.name}-rank-{rank}"
        if existing is not None and existing.pod == pod.ref and existing.port == port:
            existing.labels = dict(pod.labels)
            existing.ready = pod.ready
            existing.name = name
            return existing
        return Endpoint(name, pod.ref, pod.ip, port, dict(pod.labels), rank, ready=pod.ready)

    def _attach_models(self, view: PoolView) -> None:
        ref = view.pool.ref
        candidates = sorted(
            (m for m in self._models.values() if m.pool == ref),
            key=lambda m: (m.created_at, m.ref.name),
        )
        for model in candidates:
            if model.model_name in view.models:
                view.rejected_models[model.ref] = "ModelNameInUse"
                log.warning(
                    "InferenceModel %s: modelName %r already served by %s",
                    model.ref,
                    model.model_name,
                    view.models[model.model_name].ref,
                )
            else:
                view.models[model.model_name] = model
        for obj in sorted(self._objectives.values(), key=lambda o: (o.created_at, o.ref.name)):
            if obj.pool == ref:
                view.objectives.setdefault(obj.ref.name, obj)
        for rw in sorted(self._rewrites.values(), key=lambda r: (r.created_at, r.ref.name)):
            if rw.pool != ref:
                continue
            for rule in rw.rules:
                for name in rule.match_models or (MATCH_ANY_MODEL,):
                    view.rewrites.setdefault(name, rw)
