"""P/D end to end: client -> real Envoy -> EPP (pd-profile-handler) -> decode pod, which has the
prefill pod named in x-prefiller-host-port do the prefill."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest

from inference_gateway.local.stack import LocalStack
from inference_gateway.scheduling.plugins.by_role_filter import ROLE_LABEL
from tests.conftest import make_config_dir, start_stack
from tests.pd.helpers import MODEL, by_source, pd_config, scrape

pytestmark = pytest.mark.e2e

LONG = "Explain, step by step, how the gateway should treat this very long request body. " * 30


def split_roles(doc: dict[str, Any]) -> None:
    """One prefill pod and one decode pod instead of the example's four plain pods."""
    if doc["kind"] != "LocalFleet":
        return
    base = doc["spec"]["pods"][0]
    octets = base["addressBase"].split(".")
    groups = []
    for i, role in enumerate(("prefill", "decode")):
        group = {**base, "replicas": 1, "namePrefix": role}
        group["labels"] = {**base["labels"], ROLE_LABEL: role}
        group["addressBase"] = ".".join([*octets[:2], str(200 + i), "1"])
        groups.append(group)
    doc["spec"]["pods"] = groups


@pytest.fixture
async def pd_stack(tmp_path: Path) -> AsyncIterator[LocalStack]:
    stack = await start_stack(make_config_dir(tmp_path, split_roles), epp_config=pd_config(threshold=64))
    try:
        yield stack
    finally:
        await stack.stop()


def address(stack: LocalStack, role: str) -> str:
    return next(p for p in stack.pods if p.pod.labels.get(ROLE_LABEL) == role).addresses[0]


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
