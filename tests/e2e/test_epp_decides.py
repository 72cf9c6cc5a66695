"""The EPP, not Envoy's own balancing, decides: a pod whose metrics say it is busy gets no traffic."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from tests.conftest import make_config_dir, start_stack

pytestmark = pytest.mark.e2e


def add_busy_pod(doc: dict[str, Any]) -> None:
    if doc["kind"] != "LocalFleet":
        return
    base = doc["spec"]["pods"][0]
    busy = {**base, "replicas": 1, "namePrefix": "busy", "args": []}
    busy["simulator"] = {**base["simulator"], "args": ["--max-num-seqs", "1"]}
    base["replicas"] = 2
    ip_parts = base["addressBase"].split(".")
    busy["addressBase"] = ".".join([*ip_parts[:2], "250", "1"])
    doc["spec"]["pods"].append(busy)


async def test_busy_pod_receives_nothing_while_idle_pods_exist(tmp_path: Path) -> None:
    stack = await start_stack(make_config_dir(tmp_path, add_busy_pod), time_scale=1.0)
    try:
        busy = next(p for p in stack.pods if p.pod.ref.name.startswith("busy"))
        busy_addr = busy.addresses[0]
        # Load the busy pod directly (bypassing the gateway): one long request running, two waiting.
        async with aiohttp.ClientSession() as s:
            direct = [
                asyncio.create_task(
                    s.post(
                        f"http://{busy_addr}/v1/completions",
                        json={"model": "meta-llama/Llama-2-7b-hf", "prompt": "x", "max_tokens": 1000},
                    )
                )
                for _ in range(3)
            ]
            store = stack.epp.store  # type: ignore[union-attr]
            for _ in range(100):
                ep = store.endpoint(busy_addr)
                if ep is not None and ep.metrics.waiting_queue >= 2:
                    break
                await asyncio.sleep(0.05)
            assert store.endpoint(busy_addr).metrics.waiting_queue >= 2  # type: ignore[union-attr]

            c = openai.AsyncOpenAI(base_url=stack.base_url, api_key="x", max_retries=0)
            served = []
            for i in range(20):
                raw = await c.completions.with_raw_response.create(
                    model="meta-llama/Llama-2-7b-hf", prompt=f"request {i}", max_tokens=2
                )
                served.append(raw.headers["x-gateway-destination-endpoint-served"])
            for t in direct:
                t.cancel()
        assert busy_addr not in served
        assert len(set(served)) >= 1
    finally:
        await stack.stop()
