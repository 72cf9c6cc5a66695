"""Policies, named as upstream's flow-control plugins.

Ordering (inside one flow's queue): fcfs-ordering-policy, edf-ordering-policy (the request's
TTL deadline), slo-deadline-ordering-policy (arrival + the client's `x-slo-ttft-ms`).
Fairness (between the flows of one priority band): round-robin-fairness-policy,
global-strict-fairness-policy (global FCFS/EDF: the flow whose head is best goes next).
Policies are stateless; the queues and the band's ring of active flows hold the state.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from inference_gateway.flowcontrol.types import QueueItem

if TYPE_CHECKING:
    from inference_gateway.flowcontrol.band import FlowQueue
    from inference_gateway.scheduling.registry import PluginRegistry

DEFAULT_FAIRNESS_POLICY = "round-robin-fairness-policy"
DEFAULT_ORDERING_POLICY = "fcfs-ordering-policy"


class ItemQueue(Protocol):
    def push(self, item: QueueItem) -> None: ...
    def peek(self) -> QueueItem | None: ...
    def pop(self) -> QueueItem | None: ...
    def remove(self, item: QueueItem) -> bool: ...
    def __len__(self) -> int: ...


class FifoQueue:
    """Arrival order with O(1) removal from the middle (a cancelled client leaves at once)."""

    def __init__(self) -> None:
        self._items: OrderedDict[int, QueueItem] = OrderedDict()

    def push(self, item: QueueItem) -> None:
        self._items[item.seq] = item

    def peek(self) -> QueueItem | None:
        return next(iter(self._items.values()), None) if self._items else None

    def pop(self) -> QueueItem | None:
        return self._items.popitem(last=False)[1] if self._items else None

    def remove(self, item: QueueItem) -> bool:
        return self._items.pop(item.seq, None) is not None

    def __len__(self) -> int:
        return len(self._items)


def deadline_key(item: QueueItem) -> tuple[float, int]:
    """Earliest deadline first; requests without a deadline after all that have one, FCFS among them."""
    return (item.deadline if item.deadline is not None else float("inf"), item.seq)


def slo_deadline_key(item: QueueItem) -> tuple[float, int]:
    """Arrival + TTFT objective first; requests without one after all that have one, FCFS."""
    slo = item.request.slo_ttft_s
    return (item.enqueued_at + slo if slo is not None else float("inf"), item.seq)


class DeadlineQueue:
    """A heap ordered by a deadline key; removals are lazy and the heap is compacted when half dead."""

    def __init__(self, key: Callable[[QueueItem], tuple[float, int]] = deadline_key) -> None:
        self._key = key
        self._heap: list[tuple[tuple[float, int], QueueItem]] = []
        self._live: dict[int, QueueItem] = {}

    def push(self, item: QueueItem) -> None:
        self._live[item.seq] = item
        heapq.heappush(self._heap, (self._key(item), item))

    def _drop_dead(self) -> None:
        while self._heap and self._heap[0][1].seq not in self._live:
            heapq.heappop(self._heap)

    def peek(self) -> QueueItem | None:
        self._drop_dead()
        return self._heap[0][1] if self._heap else None

    def pop(self) -> QueueItem | None:
        self._drop_dead()
        if not self._heap:
            return None
        item = heapq.heappop(self._heap)[1]
        del self._live[item.seq]
        return item

    def remove(self, item: QueueItem) -> bool:
        if self._live.pop(item.seq, None) is None:
            return False
        if len(self._heap) > 2 * len(self._live) + 64:
            self._heap = [entry for entry in self._heap if entry[1].seq in self._live]
            heapq.heapify(self._heap)
        return True

    def __len__(self) -> int:
        return len(self._live)


@runtime_checkable
class OrderingPolicy(Protocol):
    type_name: str
    name: str

    def new_queue(self) -> ItemQueue: ...

    def key(self, item: QueueItem) -> tuple[float, int]:
        """Smaller is dispatched first; used to compare heads across flows."""
        ...


@runtime_checkable
class FairnessPolicy(Protocol):
    type_name: str
    name: str

    def pick(self, ring: deque[FlowQueue], ordering: OrderingPolicy) -> FlowQueue | None:
        """The flow to dispatch from next. `ring` holds the band's flows that have (or had) items."""
        ...


class _Named:
    type_name = ""

    def __init__(self, name: str = "", parameters: dict[str, Any] | None = None) -> None:
        self.name = name or self.type_name


class FCFSOrdering(_Named):
    type_name = "fcfs-ordering-policy"

    def new_queue(self) -> ItemQueue:
        return FifoQueue()

    def key(self, item: QueueItem) -> tuple[float, int]:
        return (0.0, item.seq)


class EDFOrdering(_Named):
    type_name = "edf-ordering-policy"

    def new_queue(self) -> ItemQueue:
        return DeadlineQueue()

    def key(self, item: QueueItem) -> tuple[float, int]:
        return deadline_key(item)


class SLODeadlineOrdering(_Named):
    """Upstream v1.5's slo-deadline-ordering-policy: earliest (arrival + x-slo-ttft-ms) first."""

    type_name = "slo-deadline-ordering-policy"

    def new_queue(self) -> ItemQueue:
        return DeadlineQueue(slo_deadline_key)

    def key(self, item: QueueItem) -> tuple[float, int]:
        return slo_deadline_key(item)


def _drop_empty_head(ring: deque[FlowQueue]) -> FlowQueue | None:
    while ring:
        flow = ring[0]
        if len(flow.queue):
            return flow
        ring.popleft()
        flow.in_ring = False
    return None


class RoundRobinFairness(_Named):
    """Each backlogged flow gets one dispatch per turn, whatever its arrival rate."""

    type_name = "round-robin-fairness-policy"

    def pick(self, ring: deque[FlowQueue], ordering: OrderingPolicy) -> FlowQueue | None:
        flow = _drop_empty_head(ring)
        if flow is not None:
            ring.rotate(-1)
        return flow


class GlobalStrictFairness(_Named):
    """No fairness between flows: the best head in the band (by the ordering policy) goes next."""

    type_name = "global-strict-fairness-policy"

    def pick(self, ring: deque[FlowQueue], ordering: OrderingPolicy) -> FlowQueue | None:
        best: FlowQueue | None = None
        best_key: tuple[float, int] | None = None
        for flow in ring:
            head = flow.queue.peek()
            if head is None:
                continue
            key = ordering.key(head)
            if best_key is None or key < best_key:
                best, best_key = flow, key
        return best


FAIRNESS_TYPES: dict[str, type[_Named]] = {
    RoundRobinFairness.type_name: RoundRobinFairness,
    GlobalStrictFairness.type_name: GlobalStrictFairness,
}
ORDERING_TYPES: dict[str, type[_Named]] = {
    FCFSOrdering.type_name: FCFSOrdering,
    EDFOrdering.type_name: EDFOrdering,
    SLODeadlineOrdering.type_name: SLODeadlineOrdering,
}


def _resolve(ref: str, plugins: dict[str, Any] | None, kind: type, types: dict[str, type[_Named]]) -> Any:
    """A policy by plugin name (from the config's `plugins`) or by type name."""
    found = (plugins or {}).get(ref)
    if isinstance(found, kind):
        return found
    cls = types.get(ref)
    if cls is None:
        label = "fairness" if kind is FairnessPolicy else "ordering"
        raise ValueError(f"unknown {label} policy {ref!r} (known: {', '.join(sorted(types))})")
    policy = cls(ref)
    assert isinstance(policy, kind)
    return policy


def resolve_fairness(ref: str, plugins: dict[str, Any] | None = None) -> FairnessPolicy:
    policy: FairnessPolicy = _resolve(ref, plugins, FairnessPolicy, FAIRNESS_TYPES)
    return policy


def resolve_ordering(ref: str, plugins: dict[str, Any] | None = None) -> OrderingPolicy:
    policy: OrderingPolicy = _resolve(ref, plugins, OrderingPolicy, ORDERING_TYPES)
    return policy


def register_flow_control_plugins(registry: PluginRegistry) -> None:
    """Let `plugins:` entries of these types load (scheduling.registry.PluginRegistry)."""
    for cls in (*FAIRNESS_TYPES.values(), *ORDERING_TYPES.values()):
        registry.register(cls.type_name, cls)
