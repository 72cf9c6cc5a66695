"""Scheduler + director together: routing decisions as Envoy would receive them."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from sched_helpers import MODEL, POOL, pool_store, set_metrics

from inference_gateway.api.manifests import ResourceSet
from inference_gateway.api.types import Criticality
from inference_gateway.requestcontrol.director import Director
from inference_gateway.requestcontrol.errors import GatewayError
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import load_config

PODS = {"pod-a": "10.0.0.1", "pod-b": "10.0.0.2", "pod-c": "10.0.0.3"}
SYSTEM = "You are a meticulous assistant who answers questions about distributed systems. " * 12


UPSTREAM_DEFAULT = Path(__file__).parents[2] / "bench" / "profiles" / "upstream-default.yaml"


def make_director(config: str | None = None, **store_kwargs: object) -> Director:
    store = pool_store(PODS, **store_kwargs)  # type: ignore[arg-type]
    for e in store.endpoints():
        set_metrics(e, waiting_queue=0, kv_cache_usage=0.1)
    cfg = load_config(config)
    return Director(store, PoolRuntime(cfg, flow_control=False))


def body(prompt: str, model: str = MODEL, **extra: object) -> bytes:
    return orjson.dumps({"model": model, "prompt": prompt, "max_tokens": 5, **extra})


async def route(director: Director, raw: bytes, headers: dict[str, str] | None = None) -> list[str]:
    ctx = director.new_context(headers or {})
    decision = await director.route(ctx, raw)
    director.on_complete(ctx)
    return decision.destination.split(",")


async def test_destination_lists_pick_then_ordered_fallbacks() -> None:
    director = make_director()
    eps = {e.ip: e for e in director.store.endpoints()}
    set_metrics(eps["10.0.0.1"], waiting_queue=9, kv_cache_usage=0.9)
    set_metrics(eps["10.0.0.2"], waiting_queue=0, kv_cache_usage=0.1)
    set_metrics(eps["10.0.0.3"], waiting_queue=4, kv_cache_usage=0.5)
    assert await route(director, body("hi")) == ["10.0.0.2:8000", "10.0.0.3:8000", "10.0.0.1:8000"]


async def test_shared_prefix_workload_lands_on_one_endpoint() -> None:
    director = make_director()
    first = await route(director, body(SYSTEM + "Question 0: what is a vector clock?"))
    for i in range(1, 12):
        picked = await route(director, body(SYSTEM + f"Question {i}: explain consensus round {i}."))
        assert picked[0] == first[0]


async def test_prefix_affinity_yields_to_a_much_longer_queue() -> None:
    # Upstream's weights (prefix 3 vs queue 2 + kv 2). Our default weighs prefix 6, which keeps
    # a shared prefix on its pod under the round-robin picker: there the saturation detector and
    # flow control, not the scorers, take an overloaded pod out.
    director = make_director(UPSTREAM_DEFAULT.read_text())
    first = (await route(director, body(SYSTEM + "q1")))[0]
    hot = director.store.endpoint(first)
    assert hot is not None
    set_metrics(hot, waiting_queue=50, kv_cache_usage=0.95)
    assert (await route(director, body(SYSTEM + "q2")))[0] != first


async def test_lora_request_prefers_endpoint_with_adapter_loaded() -> None:
    config = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: lora-affinity-scorer
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: queue-scorer, weight: 1}
  - {pluginRef: kv-cache-utilization-scorer, weight: 1}
  - {pluginRef: lora-affinity-scorer, weight: 2}
"""
    director = make_director(
        config, models=[(MODEL, Criticality.STANDARD), ("sql-lora", Criticality.STANDARD)]
    )
    for e in director.store.endpoints():
        set_metrics(e, max_active_adapters=1, active_adapters=frozenset({"other-lora"}))
    loaded = director.store.endpoint("10.0.0.3:8000")
    assert loaded is not None
    set_metrics(loaded, active_adapters=frozenset({"sql-lora"}), waiting_queue=2, kv_cache_usage=0.3)
    for _ in range(5):
        assert (await route(director, body("select", model="sql-lora")))[0] == "10.0.0.3:8000"


async def test_sheddable_gets_429_when_pool_saturated_but_critical_passes() -> None:
    models = [("batch", Criticality.SHEDDABLE), ("chat", Criticality.CRITICAL), (MODEL, Criticality.STANDARD)]
    director = make_director(models=models)
    assert await route(director, body("x", model="batch"))  # capacity left: not shed
    for e in director.store.endpoints():
        set_metrics(e, waiting_queue=6, kv_cache_usage=0.5)
    with pytest.raises(GatewayError) as err:
        await route(director, body("x", model="batch"))
    assert err.value.status == 429
    payload = orjson.loads(err.value.body())["error"]
    assert payload["type"] == "rate_limit_error" and payload["code"] == "pool_saturated"
    assert str(POOL) in payload["message"]
    assert await route(director, body("x", model="chat"))
    assert await route(director, body("x", model=MODEL))


async def test_stale_metrics_endpoints_are_ignored() -> None:
    director = make_director()
    eps = {e.ip: e for e in director.store.endpoints()}
    # The stale endpoint looks best on paper, but the scraper marked its metrics unusable.
    set_metrics(eps["10.0.0.1"], waiting_queue=0, kv_cache_usage=0.0)
    eps["10.0.0.1"].metrics_ok = False
    set_metrics(eps["10.0.0.2"], waiting_queue=3, kv_cache_usage=0.4)
    set_metrics(eps["10.0.0.3"], waiting_queue=5, kv_cache_usage=0.6)
    picked = await route(director, body("hi"))
    assert "10.0.0.1:8000" not in picked
    assert picked[0] == "10.0.0.2:8000"


async def test_not_ready_pods_are_never_picked() -> None:
    director = make_director()
    for e in director.store.endpoints():
        e.ready = e.ip == "10.0.0.3"
    assert await route(director, body("hi")) == ["10.0.0.3:8000"]


async def test_session_affinity_round_trip_through_response_headers() -> None:
    config = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: session-affinity-scorer
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: queue-scorer, weight: 1}
  - {pluginRef: session-affinity-scorer, weight: 10}
"""
    director = make_director(config)
    ctx = director.new_context({})
    decision = await director.route(ctx, body("turn 1"))
    director.on_response_headers(ctx, 200, decision.destination.split(",")[0])
    token = ctx.response_headers["x-session-token"]
    # The session's endpoint is now the busiest, but the token keeps the conversation there.
    served = director.store.endpoint(decision.destination.split(",")[0])
    assert served is not None
    set_metrics(served, waiting_queue=3)
    again = await route(director, body("turn 2"), {"x-session-token": token})
    assert again[0] == served.address
    served.ready = False  # endpoint gone: falls back to normal scoring
    assert (await route(director, body("turn 3"), {"x-session-token": token}))[0] != served.address


async def test_explain_header_returns_decision_json() -> None:
    director = make_director()
    ctx = director.new_context({"x-gateway-explain": "true"})
    decision = await director.route(ctx, body("hi"))
    assert ctx.explanation is not None
    info = orjson.loads(ctx.explanation)
    profile = info["profiles"]["default"]
    assert profile["picked"] == decision.destination.split(",")
    assert len(profile["candidates"]) == 3
    assert set(profile["candidates"][0]["scores"]) == {
        "queue-scorer",
        "kv-cache-utilization-scorer",
        "prefix-cache-scorer",
        "lora-affinity-scorer",
    }


async def test_removed_pods_are_dropped_from_the_prefix_index() -> None:
    director = make_director()
    await route(director, body(SYSTEM))
    prefix = director.runtimes.default.scheduler.profiles["default"].post_pick[0]
    assert prefix.index.servers()  # type: ignore[attr-defined]
    director.store.replace_all(ResourceSet())  # every pod deleted
    assert prefix.index.servers() == []  # type: ignore[attr-defined]
