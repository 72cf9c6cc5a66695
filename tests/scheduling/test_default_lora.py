"""The built-in default profile on LoRA traffic: an adapter stays on the pods that run it, a pod
that keeps another adapter waiting is drained, and base-model requests route as without the
LoRA scorer."""

from __future__ import annotations

import orjson
from sched_helpers import MODEL, pool_store, set_metrics

from inference_gateway.api.types import Criticality
from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.requestcontrol.director import Director
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import DEFAULT_CONFIG, load_config

PODS = {"pod-a": "10.0.0.1", "pod-b": "10.0.0.2", "pod-c": "10.0.0.3"}
MODELS = [(MODEL, Criticality.STANDARD), ("sql-lora", Criticality.STANDARD)]
# DEFAULT_CONFIG as it was before the LoRA scorer: the reference for base-model routing.
WITHOUT_LORA = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
- type: round-robin-picker
  parameters: {tolerance: 2}
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: queue-scorer, weight: 2}
  - {pluginRef: kv-cache-utilization-scorer, weight: 10}
  - {pluginRef: prefix-cache-scorer, weight: 24}
  - {pluginRef: round-robin-picker}
"""


def make_director(config: str) -> Director:
    store = pool_store(PODS, models=MODELS)
    for e in store.endpoints():
        set_metrics(e, waiting_queue=0, kv_cache_usage=0.1, max_active_adapters=2)
    return Director(store, PoolRuntime(load_config(config), flow_control=False))


def pod(director: Director, ip: str) -> Endpoint:
    found = director.store.endpoint(f"{ip}:8000")
    assert found is not None
    return found


async def route(director: Director, prompt: str, model: str = MODEL) -> str:
    ctx = director.new_context({})
    raw = orjson.dumps({"model": model, "prompt": prompt, "max_tokens": 5})
    decision = await director.route(ctx, raw)
    director.on_complete(ctx)
    return decision.destination.split(",")[0]


async def test_default_keeps_an_adapter_on_the_pod_that_runs_it() -> None:
    """Without LoRA affinity the round-robin picker spreads sql-lora over the two pods with the
    shorter queues, whose full batches would have to swap an adapter out to run it."""
    director = make_director(DEFAULT_CONFIG)
    set_metrics(pod(director, "10.0.0.1"), active_adapters=frozenset({"x", "y"}))
    set_metrics(pod(director, "10.0.0.2"), active_adapters=frozenset({"x", "y"}))
    set_metrics(
        pod(director, "10.0.0.3"),
        active_adapters=frozenset({"sql-lora", "x"}),
        waiting_queue=4,
        kv_cache_usage=0.5,
    )
    picked = {await route(director, f"select {i}", model="sql-lora") for i in range(6)}
    assert picked == {"10.0.0.3:8000"}
    old = make_director(WITHOUT_LORA)
    for src in director.store.endpoints():
        dst = pod(old, src.ip)
        set_metrics(
            dst,
            active_adapters=src.metrics.active_adapters,
            waiting_queue=src.metrics.waiting_queue,
            kv_cache_usage=src.metrics.kv_cache_usage,
        )
    assert "10.0.0.3:8000" not in {await route(old, f"select {i}", model="sql-lora") for i in range(6)}


async def test_default_drains_a_pod_whose_full_batch_keeps_an_adapter_waiting() -> None:
    """pod-a runs sql-lora and x, and y waits there: vLLM starts y only once sql-lora or x has no
    request left running on pod-a, so sql-lora's traffic goes to pod-b, which runs it too."""
    director = make_director(DEFAULT_CONFIG)
    set_metrics(
        pod(director, "10.0.0.1"),
        active_adapters=frozenset({"sql-lora", "x"}),
        waiting_adapters=frozenset({"y"}),
    )
    set_metrics(pod(director, "10.0.0.2"), active_adapters=frozenset({"sql-lora", "z"}))
    set_metrics(pod(director, "10.0.0.3"), active_adapters=frozenset({"x", "z"}))
    picked = {await route(director, f"select {i}", model="sql-lora") for i in range(6)}
    assert picked == {"10.0.0.2:8000"}
    # Once y runs on pod-a nothing is blocked there: sql-lora's traffic is shared again.
    set_metrics(
        pod(director, "10.0.0.1"), active_adapters=frozenset({"sql-lora", "y"}), waiting_adapters=frozenset()
    )
    assert "10.0.0.1:8000" in {await route(director, f"again {i}", model="sql-lora") for i in range(4)}


async def test_default_routes_base_model_requests_as_without_the_lora_scorer() -> None:
    """Pods differ in adapter slots (upstream's scorer would favour the free ones for a base
    model too) and in load: every base-model decision matches the profile without LoRA."""
    states = [
        {"active_adapters": frozenset({"sql-lora"}), "waiting_queue": 3, "kv_cache_usage": 0.4},
        {"active_adapters": frozenset({"sql-lora", "x"}), "waiting_queue": 0, "kv_cache_usage": 0.2},
        {"active_adapters": frozenset({"x", "y"}), "waiting_adapters": frozenset({"z"}), "waiting_queue": 1},
    ]
    new, old = make_director(DEFAULT_CONFIG), make_director(WITHOUT_LORA)
    for director in (new, old):
        for ip, state in zip(PODS.values(), states, strict=True):
            set_metrics(pod(director, ip), **state)
    prompts = [f"question {i % 4}: " + "context " * (20 * (i % 3)) for i in range(24)]
    assert [await route(new, p) for p in prompts] == [await route(old, p) for p in prompts]
