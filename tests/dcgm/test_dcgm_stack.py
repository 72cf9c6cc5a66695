"""DCGM through the real stack: the EPP scrapes each simulated pod's dcgm-exporter-style page,
maps GPUs to endpoints by pod/namespace, and gpu-utilization-scorer sends requests that pass
through Envoy away from the pod whose GPU is busy."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from inference_gateway.metrics.dcgm import GPU_UTIL
from tests.conftest import make_config_dir, start_stack

pytestmark = pytest.mark.e2e

BASE = "meta-llama/Llama-2-7b-hf"
SERVED = "x-gateway-destination-endpoint-served"
CONFIG = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: dcgm-data-source
  parameters: {endpointPath: /dcgm/metrics, interval: 100ms}
- type: gpu-utilization-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins: [{pluginRef: gpu-utilization-scorer}, {pluginRef: max-score-picker}]
"""


def two_pods(doc: dict[str, Any]) -> None:
    if doc["kind"] == "LocalFleet":
        doc["spec"]["pods"][0]["replicas"] = 2


async def test_requests_avoid_the_pod_with_the_busy_gpu(tmp_path: Path) -> None:
    stack = await start_stack(make_config_dir(tmp_path, two_pods), time_scale=1.0, epp_config=CONFIG)
    try:
        busy, idle = (p.addresses[0] for p in stack.pods)
        store = stack.epp.store  # type: ignore[union-attr]

        def util(address: str) -> float:
            endpoint = store.endpoint(address)
            assert endpoint is not None
            return float(endpoint.attributes.get(GPU_UTIL, -1.0))

        async with aiohttp.ClientSession() as s:
            long_request = {"model": BASE, "prompt": "x", "max_tokens": 3000}
            load = [
                asyncio.create_task(s.post(f"http://{busy}/v1/completions", json=long_request))
                for _ in range(4)
            ]
            deadline = time.monotonic() + 20
            while not (util(busy) > 0.5 and util(idle) == 0.0):
                assert time.monotonic() < deadline, (util(busy), util(idle))
                await asyncio.sleep(0.05)
            served = []
            for i in range(5):
                body = {"model": BASE, "prompt": f"hello {i}", "max_tokens": 2}
                async with s.post(f"{stack.base_url}/completions", json=body) as r:
                    assert r.status == 200
                    served.append(r.headers[SERVED])
            for task in load:
                task.cancel()
        assert set(served) == {idle}
    finally:
        await stack.stop()
