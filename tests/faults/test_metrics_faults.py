"""A pod whose /metrics is down, hangs or serves garbage is excluded from scheduling until it
recovers. When no pod has fresh metrics the pool counts as saturated (as upstream): flow control
holds requests until their TTL, then answers 503 `queue_timeout`."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference_gateway.scheduling.config import DEFAULT_CONFIG
from tests.faults.client import completion_body, eventually, send_many, set_faults, settle
from tests.faults.conftest import small_stack

pytestmark = pytest.mark.e2e

METRICS_FAULTS = ("metrics-down", "metrics-garbage", "metrics-hang")
TTL_S = 1.0
SHORT_TTL_CONFIG = DEFAULT_CONFIG.replace("defaultRequestTTL: 0", f"defaultRequestTTL: {int(TTL_S * 1000)}ms")
assert SHORT_TTL_CONFIG != DEFAULT_CONFIG


async def test_pods_with_broken_metrics_are_excluded_then_readmitted(tmp_path: Path) -> None:
    stack = await small_stack(tmp_path, replicas=4, epp_config=SHORT_TTL_CONFIG)
    try:
        assert stack.epp is not None
        store = stack.epp.store
        addresses = [p.addresses[0] for p in stack.pods]
        healthy = addresses[3]
        for address, fault in zip(addresses, METRICS_FAULTS, strict=False):
            await set_faults(address, fault)

        def excluded() -> set[str]:
            return {e.address for e in store.endpoints() if not e.metrics_ok}

        # Down and garbage fail at the third scrape; a hang at the 1 s scrape timeout or when
        # the last good sample goes stale (2 s).
        await eventually(lambda: excluded() == set(addresses[:3]), 15, "broken pods to be excluded")
        tally = await send_many(stack, [completion_body(stream=i % 2 == 0) for i in range(12)])
        tally.assert_accounted(12, {"ok"})
        assert {o.served for o in tally.outcomes} == {healthy}

        for address in addresses:  # every pod blind: routed on what is known, not held back
            await set_faults(address, "metrics-down")
        await eventually(lambda: len(excluded()) == 4, 15, "every pod to be excluded")
        tally = await send_many(stack, [completion_body(stream=i % 2 == 0) for i in range(4)])
        # A monitoring fault must not become an outage: with no fresh metrics anywhere, the
        # pool is not called saturated and requests go to ready pods (logged as a warning).
        tally.assert_accounted(4, {"ok"})
        for o in tally.outcomes:
            assert o.seconds < TTL_S

        for address in addresses:
            await set_faults(address)
        await eventually(lambda: not excluded(), 15, "every pod to be readmitted")
        tally = await send_many(stack, [completion_body() for _ in range(4)])
        tally.assert_accounted(4, {"ok"})
        await settle(stack)
    finally:
        await stack.stop()
