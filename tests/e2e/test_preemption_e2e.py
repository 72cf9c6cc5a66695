"""Gateway preemption through the real Envoy: a Critical request routed to a saturated pod
ends the youngest Sheddable request there, whose client gets a retryable 503."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import generate_latest

from inference_gateway.metrics.parse import family_samples
from tests.conftest import make_config_dir, start_stack

pytestmark = pytest.mark.e2e

BASE = "meta-llama/Llama-2-7b-hf"
CONFIG = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: sheddable-preemption
  parameters: {queueDepthThreshold: 1, retryAfterSeconds: 2}
schedulingProfiles:
- name: default
  plugins: [{pluginRef: queue-scorer}]
"""


def one_seat_pod(doc: dict[str, Any]) -> None:
    if doc["kind"] == "LocalFleet":
        group = doc["spec"]["pods"][0]
        group["replicas"] = 1
        group["simulator"]["args"] = ["--max-loras", "2", "--max-num-seqs", "1"]


async def test_critical_request_preempts_the_youngest_sheddable(tmp_path: Path) -> None:
    stack = await start_stack(make_config_dir(tmp_path, one_seat_pod), time_scale=1.0, epp_config=CONFIG)

    async def send(s: aiohttp.ClientSession, model: str, max_tokens: int) -> tuple[int, dict[str, Any], str]:
        body = {"model": model, "prompt": "hello", "max_tokens": max_tokens}
        async with s.post(f"{stack.base_url}/completions", json=body) as r:
            return r.status, await r.json(content_type=None), r.headers.get("retry-after", "")

    try:
        endpoint = stack.epp.store.endpoint(stack.pods[0].addresses[0])  # type: ignore[union-attr]
        assert endpoint is not None
        async with aiohttp.ClientSession() as s:
            older = asyncio.create_task(send(s, "batch-summaries", 300))
            await until(lambda: endpoint.metrics.running_requests == 1)
            younger = asyncio.create_task(send(s, "batch-summaries", 300))
            await until(lambda: endpoint.metrics.waiting_queue == 1)
            critical = asyncio.create_task(send(s, "food-review", 5))
            status, body, retry_after = await younger
            assert status == 503, body
            assert body["error"]["code"] == "preempted" and retry_after == "2"
            assert (await critical)[0] == 200
            assert (await older)[0] == 200
        page = generate_latest(stack.epp.metrics.registry).decode()  # type: ignore[union-attr]
        (count,) = family_samples(page, "inference_extension_preemptions_total")
        assert count.value == 1
    finally:
        await stack.stop()


async def until(condition: Any, limit_s: float = 20.0) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)
