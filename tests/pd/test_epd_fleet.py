"""E/P/D in virtual time: the EPP (VirtualGateway, the real Director) names an encode pod and
the fleet encodes there, ships the encoder output, and prefills/decodes elsewhere."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from inference_gateway.media import MediaTokenRule
from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.fleet_types import SimRequest
from inference_gateway.simulator.gateway import VirtualGateway
from inference_gateway.simulator.pd_fleet import run_pd_fleet
from inference_gateway.simulator.profile import load_profile
from inference_gateway.simulator.tokenizer import SimTokenizer, block_hashes, encode_chat
from tests.multimodal.media_helpers import image_chat, png_data_uri

ROOT = Path(__file__).parents[2]
E_PD = (ROOT / "bench/profiles/e-pd.yaml").read_text()
PROFILE = load_profile("h100-llama2-7b")
MODEL = "meta-llama/Llama-2-7b-hf"
ROLES = ("encode", "decode", "decode")


def chat_request(rid: int, arrival: float, image: str, question: str) -> SimRequest:
    body = image_chat(MODEL, image, question)
    ids, spans = encode_chat(body["messages"], SimTokenizer(), MediaTokenRule())
    return SimRequest(rid, arrival, len(ids), 8, block_hashes=block_hashes(ids, 16), media=spans,
                      body=orjson.dumps(body))  # fmt: skip


def text_request(rid: int, arrival: float) -> SimRequest:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "no image " * 50}]}
    return SimRequest(rid, arrival, 120, 8, body=orjson.dumps(body))


def run(requests: list[SimRequest], roles: tuple[str, ...] = ROLES):  # type: ignore[no-untyped-def]
    servers = [ServerConfig(name=f"pod-{i}", seed=i) for i in range(len(roles))]
    return run_pd_fleet(requests, servers, VirtualGateway(E_PD, roles=roles))


def test_images_are_encoded_on_the_encode_pod_only() -> None:
    images = [png_data_uri(448 + 28 * k, 448) for k in range(4)]  # four distinct images
    result = run([chat_request(i, 0.2 * i, images[i % 4], f"question {i}") for i in range(8)])
    done = {r.request_id: r for r in result.results}
    assert all(r.status == "ok" for r in done.values()) and len(done) == 8
    encode, *decoders = result.servers
    assert encode.stats.encoder_tokens > 0
    assert all(s.stats.encoder_tokens == 0 for s in decoders)
    assert all(r.encode_endpoint == 0 and r.endpoint in (1, 2) for r in done.values())
    # once per distinct image (16..19 x 16 patches): the second use hits the encoder cache
    assert encode.stats.encoder_tokens == 256 + 272 + 288 + 304
    assert result.extra["remote_encoded"] == 8


def test_ttft_counts_from_the_client_arrival_and_includes_the_encoder() -> None:
    only = chat_request(0, 1.0, png_data_uri(448, 448), "what is it?")  # 256 image tokens
    alone = run([only]).results[0]
    encode_s = 256 * PROFILE.encoder_ms_per_1k_tokens / 1e6
    assert alone.arrival == 1.0
    assert alone.ttft >= encode_s + PROFILE.step_seconds(alone.prompt_tokens, alone.prompt_tokens, False)
    assert alone.ttft == pytest.approx(
        encode_s + PROFILE.step_seconds(alone.prompt_tokens, alone.prompt_tokens, False), abs=2e-3
    )


def test_text_requests_skip_the_encode_pod() -> None:
    result = run([text_request(i, 0.1 * i) for i in range(4)])
    assert all(r.status == "ok" and r.encode_endpoint == -1 and r.endpoint in (1, 2) for r in result.results)
    assert result.extra["remote_encoded"] == 0


def test_without_an_encode_pod_the_decode_pod_encodes() -> None:
    result = run([chat_request(0, 0.0, png_data_uri(448, 448), "what?")], roles=("decode", "decode"))
    (res,) = result.results
    assert res.status == "ok" and res.encode_endpoint == -1
    assert sum(s.stats.encoder_tokens for s in result.servers) == 256
