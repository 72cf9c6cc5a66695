"""Queues, fairness and ordering policies, and band accounting, without the controller."""

from __future__ import annotations

import asyncio
import random
from collections import deque

import pytest

from inference_gateway.flowcontrol.band import FlowQueue, PriorityBand
from inference_gateway.flowcontrol.config import PriorityBandConfig
from inference_gateway.flowcontrol.policies import (
    DeadlineQueue,
    EDFOrdering,
    FCFSOrdering,
    FifoQueue,
    GlobalStrictFairness,
    ItemQueue,
    RoundRobinFairness,
)
from inference_gateway.flowcontrol.types import FlowRequest, QueueItem


@pytest.fixture
def loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    yield loop  # type: ignore[misc]
    loop.close()


def item(
    loop: asyncio.AbstractEventLoop, flow: str = "f", deadline: float | None = None, size: int = 10
) -> QueueItem:
    return QueueItem(FlowRequest(f"r-{flow}", 0, flow, size), 0.0, deadline, loop.create_future())


@pytest.mark.parametrize("queue_type", [FifoQueue, DeadlineQueue])
def test_queues_remove_from_the_middle_and_keep_order(
    loop: asyncio.AbstractEventLoop, queue_type: type
) -> None:
    q: ItemQueue = queue_type()
    items = [item(loop, deadline=float(i)) for i in range(5)]
    for it in items:
        q.push(it)
    assert q.remove(items[2]) and not q.remove(items[2])
    assert len(q) == 4 and q.peek() is items[0]
    assert [q.pop() for _ in range(4)] == [items[0], items[1], items[3], items[4]]
    assert q.pop() is None and q.peek() is None and len(q) == 0


def test_deadline_queue_orders_by_deadline_and_compacts(loop: asyncio.AbstractEventLoop) -> None:
    q = DeadlineQueue()
    rng = random.Random(3)
    items = [item(loop, deadline=rng.random()) for _ in range(300)]
    items.append(item(loop, deadline=None))
    for it in items:
        q.push(it)
    for it in items[:200]:
        q.remove(it)
    popped = [q.pop() for _ in range(len(q))]
    deadlines = [it.deadline for it in popped if it is not None]
    assert popped[-1] is items[-1]  # no deadline goes last
    assert deadlines[:-1] == sorted(d for d in deadlines[:-1] if d is not None)
    assert len(popped) == 101


def ring_of(
    loop: asyncio.AbstractEventLoop, sizes: dict[str, int], ordering: FCFSOrdering
) -> deque[FlowQueue]:
    ring: deque[FlowQueue] = deque()
    for flow_id, n in sizes.items():
        fq = FlowQueue(FlowRequest("x", 0, flow_id).key, ordering.new_queue(), in_ring=True)
        for _ in range(n):
            fq.queue.push(item(loop, flow_id))
        ring.append(fq)
    return ring


def test_round_robin_takes_turns_and_skips_empty_flows(loop: asyncio.AbstractEventLoop) -> None:
    ordering = FCFSOrdering()
    ring = ring_of(loop, {"a": 3, "empty": 0, "b": 1}, ordering)
    picks = []
    while (flow := RoundRobinFairness().pick(ring, ordering)) is not None:
        picks.append(flow.key.flow_id)
        flow.queue.pop()
    assert picks == ["a", "b", "a", "a"]
    assert not ring


def test_global_strict_takes_the_oldest_head(loop: asyncio.AbstractEventLoop) -> None:
    ordering = FCFSOrdering()
    ring = ring_of(loop, {"a": 2, "b": 2}, ordering)  # a's items are older
    picks = []
    while (flow := GlobalStrictFairness().pick(ring, ordering)) is not None:
        picks.append(flow.key.flow_id)
        flow.queue.pop()
    assert picks == ["a", "a", "b", "b"]


def test_band_accounting_and_idle_flows_are_forgotten(loop: asyncio.AbstractEventLoop) -> None:
    band = PriorityBand(
        PriorityBandConfig(0, "Standard", max_bytes=25, max_requests=3, ordering=EDFOrdering())
    )
    a1, a2, b1 = item(loop, "a"), item(loop, "a"), item(loop, "b")
    for it in (a1, a2):
        band.push(it)
    assert band.has_room(5) and not band.has_room(6)  # bytes: 20 of 25 used
    band.push(b1)
    assert not band.has_room(1)  # requests: 3 of 3
    assert band.remove(a2) is not None and band.remove(a2) is None
    assert band.occupancy.requests == 2 and band.occupancy.bytes == 20
    popped = [band.pop_next(), band.pop_next(), band.pop_next()]
    assert popped[:2] in ([a1, b1], [b1, a1]) and popped[2] is None
    assert band.flows == {} and band.occupancy.requests == 0 and band.occupancy.bytes == 0
