"""How long one scheduling decision takes, by pool size and profile (in-process, no network).

`schedule` times Scheduler.schedule + bind alone; `route` times the director's whole path
for one request (parse the JSON body, resolve the model, schedule, build the decision), which
is everything the EPP does per request except the gRPC framing.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import orjson

from inference_gateway.bench.pool import pod_ips, pool_resources, synthetic_endpoints
from inference_gateway.bench.text import synthetic_text, text_of_bytes
from inference_gateway.datastore.store import Datastore
from inference_gateway.requestcontrol.director import Director
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import load_config
from inference_gateway.scheduling.types import SchedulingRequest

MODEL = "meta-llama/Llama-2-7b-hf"


def _micros(samples: list[float]) -> dict[str, float]:
    arr = np.asarray(samples) * 1e6
    p50, p99 = np.percentile(arr, [50, 99])
    return {"mean_us": float(arr.mean()), "p50_us": float(p50), "p99_us": float(p99)}


def time_schedule(
    config_text: str | None, endpoints: int, iterations: int = 2000, prompt_tokens: int = 256
) -> dict[str, Any]:
    scheduler = load_config(config_text).scheduler
    eps = synthetic_endpoints(endpoints)
    prompts = [synthetic_text(prompt_tokens, i % 64) for i in range(64)]
    samples: list[float] = []
    for i in range(iterations):
        request = SchedulingRequest(f"r{i}", MODEL, MODEL, prompt=prompts[i % 64], body_size=1000)
        started = time.perf_counter()
        result, state = scheduler.schedule(request, eps)
        scheduler.bind(state, request, result)
        samples.append(time.perf_counter() - started)
    return {"kind": "schedule", "endpoints": endpoints, **_micros(samples[iterations // 10 :])}


async def _time_route(
    config_text: str | None, endpoints: int, body_bytes: int, iterations: int
) -> dict[str, Any]:
    store = Datastore()
    store.replace_all(pool_resources(pod_ips(endpoints, 200), 8000))
    for ep, fake in zip(store.endpoints(), synthetic_endpoints(endpoints), strict=True):
        ep.metrics = fake.metrics
    director = Director(store, PoolRuntime.from_text(config_text))
    body = orjson.dumps({"model": MODEL, "prompt": text_of_bytes(body_bytes, 3), "max_tokens": 8})
    samples: list[float] = []
    for _ in range(iterations):
        ctx = director.new_context({"content-type": "application/json"})
        started = time.perf_counter()
        await director.route(ctx, body)
        samples.append(time.perf_counter() - started)
        director.on_complete(ctx)
    return {
        "kind": "route",
        "endpoints": endpoints,
        "body_bytes": len(body),
        **_micros(samples[iterations // 10 :]),
    }


def time_route(
    config_text: str | None, endpoints: int, body_bytes: int, iterations: int = 1000
) -> dict[str, Any]:
    return asyncio.run(_time_route(config_text, endpoints, body_bytes, iterations))


def decision_table(
    profiles: dict[str, str | None], sizes: tuple[int, ...] = (10, 100, 1000), iterations: int = 2000
) -> list[dict[str, Any]]:
    """Rows for every (profile, pool size), plus director timings for 1 KB and 220 KB bodies."""
    rows: list[dict[str, Any]] = []
    for name, text in profiles.items():
        for n in sizes:
            its = max(200, iterations * 10 // n) if n > 100 else iterations
            rows.append({"profile": name, **time_schedule(text, n, its)})
        for body in (1_000, 220_000):
            rows.append({"profile": name, **time_route(text, 100, body, max(100, iterations // 4))})
    return rows
