"""Multimodal chat through the real Envoy: requests that reuse an image go to the pod that has
its KV cached (the EPP hashes media content into the prompt it matches prefixes on)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import aiohttp
import pytest

from inference_gateway.local.stack import LocalStack

from .media_helpers import image_chat, png_data_uri

pytestmark = pytest.mark.e2e

BASE = "meta-llama/Llama-2-7b-hf"
SERVED = "x-gateway-destination-endpoint-served"


async def _chat(stack: LocalStack, body: dict[str, Any]) -> tuple[int, dict[str, Any], str]:
    async with aiohttp.ClientSession() as s, s.post(f"{stack.base_url}/chat/completions", json=body) as r:
        return r.status, await r.json(content_type=None), r.headers.get(SERVED, "")


async def test_requests_reusing_an_image_follow_its_cache(stack: LocalStack) -> None:
    image = png_data_uri(896, 896)  # 1024 tokens: the image dominates the prompt
    results = [await _chat(stack, image_chat(BASE, image, f"Question {i}?")) for i in range(6)]
    assert [r[0] for r in results] == [200] * 6, results
    pod, count = Counter(r[2] for r in results).most_common(1)[0]
    assert count == 6, [r[2] for r in results]
    for _, body, _ in results[1:]:
        assert body["usage"]["prompt_tokens_details"]["cached_tokens"] >= 1024
    # Different images are free to go elsewhere: affinity follows content, not the client.
    others = {
        (await _chat(stack, image_chat(BASE, png_data_uri(896, 896, (i, 9, 9)), "Q")))[2] for i in range(6)
    }
    assert others != {pod}
