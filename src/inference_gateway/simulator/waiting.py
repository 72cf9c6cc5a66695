"""The engine's waiting queue, in vLLM's two scheduling policies.

`fcfs` (vLLM's default) is a deque: arrivals join the back, preempted requests go back to the
front. `priority` (`--scheduling-policy priority`) is a heap ordered by (priority, arrival):
the lowest `priority` value runs first, ties by arrival; a preempted request re-enters by
the same order (vLLM's PriorityRequestQueue.prepend_request is a heap push too).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable
from typing import Literal, Protocol

from inference_gateway.simulator.sequence import Sequence

SchedulingPolicy = Literal["fcfs", "priority"]
SCHEDULING_POLICIES: tuple[SchedulingPolicy, ...] = ("fcfs", "priority")


class WaitingQueue(Protocol):
    def add(self, seq: Sequence) -> None: ...

    def prepend(self, seq: Sequence) -> None: ...

    def prepend_all(self, seqs: Iterable[Sequence]) -> None: ...

    def peek(self) -> Sequence: ...

    def pop_next(self) -> Sequence: ...

    def __len__(self) -> int: ...


class FcfsQueue(deque[Sequence]):
    def add(self, seq: Sequence) -> None:
        self.append(seq)

    def prepend(self, seq: Sequence) -> None:
        self.appendleft(seq)

    def prepend_all(self, seqs: Iterable[Sequence]) -> None:
        """Put `seqs` back at the front, keeping their order."""
        self.extendleft(reversed(list(seqs)))

    def peek(self) -> Sequence:
        return self[0]

    def pop_next(self) -> Sequence:
        return self.popleft()


class PriorityQueue:
    __slots__ = ("_heap",)

    def __init__(self) -> None:
        self._heap: list[tuple[int, float, int, Sequence]] = []

    def add(self, seq: Sequence) -> None:
        heapq.heappush(self._heap, (seq.priority, seq.arrival, seq.uid, seq))

    prepend = add

    def prepend_all(self, seqs: Iterable[Sequence]) -> None:
        for seq in seqs:
            self.add(seq)

    def peek(self) -> Sequence:
        return self._heap[0][3]

    def pop_next(self) -> Sequence:
        return heapq.heappop(self._heap)[3]

    def __len__(self) -> int:
        return len(self._heap)

    def __bool__(self) -> bool:
        return bool(self._heap)


def waiting_queue(policy: SchedulingPolicy) -> WaitingQueue:
    if policy == "priority":
        return PriorityQueue()
    if policy == "fcfs":
        return FcfsQueue()
    raise ValueError(f"unknown scheduling policy {policy!r} (want fcfs or priority)")
