"""The virtual-time fleet and the real-time HTTP server agree on the same workload."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest

from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.server import SimulatedServer

from .helpers import run_one_server, text_request, words

TIME_SCALE = 8.0  # wall seconds per model second: HTTP and loop jitter shrink 8x


def _workload() -> list[tuple[str, float, str, int]]:
    """(id, arrival s, prompt, max_tokens): overlapping requests of different sizes."""
    return [(f"r{i}", 0.06 * i, words(1000 + 150 * i, seed=i), 20 + 5 * (i % 4)) for i in range(8)]


async def _realtime(server: SimulatedServer) -> dict[str, tuple[float, float]]:
    """Per request (ttft, e2e) in model seconds, measured by the client."""
    loop = asyncio.get_running_loop()
    out: dict[str, tuple[float, float]] = {}

    async def one(session: aiohttp.ClientSession, rid: str, at: float, prompt: str, n: int) -> None:
        await asyncio.sleep(max(0.0, start + at * TIME_SCALE - loop.time()))
        sent = loop.time()
        first = -1.0
        body = orjson.dumps({"prompt": prompt, "max_tokens": n, "stream": True})
        async with session.post(server.url + "/v1/completions", data=body) as resp:
            async for line in resp.content:
                if first < 0 and line.startswith(b"data: {"):
                    first = loop.time()
        done = loop.time()
        out[rid] = ((first - sent) / TIME_SCALE, (done - sent) / TIME_SCALE)

    async with aiohttp.ClientSession() as session:
        start = loop.time() + 0.05
        await asyncio.gather(*(one(session, *w) for w in _workload()))
    return out


@pytest.mark.serial
async def test_virtual_and_realtime_agree_within_10_percent() -> None:
    virtual, _ = run_one_server([text_request(rid, at, p, n) for rid, at, p, n in _workload()])
    server = SimulatedServer(ServerConfig(time_scale=TIME_SCALE))
    await server.start()
    try:
        real = await _realtime(server)
    finally:
        await server.stop()
    for metric, idx in (("ttft", 0), ("e2e", 1)):
        v = sum(getattr(virtual[rid], metric) for rid in real) / len(real)
        r = sum(vals[idx] for vals in real.values()) / len(real)
        # 10 % relative, plus 4 model-ms (32 wall-ms) for event-loop lag on a loaded 2-core box
        assert abs(r - v) <= 0.10 * v + 0.004, (metric, r, v)
    # the server's own (model-time) accounting matches the virtual run almost exactly
    assert server.engine.stats.ttft.count == len(real)
    mean_ttft_engine = server.engine.stats.ttft.total / len(real)
    mean_ttft_virtual = sum(r.ttft for r in virtual.values()) / len(virtual)
    assert mean_ttft_engine == pytest.approx(mean_ttft_virtual, rel=0.10)
