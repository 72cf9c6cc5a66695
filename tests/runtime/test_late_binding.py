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


async def _held_then_freed(roomy_serves: str = "base-model") -> tuple[Endpoint | None, Endpoint, Endpoint]:
    director, runtime, busy, roomy = _pool(3, roomy_serves)
    assert runtime.flow is not None
    ctx = director.new_context({})
    task = asyncio.create_task(director.route(ctx, BODY))
    await asyncio.sleep(0.05)
    assert not task.done() and runtime.flow.queued() == 1  # every pod saturated: held
    roomy.metrics.waiting_queue = 0  # a scrape shows `roomy` drained its queue
    runtime.flow.notify()
    await asyncio.wait_for(task, 2.0)
    return ctx.picked, busy, roomy


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
