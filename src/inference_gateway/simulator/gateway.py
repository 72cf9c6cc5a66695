"""The EPP's own Director and PoolRuntime behind the virtual-time fleet.

The fleet's servers are the Pods of one InferencePool in a Datastore. Each scrape the fleet
shows lands on their Endpoints as the EPP's scraper lands a page (metrics replaced, the
in-flight ledger marked, DCGM attributes attached), stamped with the scrape's virtual time;
the director and the pool runtime's saturation detector are given the virtual clock. (DCGM
attributes carry the wall clock, which their reader, gpu-utilization-scorer, compares with;
the fleet models scrape staleness itself.) Each server's model list (GET /v1/models) lands as
the EPP's model inventory lands it, on the inventory's schedule (simulator/model_list.py).
Every request then goes through `Director.route`,
as ext_proc calls it: model resolution, the pool's one shedding point, scheduling, binding,
the in-flight ledger, body plugins, P/D headers and gateway preemption. The request's end
goes through the director's response hooks at virtual time, so latency-learning plugins see
the simulated TTFT and TPOT.

With `holding=True` and a config whose `featureGates` list `flowControl`, flow control runs as
in the EPP: each decision is a task on a VirtualLoop (an asyncio loop on the virtual clock),
a request the flow controller queues is answered HELD, and the fleet hands the gateway virtual
time after each event (`advance`: new scrapes land, completions free capacity, the dispatcher's
timers fire) until its decision finishes and `dispatch` places it (or rejects it: 429/503).
Otherwise (the P/D fleet and replica sets do not hold) the runtime is built without flow
control, Sheddable requests are shed while the pool is saturated, and the decision coroutine
runs to its end without an event loop (`run_now`).

    result = run_fleet(workload, servers, VirtualGateway(config_text))
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

import orjson
import yaml

from inference_gateway.api.manifests import ResourceSet
from inference_gateway.api.types import EndpointPickerRef, InferenceObjective, InferencePool, ObjectRef, Pod
from inference_gateway.datastore.endpoint import Endpoint, EndpointMetrics
from inference_gateway.datastore.store import Datastore
from inference_gateway.kvevents.wire import decode_batch
from inference_gateway.metrics.dcgm import GPU_UTIL
from inference_gateway.metrics.dcgm import UPDATED_AT as DCGM_UPDATED_AT
from inference_gateway.requestcontrol.director import (
    Director,
    RequestContext,
    ResponseSummary,
    RoutingDecision,
)
from inference_gateway.requestcontrol.errors import GatewayError
from inference_gateway.requestcontrol.resolve import OBJECTIVE_HEADER
from inference_gateway.requestcontrol.usage import Usage
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import DEFAULT_CONFIG, EndpointPickerConfig, load_config
from inference_gateway.scheduling.plugins.by_role_filter import ROLE_LABEL
from inference_gateway.scheduling.plugins.models_data_source import declared_inventory_config
from inference_gateway.scheduling.plugins.pd_profile_handler import ENCODER_HEADER, PREFILL_HEADER
from inference_gateway.scheduling.plugins.precise_prefix_cache_scorer import PrecisePrefixCacheScorer
from inference_gateway.scheduling.projection import mark_scraped
from inference_gateway.simulator.fleet_types import HELD, EndpointSnapshot, RequestResult, SimRequest
from inference_gateway.simulator.model_list import VirtualInventory
from inference_gateway.simulator.pd_fleet import PDPick
from inference_gateway.simulator.virtual_loop import VirtualLoop

T = TypeVar("T")
# The HTTP status a server's error result reaches Envoy (and the director) with.
_ERROR_STATUS = {"preempted": 503, "not-found": 404}
NAMESPACE = "sim"
POOL = ObjectRef(NAMESPACE, "pool")
PORT = 8000


def snapshot_metrics(snap: EndpointSnapshot, updated_at: float) -> EndpointMetrics:
    """The EndpointMetrics the EPP's scraper would hold after scraping this simulated server."""
    return EndpointMetrics(
        waiting_queue=snap.waiting_queue,
        running_requests=snap.running_requests,
        kv_cache_usage=snap.kv_cache_usage,
        active_adapters=snap.active_adapters,
        waiting_adapters=snap.waiting_adapters,
        max_active_adapters=snap.max_active_adapters,
        block_size=snap.block_size,
        num_gpu_blocks=snap.num_gpu_blocks,
        served_models=frozenset({snap.model}),
        itl_sum_seconds=snap.itl_sum_seconds,
        itl_count=float(snap.itl_count),
        itl_read_at=updated_at,
        updated_at=updated_at,
    )


def seeded_config(config_text: str | None, seed: int) -> str:
    """The config (None: the built-in default) with `seed` given to every picker that has none,
    and a seeded max-score-picker in each profile without a picker (the loader would add an
    unseeded one), so that runs repeat exactly."""
    doc = yaml.safe_load(config_text if config_text is not None else DEFAULT_CONFIG)
    plugins = doc.setdefault("plugins", []) or []
    pickers: set[str] = set()
    for plugin in plugins:
        if isinstance(plugin, dict) and str(plugin.get("type", "")).endswith("-picker"):
            plugin["parameters"] = {"seed": seed, **(plugin.get("parameters") or {})}
            pickers.add(str(plugin.get("name") or plugin["type"]))
    for profile in doc.get("schedulingProfiles") or []:
        refs = profile.setdefault("plugins", []) or []
        if not any(isinstance(r, dict) and r.get("pluginRef") in pickers for r in refs):
            if "max-score-picker" not in pickers:
                plugins.append({"type": "max-score-picker", "parameters": {"seed": seed}})
                pickers.add("max-score-picker")
            refs.append({"pluginRef": "max-score-picker"})
            profile["plugins"] = refs
    doc["plugins"] = plugins
    return yaml.safe_dump(doc, sort_keys=False)


def pod_ip(index: int) -> str:
    return f"10.{index // 65536}.{index // 256 % 256}.{index % 256}"


class VirtualGateway:
    """A fleet scheduler (`pick`, `pick_pd`, `on_finished`, `bind_abort`) that is the EPP.

    `roles[i]` labels server i with `llm-d.ai/role` (P/D configs filter on it). `holding`: run
    the config's flow control (see the module docstring); the fleet must then drive `advance`.
    """

    def __init__(
        self,
        config_text: str | None = None,
        *,
        roles: Sequence[str | None] = (),
        runtime: PoolRuntime | None = None,
        holding: bool = False,
    ) -> None:
        self.now = 0.0  # virtual time: the latest arrival or completion seen
        config = load_config(config_text) if runtime is None else runtime.config
        self._loop = VirtualLoop(self.clock) if holding and config.flow_control_enabled else None
        flow = self._loop is not None
        self.runtime = runtime or PoolRuntime(config, flow_control=flow, clock=self.clock)
        self.roles = tuple(roles)
        self.store = Datastore()
        precise = [p for p in self.config.plugins.values() if isinstance(p, PrecisePrefixCacheScorer)]
        self._kv_indexes = [p.index for p in precise]
        for plugin in precise:  # blocks just routed expire in virtual time
            plugin.clock = self.clock
        self.director = Director(self.store, self.runtime, clock=self.clock)
        declared = declared_inventory_config(self.config.plugins.values(), self.config.metrics_scheme)
        self.inventory = VirtualInventory(declared, self.clock)
        self.director.observers.append(self.inventory)  # a server's 404 re-reads its model list
        self._index: dict[str, int] = {}  # endpoint address -> fleet server index
        self._endpoints: list[Endpoint] = []
        self._seen: list[float] = []
        self._objectives: dict[int, InferenceObjective] = {}
        self._in_flight: dict[int | str, RequestContext] = {}
        self._abort: Callable[[int | str], bool] | None = None
        self._dispatch: Callable[[SimRequest, int | None], None] | None = None
        self._held: dict[int | str, tuple[SimRequest, RequestContext, asyncio.Task[RoutingDecision]]] = {}
        self._decided: list[int | str] = []  # held requests whose decision task finished, in order
        self.shed = 0  # requests the gateway answered with an error (shed, no endpoint)
        self.preempted = 0
        self.decisions = 0
        self.decision_seconds = 0.0

    def clock(self) -> float:
        return self.now

    @property
    def config(self) -> EndpointPickerConfig:
        return self.runtime.config

    @property
    def endpoints(self) -> list[Endpoint]:
        """The Endpoints in fleet-server order."""
        return self._endpoints

    # --- the fleet's scheduler protocol -------------------------------------------
    def pick(self, request: SimRequest, snapshots: Sequence[EndpointSnapshot]) -> int | None:
        if self._loop is not None:
            return self._pick_on_loop(self._loop, request, snapshots)
        routed = self._route(request, snapshots)
        return None if routed is None else self._index[routed[0].address]

    # --- flow control (Holding) -------------------------------------------------------
    @property
    def holding(self) -> int:
        """Requests whose decision has not finished (queued by flow control)."""
        return len(self._held)

    def bind_dispatch(self, dispatch: Callable[[SimRequest, int | None], None]) -> None:
        self._dispatch = dispatch

    def advance(self, now: float, snapshots: Sequence[EndpointSnapshot]) -> float | None:
        """Virtual time moved on to `now`: land new scrapes, let the flow controller run, hand
        each finished decision to the fleet. Returns when the loop's next timer is due."""
        if self._loop is None:
            return None
        self.now = max(self.now, now)
        if self.sync(snapshots) and self.runtime.flow is not None:
            self.runtime.flow.notify()  # the saturation detector sees new metrics
        self._loop.run_due()
        for rid in self._take_decided():
            request = self._held[rid][0]
            index = self._conclude(rid)
            if self._dispatch is not None:
                self._dispatch(request, index)
        if not self._held and self.runtime.flow is not None:
            # Nothing queued any more (the last ones may have timed out): let the dispatcher
            # see it and end now, not on a recheck timer the fleet will no longer fire.
            self.runtime.flow.notify()
            self._loop.run_due()
        return self._loop.next_timer()

    def _pick_on_loop(
        self, loop: VirtualLoop, request: SimRequest, snapshots: Sequence[EndpointSnapshot]
    ) -> int | None:
        started = time.perf_counter()
        self.now = max(self.now, request.arrival)
        self.sync(snapshots)
        ctx, step = self._decide(request, snapshots)
        task = loop.create_task(step)
        rid = request.request_id
        self._held[rid] = (request, ctx, task)

        def decided(_task: asyncio.Task[RoutingDecision]) -> None:
            self._decided.append(rid)

        task.add_done_callback(decided)
        loop.run_due()
        answer: int | None = HELD
        for rid in self._take_decided():
            if rid == request.request_id:
                answer = self._conclude(rid)
            elif self._dispatch is not None:  # released by this pass: they go first
                held = self._held[rid][0]
                self._dispatch(held, self._conclude(rid))
        self.decision_seconds += time.perf_counter() - started
        self.decisions += 1
        return answer

    def _take_decided(self) -> list[int | str]:
        decided, self._decided = self._decided, []
        return decided

    def _conclude(self, request_id: int | str) -> int | None:
        """The finished decision of a request: its server index, or None (shed, rejected)."""
        request, ctx, task = self._held.pop(request_id)
        try:
            decision = task.result()
        except GatewayError:
            self.shed += 1
            return None
        endpoint, _ = self._routed(request, ctx, decision)
        return self._index[endpoint.address]

    def pick_pd(self, request: SimRequest, snapshots: Sequence[EndpointSnapshot]) -> PDPick | None:
        routed = self._route(request, snapshots)
        if routed is None:
            return None
        decode, decision = routed
        prefill = decision.headers.get(PREFILL_HEADER)
        encoders = decision.headers.get(ENCODER_HEADER, "")
        return PDPick(
            self._index[decode.address],
            None if prefill is None else self._index[prefill],
            tuple(self._index[a] for a in encoders.split(",") if a),
        )

    def bind_abort(self, abort: Callable[[int | str], bool]) -> None:
        self._abort = abort

    def on_finished(self, result: RequestResult) -> None:
        """The response summarised once it ended, as Envoy's access log reports it (the same
        Director entry point): the first token is the first body byte, usage the last chunk's."""
        ctx = self._in_flight.pop(result.request_id, None)
        if ctx is None or ctx.picked is None:
            return
        self.now = max(self.now, result.finish)
        duration = max(0.0, result.finish - ctx.started)
        if result.status != "ok" or result.first_token < 0:
            status = _ERROR_STATUS.get(result.status, 500)
            self.director.on_response(ctx, ResponseSummary(status, ctx.picked.address, duration))
            return
        usage = Usage(result.prompt_tokens, result.output_tokens, result.prompt_tokens + result.output_tokens)
        first_byte = result.first_token - ctx.started
        summary = ResponseSummary(200, ctx.picked.address, duration, first_byte, chunks=2, usage=usage)
        self.director.on_response(ctx, summary)

    def on_kv_events(self, server: int, payload: bytes) -> None:
        """A server's KV-event batch, decoded from vLLM's wire format as the subscriber does."""
        if not self._kv_indexes or server >= len(self._endpoints):
            return
        batch = decode_batch(payload)
        address = self._endpoints[server].address
        for index in self._kv_indexes:
            index.apply(address, batch)

    # --- one request through the director ------------------------------------------
    def _route(
        self, request: SimRequest, snapshots: Sequence[EndpointSnapshot]
    ) -> tuple[Endpoint, RoutingDecision] | None:
        started = time.perf_counter()
        self.now = max(self.now, request.arrival)
        self.sync(snapshots)
        ctx, step = self._decide(request, snapshots)
        try:
            decision = run_now(step)
        except GatewayError:
            self.shed += 1
            return None
        finally:
            self.decision_seconds += time.perf_counter() - started
            self.decisions += 1
        return self._routed(request, ctx, decision)

    def _decide(
        self, request: SimRequest, snapshots: Sequence[EndpointSnapshot]
    ) -> tuple[RequestContext, Coroutine[Any, Any, RoutingDecision]]:
        ctx = self.director.new_context(self.headers_for(request))
        ctx.abort = lambda _error, rid=request.request_id: self._preempt(rid)
        return ctx, self.director.route(ctx, self.body_for(request, snapshots))

    def _routed(
        self, request: SimRequest, ctx: RequestContext, decision: RoutingDecision
    ) -> tuple[Endpoint, RoutingDecision]:
        if ctx.decision is not None and ctx.decision.body_changed and decision.body is not None:
            request.engine_priority = int(orjson.loads(decision.body).get("priority", 0))
        self._in_flight[request.request_id] = ctx
        assert ctx.picked is not None
        return ctx.picked, decision

    @staticmethod
    def body_for(request: SimRequest, snapshots: Sequence[EndpointSnapshot]) -> bytes:
        """The request body a client would send: its own, or a completions request (no model:
        the servers' model)."""
        if request.body is not None:
            return request.body
        return orjson.dumps({"model": request.model or snapshots[0].model, "prompt": request.prompt or ""})

    def headers_for(self, request: SimRequest) -> dict[str, str]:
        """The request headers Envoy would send for this request: the client's own, the
        request id, and its objective by priority."""
        headers = {**(request.headers or {}), "x-request-id": str(request.request_id)}
        if request.priority:
            headers[OBJECTIVE_HEADER] = self._objective(request.priority)
        return headers

    def _objective(self, priority: int) -> str:
        """An InferenceObjective per priority the workload uses, created on first sight."""
        objective = self._objectives.get(priority)
        if objective is None:
            objective = InferenceObjective(ObjectRef(NAMESPACE, f"priority-{priority}"), priority, POOL)
            self._objectives[priority] = objective
            self.store.upsert(objective)
        return objective.ref.name

    def _preempt(self, request_id: int | str) -> None:
        if self._abort is not None and self._abort(request_id):
            self.preempted += 1

    # --- the metrics source ----------------------------------------------------------
    def sync(self, snapshots: Sequence[EndpointSnapshot]) -> bool:
        """Land every scrape the fleet shows that this gateway has not seen yet (True: some)."""
        if len(self._endpoints) != len(snapshots):
            self._build(snapshots)
        wall = time.monotonic()
        landed = False
        for i, snap in enumerate(snapshots):
            if snap.updated_at != self._seen[i]:
                landed = True
                self._seen[i] = snap.updated_at
                endpoint = self._endpoints[i]
                endpoint.metrics = snapshot_metrics(snap, snap.updated_at)
                mark_scraped(endpoint)
                endpoint.attributes[GPU_UTIL] = snap.gpu_util
                endpoint.attributes[DCGM_UPDATED_AT] = wall
        self.inventory.refresh_due(self._endpoints, snapshots)
        return landed

    def _build(self, snapshots: Sequence[EndpointSnapshot]) -> None:
        """One Pod per server, named so that the pool lists them in fleet order."""
        pods = [
            Pod(ObjectRef(NAMESPACE, f"{i:05d}-{snap.name}"), pod_ip(i), self._labels(i))
            for i, snap in enumerate(snapshots)
        ]
        pool = InferencePool(POOL, {"app": "sim"}, (PORT,), EndpointPickerRef("epp"))
        objectives = list(self._objectives.values())
        self.store.replace_all(ResourceSet(pools=[pool], pods=pods, objectives=objectives))
        view = self.store.pool(POOL)
        assert view is not None
        self._endpoints = list(view.endpoints)
        self._index = {e.address: i for i, e in enumerate(self._endpoints)}
        self._seen = [-1.0] * len(snapshots)

    def _labels(self, index: int) -> dict[str, str]:
        role = self.roles[index] if index < len(self.roles) else None
        return {"app": "sim"} | ({ROLE_LABEL: role} if role else {})

    def close(self) -> None:
        if self._loop is None:
            run_now(self.runtime.close())
            return
        self._loop.create_task(self.runtime.close())  # answers what is still queued
        self._loop.run_due()
        self._loop.shutdown()


def run_now(step: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends, outside any event loop. Without flow control the
    decision path never waits; if it did, virtual time could not wait with it."""
    try:
        step.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    step.close()
    raise RuntimeError("the decision path waited on the event loop, which virtual time cannot")
