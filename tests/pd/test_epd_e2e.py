"""E/PD end to end: client -> real Envoy -> EPP (disagg-profile-handler with an encode decider)
-> decode pod, which has the encode pod named in x-encoder-hosts-ports encode the image."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from inference_gateway.local.stack import LocalStack
from inference_gateway.scheduling.plugins.by_role_filter import ROLE_LABEL
from tests.conftest import make_config_dir, start_stack
from tests.multimodal.media_helpers import image_chat, png_data_uri
from tests.pd.helpers import MODEL, scrape

pytestmark = pytest.mark.e2e

E_PD = (Path(__file__).parents[2] / "bench/profiles/e-pd.yaml").read_text()
SERVED = "x-gateway-destination-endpoint-served"


def encode_and_decode(doc: dict[str, Any]) -> None:
    """One encode pod (an encoder-only simulator) and one decode pod."""
    if doc["kind"] != "LocalFleet":
        return
    base = doc["spec"]["pods"][0]
    octets = base["addressBase"].split(".")
    groups = []
    for i, role in enumerate(("encode", "decode")):
        group = {**base, "replicas": 1, "namePrefix": role}
        group["labels"] = {**base["labels"], ROLE_LABEL: role}
        group["addressBase"] = ".".join([*octets[:2], str(200 + i), "1"])
        args = list(base["simulator"].get("args") or []) + (["--encode-only"] if role == "encode" else [])
        group["simulator"] = {**base["simulator"], "args": args}
        groups.append(group)
    doc["spec"]["pods"] = groups


@pytest.fixture
async def epd_stack(tmp_path: Path) -> AsyncIterator[LocalStack]:
    stack = await start_stack(make_config_dir(tmp_path, encode_and_decode), epp_config=E_PD)
    try:
        yield stack
    finally:
        await stack.stop()


def address(stack: LocalStack, role: str) -> str:
    return next(p for p in stack.pods if p.pod.labels.get(ROLE_LABEL) == role).addresses[0]


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
