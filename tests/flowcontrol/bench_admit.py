"""Cost of flow control on the request path when the pool is not saturated.

Run: PYTHONPATH=src:tests python -m flowcontrol.bench_admit
Prints microseconds per Director.route (8 endpoints) with and without flow control, and per
FlowController.admit alone. Not collected by pytest (timing is not a unit test).
"""

from __future__ import annotations

import asyncio
import statistics
import time

import orjson
from prometheus_client import CollectorRegistry

from inference_gateway.flowcontrol import FlowRequest, build_flow_controller
from inference_gateway.requestcontrol.director import Director
from inference_gateway.requestcontrol.usage import UsageAccounting
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import load_config
from inference_gateway.scheduling.plugins.concurrency_detector import ConcurrencyDetector

from .test_flow_director import datastore

N = 20_000
BODY = orjson.dumps({"model": "chat", "messages": [{"role": "user", "content": "hello " * 50}]})


async def per_route_us(director: Director) -> float:
    started = time.process_time()
    for _ in range(N):
        ctx = director.new_context({})
        await director.route(ctx, BODY)
        director.on_complete(ctx)
    return (time.process_time() - started) / N * 1e6


async def per_admit_us() -> float:
    ctl = build_flow_controller(
        {}, ConcurrencyDetector(parameters={"maxConcurrency": 1000}), CollectorRegistry()
    )
    assert ctl is not None
    store = datastore(pods=8)
    endpoints = store.endpoints()
    started = time.process_time()
    for i in range(N):
        admission = await ctl.admit(FlowRequest(str(i), 0, "f", 100, "pool", "m", "m"), lambda: endpoints)
        admission.release()
    return (time.process_time() - started) / N * 1e6


async def main() -> None:
    config = load_config(None)
    plain, flow = [], []
    for _ in range(5):
        store = datastore(pods=8)
        plain.append(
            await per_route_us(
                Director(
                    store, PoolRuntime(config, flow_control=False), usage=UsageAccounting(CollectorRegistry())
                )
            )
        )
        ctl = build_flow_controller(
            {}, ConcurrencyDetector(parameters={"maxConcurrency": 1000}), CollectorRegistry()
        )
        assert ctl is not None
        d = Director(store, PoolRuntime(config, flow=ctl), usage=UsageAccounting(CollectorRegistry()))
        flow.append(await per_route_us(d))
    print(f"Director.route, no flow control:   median {statistics.median(plain):6.1f} us")
    print(f"Director.route, with flow control: median {statistics.median(flow):6.1f} us")
    admit = statistics.median([await per_admit_us() for _ in range(5)])
    print(f"FlowController.admit + release:    median {admit:6.1f} us")


if __name__ == "__main__":
    asyncio.run(main())
