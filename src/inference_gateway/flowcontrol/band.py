"""Queues: one per flow, grouped in priority bands, grouped per pool, with exact accounting."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from inference_gateway.flowcontrol.config import PriorityBandConfig
from inference_gateway.flowcontrol.policies import ItemQueue
from inference_gateway.flowcontrol.types import CandidateSource, FlowKey, QueueItem


@dataclass(eq=False)
class FlowQueue:
    key: FlowKey
    queue: ItemQueue
    bytes: int = 0
    in_ring: bool = False


@dataclass
class Occupancy:
    """Requests and bytes held, kept at flow, band, pool and controller level."""

    requests: int = 0
    bytes: int = 0

    def add(self, size: int) -> None:
        self.requests += 1
        self.bytes += size

    def sub(self, size: int) -> None:
        self.requests -= 1
        self.bytes -= size

    def has_room(self, size: int, max_requests: int, max_bytes: int) -> bool:
        if max_requests and self.requests + 1 > max_requests:
            return False
        return not (max_bytes and size and self.bytes + size > max_bytes)


class PriorityBand:
    def __init__(self, config: PriorityBandConfig) -> None:
        self.config = config
        self.priority = config.priority
        self.flows: dict[str, FlowQueue] = {}
        self.ring: deque[FlowQueue] = deque()
        self.occupancy = Occupancy()

    def has_room(self, size: int) -> bool:
        return self.occupancy.has_room(size, self.config.max_requests, self.config.max_bytes)

    def push(self, item: QueueItem) -> FlowQueue:
        key = item.request.key
        flow = self.flows.get(key.flow_id)
        if flow is None:
            flow = self.flows[key.flow_id] = FlowQueue(key, self.config.ordering.new_queue())
        flow.queue.push(item)
        flow.bytes += item.request.byte_size
        self.occupancy.add(item.request.byte_size)
        if not flow.in_ring:
            flow.in_ring = True
            self.ring.append(flow)
        return flow

    def remove(self, item: QueueItem) -> FlowQueue | None:
        """Take a waiting item out (cancelled or expired); None if it was not queued here."""
        flow = self.flows.get(item.request.flow_id)
        if flow is None or not flow.queue.remove(item):
            return None
        self._account_removed(flow, item)
        return flow

    def pop_next(self) -> QueueItem | None:
        flow = self.config.fairness.pick(self.ring, self.config.ordering)
        if flow is None:
            return None
        item = flow.queue.pop()
        if item is not None:
            self._account_removed(flow, item)
        return item

    def _account_removed(self, flow: FlowQueue, item: QueueItem) -> None:
        flow.bytes -= item.request.byte_size
        self.occupancy.sub(item.request.byte_size)
        if not len(flow.queue):
            # Forget idle flows so tenant ids cannot grow the map forever; the ring drops it lazily.
            del self.flows[flow.key.flow_id]


@dataclass(eq=False)
class PoolQueues:
    """Everything queued for one InferencePool; its dispatcher task runs only while it is non-empty."""

    name: str
    candidates: CandidateSource
    bands: dict[int, PriorityBand] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    occupancy: Occupancy = field(default_factory=Occupancy)
    unbound: int = 0  # dispatched from the queue, its task not yet run (not yet in the ledger)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    dispatcher: asyncio.Task[None] | None = None

    def band(self, config: PriorityBandConfig) -> PriorityBand:
        band = self.bands.get(config.priority)
        if band is None:
            band = self.bands[config.priority] = PriorityBand(config)
            self.order = sorted(self.bands, reverse=True)
        return band

    def backlog_at_or_above(self, priority: int) -> bool:
        """True if someone of equal or higher priority is already waiting (they go first)."""
        if not self.occupancy.requests:
            return False
        return any(p >= priority and self.bands[p].occupancy.requests for p in self.order)

    def pop_next(self) -> QueueItem | None:
        """Strict priority between bands: the highest non-empty band dispatches."""
        for priority in self.order:
            band = self.bands[priority]
            if band.occupancy.requests:
                item = band.pop_next()
                if item is not None:
                    return item
        return None

    def flows(self) -> Iterator[FlowQueue]:
        for band in self.bands.values():
            yield from band.flows.values()
