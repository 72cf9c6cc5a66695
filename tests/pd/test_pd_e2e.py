"""P/D end to end: client -> real Envoy -> EPP (pd-profile-handler) -> decode pod, which has the
prefill pod named in x-prefiller-host-port do the prefill."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest

from inference_gateway.local.stack import LocalStack
from tests.conftest import make_config_dir, start_stack
from tests.pd.helpers import MODEL, by_source, one_pod_per_role, pd_config, role_address, scrape

pytestmark = pytest.mark.e2e

LONG = "Explain, step by step, how the gateway should treat this very long request body. " * 30


# One prefill pod and one decode pod instead of the example's four plain pods.
SPLIT_ROLES = one_pod_per_role(("prefill", "decode"))


@pytest.fixture
async def pd_stack(tmp_path: Path) -> AsyncIterator[LocalStack]:
    stack = await start_stack(make_config_dir(tmp_path, SPLIT_ROLES), epp_config=pd_config(threshold=64))
    try:
        yield stack
    finally:
        await stack.stop()


address = role_address


async def test_decode_pod_serves_and_the_prefill_pod_prefills(pd_stack: LocalStack) -> None:
    prefill, decode = address(pd_stack, "prefill"), address(pd_stack, "decode")
    client = openai.AsyncOpenAI(base_url=pd_stack.base_url, api_key="x", max_retries=0)
    raw = await client.completions.with_raw_response.create(model=MODEL, prompt=LONG, max_tokens=4)
    resp = raw.parse()
    assert raw.headers["x-gateway-destination-endpoint-served"] == decode
    assert resp.usage is not None and resp.usage.completion_tokens == 4
    prompt_tokens = resp.usage.prompt_tokens
    assert by_source(await scrape(prefill))["local_compute"] == prompt_tokens
    on_decode = by_source(await scrape(decode))
    assert on_decode["external_kv_transfer"] == prompt_tokens - 1
    assert on_decode["local_compute"] == 1

    # A short prompt stays aggregated: the decode pod prefills it, the prefill pod sees nothing.
    short = await client.completions.create(model=MODEL, prompt="Hello there", max_tokens=2)
    assert short.usage is not None
    assert by_source(await scrape(prefill))["local_compute"] == prompt_tokens
    assert by_source(await scrape(decode))["local_compute"] == 1 + short.usage.prompt_tokens
