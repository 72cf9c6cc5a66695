"""More requests in flight through Envoy and ext_proc than Envoy's default circuit breakers allow.

Each in-flight request holds an ext_proc stream until its response ends (the observer's);
with Envoy's default limit of 1024 requests on the EPP cluster the 1025th concurrent request
got a 503 (found by the overhead benchmark at 2000 QPS, where slow answers pile up).
"""

from __future__ import annotations

import asyncio

import aiohttp

from inference_gateway.bench.instant import MODEL
from inference_gateway.bench.overhead import OverheadHarness, OverheadOptions

IN_FLIGHT = 1200  # over Envoy's default of 1024 requests per cluster
SPACING_S = 0.002  # arrivals spread over 2.4 s, well inside each request's 4 s: all in flight at once


async def test_hundreds_of_long_requests_in_flight_all_get_through() -> None:
    options = OverheadOptions(
        pods=2, subnet=63, modes=("envoy+noop",), itl_tokens=2, itl_ms=4000, envoy_concurrency=2
    )
    harness = OverheadHarness(options)
    await harness.start()
    try:
        url = harness.urls["envoy+noop"] + "/completions"
        body = {"model": MODEL, "prompt": "hello", "max_tokens": 2, "stream": True}
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one(i: int) -> int:
                await asyncio.sleep(i * SPACING_S)  # not one burst: gRPC sheds streams it cannot accept yet
                async with session.post(url, json=body) as resp:
                    await resp.read()
                    return resp.status

            statuses = await asyncio.gather(*(one(i) for i in range(IN_FLIGHT)))
    finally:
        await harness.stop()
    assert statuses.count(200) == IN_FLIGHT, {s: statuses.count(s) for s in set(statuses)}
