"""A small fleet model and a virtual-time event loop to drive the real FlowController under overload.

VirtualTimeLoop is an ordinary asyncio loop whose clock jumps to the next timer instead of
sleeping, so seconds of simulated traffic take milliseconds and every run is identical. The
code under test (asyncio.wait timeouts, asyncio.timeout, Events) runs unmodified.
"""

from __future__ import annotations

import asyncio
import random
import selectors
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from inference_gateway.api.types import ObjectRef
from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.flowcontrol import FlowController, FlowControlRejected, FlowRequest

T = TypeVar("T")


class _ClockSelector(selectors.BaseSelector):
    """Never reports I/O; 'waiting' for a timeout advances the loop's virtual clock."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        self._loop = loop
        self._keys: dict[Any, selectors.SelectorKey] = {}

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        key = selectors.SelectorKey(fileobj, fileobj if isinstance(fileobj, int) else -1, events, data)
        self._keys[fileobj] = key
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._keys.pop(fileobj)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            raise RuntimeError("virtual-time loop would block forever: nothing is scheduled")
        self._loop.now += timeout
        return []

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._keys


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(selector=_ClockSelector(self))

    def time(self) -> float:
        return self.now


def run_virtual(main: Callable[[Any], Awaitable[T]], real_time: bool = False) -> T:
    """Run `main(loop)` on a fresh virtual-time loop (or an ordinary one, for real time)."""
    loop = asyncio.new_event_loop() if real_time else VirtualTimeLoop()
    try:
        return loop.run_until_complete(main(loop))
    finally:
        loop.close()


@dataclass
class Fleet:
    """`size` model servers, each running up to `slots` requests at once for `service_s` each.

    Requests beyond the slots wait inside the server (the queue flow control tries to avoid).
    """

    size: int
    slots: int
    service_s: float  # mean; each request takes uniformly 0.5x..1.5x of it
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    endpoints: list[Endpoint] = field(init=False)
    _slots: dict[str, asyncio.Semaphore] = field(init=False)

    def __post_init__(self) -> None:
        self.endpoints = [
            Endpoint(f"ep{i}", ObjectRef("default", f"pod{i}"), "127.0.0.1", 8000 + i, {})
            for i in range(self.size)
        ]
        self._slots = {}

    def pick(self) -> Endpoint:
        return min(self.endpoints, key=lambda e: e.in_flight)

    async def serve(self, endpoint: Endpoint) -> None:
        slots = self._slots.get(endpoint.address)
        if slots is None:
            slots = self._slots[endpoint.address] = asyncio.Semaphore(self.slots)
        async with slots:
            await asyncio.sleep(self.service_s * self.rng.uniform(0.5, 1.5))


@dataclass(frozen=True)
class Result:
    request_id: str
    cls: str
    flow_id: str
    status: int  # 200 served, 429/503 from flow control, 499 client went away
    latency: float


@dataclass(frozen=True)
class TrafficClass:
    name: str
    priority: int
    rate: float  # requests per second, Poisson arrivals
    flow_id: str = "default-flow"
    patience_s: float | None = None  # clients that give up (disconnect) after this long


async def client(
    ctl: FlowController, fleet: Fleet, cls: TrafficClass, seq: int, results: list[Result], pool: str = "pool"
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    request = FlowRequest(f"{cls.name}-{seq}", cls.priority, cls.flow_id, 1000, pool, "m", "m")
    status = 200
    try:
        try:
            admission = await ctl.admit(request, lambda: fleet.endpoints)
        except FlowControlRejected as exc:
            status = exc.status
        else:
            endpoint = fleet.pick()
            endpoint.load.requests += 1
            try:
                await fleet.serve(endpoint)
            finally:
                endpoint.load.requests -= 1
                admission.release()
    except asyncio.CancelledError:
        status = 499  # the client went away, queued or while being served
    results.append(Result(request.request_id, cls.name, cls.flow_id, status, loop.time() - started))


async def offer_load(
    ctl: FlowController,
    fleet: Fleet,
    classes: list[TrafficClass],
    duration_s: float,
    rng: random.Random,
    pool: str = "pool",
) -> tuple[list[Result], int]:
    """Open-loop arrivals for `duration_s`; returns every result and how many requests were sent."""
    results: list[Result] = []
    tasks: list[asyncio.Task[None]] = []
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def arrivals(cls: TrafficClass) -> None:
        seq = 0
        due = start
        while True:
            due += rng.expovariate(cls.rate)  # absolute schedule: a late loop catches up
            if due - start >= duration_s:
                return
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            task = loop.create_task(client(ctl, fleet, cls, seq, results, pool))
            tasks.append(task)
            if cls.patience_s is not None:
                loop.call_later(rng.uniform(0, cls.patience_s), task.cancel)
            seq += 1

    await asyncio.gather(*(arrivals(c) for c in classes))
    await asyncio.gather(*tasks, return_exceptions=True)
    return results, len(tasks)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]
