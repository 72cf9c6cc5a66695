"""The FlowController: admit now, queue, or reject; dispatch from the queues as capacity frees.

One event loop owns all state, so the check-then-act sequences need no locks (upstream's
ShardProcessor gets the same guarantee from a single-writer goroutine). Each queued item's
future is completed only by the controller, and its outcome is recorded exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from inference_gateway.datastore.ledger import Dispatch, InFlightLedger
from inference_gateway.flowcontrol.band import Occupancy, PoolQueues, PriorityBand
from inference_gateway.flowcontrol.config import FlowControlConfig
from inference_gateway.flowcontrol.metrics import FlowControlMetrics
from inference_gateway.flowcontrol.types import (
    CandidateSource,
    FlowControlRejected,
    FlowRequest,
    QueueItem,
    QueueOutcome,
    SaturationCheck,
    saturation_check,
)
from inference_gateway.scheduling.saturation import SaturationSignal

log = logging.getLogger(__name__)

_STATUS = {
    QueueOutcome.REJECTED_CAPACITY: 429,
    QueueOutcome.REJECTED_SHEDDABLE: 429,
    QueueOutcome.EVICTED_TTL: 503,
    QueueOutcome.EVICTED_OTHER: 503,
    QueueOutcome.REJECTED_OTHER: 503,
}


@dataclass(eq=False)
class Admission:
    """A dispatched request. release() when it completes, so a queued request can take its place."""

    request: FlowRequest
    waited_s: float
    queued: bool
    _release: Callable[[], None] = field(repr=False)
    record: Dispatch | None = None  # its entry in the in-flight ledger
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self._release()


class FlowController:
    def __init__(
        self,
        config: FlowControlConfig,
        detector: SaturationSignal | SaturationCheck,
        metrics: FlowControlMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        ledger: InFlightLedger | None = None,
    ) -> None:
        self.config = config
        self.ledger = ledger if ledger is not None else InFlightLedger(clock)
        self.metrics = metrics or FlowControlMetrics()
        self.occupancy = Occupancy()
        self.outcomes: Counter[QueueOutcome] = Counter()
        self.dispatches: Counter[tuple[str, int]] = Counter()  # (flow id, priority)
        self._is_saturated = saturation_check(detector)
        self._clock = clock
        self._pools: dict[str, PoolQueues] = {}
        self._closed = False

    # --- the request path -------------------------------------------------
    async def admit(self, request: FlowRequest, candidates: CandidateSource) -> Admission:
        """Return once the request may be scheduled; raise FlowControlRejected if it may not.

        Cancelling the awaiting task (the client went away) removes the request from its queue.
        """
        started = self._clock()
        pool = self._pool(request.pool, candidates)
        if self._closed:
            raise self._reject(request, QueueOutcome.REJECTED_OTHER, started, "the gateway is shutting down")
        if not pool.unbound and not pool.backlog_at_or_above(request.priority) and not self._saturated(pool):
            self.metrics.entered(request, QueueOutcome.DISPATCHED, self._clock() - started)
            return self._admit_now(pool, request, started)
        if request.sheddable and self.config.reject_sheddable:
            msg = f"InferencePool {request.pool} is saturated; sheddable requests are not queued"
            self.metrics.entered(request, QueueOutcome.REJECTED_SHEDDABLE, self._clock() - started)
            raise self._reject(request, QueueOutcome.REJECTED_SHEDDABLE, started, msg)
        band = pool.bands.get(request.priority) or pool.band(self.config.band(request.priority))
        if not self._has_room(band, request.byte_size):
            msg = f"the flow-control queue for priority {request.priority} ({band.config.name}) is full"
            self.metrics.entered(request, QueueOutcome.REJECTED_CAPACITY, self._clock() - started)
            raise self._reject(request, QueueOutcome.REJECTED_CAPACITY, started, msg)
        item = self._enqueue(pool, band, request, started)
        self.metrics.entered(request, None, self._clock() - started)
        return await self._wait(pool, band, item)

    def notify(self, pool: str | None = None) -> None:
        """Capacity may have freed (metrics refreshed, a request completed): re-check the queues."""
        if pool is None:
            for p in self._pools.values():
                p.wakeup.set()
        elif (queues := self._pools.get(pool)) is not None:
            queues.wakeup.set()

    async def close(self) -> None:
        """Answer every queued request with 503 and stop the dispatchers."""
        self._closed = True
        for pool in self._pools.values():
            while (item := pool.pop_next()) is not None:
                self._finalize_removed(pool, item, QueueOutcome.EVICTED_OTHER)
                rejection = self._rejection(item.request, QueueOutcome.EVICTED_OTHER, "shutdown")
                item.future.set_exception(rejection)
            if pool.dispatcher is not None:
                pool.dispatcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pool.dispatcher

    # --- introspection ----------------------------------------------------
    def queued(self, pool: str | None = None, flow_id: str | None = None, priority: int | None = None) -> int:
        total = 0
        for name, queues in self._pools.items():
            if pool is not None and name != pool:
                continue
            for flow in queues.flows():
                if (flow_id is None or flow.key.flow_id == flow_id) and (
                    priority is None or flow.key.priority == priority
                ):
                    total += len(flow.queue)
        return total

    def band_depths(self) -> dict[str, dict[int, int]]:
        """Queued requests per pool and priority band (the status page shows them)."""
        return {
            name: {p: queues.bands[p].occupancy.requests for p in queues.order}
            for name, queues in self._pools.items()
        }

    def in_flight(self, pool: str) -> int:
        return self.ledger.pool_requests(pool)

    # --- internals --------------------------------------------------------
    def _pool(self, name: str, candidates: CandidateSource) -> PoolQueues:
        pool = self._pools.get(name)
        if pool is None:
            pool = self._pools[name] = PoolQueues(name, candidates)
        else:
            pool.candidates = candidates
        return pool

    def _saturated(self, pool: PoolQueues) -> bool:
        try:
            saturated = self._is_saturated(list(pool.candidates()))
            self.metrics.saturation(pool.name, saturated)
            return saturated
        except Exception:  # a broken detector must not take the request path down: fail open
            log.exception("saturation detector failed for pool %s; treating it as not saturated", pool.name)
            return False

    def _has_room(self, band: PriorityBand, size: int) -> bool:
        cfg = self.config
        return band.has_room(size) and self.occupancy.has_room(size, cfg.max_requests, cfg.max_bytes)

    def _admit_now(self, pool: PoolQueues, request: FlowRequest, started: float) -> Admission:
        self._count(request, QueueOutcome.DISPATCHED, 0.0, queued=False)
        return self._admission(pool, request, 0.0, queued=False)

    def _admission(self, pool: PoolQueues, request: FlowRequest, waited: float, queued: bool) -> Admission:
        record = self.ledger.admit(request.request_id, request.pool, request.priority)
        return Admission(request, waited, queued, lambda: self._released(pool, record), record)

    def _enqueue(self, pool: PoolQueues, band: PriorityBand, request: FlowRequest, now: float) -> QueueItem:
        ttl = request.ttl_s if request.ttl_s is not None else self.config.default_request_ttl_s
        deadline = now + ttl if ttl else None
        item = QueueItem(request, now, deadline, asyncio.get_running_loop().create_future())
        band.push(item)
        pool.occupancy.add(request.byte_size)
        self.occupancy.add(request.byte_size)
        self.metrics.queued(request, +1)
        self._ensure_dispatcher(pool)
        pool.wakeup.set()
        return item

    async def _wait(self, pool: PoolQueues, band: PriorityBand, item: QueueItem) -> Admission:
        ttl = None if item.deadline is None else max(0.0, item.deadline - self._clock())
        try:
            # wait() never cancels item.future, so only the controller decides the outcome.
            await asyncio.wait((item.future,), timeout=ttl)
        except asyncio.CancelledError:
            if not self._evict(pool, band, item, QueueOutcome.EVICTED_CONTEXT_CANCELLED):
                self._abandon(pool, item)
            raise
        if not item.future.done():
            self._evict(pool, band, item, QueueOutcome.EVICTED_TTL)
            raise self._rejection(item.request, QueueOutcome.EVICTED_TTL, f"{ttl:.3g}s")
        item.future.result()  # raises FlowControlRejected when evicted at shutdown
        self._bound(pool)
        return self._admission(pool, item.request, self._clock() - item.enqueued_at, queued=True)

    def _evict(self, pool: PoolQueues, band: PriorityBand, item: QueueItem, outcome: QueueOutcome) -> bool:
        """Take a still-queued item out with this outcome; False if it already has one."""
        if item.outcome is not None:
            return False
        band.remove(item)
        self._finalize_removed(pool, item, outcome)
        return True

    def _abandon(self, pool: PoolQueues, item: QueueItem) -> None:
        """The waiter was cancelled after its item got an outcome: give back what it held."""
        if item.outcome is QueueOutcome.DISPATCHED:
            self._bound(pool)  # never recorded in the ledger: nothing else to give back
        elif item.future.done() and not item.future.cancelled():
            item.future.exception()  # mark retrieved: nobody is left to read it

    def _finalize_removed(self, pool: PoolQueues, item: QueueItem, outcome: QueueOutcome) -> None:
        item.finalize(outcome)
        request = item.request
        pool.occupancy.sub(request.byte_size)
        self.occupancy.sub(request.byte_size)
        self.metrics.queued(request, -1)
        self._count(request, outcome, self._clock() - item.enqueued_at, queued=True)

    def _count(self, request: FlowRequest, outcome: QueueOutcome, waited: float, queued: bool) -> None:
        self.outcomes[outcome] += 1
        if outcome is QueueOutcome.DISPATCHED:
            self.dispatches[request.flow_id, request.priority] += 1
        self.metrics.finished(request, outcome, waited, queued)

    def _reject(
        self, request: FlowRequest, outcome: QueueOutcome, started: float, detail: str
    ) -> FlowControlRejected:
        self._count(request, outcome, self._clock() - started, queued=False)
        return self._rejection(request, outcome, detail)

    def _rejection(self, request: FlowRequest, outcome: QueueOutcome, detail: str) -> FlowControlRejected:
        if outcome is QueueOutcome.EVICTED_TTL:
            message = f"request waited {detail} in the flow-control queue and no capacity freed up"
        elif outcome is QueueOutcome.EVICTED_OTHER:
            message = "the gateway is shutting down"
        else:
            message = detail
        return FlowControlRejected(outcome, _STATUS.get(outcome, 503), message, self.config.retry_after_s)

    def _released(self, pool: PoolQueues, record: Dispatch) -> None:
        self.ledger.release(record)
        if pool.occupancy.requests:
            pool.wakeup.set()

    def _bound(self, pool: PoolQueues) -> None:
        """The dispatched request's task runs again and will be scheduled before it next yields."""
        pool.unbound -= 1
        pool.wakeup.set()

    # --- the dispatcher -----------------------------------------------------
    def _ensure_dispatcher(self, pool: PoolQueues) -> None:
        if pool.dispatcher is None or pool.dispatcher.done():
            loop = asyncio.get_running_loop()
            pool.dispatcher = loop.create_task(self._run(pool), name=f"flow-dispatch-{pool.name}")

    async def _run(self, pool: PoolQueues) -> None:
        while pool.occupancy.requests:
            try:
                self._dispatch_ready(pool)
            except Exception:  # keep dispatching: a dead dispatcher would strand the queue until TTL
                log.exception("flow-control dispatch failed for pool %s", pool.name)
            if not pool.occupancy.requests:
                break
            pool.wakeup.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.recheck_interval_s):
                    await pool.wakeup.wait()
        pool.dispatcher = None

    def _dispatch_ready(self, pool: PoolQueues) -> None:
        started = self._clock()
        try:
            self._dispatch_one(pool)
        finally:
            self.metrics.dispatch_cycle.observe(self._clock() - started)

    def _dispatch_one(self, pool: PoolQueues) -> None:
        # One dispatch at a time: until the released request is scheduled (and counted in
        # in-flight), the saturation signal cannot see it.
        if pool.unbound or not pool.occupancy.requests or self._saturated(pool):
            return
        item = pool.pop_next()
        if item is None:
            return
        self._finalize_removed(pool, item, QueueOutcome.DISPATCHED)
        pool.unbound += 1
        item.future.set_result(None)
