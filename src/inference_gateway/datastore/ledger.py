"""The in-flight ledger: every request this EPP let through and has not seen complete.

One home for "what is in flight": flow control records a request when it admits it, the pool
runtime binds it to the endpoint it picked (with the prompt's token estimate), and the
request's completion removes it. Readers get per-endpoint load (`Endpoint.load`, O(1) for
scorers and detectors), per-pool and per-priority-band counts, and the records themselves
(e.g. to project an endpoint's state from its last scrape plus what was dispatched since).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from inference_gateway.datastore.endpoint import Endpoint


@dataclass(slots=True, eq=False)
class Dispatch:
    """One request from admission to completion."""

    request_id: str
    pool: str
    priority: int
    admitted_at: float
    endpoint: Endpoint | None = None  # set once the request is bound to its pick
    prompt_tokens: int = 0  # the EPP's estimate of the prompt's tokens
    dispatched_at: float = 0.0
    released: bool = False


class InFlightLedger:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._records: dict[int, Dispatch] = {}
        self._per_pool: Counter[str] = Counter()
        self._per_band: Counter[tuple[str, int]] = Counter()

    # --- writers -------------------------------------------------------------
    def admit(self, request_id: str, pool: str, priority: int) -> Dispatch:
        record = Dispatch(request_id, pool, priority, self._clock())
        self._records[id(record)] = record
        self._per_pool[pool] += 1
        self._per_band[pool, priority] += 1
        return record

    def bind(self, record: Dispatch, endpoint: Endpoint, prompt_tokens: int) -> None:
        """The request goes to `endpoint`; its load now counts it."""
        if record.released or record.endpoint is not None:
            return
        record.endpoint, record.prompt_tokens, record.dispatched_at = endpoint, prompt_tokens, self._clock()
        endpoint.load.add(prompt_tokens)

    def release(self, record: Dispatch) -> None:
        """The request completed, failed or was cancelled; idempotent."""
        if record.released:
            return
        record.released = True
        del self._records[id(record)]
        _decrement(self._per_pool, record.pool)
        _decrement(self._per_band, (record.pool, record.priority))
        if record.endpoint is not None:
            record.endpoint.load.remove(record.prompt_tokens)

    # --- readers -------------------------------------------------------------
    def pool_requests(self, pool: str) -> int:
        return self._per_pool[pool]

    def band_requests(self, pool: str, priority: int) -> int:
        return self._per_band[pool, priority]

    def records(self, endpoint: Endpoint | None = None, since: float = 0.0) -> Iterator[Dispatch]:
        """Bound records (of one endpoint when given) dispatched at or after `since`."""
        for record in self._records.values():
            if record.endpoint is None or record.dispatched_at < since:
                continue
            if endpoint is None or record.endpoint is endpoint:
                yield record

    def __len__(self) -> int:
        return len(self._records)


def _decrement(counter: Counter, key: object) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]
