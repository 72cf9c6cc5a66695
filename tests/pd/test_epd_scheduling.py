"""Encode disaggregation (E/P/D): llm-d's encode profile, multimodal decider and encoder header."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import ConfigError, load_config
from inference_gateway.scheduling.plugins.by_role_filter import ROLE_LABEL
from inference_gateway.scheduling.plugins.pd_decider import has_media
from inference_gateway.scheduling.plugins.pd_profile_handler import ENCODER_HEADER, PREFILL_HEADER
from tests.pd.helpers import endpoint, request

# llm-d's own sample (deploy/config/sim-e-p-d-epp-config.yaml), loaded as it is.
LLMD_EPD = Path(__file__).parents[1] / "scheduling/upstream_configs/llmd/config-sim-e-p-d-epp-config.yaml"
IMAGE = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
FLEET = [
    endpoint("encode-0", "10.0.0.1", "encode"),
    endpoint("prefill-0", "10.0.1.1", "prefill"),
    endpoint("decode-0", "10.0.2.1", "decode"),
    endpoint("decode-1", "10.0.2.2", "decode"),
]
ROLE = {e.address: e.labels.get(ROLE_LABEL) for e in FLEET}


def chat(*content: dict[str, object]) -> list[dict[str, object]]:
    return [{"role": "user", "content": list(content)}]


def test_media_parts_are_what_llm_d_counts() -> None:
    assert has_media(chat({"type": "text", "text": "hi"}, IMAGE))
    assert has_media(chat({"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}))
    assert has_media(chat({"type": "video_url", "video_url": {"url": "x"}}))
    assert not has_media(chat({"type": "text", "text": "hi"}))
    assert not has_media([{"role": "user", "content": "plain text"}])
    assert not has_media(None)


async def test_image_request_names_an_encode_pod_and_a_prefill_pod() -> None:
    runtime = PoolRuntime(load_config(LLMD_EPD.read_text()))
    req = request("what is in the picture? " * 20)
    req.messages = chat({"type": "text", "text": "what is in the picture?"}, IMAGE)
    decision = await runtime.decide(req, lambda: FLEET)
    assert ROLE[decision.endpoints[0].address] == "decode"
    assert decision.set_headers[ENCODER_HEADER] == "10.0.0.1:8000"
    assert ROLE[decision.set_headers[PREFILL_HEADER]] == "prefill"
    decision.complete()


async def test_text_request_skips_the_encode_stage_and_strips_a_client_header() -> None:
    runtime = PoolRuntime(load_config(LLMD_EPD.read_text()))
    req = request("no pictures here " * 20)
    req.messages = chat({"type": "text", "text": "no pictures here"})
    decision = await runtime.decide(req, lambda: FLEET)
    assert "encode" not in decision.result.profiles
    assert ENCODER_HEADER in decision.strip_headers
    assert ENCODER_HEADER not in decision.set_headers
    decision.complete()


async def test_without_encode_pods_the_decode_pod_encodes_itself() -> None:
    runtime = PoolRuntime(load_config(LLMD_EPD.read_text()))
    req = request("what is in the picture?")
    req.messages = chat(IMAGE)
    decision = await runtime.decide(req, lambda: FLEET[1:])
    assert ROLE[decision.endpoints[0].address] == "decode"
    assert ENCODER_HEADER in decision.strip_headers
    decision.complete()


def test_unknown_stage_names_are_rejected() -> None:
    text = LLMD_EPD.read_text().replace("      encode: always", "      encoder: always")
    with pytest.raises(ConfigError, match="unknown stage"):
        load_config(text)
