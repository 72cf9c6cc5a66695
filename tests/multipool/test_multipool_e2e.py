"""Two InferencePools behind one Envoy and one EPP, routed by an HTTPRoute (examples/multi-pool).

Envoy picks the route and, for weighted backendRefs, the pool; the route tells the EPP which
pool it picked. If the EPP scheduled on the wrong pool, its pick would not be in the cluster
Envoy chose, override_host would fall back to round robin, and the served endpoint would
differ from the EPP's pick: so every request checks served == picked, in the routed pool.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio

from inference_gateway.api.types import FailureMode
from inference_gateway.local.stack import LocalStack
from inference_gateway.requestcontrol.director import RequestContext
from inference_gateway.requestcontrol.errors import GatewayError
from tests.conftest import start_stack
from tests.multipool.stack_config import multi_pool_config

# One stack (two simulated pods, one per pool) shared by the tests of this module.
pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

MODEL = "meta-llama/Llama-2-7b-hf"
SERVED = "x-gateway-destination-endpoint-served"
H100, L4 = "llama-h100", "llama-l4"


class Decisions:
    """Director observer: (pool the EPP scheduled on, its first pick, the endpoint that served)."""

    def __init__(self) -> None:
        self.by_id: dict[str, tuple[str, str, str]] = {}

    def on_routed(self, ctx: RequestContext) -> None:
        pass

    def on_error(self, ctx: RequestContext, error: GatewayError) -> None:
        pass

    def on_complete(self, ctx: RequestContext) -> None:
        if ctx.resolution is not None and ctx.picked is not None:
            served = ctx.served.address if ctx.served is not None else ""
            self.by_id[ctx.request_id] = (ctx.resolution.view.pool.ref.name, ctx.picked.address, served)


def one_pod_per_pool_l4_fail_open(doc: dict[str, Any]) -> None:
    """Pools with different failure modes exercise the two ext_proc filters."""
    if doc["kind"] == "InferencePool" and doc["metadata"]["name"] == L4:
        doc["spec"]["endpointPickerRef"]["failureMode"] = "FailOpen"
    if doc["kind"] == "LocalFleet":
        for group in doc["spec"]["pods"]:
            group["replicas"] = 1


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalStack]:
    tmp = tmp_path_factory.mktemp("multipool")
    s = await start_stack(multi_pool_config(tmp, one_pod_per_pool_l4_fail_open))
    try:
        yield s
    finally:
        await s.stop()


async def send(
    session: aiohttp.ClientSession, stack: LocalStack, rid: str, headers: dict[str, str] | None = None
) -> str:
    body = {"model": MODEL, "prompt": f"request {rid}", "max_tokens": 2}
    hdrs = {"x-request-id": rid, **(headers or {})}
    async with session.post(f"{stack.base_url}/completions", json=body, headers=hdrs) as resp:
        assert resp.status == 200, await resp.text()
        await resp.read()
        return resp.headers[SERVED]


async def wait_for(decisions: Decisions, ids: list[str]) -> None:
    for _ in range(100):
        if all(i in decisions.by_id for i in ids):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the EPP completed only {len(decisions.by_id)} of {len(ids)} requests")


async def test_routes_and_weighted_split_across_two_pools(stack: LocalStack) -> None:
    assert stack.epp is not None
    assert {p.pool.name: p.failure_mode for p in stack.pool_clusters()} == {
        H100: FailureMode.FAIL_CLOSE,
        L4: FailureMode.FAIL_OPEN,
    }
    decisions = Decisions()
    stack.epp.director.observers.append(decisions)
    pool_of = {e.address: v.pool.ref.name for v in stack.epp.store.pools() for e in v.endpoints}
    async with aiohttp.ClientSession() as session:
        # Catch-all rule: 80 % H100, 20 % L4. A client's own pool header must not steer the EPP.
        n = 120
        weighted = [f"w{i}" for i in range(n)]
        served = await asyncio.gather(
            *(send(session, stack, rid, {"x-gateway-inference-pool": f"default/{L4}"}) for rid in weighted)
        )
        # Header rule: every request pinned to the L4 pool.
        pinned = [f"p{i}" for i in range(20)]
        pinned_served = [await send(session, stack, rid, {"x-accelerator": "l4"}) for rid in pinned]
    await wait_for(decisions, weighted + pinned)

    for rid, address in zip(weighted + pinned, served + pinned_served, strict=True):
        pool, picked, epp_served = decisions.by_id[rid]
        assert address == picked == epp_served, (rid, pool, picked, address)
        assert pool_of[address] == pool
    counts = collections.Counter(pool_of[a] for a in served)
    # Binomial(120, 0.2): mean 24, sd 4.4; 5 sd either side.
    assert 2 <= counts[L4] <= 46, counts
    assert counts[H100] + counts[L4] == n
    assert {pool_of[a] for a in pinned_served} == {L4}


async def test_each_pool_schedules_with_its_own_config_and_has_its_own_gauges(stack: LocalStack) -> None:
    assert stack.epp is not None and stack.epp.metrics_server is not None
    async with aiohttp.ClientSession() as session:
        scorers: dict[str, set[str]] = {}
        for accel in ("l4", "h100"):
            hdrs = {"x-gateway-explain": "true"}
            if accel == "l4":
                hdrs["x-accelerator"] = "l4"
            body = {"model": MODEL, "prompt": "explain", "max_tokens": 1}
            for _ in range(10):  # the catch-all rule sends ~80 % to H100; retry until it does
                async with session.post(f"{stack.base_url}/completions", json=body, headers=hdrs) as r:
                    assert r.status == 200
                    decision = orjson.loads(r.headers["x-gateway-explain"])
                    pool = "l4" if r.headers[SERVED] in _addresses(stack, L4) else "h100"
                if pool == accel:
                    break
            assert pool == accel
            profile = decision["profiles"][decision["primary"]]
            scorers[accel] = set(profile["weights"])
        port = stack.epp.metrics_server.port
        async with session.get(f"http://127.0.0.1:{port}/metrics") as r:
            metrics = await r.text()
    # examples/multi-pool/epp-l4.yaml drops the prefix-cache scorer for the L4 pool only.
    assert "prefix-cache-scorer" in scorers["h100"]
    assert scorers["l4"] == {"queue-scorer", "kv-cache-utilization-scorer"}
    for pool in (H100, L4):
        assert f'inference_pool_ready_pods{{name="{pool}"}} 1.0' in metrics


def _addresses(stack: LocalStack, pool: str) -> set[str]:
    assert stack.epp is not None
    return {e.address for v in stack.epp.store.pools() if v.pool.ref.name == pool for e in v.endpoints}
