"""FlowController behaviour in real time: admission, ordering, bounds, TTL, cancellation, shutdown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from inference_gateway.flowcontrol import (
    FlowController,
    FlowControlMetrics,
    FlowControlRejected,
    FlowRequest,
    QueueOutcome,
    parse_flow_control,
)

POOL = "default/pool"


class Gate:
    """A saturation detector the test opens and closes."""

    def __init__(self, saturated: bool = False) -> None:
        self.saturated = saturated
        self.on_check: Callable[[], None] | None = None

    def is_saturated(self, endpoints: list[Any]) -> bool:
        if self.on_check is not None:
            self.on_check()
        return self.saturated


def make(gate: Gate, **section: Any) -> tuple[FlowController, CollectorRegistry]:
    registry = CollectorRegistry()
    return FlowController(parse_flow_control(section), gate, FlowControlMetrics(registry)), registry


MODELS = {"model_name": "model-a", "target_model_name": "model-a"}


def req(rid: str, priority: int = 0, flow: str = "default-flow", size: int = 100) -> FlowRequest:
    return FlowRequest(rid, priority, flow, size, POOL, "model-a", "model-a")


async def admit_all(
    ctl: FlowController, requests: list[FlowRequest], order: list[str]
) -> list[asyncio.Task[Any]]:
    async def one(r: FlowRequest) -> Any:
        admission = await ctl.admit(r, list)
        order.append(r.request_id)
        return admission

    tasks = [asyncio.create_task(one(r)) for r in requests]
    await settle()
    return tasks


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_passes_straight_through_when_not_saturated() -> None:
    ctl, registry = make(Gate(saturated=False))
    admission = await ctl.admit(req("a"), list)
    assert not admission.queued and admission.waited_s == 0.0
    assert ctl.outcomes[QueueOutcome.DISPATCHED] == 1
    assert ctl.in_flight(POOL) == 1
    labels = {"fairness_id": "default-flow", "priority": "0", "inference_pool": POOL}
    assert sample(registry, "inference_extension_flow_control_dispatch_total", **labels, queued="false") == 1
    admission.release()
    admission.release()  # idempotent
    assert ctl.in_flight(POOL) == 0


async def test_queues_while_saturated_and_dispatches_in_arrival_order() -> None:
    gate = Gate(saturated=True)
    ctl, registry = make(gate)
    order: list[str] = []
    tasks = await admit_all(ctl, [req("a"), req("b"), req("c")], order)
    assert order == [] and ctl.queued() == 3
    labels = {"fairness_id": "default-flow", "priority": "0", "inference_pool": POOL}
    queue = labels | MODELS
    assert sample(registry, "inference_extension_flow_control_queue_size", **queue) == 3
    assert sample(registry, "inference_extension_flow_control_queue_bytes", **queue) == 300
    assert sample(registry, "inference_extension_flow_control_pool_saturation", inference_pool=POOL) == 1
    entered = {"fairness_id": "default-flow", "priority": "0", "outcome": "NotYetFinalized"}
    assert (
        sample(registry, "inference_extension_flow_control_request_enqueue_duration_seconds_count", **entered)
        == 3
    )
    gate.saturated = False
    ctl.notify()
    admissions = await asyncio.gather(*tasks)
    assert order == ["a", "b", "c"]
    assert all(a.queued for a in admissions)
    assert sample(registry, "inference_extension_flow_control_queue_size", **queue) == 0
    assert sample(registry, "inference_extension_flow_control_pool_saturation", inference_pool=POOL) == 0
    assert sample(registry, "inference_extension_flow_control_dispatch_cycle_duration_seconds_count") >= 3
    assert sample(registry, "inference_extension_flow_control_dispatch_total", **labels, queued="true") == 3


async def test_higher_priority_band_always_dispatches_first() -> None:
    gate = Gate(saturated=True)
    ctl, _ = make(gate)
    order: list[str] = []
    tasks = await admit_all(ctl, [req("std-1"), req("std-2"), req("crit", priority=1), req("std-3")], order)
    gate.saturated = False
    ctl.notify()
    await asyncio.gather(*tasks)
    assert order == ["crit", "std-1", "std-2", "std-3"]


async def test_round_robin_between_flows_of_a_band() -> None:
    gate = Gate(saturated=True)
    ctl, _ = make(gate)
    order: list[str] = []
    noisy = [req(f"n{i}", flow="noisy") for i in range(4)]
    tasks = await admit_all(ctl, [*noisy, req("q0", flow="quiet"), req("q1", flow="quiet")], order)
    gate.saturated = False
    ctl.notify()
    await asyncio.gather(*tasks)
    assert order == ["n0", "q0", "n1", "q1", "n2", "n3"]


async def test_a_new_request_waits_behind_the_backlog_of_its_band() -> None:
    gate = Gate(saturated=True)
    ctl, _ = make(gate)
    order: list[str] = []
    first = await admit_all(ctl, [req("queued")], order)
    gate.saturated = False  # capacity is back, but nobody told the controller yet
    late = await admit_all(ctl, [req("late")], order)
    await asyncio.gather(*first, *late)
    assert order == ["queued", "late"]


async def test_periodic_recheck_dispatches_without_a_notify() -> None:
    gate = Gate(saturated=True)
    ctl, _ = make(gate, recheckInterval="10ms")
    task = asyncio.create_task(ctl.admit(req("a"), list))
    await settle()
    gate.saturated = False
    started = time.monotonic()
    admission = await asyncio.wait_for(task, 1.0)
    assert admission.queued
    assert time.monotonic() - started < 0.5


async def test_sheddable_is_rejected_not_queued_when_saturated() -> None:
    gate = Gate(saturated=True)
    ctl, registry = make(gate)
    with pytest.raises(FlowControlRejected) as info:
        await ctl.admit(req("s", priority=-1), list)
    assert info.value.status == 429 and info.value.code == "pool_saturated"
    assert info.value.headers == {"retry-after": "1"}
    assert ctl.queued() == 0
    labels = {"fairness_id": "default-flow", "priority": "-1", "inference_pool": POOL}
    assert (
        sample(registry, "inference_extension_flow_control_rejections_total", **labels, reason="sheddable")
        == 1
    )
    gate.saturated = False
    assert not (await ctl.admit(req("s2", priority=-1), list)).queued


async def test_sheddable_queues_when_rejection_is_disabled() -> None:
    gate = Gate(saturated=True)
    ctl, _ = make(gate, rejectSheddable=False)
    task = asyncio.create_task(ctl.admit(req("s", priority=-1), list))
    await settle()
    assert ctl.queued(priority=-1) == 1
    gate.saturated = False
    ctl.notify()
    assert (await task).queued


@pytest.mark.parametrize(
    ("section", "sizes", "admitted"),
    [
        ({"priorityBands": [{"priority": 0, "maxRequests": 2}]}, [1, 1, 1], 2),
        ({"maxRequests": 1}, [1, 1], 1),
        ({"priorityBands": [{"priority": 0, "maxBytes": "1k"}]}, [600, 600, 300], 2),
        ({"maxBytes": 1000}, [999, 2], 1),
    ],
)
async def test_queue_bounds_reject_with_429(section: dict[str, Any], sizes: list[int], admitted: int) -> None:
    ctl, _ = make(Gate(saturated=True), **section)
    tasks = [asyncio.create_task(ctl.admit(req(f"r{i}", size=s), list)) for i, s in enumerate(sizes)]
    await settle()
    rejected = [t for t in tasks if t.done()]
    assert ctl.queued() == admitted and len(rejected) == len(sizes) - admitted
    for t in rejected:
        exc = t.exception()
        assert isinstance(exc, FlowControlRejected) and exc.status == 429 and exc.code == "queue_full"
    assert ctl.outcomes[QueueOutcome.REJECTED_CAPACITY] == len(sizes) - admitted
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert ctl.queued() == 0 and ctl.occupancy.bytes == 0


async def test_ttl_expiry_answers_503_on_time() -> None:
    ctl, registry = make(Gate(saturated=True), defaultRequestTTL="100ms")
    started = time.monotonic()
    with pytest.raises(FlowControlRejected) as info:
        await ctl.admit(req("slow"), list)
    elapsed = time.monotonic() - started
    assert 0.1 <= elapsed < 0.25
    assert info.value.status == 503 and info.value.code == "queue_timeout"
    assert info.value.headers["retry-after"] == "1"
    assert ctl.queued() == 0 and ctl.outcomes[QueueOutcome.EVICTED_TTL] == 1
    labels = {"fairness_id": "default-flow", "priority": "0", "inference_pool": POOL}
    count = sample(
        registry,
        "inference_extension_flow_control_request_queue_duration_seconds_count",
        **labels,
        outcome="EvictedTTL",
        model_name="model-a",
        target_model_name="model-a",
    )
    assert count == 1


async def test_a_disconnected_client_leaves_the_queue_at_once() -> None:
    gate = Gate(saturated=True)
    ctl, registry = make(gate)
    order: list[str] = []
    tasks = await admit_all(ctl, [req("a"), req("gone"), req("c")], order)
    tasks[1].cancel()
    await asyncio.wait([tasks[1]])
    assert ctl.queued() == 2 and ctl.occupancy.bytes == 200
    assert ctl.outcomes[QueueOutcome.EVICTED_CONTEXT_CANCELLED] == 1
    labels = {"fairness_id": "default-flow", "priority": "0", "inference_pool": POOL}
    assert sample(registry, "inference_extension_flow_control_queue_size", **labels, **MODELS) == 2
    gate.saturated = False
    ctl.notify()
    await asyncio.gather(*tasks[::2])
    assert order == ["a", "c"]


async def test_a_client_cancelled_right_after_dispatch_gives_its_slot_back() -> None:
    gate = Gate(saturated=True)
    ctl, _ = make(gate)
    task = asyncio.create_task(ctl.admit(req("a"), list))
    await settle()
    loop = asyncio.get_running_loop()
    # The cancel runs after this dispatch cycle, before the waiter resumes.
    gate.on_check = lambda: loop.call_soon(task.cancel)
    gate.saturated = False
    ctl.notify()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ctl.outcomes[QueueOutcome.DISPATCHED] == 1
    assert ctl.in_flight(POOL) == 0
    gate.on_check = None
    follow_up = await asyncio.wait_for(ctl.admit(req("b"), list), 1.0)  # the dispatcher is not stuck
    assert not follow_up.queued


async def test_close_answers_everyone_queued_with_503() -> None:
    ctl, _ = make(Gate(saturated=True))
    tasks = [asyncio.create_task(ctl.admit(req(f"r{i}"), list)) for i in range(3)]
    await settle()
    await ctl.close()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, FlowControlRejected) and r.status == 503 for r in results)
    assert ctl.outcomes[QueueOutcome.EVICTED_OTHER] == 3 and ctl.queued() == 0
    with pytest.raises(FlowControlRejected):
        await ctl.admit(req("late"), list)


async def test_a_failing_detector_fails_open() -> None:
    def broken(endpoints: list[Any]) -> bool:
        raise RuntimeError("metrics unavailable")

    ctl = FlowController(parse_flow_control({}), broken)
    assert not (await ctl.admit(req("a"), list)).queued


async def test_edf_ordering_dispatches_the_earliest_deadline_first() -> None:
    gate = Gate(saturated=True)
    ctl, _ = make(gate, priorityBands=[{"priority": 0, "orderingPolicyRef": "edf-ordering-policy"}])
    order: list[str] = []
    relaxed = FlowRequest("relaxed", 0, "f", 1, POOL, ttl_s=10.0)
    urgent = FlowRequest("urgent", 0, "f", 1, POOL, ttl_s=1.0)
    tasks = await admit_all(ctl, [relaxed, urgent], order)
    gate.saturated = False
    ctl.notify()
    await asyncio.gather(*tasks)
    assert order == ["urgent", "relaxed"]


async def test_pools_queue_independently() -> None:
    gates = {"p1": True, "p2": False}
    ctl = FlowController(parse_flow_control({}), lambda endpoints: gates[endpoints[0]])
    blocked = asyncio.create_task(ctl.admit(FlowRequest("x", pool="p1"), lambda: ["p1"]))
    await settle()
    free = await ctl.admit(FlowRequest("y", pool="p2"), lambda: ["p2"])
    assert not free.queued and ctl.queued(pool="p1") == 1
    blocked.cancel()
    await asyncio.gather(blocked, return_exceptions=True)
