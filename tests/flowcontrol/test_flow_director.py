"""The director with flow control: admission before scheduling, errors, release and usage on completion."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from inference_gateway.api.manifests import ResourceSet
from inference_gateway.api.types import (
    Criticality,
    EndpointPickerRef,
    InferenceModel,
    InferenceObjective,
    InferencePool,
    ObjectRef,
    Pod,
)
from inference_gateway.datastore.store import Datastore
from inference_gateway.flowcontrol import (
    FlowController,
    FlowControlMetrics,
    QueueOutcome,
    parse_flow_control,
)
from inference_gateway.requestcontrol.director import Director, RequestContext
from inference_gateway.requestcontrol.errors import GatewayError
from inference_gateway.requestcontrol.usage import UsageAccounting, UsageKey
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import load_config
from inference_gateway.scheduling.plugins.concurrency_detector import ConcurrencyDetector

POOL = ObjectRef("default", "pool")


def datastore(pods: int = 2) -> Datastore:
    store = Datastore()
    resources = ResourceSet(
        pools=[InferencePool(POOL, {"app": "llm"}, (8000,), EndpointPickerRef("epp"))],
        models=[
            InferenceModel(ObjectRef("default", "chat"), "chat", POOL, Criticality.STANDARD),
            InferenceModel(ObjectRef("default", "batch"), "batch", POOL, Criticality.SHEDDABLE),
            InferenceModel(ObjectRef("default", "vip"), "vip", POOL, Criticality.CRITICAL),
        ],
        objectives=[InferenceObjective(ObjectRef("default", "premium"), 10, POOL)],
        pods=[Pod(ObjectRef("default", f"pod-{i}"), f"10.0.0.{i + 1}", {"app": "llm"}) for i in range(pods)],
    )
    store.replace_all(resources)
    return store


def director(store: Datastore, section: dict[str, Any], max_concurrency: int = 1) -> Director:
    flow = FlowController(
        parse_flow_control(section),
        ConcurrencyDetector(parameters={"maxConcurrency": max_concurrency}),
        FlowControlMetrics(CollectorRegistry()),
    )
    return Director(
        store, PoolRuntime(load_config(None), flow=flow), usage=UsageAccounting(CollectorRegistry())
    )


def body(model: str) -> bytes:
    return orjson.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]})


async def route(d: Director, model: str, **headers: str) -> RequestContext:
    ctx = d.new_context(headers)
    await d.route(ctx, body(model))
    return ctx


def usage_body(prompt: int, completion: int) -> bytes:
    return orjson.dumps({"choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion}})


async def test_admits_schedules_and_releases_on_the_last_response_chunk() -> None:
    store = datastore()
    d = director(store, {})
    ctx = await route(d, "chat", **{"x-gateway-inference-fairness-id": "tenant-a"})
    assert ctx.admission is not None and not ctx.admission.queued
    assert ctx.picked is not None and ctx.picked.in_flight == 1
    d.on_response_body(ctx, usage_body(10, 5)[:20], end_of_stream=False)
    assert not ctx.finished
    d.on_response_body(ctx, usage_body(10, 5)[20:], end_of_stream=True)
    assert ctx.finished and ctx.picked.in_flight == 0 and ctx.admission.released
    totals = d.usage.totals[UsageKey("chat", "chat", "", "tenant-a")]
    assert (totals.requests, totals.prompt_tokens, totals.completion_tokens) == (1, 10, 5)
    d.on_complete(ctx)  # the ext_proc stream closing afterwards changes nothing
    assert ctx.picked.in_flight == 0 and totals.requests == 1


async def test_usage_is_counted_per_objective_and_default_flow() -> None:
    d = director(datastore(), {})
    ctx = await route(d, "chat", **{"x-gateway-inference-objective": "premium"})
    d.on_response_body(ctx, usage_body(3, 4), end_of_stream=True)
    assert d.usage.totals[UsageKey("chat", "chat", "premium", "default-flow")].completion_tokens == 4


async def test_saturated_pool_rejects_sheddable_with_openai_error_and_retry_after() -> None:
    d = director(datastore(pods=1), {})
    first = await route(d, "chat")  # the only endpoint now holds one in-flight request
    with pytest.raises(GatewayError) as info:
        await route(d, "batch")
    err = info.value
    assert err.status == 429 and err.headers == {"retry-after": "1"}
    assert orjson.loads(err.body())["error"]["type"] == "rate_limit_error"
    d.on_complete(first)


async def test_queued_request_is_dispatched_when_another_completes() -> None:
    d = director(datastore(pods=1), {})
    first = await route(d, "chat")
    waiting = asyncio.create_task(route(d, "vip"))
    await asyncio.sleep(0.01)
    assert (
        not waiting.done() and d.runtimes.default.flow is not None and d.runtimes.default.flow.queued() == 1
    )
    d.on_response_body(first, b"", end_of_stream=True)
    ctx = await asyncio.wait_for(waiting, 1.0)
    assert ctx.admission is not None and ctx.admission.queued
    assert ctx.picked is not None and ctx.picked.in_flight == 1
    d.on_complete(ctx)


async def test_ttl_expiry_becomes_a_503_gateway_error() -> None:
    d = director(datastore(pods=1), {"defaultRequestTTL": "50ms"})
    first = await route(d, "chat")
    with pytest.raises(GatewayError) as info:
        await route(d, "chat")
    assert info.value.status == 503 and info.value.code == "queue_timeout"
    assert "retry-after" in info.value.headers
    d.on_complete(first)


async def test_disconnect_while_queued_leaves_no_trace() -> None:
    d = director(datastore(pods=1), {})
    first = await route(d, "chat")
    waiting = asyncio.create_task(route(d, "chat"))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert d.runtimes.default.flow is not None and d.runtimes.default.flow.queued() == 0
    assert d.runtimes.default.flow.outcomes[QueueOutcome.EVICTED_CONTEXT_CANCELLED] == 1
    d.on_complete(first)
    assert first.picked is not None and first.picked.in_flight == 0


async def test_without_flow_control_the_director_still_tracks_in_flight() -> None:
    d = Director(datastore(), PoolRuntime(load_config(None), flow_control=False))
    ctx = await route(d, "chat")
    assert ctx.admission is None and ctx.picked is not None and ctx.picked.in_flight == 1
    d.on_complete(ctx)
    assert ctx.picked.in_flight == 0
