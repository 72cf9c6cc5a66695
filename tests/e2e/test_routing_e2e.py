"""Scheduling decisions seen from the client, through the real Envoy: prefix affinity, LoRA
affinity, shedding under saturation, live config reload."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml

from inference_gateway.local.stack import LocalStack
from inference_gateway.metrics.inventory import served_models
from tests.conftest import make_config_dir, start_stack

pytestmark = pytest.mark.e2e

SERVED = "x-gateway-destination-endpoint-served"
BASE = "meta-llama/Llama-2-7b-hf"


async def post(
    stack: LocalStack, body: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"{stack.base_url}/completions", json=body, headers=headers or {}) as r,
    ):
        return r.status, await r.json(content_type=None), dict(r.headers)


async def test_shared_prefix_requests_land_on_the_same_pod(stack: LocalStack) -> None:
    system = "You are a meticulous assistant for a food-review site. " * 40  # ~2 KB shared prefix
    served = []
    for i in range(8):
        status, _, headers = await post(
            stack, {"model": BASE, "prompt": f"{system}Question {i}?", "max_tokens": 2}
        )
        assert status == 200
        served.append(headers[SERVED])
    top, count = Counter(served).most_common(1)[0]
    assert count >= 7, served  # the first pick is free; every later one follows the cached prefix
    # A prompt with a different prefix is free to go elsewhere: the scorer is about prefixes, not stickiness.
    other = [
        (await post(stack, {"model": BASE, "prompt": f"Unrelated text number {i} " * 30, "max_tokens": 2}))[
            2
        ][SERVED]
        for i in range(6)
    ]
    assert set(other) != {top}


def lora_fleet(doc: dict[str, Any]) -> None:
    """Two pods without the adapter, two with `sql-lora`, and an InferenceModel splitting
    traffic between the base model and the adapter."""
    if doc["kind"] == "InferenceModel" and doc["metadata"]["name"] == "batch-summaries":
        doc["metadata"]["name"] = doc["spec"]["modelName"] = "sql-split"
        doc["spec"]["targetModels"] = [{"name": BASE, "weight": 50}, {"name": "sql-lora", "weight": 50}]
    if doc["kind"] != "LocalFleet":
        return
    group = doc["spec"]["pods"][0]
    group["replicas"] = 2
    group["simulator"]["loras"] = []
    with_adapter = {
        **group,
        "replicas": 2,
        "namePrefix": "lora-pod",
        "simulator": {**group["simulator"], "loras": ["sql-lora"]},
    }
    parts = group["addressBase"].split(".")
    with_adapter["addressBase"] = ".".join([*parts[:2], "240", "1"])
    doc["spec"]["pods"].append(with_adapter)


LORA_CONFIG = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: lora-affinity-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: queue-scorer, weight: 1}
  - {pluginRef: kv-cache-utilization-scorer, weight: 1}
  # Active (1.0) vs loadable (0.8) is 4 points at weight 20: more than the queue and KV scorers
  # together (at most 1 + 1) can give the idle pod, so the active pod wins strictly, never a tie.
  - {pluginRef: lora-affinity-scorer, weight: 20}
  - {pluginRef: max-score-picker}
saturationDetector:
  metricsStalenessThreshold: 60s  # a starved test machine must not make the adapter pods "stale"
"""


async def test_lora_request_prefers_the_pod_with_the_adapter_active(tmp_path: Path) -> None:
    stack = await start_stack(make_config_dir(tmp_path, lora_fleet), time_scale=1.0, epp_config=LORA_CONFIG)
    try:
        store = stack.epp.store  # type: ignore[union-attr]
        lora_pods = sorted(
            a for p in stack.pods if p.pod.ref.name.startswith("lora-pod") for a in p.addresses
        )
        # The EPP learns each pod's adapters from GET /v1/models, idle adapters included.
        await wait_until(lambda: all(served_models(e) is not None for e in store.endpoints()))
        idle = [
            await post(stack, {"model": "sql-lora", "prompt": f"select {i}", "max_tokens": 2})
            for i in range(8)
        ]
        assert [r[0] for r in idle] == [200] * 8, [r[1] for r in idle]
        assert {r[2][SERVED] for r in idle} <= set(lora_pods)
        # Half of sql-split goes to the adapter: never to a pod without it (that pod would 404).
        split = [
            await post(stack, {"model": "sql-split", "prompt": f"q {i}", "max_tokens": 2}) for i in range(20)
        ]
        assert [r[0] for r in split] == [200] * 20, [r[1] for r in split if r[0] != 200]
        async with aiohttp.ClientSession() as s:
            # Make the adapter active on one of its pods (vLLM reports adapters of running requests).
            active = lora_pods[0]
            warm = asyncio.create_task(
                s.post(
                    f"http://{active}/v1/completions",
                    json={"model": "sql-lora", "prompt": "x", "max_tokens": 3000},
                )
            )
            await wait_until(lambda: "sql-lora" in store.endpoint(active).metrics.active_adapters)  # type: ignore[union-attr]
            served = []
            for i in range(6):
                # A request's end reaches the EPP by Envoy's access log, batched (10 ms): let the
                # previous one leave the ledger first, or its pod looks one request busier.
                await wait_until(lambda: all(e.in_flight == 0 for e in store.endpoints()))
                served.append(
                    await post(stack, {"model": "sql-lora", "prompt": f"select {i}", "max_tokens": 2})
                )
            warm.cancel()
        assert [r[0] for r in served] == [200] * 6, [r[1] for r in served]
        assert {r[2][SERVED] for r in served} == {active}
    finally:
        await stack.stop()


async def wait_until(cond: Callable[[], bool], within_s: float = 30.0) -> None:
    deadline = time.monotonic() + within_s
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def saturating_fleet(doc: dict[str, Any]) -> None:
    if doc["kind"] == "LocalFleet":
        group = doc["spec"]["pods"][0]
        group["replicas"] = 2
        group["simulator"]["args"] = ["--max-num-seqs", "1"]


async def test_sheddable_gets_429_under_saturation_while_critical_is_served(tmp_path: Path) -> None:
    stack = await start_stack(make_config_dir(tmp_path, saturating_fleet), time_scale=1.0)
    try:
        store = stack.epp.store  # type: ignore[union-attr]
        async with aiohttp.ClientSession() as s:
            # Saturate every pod directly: one running and six waiting each (queue >= 5).
            load = [
                asyncio.create_task(
                    s.post(
                        f"http://{a}/v1/completions", json={"model": BASE, "prompt": "x", "max_tokens": 60}
                    )
                )
                for p in stack.pods
                for a in p.addresses
                for _ in range(7)
            ]
            for _ in range(100):
                if all(e.metrics.waiting_queue >= 5 for e in store.endpoints()):
                    break
                await asyncio.sleep(0.05)
            shed = await post(stack, {"model": "batch-summaries", "prompt": "summarise", "max_tokens": 2})
            critical = asyncio.create_task(
                post(stack, {"model": "food-review", "prompt": "rate", "max_tokens": 2})
            )
            assert shed[0] == 429
            assert shed[1]["error"]["type"] == "rate_limit_error"
            assert "retry-after" in {k.lower() for k in shed[2]}
            status, payload, _ = await asyncio.wait_for(critical, 60)
            assert status == 200, payload  # held by flow control until capacity freed, then served
            for t in load:
                t.cancel()
    finally:
        await stack.stop()


async def test_weight_change_on_disk_applies_live_without_failed_requests(stack: LocalStack) -> None:
    models = stack.options.config_dir / "models.yaml"
    docs = list(yaml.safe_load_all(models.read_text()))
    seen: Counter[str] = Counter()
    failures = []

    async def traffic(n: int) -> None:
        for _ in range(n):
            body = {"model": "food-review", "prompt": "hi", "max_tokens": 1}
            status, payload, headers = await post(stack, body, {"x-gateway-explain": "true"})
            if status != 200:
                failures.append(payload)
            else:  # the response names the requested model; the decision names the target
                seen[orjson.loads(headers["x-gateway-explain"])["target_model"]] += 1

    running = asyncio.create_task(traffic(40))
    await asyncio.sleep(0.3)
    for doc in docs:
        if doc["metadata"]["name"] == "food-review":
            doc["spec"]["targetModels"] = [{"name": "food-review-2", "weight": 100}]
    models.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    await running
    assert failures == []
    seen.clear()
    await asyncio.sleep(1.0)  # the reload applies well within a second
    await traffic(10)
    assert seen == Counter({"food-review-2": 10})
