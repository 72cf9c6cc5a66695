"""E/PD end to end: client -> real Envoy -> EPP (disagg-profile-handler with an encode decider)
-> decode pod, which has the encode pod named in x-encoder-hosts-ports encode the image."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from inference_gateway.local.stack import LocalStack
from tests.conftest import make_config_dir, start_stack
from tests.multimodal.media_helpers import image_chat, png_data_uri
from tests.pd.helpers import MODEL, one_pod_per_role, role_address, scrape

pytestmark = pytest.mark.e2e

E_PD = (Path(__file__).parents[2] / "bench/profiles/e-pd.yaml").read_text()
SERVED = "x-gateway-destination-endpoint-served"
# One encode pod (an encoder-only simulator) and one decode pod.
ENCODE_AND_DECODE = one_pod_per_role(("encode", "decode"), {"encode": ["--encode-only"]})


@pytest.fixture
async def epd_stack(tmp_path: Path) -> AsyncIterator[LocalStack]:
    stack = await start_stack(make_config_dir(tmp_path, ENCODE_AND_DECODE), epp_config=E_PD)
    try:
        yield stack
    finally:
        await stack.stop()


address = role_address


async def encoded(address: str) -> float:
    samples = await scrape(address)
    return sum(v for (name, _), v in samples.items() if name == "simulator:encoder_tokens_total")


async def chat(stack: LocalStack, body: dict[str, Any]) -> tuple[int, dict[str, Any], str]:
    async with aiohttp.ClientSession() as s, s.post(f"{stack.base_url}/chat/completions", json=body) as r:
        return r.status, await r.json(content_type=None), r.headers.get(SERVED, "")


async def test_the_encode_pod_encodes_and_the_decode_pod_serves(epd_stack: LocalStack) -> None:
    encode, decode = address(epd_stack, "encode"), address(epd_stack, "decode")
    image = png_data_uri(896, 896)  # 1,024 tokens
    status, body, served = await chat(epd_stack, image_chat(MODEL, image, "What is in it?"))
    assert (status, served) == (200, decode), body
    assert body["usage"]["prompt_tokens"] > 1024
    assert (await encoded(encode), await encoded(decode)) == (1024, 0)

    # The same image again: the encode pod's encoder cache has it; nothing is encoded twice.
    status, _, served = await chat(epd_stack, image_chat(MODEL, image, "And its colour?"))
    assert (status, served) == (200, decode)
    assert (await encoded(encode), await encoded(decode)) == (1024, 0)

    # Text only: the encode stage is skipped.
    text = {"model": MODEL, "messages": [{"role": "user", "content": "Hello there"}], "max_tokens": 2}
    status, _, served = await chat(epd_stack, text)
    assert (status, served) == (200, decode)
    assert await encoded(encode) == 1024
