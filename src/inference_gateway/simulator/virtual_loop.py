"""An asyncio event loop on the fleet's virtual clock, for the EPP's flow control.

Flow control holds a request on an asyncio future until its dispatcher (a task that rechecks
the saturation detector on a timer and whenever capacity frees) lets it go. In virtual time
nothing may wait on the wall clock, so this loop's `time()` is the fleet's virtual time, it
does no I/O, and it never blocks: the fleet drives it with `run_due()` after each event (an
arrival, a completion, a scrape), and asks `next_timer()` when it must wake it next.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class _NoIO:
    """The selector of a loop without sockets: nothing is ever ready, and nothing waits."""

    def select(self, timeout: float | None = None) -> list[Any]:
        return []

    def close(self) -> None:
        pass


class VirtualLoop(asyncio.BaseEventLoop):
    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__()
        self._virtual_clock = clock
        self._selector = _NoIO()

    def time(self) -> float:
        return self._virtual_clock()

    def _process_events(self, event_list: list[Any]) -> None:
        pass

    def _write_to_self(self) -> None:
        pass  # no other thread ever wakes this loop

    def _due(self) -> bool:
        if self._ready:  # type: ignore[attr-defined]
            return True
        scheduled = self._scheduled  # type: ignore[attr-defined]
        return bool(scheduled) and scheduled[0].when() <= self.time()

    def run_due(self) -> None:
        """Run every callback that is ready or due at the current virtual time, and all that
        they make ready in turn, then return (one `run_forever` pass per round)."""
        while self._due():
            self.call_soon(self.stop)
            self.run_forever()

    def next_timer(self) -> float | None:
        """The virtual time of the earliest pending timer (None: none)."""
        scheduled = self._scheduled  # type: ignore[attr-defined]
        # a heap: its head may be a cancelled timer, and waking for it early is harmless
        return float(scheduled[0].when()) if scheduled else None

    def shutdown(self) -> None:
        """Cancel what is still pending and close the loop."""
        tasks = asyncio.all_tasks(self)
        for task in tasks:
            task.cancel()
        self.run_due()
        self.close()
