"""Real-time P/D between two simulated servers: the decode server, given x-prefiller-host-port,
has the prefill server prefill, waits for the KV transfer and only decodes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest

from inference_gateway.local.stack import free_port
from inference_gateway.simulator.config import KVTransfer, ServerConfig
from inference_gateway.simulator.disagg import PREFILL_HEADER, prefill_request_body
from inference_gateway.simulator.server import SimulatedServer
from tests.pd.helpers import MODEL, by_source, scrape

TIME_SCALE = 0.02
PROMPT = "Summarise the following incident report for the on-call engineer please. " * 20


@pytest.fixture
async def pair() -> AsyncIterator[tuple[SimulatedServer, SimulatedServer]]:
    kv = KVTransfer(bandwidth_gb_s=25.0, latency_ms=1500.0)  # 1.5 model s = 30 ms wall
    prefill = SimulatedServer(ServerConfig(time_scale=TIME_SCALE, kv_transfer=kv))
    decode = SimulatedServer(ServerConfig(time_scale=TIME_SCALE, kv_transfer=kv))
    await prefill.start()
    await decode.start()
    try:
        yield prefill, decode
    finally:
        await decode.stop()
        await prefill.stop()


async def complete(server: SimulatedServer, headers: dict[str, str], **body: object) -> dict:
    payload = {"model": MODEL, "prompt": PROMPT, "max_tokens": 8, **body}
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"{server.url}/v1/completions", json=payload, headers=headers) as r,
    ):
        assert r.status == 200
        if body.get("stream"):
            return {"sse": await r.text()}
        return await r.json()


async def test_decode_server_has_the_prefill_server_prefill(
    pair: tuple[SimulatedServer, SimulatedServer],
) -> None:
    prefill, decode = pair
    loop = asyncio.get_running_loop()
    started = loop.time()
    resp = await complete(decode, {PREFILL_HEADER: f"127.0.0.1:{prefill.port}"})
    elapsed = loop.time() - started
    prompt_tokens = resp["usage"]["prompt_tokens"]
    assert resp["usage"]["completion_tokens"] == 8
    assert elapsed >= 1.5 * TIME_SCALE  # the KV transfer's latency alone
    p = by_source(await scrape(f"127.0.0.1:{prefill.port}"))
    d = by_source(await scrape(f"127.0.0.1:{decode.port}"))
    assert p == {"local_compute": prompt_tokens, "local_cache_hit": 0, "external_kv_transfer": 0}
    assert d == {"local_compute": 1, "local_cache_hit": 0, "external_kv_transfer": prompt_tokens - 1}
    assert prefill.engine.stats.generation_tokens == 1
    assert decode.engine.stats.generation_tokens == 8


async def test_streaming_through_a_remote_prefill(pair: tuple[SimulatedServer, SimulatedServer]) -> None:
    prefill, decode = pair
    resp = await complete(decode, {PREFILL_HEADER: f"127.0.0.1:{prefill.port}"}, stream=True)
    assert resp["sse"].rstrip().endswith("data: [DONE]")
    assert decode.engine.stats.prompt_tokens_kv_transfer > 0


async def test_unreachable_prefill_pod_means_local_prefill(
    pair: tuple[SimulatedServer, SimulatedServer],
) -> None:
    _, decode = pair
    resp = await complete(decode, {PREFILL_HEADER: f"127.0.0.1:{free_port()}"})
    d = by_source(await scrape(f"127.0.0.1:{decode.port}"))
    assert d["local_compute"] == resp["usage"]["prompt_tokens"]
    assert d["external_kv_transfer"] == 0
    assert decode.remote_prefill.failures == 1


async def test_header_naming_the_server_itself_is_a_local_prefill(
    pair: tuple[SimulatedServer, SimulatedServer],
) -> None:
    _, decode = pair
    await complete(decode, {PREFILL_HEADER: f"127.0.0.1:{decode.port}"})
    assert decode.remote_prefill.requests == 0
    assert decode.engine.stats.prompt_tokens_kv_transfer == 0


def test_prefill_request_asks_for_one_token_without_streaming() -> None:
    body = (
        b'{"model": "m", "prompt": "x", "max_tokens": 50, "stream": true, "min_tokens": 9,'
        b' "max_completion_tokens": 50, "stream_options": {"include_usage": true}}'
    )
    out = orjson.loads(prefill_request_body(body))
    assert out == {
        "model": "m",
        "prompt": "x",
        "max_tokens": 1,
        "max_completion_tokens": 1,
        "stream": False,
        "kv_transfer_params": {"do_remote_decode": True, "do_remote_prefill": False},
    }
