"""With flow control on, a request is bound only to a pod the saturation detector says has
room (late binding), whatever the scorers prefer; without flow control, scorers decide alone."""

from __future__ import annotations

import orjson

from inference_gateway.requestcontrol.director import Director
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import load_config
from tests.helpers import make_store

# The KV scorer prefers the pod with the emptier cache: the one with 3 requests waiting.
KV_ONLY = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: kv-cache-utilization-scorer
- type: utilization-detector
  parameters: {queueDepthThreshold: 2, kvCacheUtilThreshold: 0.95}
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: kv-cache-utilization-scorer}
"""
GATED = KV_ONLY + "featureGates: [flowControl]\n"


async def _route(config: str, waiting: tuple[int, int], roomy_serves: str = "base-model") -> str:
    store = make_store(2)
    busy, roomy = store.endpoints()
    roomy.metrics.served_models = frozenset({roomy_serves})
    busy.metrics.waiting_queue, busy.metrics.kv_cache_usage = waiting[0], 0.1
    roomy.metrics.waiting_queue, roomy.metrics.kv_cache_usage = waiting[1], 0.6
    director = Director(store, PoolRuntime(load_config(config)))
    ctx = director.new_context({})
    await director.route(ctx, orjson.dumps({"model": "base-model", "prompt": "hello"}))
    assert ctx.picked is not None
    return "busy" if ctx.picked is busy else "roomy"


async def test_flow_control_binds_to_a_pod_with_room() -> None:
    assert await _route(KV_ONLY, (3, 0)) == "busy"  # the scorer's choice
    assert await _route(GATED, (3, 0)) == "roomy"  # saturated pods are skipped
    assert await _route(GATED, (1, 0)) == "busy"  # both have room: the scorer decides
    assert await _route(GATED, (3, 3)) == "busy"  # neither has room: the scorer decides
    # the pod with room cannot serve the model: the saturated one that can still gets it
    assert await _route(GATED, (3, 0), roomy_serves="other-model") == "busy"
