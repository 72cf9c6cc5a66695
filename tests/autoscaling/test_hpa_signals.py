"""Autoscaling signals on a load ramp, through the real Envoy: the HPA decision the EPP's
per-model metrics lead to, and a pool scaled up and down under load without client errors
(pods added and removed through the resource source, as a Deployment's scale would)."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import generate_latest

from inference_gateway.local.stack import LocalStack
from inference_gateway.metrics.parse import family_samples
from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.server import SimulatedServer
from tests.conftest import make_config_dir, start_stack

pytestmark = pytest.mark.e2e

BASE = "meta-llama/Llama-2-7b-hf"
POOL = "vllm-llama2-7b"
SERVED = "x-gateway-destination-endpoint-served"
TARGET = 4.0  # HPA target: 4 in-flight requests per pod


def hpa_desired(current: int, value: float, target: float, tolerance: float = 0.1) -> int:
    """Kubernetes' HPA algorithm for a Value target: no change within the tolerance."""
    ratio = value / target
    if abs(ratio - 1.0) <= tolerance:
        return current
    return math.ceil(current * ratio)


def one_pod(doc: dict[str, Any]) -> None:
    if doc["kind"] == "LocalFleet":
        doc["spec"]["pods"][0]["replicas"] = 1


class Load:
    """Closed-loop clients through Envoy; every response is recorded (status, pod)."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.results: list[tuple[int, str]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._session = aiohttp.ClientSession()

    def resize(self, clients: int) -> None:
        while len(self._tasks) < clients:
            self._tasks.append(asyncio.create_task(self._client(len(self._tasks))))

    async def _client(self, i: int) -> None:
        body = {"model": BASE, "prompt": f"client {i} says", "max_tokens": 60}
        while True:
            async with self._session.post(f"{self.stack.base_url}/completions", json=body) as r:
                await r.read()
                self.results.append((r.status, r.headers.get(SERVED, "")))

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._session.close()


def in_flight_per_pod(stack: LocalStack) -> float:
    page = generate_latest(stack.epp.metrics.registry).decode()  # type: ignore[union-attr]
    for s in family_samples(page, "inference_model_in_flight_requests_per_pod"):
        if s.labels == {"name": POOL, "model_name": BASE}:
            return s.value
    return 0.0


def ttft_p90(stack: LocalStack) -> dict[str, float]:
    page = generate_latest(stack.epp.metrics.registry).decode()  # type: ignore[union-attr]
    samples = family_samples(page, "inference_pool_time_to_first_token_p90_seconds")
    return {s.labels["name"]: s.value for s in samples}


async def until(condition: Callable[[], bool], limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


def pod_yaml(name: str, ip: str) -> str:
    return (
        f"apiVersion: v1\nkind: Pod\n"
        f"metadata: {{name: {name}, namespace: default, labels: {{app: {POOL}}}}}\n"
        f'status: {{podIP: {ip}, conditions: [{{type: Ready, status: "True"}}]}}\n'
    )


async def test_ramp_scales_the_pool_and_the_epp_follows(tmp_path: Path) -> None:
    config_dir = make_config_dir(tmp_path, one_pod)
    stack = await start_stack(config_dir, time_scale=1.0)
    load = Load(stack)
    added: list[SimulatedServer] = []
    try:
        store = stack.epp.store  # type: ignore[union-attr]
        first = stack.pods[0].addresses[0]
        ip, port = first.rsplit(":", 1)
        # Ramp: 4 clients is the target (no change); 12 asks for 3 pods.
        load.resize(4)
        await until(lambda: in_flight_per_pod(stack) == 4)
        assert hpa_desired(1, in_flight_per_pod(stack), TARGET) == 1
        load.resize(12)
        await until(lambda: in_flight_per_pod(stack) >= 11)
        desired = hpa_desired(1, in_flight_per_pod(stack), TARGET)
        assert desired == 3
        await until(lambda: bool(ttft_p90(stack)))  # once requests have completed
        assert set(ttft_p90(stack)) == {POOL} and ttft_p90(stack)[POOL] > 0
        # Scale up to what the HPA asked for: two more pods, while the load runs.
        parts = ip.split(".")
        for k in (1, 2):
            new_ip = ".".join([*parts[:2], "250", str(k)])
            server = SimulatedServer(ServerConfig(name=f"scaled-{k}", lora_adapters=["food-review-1"]))
            await server.start(new_ip, int(port))
            added.append(server)
            (config_dir / f"scaled-{k}.yaml").write_text(pod_yaml(f"scaled-{k}", new_ip))
        await until(lambda: len(store.endpoints()) == 3)
        mark = len(load.results)
        await until(lambda: len({p for _, p in load.results[mark:]}) == 3)
        await until(lambda: in_flight_per_pod(stack) == 4)  # 12 in flight over 3 pods
        assert hpa_desired(3, in_flight_per_pod(stack), TARGET) == 3
        # Scale down by one under load: the pod leaves the pool first, drains, and gets no new work.
        leaving = added[1]
        (config_dir / "scaled-2.yaml").unlink()
        await until(lambda: len(store.endpoints()) == 2)
        mark = len(load.results)
        await until(lambda: len(load.results) >= mark + 12 and not leaving.engine.has_work())
        served_before = sum(leaving.engine.stats.finished.values())
        mark = len(load.results)
        await until(lambda: len(load.results) >= mark + 24)
        assert sum(leaving.engine.stats.finished.values()) == served_before
        assert not leaving.engine.has_work()
        statuses = Counter(s for s, _ in load.results)
        assert set(statuses) == {200}, statuses
    finally:
        await load.close()
        for server in added:
            await server.stop()
        await stack.stop()
