"""Real-time encode disaggregation between simulated servers: the decode server, given
x-encoder-hosts-ports, has encode-only servers encode each image (round robin, llm-d's sidecar
request shape) and falls back to its own encoder when they fail."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest

from inference_gateway.local.stack import free_port
from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.disagg import PREFILL_HEADER
from inference_gateway.simulator.encode_disagg import ENCODER_HEADER, encoder_request, media_items
from inference_gateway.simulator.server import SimulatedServer
from tests.multimodal.media_helpers import png_data_uri
from tests.pd.helpers import MODEL

TIME_SCALE = 0.02
RED, BLUE = png_data_uri(448, 448), png_data_uri(448, 448, (0, 0, 200))  # 256 tokens each


def two_images(*urls: str) -> dict[str, object]:
    images = [{"type": "image_url", "image_url": {"url": u}} for u in urls]
    content = [{"type": "text", "text": "compare"}, *images]
    messages = [{"role": "user", "content": content}]
    return {"model": MODEL, "messages": messages, "max_tokens": 3, "stream": True}


def test_encoder_requests_carry_one_item_and_no_text() -> None:
    body = two_images(RED, BLUE, RED)
    items = media_items(body)
    assert [i["image_url"]["url"] for i in items] == [RED, BLUE]  # the repeated URL goes once
    sent = orjson.loads(encoder_request(body, items[1]))
    assert sent["messages"] == [{"role": "user", "content": [items[1]]}]
    assert (sent["max_tokens"], sent["stream"]) == (1, False)


@pytest.fixture
async def fleet() -> AsyncIterator[list[SimulatedServer]]:
    servers = [SimulatedServer(ServerConfig(time_scale=TIME_SCALE, encode_only=True)) for _ in range(2)]
    servers.append(SimulatedServer(ServerConfig(time_scale=TIME_SCALE)))
    for s in servers:
        await s.start()
    try:
        yield servers
    finally:
        for s in servers:
            await s.stop()


async def post(
    server: SimulatedServer, body: dict[str, object], encoders: str, headers: dict[str, str] | None = None
) -> int:
    async with aiohttp.ClientSession() as s:
        url = f"{server.url}/v1/chat/completions"
        async with s.post(url, json=body, headers={ENCODER_HEADER: encoders, **(headers or {})}) as r:
            await r.read()
            return r.status


async def test_items_spread_over_encode_servers_and_skip_local_encoding(fleet: list[SimulatedServer]) -> None:
    enc0, enc1, decode = fleet
    hosts = f"127.0.0.1:{enc0.port},127.0.0.1:{enc1.port}"
    assert await post(decode, two_images(RED, BLUE), hosts) == 200
    stats = [s.engine.stats.encoder_tokens for s in fleet]
    assert stats == [256, 256, 0]
    assert decode.remote_encode.requests == 2 and decode.remote_encode.failures == 0


async def test_a_dead_encode_server_means_local_encoding(fleet: list[SimulatedServer]) -> None:
    decode = fleet[2]
    assert await post(decode, two_images(RED), f"127.0.0.1:{free_port()}") == 200
    assert decode.engine.stats.encoder_tokens == 256
    assert decode.remote_encode.failures == 1


async def test_e_p_d_the_prefill_server_reuses_the_encoder_outputs(fleet: list[SimulatedServer]) -> None:
    enc, prefill, decode = fleet[0], fleet[2], SimulatedServer(ServerConfig(time_scale=TIME_SCALE))
    await decode.start()
    try:
        to_prefill = {PREFILL_HEADER: f"127.0.0.1:{prefill.port}"}
        assert await post(decode, two_images(RED), f"127.0.0.1:{enc.port}", to_prefill) == 200
    finally:
        await decode.stop()
    assert enc.engine.stats.encoder_tokens == 256  # once: the prefill pod's call hit its cache
    assert prefill.engine.stats.encoder_tokens == decode.engine.stats.encoder_tokens == 0
    assert prefill.remote_encode.requests == 1 and prefill.engine.stats.prompt_tokens_computed > 256
