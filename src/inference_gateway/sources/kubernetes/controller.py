"""Kubernetes mode: keep the datastore equal to one InferencePool's slice of the cluster.

Watches (official client, one Reflector thread each): the InferencePool by name, the
InferenceModels / InferenceObjectives / InferenceModelRewrites of its namespace, the Pods
its selector picks (re-watched when the selector changes) and, for pool status, the
namespace's HTTPRoutes. Every change reaches the datastore on the event loop. The leader
(one per pool, by Lease) writes status conditions; followers keep an identical read-only
datastore and either serve or report not-ready (`followers_serve`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from inference_gateway.api.types import InferencePool, ObjectRef
from inference_gateway.datastore.store import Datastore
from inference_gateway.sources.kubernetes import status as st
from inference_gateway.sources.kubernetes.client import (
    HTTPROUTE,
    INFERENCE_GROUP,
    MODEL,
    OBJECTIVE,
    REWRITE,
    custom_lister,
    label_selector,
    load_api_client,
    pod_lister,
    pool_resource,
)
from inference_gateway.sources.kubernetes.leader import LeaderElector, LeaseConfig, default_identity
from inference_gateway.sources.kubernetes.mirror import (
    SELECTOR_POOL_NAME,
    Kind,
    Mirror,
    Obj,
    datastore_type,
    ref_of,
    selector_pool,
)
from inference_gateway.sources.kubernetes.reflector import Reflector, ReflectorTimings

log = logging.getLogger(__name__)


@dataclass
class ControllerOptions:
    pool_name: str
    # Upstream's --endpoint-selector mode: serve the pods matching these labels on these ports,
    # as an InferencePool of that name would, without reading any InferencePool.
    endpoint_selector: str | None = None
    endpoint_target_ports: tuple[int, ...] = ()
    pool_namespace: str = "default"
    pool_group: str = INFERENCE_GROUP
    kube_config: str | None = None  # path; None: in-cluster, else the default kubeconfig
    kube_context: str | None = None
    leader_election: bool = True
    lease_name: str | None = None  # default: epp-<ns>-<pool>.gateway-api-inference-extension.sigs.k8s.io
    identity: str = field(default_factory=default_identity)
    lease_duration_s: float = 15.0
    renew_deadline_s: float = 10.0
    retry_period_s: float = 2.0
    followers_serve: bool = False  # False: followers report not-ready, as upstream's HA mode
    write_status: bool = True
    watch_routes: bool = True
    timings: ReflectorTimings = field(default_factory=ReflectorTimings)
    status_debounce_s: float = 0.05
    status_resync_s: float = 60.0  # re-check status anyway (the EPP Service is not watched)
    service_check_ttl_s: float = 30.0

    @property
    def lease(self) -> LeaseConfig:
        name = (
            self.lease_name
            or f"epp-{self.pool_namespace}-{self.pool_name}.gateway-api-inference-extension.sigs.k8s.io"
        )
        return LeaseConfig(
            name,
            self.pool_namespace,
            self.identity,
            self.lease_duration_s,
            self.renew_deadline_s,
            self.retry_period_s,
        )


class KubernetesController:
    def __init__(
        self, store: Datastore, options: ControllerOptions, api: k8s.ApiClient | None = None
    ) -> None:
        self.store = store
        self.options = options
        self._own_api = api is None
        self.api = api or load_api_client(options.kube_config, options.kube_context)
        self.pool_resource = pool_resource(options.pool_group)
        if options.endpoint_selector:
            options.pool_name = options.pool_name or SELECTOR_POOL_NAME
            options.write_status = False  # no InferencePool to write to
        self.pool_ref = ObjectRef(options.pool_namespace, options.pool_name)
        self.mirror = Mirror(options.pool_namespace)
        self.elector: LeaderElector | None = None
        if options.leader_election:
            self.elector = LeaderElector(self.api, options.lease, on_started_leading=self._schedule_status)
        self._reflectors: dict[Kind, Reflector] = {}
        self._pod_selector: str | None = None
        self._synced_kinds: set[Kind] = set()
        self._synced = asyncio.Event()
        self._status_task: asyncio.Task[None] | None = None
        self._status_dirty = False
        self._service_checks: dict[str, tuple[float, str | None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._background: set[asyncio.Task[None]] = set()  # cancelled on stop
        self._retiring: set[asyncio.Task[None]] = set()  # replaced reflectors shutting down
        self.status_writes = 0

    # --- lifecycle ----------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        ns, api = self.options.pool_namespace, self.api
        if self.options.endpoint_selector:
            self._serve_selected_endpoints()
        else:
            self._start(
                Kind.POOL,
                custom_lister(
                    api, self.pool_resource, ns, field_selector=f"metadata.name={self.options.pool_name}"
                ),
            )
        self._start(Kind.MODELS, custom_lister(api, MODEL, ns))
        self._start(Kind.OBJECTIVES, custom_lister(api, OBJECTIVE, ns))
        self._start(Kind.REWRITES, custom_lister(api, REWRITE, ns))
        if self.options.watch_routes:
            self._start(Kind.ROUTES, custom_lister(api, HTTPROUTE, ns))
        if self.elector is not None:
            await self.elector.start()
        self._background.add(asyncio.create_task(self._resync_status(), name="status-resync"))

    async def stop(self) -> None:
        if self.elector is not None:
            await self.elector.stop()
        tasks = [t for t in (self._status_task, *self._background) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(r.stop() for r in self._reflectors.values()), *self._retiring)
        self._reflectors.clear()
        if self._own_api:
            self.api.close()

    async def wait_synced(self) -> None:
        """Until every watched collection has been listed once (wrap in asyncio.timeout)."""
        await self._synced.wait()

    @property
    def is_leader(self) -> bool:
        return self.elector is None or self.elector.is_leader

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def list_counts(self) -> dict[str, int]:
        """Lists (initial + relists) per watched collection, for diagnostics."""
        return {kind.value: r.lists for kind, r in self._reflectors.items()}

    def ready(self) -> bool:
        """Whether this replica should report SERVING on its health check."""
        return self.synced and (self.is_leader or self.options.followers_serve)

    def _serve_selected_endpoints(self) -> None:
        pool = selector_pool(
            self.pool_ref, self.options.endpoint_selector or "", self.options.endpoint_target_ports
        )
        self.mirror.replace(Kind.POOL, [pool])
        self._follow_pool()
        self._synced_kinds.add(Kind.POOL)

    # --- reflectors ---------------------------------------------------------
    def _start(self, kind: Kind, lister: Any) -> None:
        assert self._loop is not None
        reflector = Reflector(
            kind.value,
            lister,
            lambda items: self._on_snapshot(reflector, kind, items),
            lambda event, obj: self._on_event(reflector, kind, event, obj),
            self._loop,
            self.options.timings,
        )
        self._reflectors[kind] = reflector
        reflector.start()

    def _current(self, reflector: Reflector, kind: Kind) -> bool:
        """Drop deliveries from a reflector that has since been replaced (pod selector change)."""
        return self._reflectors.get(kind) is reflector

    def _on_snapshot(self, reflector: Reflector, kind: Kind, items: list[Obj]) -> None:
        if not self._current(reflector, kind):
            return
        self.mirror.replace(kind, items)
        if kind is Kind.POOL:
            self._follow_pool()
        if datastore_type(kind) is not None:
            self.store.replace_all(self.mirror.resource_set())
        self._synced_kinds.add(kind)
        self._check_synced()
        self._schedule_status()

    def _on_event(self, reflector: Reflector, kind: Kind, event: str, obj: Obj) -> None:
        if not self._current(reflector, kind):
            return
        parsed, was_present = self.mirror.apply(kind, event, obj)
        table = datastore_type(kind)
        if table is not None:
            if parsed is not None:
                self.store.upsert(parsed)
            elif was_present:
                self.store.delete(table, ref_of(obj))
        if kind is Kind.POOL and self._follow_pool():
            self.store.replace_all(self.mirror.resource_set())
        self._schedule_status()

    def _follow_pool(self) -> bool:
        """Watch the pods the pool selects; re-watch when its selector changes.

        Returns True when the pods were dropped (the pool is gone). On a selector change the
        old pods stay until the new watch's snapshot replaces them; the datastore already
        ignores those the new selector does not match.
        """
        pool = self.mirror.parsed[Kind.POOL].get(self.pool_ref)
        selector = (
            label_selector(pool.selector) if isinstance(pool, InferencePool) and pool.selector else None
        )
        if selector == self._pod_selector:
            return False
        self._pod_selector = selector
        old = self._reflectors.pop(Kind.PODS, None)
        if old is not None:
            task = asyncio.get_running_loop().create_task(old.stop())
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        if selector is None:
            self.mirror.clear(Kind.PODS)
            return True
        log.info("InferencePool %s selects pods %r", self.pool_ref, selector)
        self._start(Kind.PODS, pod_lister(self.api, self.options.pool_namespace, selector))
        return False

    def _check_synced(self) -> None:
        needed = {Kind.POOL, Kind.MODELS, Kind.OBJECTIVES, Kind.REWRITES}
        if self.options.watch_routes:
            needed.add(Kind.ROUTES)
        if self._pod_selector is not None:
            needed.add(Kind.PODS)
        if needed <= self._synced_kinds and not self._synced.is_set():
            self.store.synced = True
            self._synced.set()
            log.info("Kubernetes sources synced for InferencePool %s", self.pool_ref)

    # --- status (leader only) -------------------------------------------------
    def _schedule_status(self) -> None:
        if not (self.options.write_status and self.is_leader and self._loop is not None):
            return
        if self._status_task is None or self._status_task.done():
            self._status_task = self._loop.create_task(self._status_loop())
        else:
            self._status_dirty = True

    async def _resync_status(self) -> None:
        while True:
            await asyncio.sleep(self.options.status_resync_s)
            self._schedule_status()

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.options.status_debounce_s)
            self._status_dirty = False
            try:
                await self._reconcile_status()
            except ApiException as exc:
                if exc.status == 403:  # upstream's chart grants no status writes: stop trying
                    log.warning("not allowed to write status (RBAC: forbidden); status updates are off")
                    self.options.write_status = False
                    return
                log.warning("status update failed: %s %s; retrying", exc.status, exc.reason)
                self._status_dirty = True
                await asyncio.sleep(1.0)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                log.warning("status update failed: %s; retrying", exc)
                self._status_dirty = True
                await asyncio.sleep(1.0)
            if not self._status_dirty:
                return

    async def _reconcile_status(self) -> None:
        if not (self.synced and self.is_leader):
            return
        for patch in await self._desired_status():
            result = await asyncio.to_thread(self._patch_status, patch)
            self.status_writes += 1
            kind = Kind.POOL if patch.resource == self.pool_resource else Kind.MODELS
            ref = ObjectRef(patch.namespace, patch.name)
            current = self.mirror.raw[kind].get(ref)
            if current is not None and _newer(result, current):
                self.mirror.raw[kind][ref] = result  # don't re-patch before the watch event arrives

    async def _desired_status(self) -> list[st.StatusPatch]:
        patches: list[st.StatusPatch] = []
        verdicts = self.store.model_status()
        for ref, raw in self.mirror.raw[Kind.MODELS].items():
            model = self.mirror.parsed[Kind.MODELS].get(ref)
            if model is None or ref not in verdicts or model.pool != self.pool_ref:  # type: ignore[union-attr]
                continue
            patch = st.model_patch(MODEL, raw, verdicts[ref])
            if patch is not None:
                patches.append(patch)
        pool = self.mirror.raw[Kind.POOL].get(self.pool_ref)
        if pool is not None:
            routes = list(self.mirror.raw[Kind.ROUTES].values())
            parents = st.pool_parents(
                routes, self.options.pool_group, self.pool_ref.name, self.pool_ref.namespace
            )
            error = st.extension_ref_error(pool) or await self._service_error(st.epp_service_name(pool))
            patch = st.pool_patch(self.pool_resource, pool, parents, error)
            if patch is not None:
                patches.append(patch)
        return patches

    def _patch_status(self, patch: st.StatusPatch) -> Obj:
        custom: Any = k8s.CustomObjectsApi(self.api)
        res = patch.resource
        resp = custom.patch_namespaced_custom_object_status(
            res.group,
            res.version,
            patch.namespace,
            res.plural,
            patch.name,
            {"status": patch.status},
            _preload_content=False,
            _request_timeout=self.options.timings.request_timeout_s,
        )
        result: Obj = orjson.loads(resp.data)
        return result

    async def _service_error(self, name: str | None) -> str | None:
        """Does the endpointPickerRef Service exist? Cached; unknown (e.g. 403) counts as yes."""
        if not name:
            return None
        cached = self._service_checks.get(name)
        if cached is not None and time.monotonic() - cached[0] < self.options.service_check_ttl_s:
            return cached[1]
        error = await asyncio.to_thread(self._check_service, name)
        self._service_checks[name] = (time.monotonic(), error)
        return error

    def _check_service(self, name: str) -> str | None:
        core: Any = k8s.CoreV1Api(self.api)
        with contextlib.suppress(urllib3.exceptions.HTTPError, OSError):
            try:
                core.read_namespaced_service(
                    name,
                    self.options.pool_namespace,
                    _preload_content=False,
                    _request_timeout=self.options.timings.request_timeout_s,
                )
            except ApiException as exc:
                if exc.status == 404:
                    return (
                        f"Service {self.options.pool_namespace}/{name} named by endpointPickerRef not found"
                    )
        return None


def _newer(a: Obj, b: Obj) -> bool:
    """Is `a` a later version than `b`? (resourceVersions are etcd revisions in practice)."""
    rv_a, rv_b = (str((o.get("metadata") or {}).get("resourceVersion", "")) for o in (a, b))
    return rv_a.isdigit() and rv_b.isdigit() and int(rv_a) > int(rv_b)


async def run_controller(
    store: Datastore,
    pool_name: str,
    namespace: str = "default",
    kube_config: str | None = None,
    leader_election: bool = True,
    api: k8s.ApiClient | None = None,
    **options: Any,
) -> KubernetesController:
    """Start a controller for `namespace/pool_name` and return it (call `await c.stop()`)."""
    opts = ControllerOptions(
        pool_name=pool_name,
        pool_namespace=namespace,
        kube_config=kube_config,
        leader_election=leader_election,
        **options,
    )
    controller = KubernetesController(store, opts, api)
    await controller.start()
    return controller
