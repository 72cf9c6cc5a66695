"""Request priority through the real Envoy: the EPP's engine-priority plugin writes each
request's priority into the body, and a simulated vLLM running `--scheduling-policy priority`
serves a Critical request before a Sheddable one that queued earlier."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import make_config_dir, start_stack

pytestmark = pytest.mark.e2e

BASE = "meta-llama/Llama-2-7b-hf"
CONFIG = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: engine-priority
schedulingProfiles:
- name: default
  plugins: [{pluginRef: queue-scorer}]
"""


def one_seat_priority_pod(doc: dict[str, Any]) -> None:
    if doc["kind"] == "LocalFleet":
        group = doc["spec"]["pods"][0]
        group["replicas"] = 1
        group["simulator"]["args"] = [
            "--max-loras",
            "2",
            "--max-num-seqs",
            "1",
            "--scheduling-policy",
            "priority",
        ]


async def test_critical_overtakes_a_queued_sheddable_request(tmp_path: Path) -> None:
    stack = await start_stack(
        make_config_dir(tmp_path, one_seat_priority_pod), time_scale=1.0, epp_config=CONFIG
    )
    finished: dict[str, float] = {}

    async def send(s: aiohttp.ClientSession, name: str, model: str) -> int:
        body = {"model": model, "prompt": f"{name} request", "max_tokens": 5}
        async with s.post(f"{stack.base_url}/completions", json=body) as r:
            await r.read()
            finished[name] = time.monotonic()
            return r.status

    try:
        pod = stack.pods[0].addresses[0]
        endpoint = stack.epp.store.endpoint(pod)  # type: ignore[union-attr]
        assert endpoint is not None
        async with aiohttp.ClientSession() as s:
            # Hold the only seat directly, then queue a Sheddable request and a Critical one.
            blocker = asyncio.create_task(
                s.post(f"http://{pod}/v1/completions", json={"model": BASE, "prompt": "x", "max_tokens": 400})
            )
            await _until(lambda: endpoint.metrics.running_requests == 1)
            sheddable = asyncio.create_task(send(s, "sheddable", "batch-summaries"))
            await _until(lambda: endpoint.metrics.waiting_queue == 1)
            critical = asyncio.create_task(send(s, "critical", "food-review"))
            await _until(lambda: endpoint.metrics.waiting_queue == 2)
            assert await critical == 200
            assert await sheddable == 200
            (await blocker).close()
        assert finished["critical"] < finished["sheddable"]
    finally:
        await stack.stop()


async def _until(condition: Any, limit_s: float = 20.0) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)
