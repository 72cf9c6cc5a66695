"""The simulator's multimodal path: image tokens in the prompt, encoder time, encoder cache."""

from __future__ import annotations

import aiohttp
import pytest

from inference_gateway.media import MediaTokenRule
from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.fleet_types import SimRequest
from inference_gateway.simulator.profile import load_profile
from inference_gateway.simulator.server import SimulatedServer
from inference_gateway.simulator.tokenizer import SimTokenizer, block_hashes, encode_chat
from tests.simulator.helpers import run_one_server

from .media_helpers import image_chat, png_data_uri

PROFILE = load_profile("h100-llama2-7b")
IMAGE = png_data_uri(448, 448)  # 256 tokens (16 x 16 patches of 28 px)


def _request(rid: str, arrival: float, image: str, question: str) -> SimRequest:
    ids, spans = encode_chat(image_chat("m", image, question)["messages"], SimTokenizer(), MediaTokenRule())
    return SimRequest(rid, arrival, len(ids), 4, block_hashes=block_hashes(ids, 16), media=spans)


def test_first_request_pays_the_encoder_and_a_reuse_hits_the_kv_cache() -> None:
    reqs = [_request("a", 0.0, IMAGE, "What is it?"), _request("b", 1.0, IMAGE, "Colour?")]
    res, fleet = run_one_server(reqs)
    a, b = res["a"], res["b"]
    encoder = fleet.servers[0].engine.encoder
    assert encoder.encoded_tokens == 256  # once: b's image positions come from the prefix cache
    assert b.cached_tokens >= 256
    encode_s = 256 * PROFILE.encoder_ms_per_1k_tokens / 1e6
    assert a.ttft == pytest.approx(PROFILE.step_seconds(a.prompt_tokens, a.prompt_tokens, False) + encode_s)


def test_encoder_cache_serves_an_image_after_different_text() -> None:
    def later_image(rid: str, arrival: float, text: str) -> SimRequest:
        content = [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": IMAGE}}]
        ids, spans = encode_chat([{"role": "user", "content": content}], SimTokenizer(), MediaTokenRule())
        return SimRequest(rid, arrival, len(ids), 4, block_hashes=block_hashes(ids, 16), media=spans)

    _, fleet = run_one_server([later_image("a", 0.0, "x " * 40), later_image("b", 1.0, "y " * 40)])
    encoder = fleet.servers[0].engine.encoder
    assert (encoder.misses, encoder.hits, encoder.encoded_tokens) == (1, 1, 256)


async def test_server_counts_image_tokens_and_caches_them() -> None:
    server = SimulatedServer(ServerConfig(time_scale=0.01))
    await server.start("127.0.0.1", 0)
    url = f"{server.url}/v1/chat/completions"
    try:
        async with aiohttp.ClientSession() as s:
            async with s.post(url, json=image_chat("meta-llama/Llama-2-7b-hf", IMAGE, "What is it?")) as r:
                assert r.status == 200
                first = (await r.json())["usage"]
            async with s.post(url, json=image_chat("meta-llama/Llama-2-7b-hf", IMAGE, "And now?")) as r:
                second = (await r.json())["usage"]
    finally:
        await server.stop()
    assert first["prompt_tokens"] > 256
    assert second["prompt_tokens_details"]["cached_tokens"] >= 256


def test_fixed_image_tokens_config() -> None:
    cfg = ServerConfig(media=MediaTokenRule(image_tokens=576))
    ids, spans = encode_chat(image_chat("m", IMAGE, "q")["messages"], SimTokenizer(), cfg.media)
    assert spans[0][2] == 576 and len(ids) > 576
