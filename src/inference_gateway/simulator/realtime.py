"""Drives an Engine in (scaled) wall-clock time on the asyncio loop.

Model time runs at 1/time_scale of wall time. Each iteration sleeps until its absolute
deadline and the next one starts where it ended, so Python overhead does not accumulate.
A request is stamped with the model time it reached the server and only iterations that
start after that can admit it. If the loop falls far behind, the next iteration starts
late (the simulated GPU looks idle for that gap) instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from inference_gateway.simulator.engine import Engine
from inference_gateway.simulator.sequence import Sequence

MAX_LAG_WALL = 0.005  # seconds of wall time the model timeline may trail the clock


class RealtimeDriver:
    def __init__(self, engine: Engine, time_scale: float = 1.0) -> None:
        self.engine = engine
        self.time_scale = time_scale
        self._loop = asyncio.get_running_loop()
        self._t0 = self._loop.time()
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._last_end = 0.0
        self._task: asyncio.Task[None] | None = None
        self._done: dict[int, asyncio.Future[None]] = {}
        self.after_step: list[Callable[[], None]] = []  # e.g. publish the step's KV events

    def now(self) -> float:
        """Current model time in seconds since the driver started."""
        return (self._loop.time() - self._t0) / self.time_scale

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="sim-engine")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def submit(self, request_id: Any, prompt_len: int, max_output: int, **kw: Any) -> Sequence:
        seq = self.engine.add_request(request_id, prompt_len, max_output, self.now(), **kw)
        self._wake.set()
        return seq

    def abort(self, seq: Sequence) -> None:
        self.engine.abort(seq)

    async def wait_progress(self, seq: Sequence, seen: int) -> int:
        """Wait until seq has more than `seen` tokens or is done; return its token count."""
        while True:
            n = self.engine.tokens_generated(seq)
            if n > seen or seq.done:
                return n
            await self._progress.wait()

    async def wait_done(self, seq: Sequence) -> None:
        if seq.done:
            return
        fut = self._done.get(seq.uid)
        if fut is None:
            fut = self._done[seq.uid] = self._loop.create_future()
        try:
            await asyncio.shield(fut)
        finally:
            if fut.done() or seq.done:
                self._done.pop(seq.uid, None)

    def _resolve_done(self, finished: list[Sequence]) -> None:
        for seq in finished:
            fut = self._done.pop(seq.uid, None)
            if fut is not None and not fut.done():
                fut.set_result(None)

    def _next_start(self, chained: bool) -> float:
        """Back-to-back iterations follow the model timeline, so late wake-ups do not add
        up; if the loop falls more than MAX_LAG_WALL behind, the timeline resyncs."""
        now = self.now()
        if chained and (now - self._last_end) * self.time_scale < MAX_LAG_WALL:
            return self._last_end
        return max(now, self._last_end)

    async def _run(self) -> None:
        engine = self.engine
        chained = False
        while True:
            if not engine.has_work():
                self._wake.clear()
                await self._wake.wait()
                chained = False
            plan = engine.begin_step(self._next_start(chained))
            if plan is None and chained:  # only requests stamped after last_end are waiting
                plan = engine.begin_step(self._next_start(False))
            if plan is None:  # nothing schedulable until something changes
                self._wake.clear()
                await self._wake.wait()
                chained = False
                continue
            chained = True
            delay = self._t0 + plan.end * self.time_scale - self._loop.time()
            await asyncio.sleep(max(delay, 0.0))
            outcome = engine.finish_step()
            self._last_end = plan.end
            for hook in self.after_step:
                hook()
            if self._done:
                self._resolve_done(outcome.finished)
            progress, self._progress = self._progress, asyncio.Event()
            progress.set()
