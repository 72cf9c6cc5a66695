"""Late binding: a request flow control queued while every pod was saturated goes to a pod the
saturation detector says has room once one frees up, whatever the scorers prefer. A request
admitted at once (no backlog) is placed by the scorers alone."""

from __future__ import annotations

import asyncio

import orjson

from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.requestcontrol.director import Director
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import load_config
from tests.helpers import make_store

# The KV scorer prefers the pod with the emptier cache: `busy`, which keeps 3 requests waiting.
GATED = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
featureGates: [flowControl]
plugins:
- type: kv-cache-utilization-scorer
- type: utilization-detector
  parameters: {queueDepthThreshold: 2, kvCacheUtilThreshold: 0.95}
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: kv-cache-utilization-scorer}
"""
BODY = orjson.dumps({"model": "base-model", "prompt": "hello"})


def _pool(waiting: int, roomy_serves: str = "base-model") -> tuple[Director, PoolRuntime, Endpoint, Endpoint]:
    store = make_store(2)
    busy, roomy = store.endpoints()
    busy.metrics.waiting_queue, busy.metrics.kv_cache_usage = 3, 0.1
    roomy.metrics.waiting_queue, roomy.metrics.kv_cache_usage = waiting, 0.6
    roomy.metrics.served_models = frozenset({roomy_serves})
    runtime = PoolRuntime(load_config(GATED))
    return Director(store, runtime), runtime, busy, roomy


async def _route_held(
    director: Director, runtime: PoolRuntime, roomy: Endpoint, body: bytes
) -> Endpoint | None:
    """Route `body` while every pod is saturated: it is held; then `roomy` frees up."""
    assert runtime.flow is not None
    ctx = director.new_context({})
    task = asyncio.create_task(director.route(ctx, body))
    deadline = asyncio.get_running_loop().time() + 2.0
    while runtime.flow.queued() != 1:  # every pod saturated: held
        assert not task.done() and asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)
    roomy.metrics.waiting_queue = 0  # a scrape shows `roomy` drained its queue
    runtime.flow.notify()
    await asyncio.wait_for(task, 2.0)
    return ctx.picked


async def _held_then_freed(roomy_serves: str = "base-model") -> tuple[Endpoint | None, Endpoint, Endpoint]:
    director, runtime, busy, roomy = _pool(3, roomy_serves)
    return await _route_held(director, runtime, roomy, BODY), busy, roomy


async def test_a_held_request_goes_to_the_pod_that_freed_up() -> None:
    picked, _, roomy = await _held_then_freed()
    assert picked is roomy  # not the scorers' favourite, which is still saturated


async def test_a_held_request_goes_where_its_model_is_when_the_freed_pod_lacks_it() -> None:
    picked, busy, _ = await _held_then_freed(roomy_serves="other-model")
    assert picked is busy


async def test_a_request_admitted_at_once_is_placed_by_the_scorers() -> None:
    director, _, busy, _ = _pool(0)
    ctx = director.new_context({})
    await director.route(ctx, BODY)
    assert ctx.picked is busy


# The default's weights: a cached prefix (24) outweighs any KV difference (10).
AFFINITY = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
featureGates: [flowControl]
plugins:
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
- type: utilization-detector
  parameters: {queueDepthThreshold: 2, kvCacheUtilThreshold: 0.95}
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: kv-cache-utilization-scorer, weight: 10}
  - {pluginRef: prefix-cache-scorer, weight: 24}
"""
SYSTEM = " ".join(f"rule {i}: answer in the voice of a patient reviewer." for i in range(60))


def _body(question: str) -> bytes:
    return orjson.dumps({"model": "base-model", "prompt": SYSTEM + question})


async def _held_with_a_prefix_on_busy(question: str) -> tuple[Endpoint | None, Endpoint, Endpoint]:
    """`busy` served SYSTEM first; then both pods saturate, a request is held, `roomy` frees up."""
    store = make_store(2)
    busy, roomy = store.endpoints()
    busy.metrics.kv_cache_usage, roomy.metrics.kv_cache_usage = 0.1, 0.6
    runtime = PoolRuntime(load_config(AFFINITY))
    director = Director(store, runtime)
    first = director.new_context({})
    await director.route(first, _body("first question"))
    director.on_complete(first)
    assert first.picked is busy  # the emptier cache; its prefix is now indexed there
    busy.metrics.waiting_queue = roomy.metrics.waiting_queue = 3
    return await _route_held(director, runtime, roomy, _body(question)), busy, roomy


async def test_a_held_request_waits_on_the_saturated_pod_that_caches_its_prefix() -> None:
    """Re-prefilling the shared prefix elsewhere (and evicting what that pod caches) costs more
    than waiting: the affinity lead (24) is more than a quarter of the weights (34)."""
    picked, busy, _ = await _held_with_a_prefix_on_busy("second question")
    assert picked is busy


async def test_a_held_request_without_a_cached_prefix_goes_to_the_pod_with_room() -> None:
    store = make_store(2)
    busy, roomy = store.endpoints()
    busy.metrics.waiting_queue, busy.metrics.kv_cache_usage = 3, 0.1
    roomy.metrics.waiting_queue, roomy.metrics.kv_cache_usage = 3, 0.6
    runtime = PoolRuntime(load_config(AFFINITY))
    director = Director(store, runtime)
    assert await _route_held(director, runtime, roomy, _body("a question nobody asked")) is roomy
