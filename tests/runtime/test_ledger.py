"""The in-flight ledger: one record per request from admission to completion, counted per
endpoint (with its prompt tokens), per pool and per priority band."""

from __future__ import annotations

import orjson
from prometheus_client import CollectorRegistry

from inference_gateway.datastore.ledger import InFlightLedger
from inference_gateway.flowcontrol import (
    FlowController,
    FlowControlMetrics,
    parse_flow_control,
)
from inference_gateway.requestcontrol.director import Director
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import load_config
from inference_gateway.scheduling.plugins.concurrency_detector import ConcurrencyDetector
from tests.helpers import make_store


def test_records_count_per_endpoint_pool_and_band_until_released() -> None:
    a, b = make_store(2).endpoints()
    ledger = InFlightLedger(clock=lambda: 5.0)
    first = ledger.admit("r1", "ns/p", 0)
    second = ledger.admit("r2", "ns/p", -1)
    assert ledger.pool_requests("ns/p") == 2 and ledger.band_requests("ns/p", -1) == 1
    assert a.in_flight == 0  # admitted, not bound to an endpoint yet
    ledger.bind(first, a, 100)
    ledger.bind(second, a, 30)
    assert (a.load.requests, a.load.prompt_tokens, b.in_flight) == (2, 130, 0)
    assert [r.request_id for r in ledger.records(a, since=5.0)] == ["r1", "r2"]
    ledger.release(first)
    ledger.release(first)  # idempotent
    assert (a.load.requests, a.load.prompt_tokens) == (1, 30)
    assert ledger.pool_requests("ns/p") == 1 and ledger.band_requests("ns/p", 0) == 0
    ledger.release(second)
    assert len(ledger) == 0 and a.in_flight == 0 and ledger.pool_requests("ns/p") == 0


async def test_the_director_records_each_request_with_its_prompt_estimate_until_it_completes() -> None:
    runtime = PoolRuntime(load_config(), flow_control=False)
    director = Director(make_store(), runtime)
    ctx = director.new_context({})
    await director.route(ctx, orjson.dumps({"model": "base-model", "prompt": "x" * 400}))
    picked = ctx.picked
    assert picked is not None
    assert (picked.load.requests, picked.load.prompt_tokens) == (1, 100)  # 4 characters a token
    assert runtime.ledger.pool_requests(ctx.request.pool if ctx.request else "") == 1
    director.on_complete(ctx)
    assert (picked.load.requests, picked.load.prompt_tokens) == (0, 0) and len(runtime.ledger) == 0


async def test_flow_control_and_the_runtime_share_one_ledger() -> None:
    ledger = InFlightLedger()
    flow = FlowController(
        parse_flow_control({}),
        ConcurrencyDetector(parameters={"maxConcurrency": 10}),
        FlowControlMetrics(CollectorRegistry()),
        ledger=ledger,
    )
    runtime = PoolRuntime(load_config(), flow=flow)
    assert runtime.ledger is ledger
    director = Director(make_store(), runtime)
    ctx = director.new_context({})
    await director.route(ctx, orjson.dumps({"model": "base-model", "prompt": "hello"}))
    pool = ctx.request.pool if ctx.request else ""
    assert (
        flow.in_flight(pool) == 1
        and len(ledger) == 1
        and ctx.picked is not None
        and ctx.picked.in_flight == 1
    )
    director.on_complete(ctx)
    assert flow.in_flight(pool) == 0 and len(ledger) == 0 and ctx.picked.in_flight == 0
