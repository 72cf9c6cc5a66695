"""The exact KV-block index: which pod holds which block, as its KV events say.

Per pod a count of cached copies of each block hash (vLLM can cache one hash twice and
removes copies one by one); a pod holds a block while its count is positive. Only GPU blocks
count (events for CPU offload tiers carry another `medium`). Lookups share BlockHolders with
the approximate index: contiguous prefix matches, one AND per block.

Speculative entries (llm-d's speculative indexing): between routing a request and the
engine's BlockStored (its queueing and prefill time) the events cannot know the prompt is on
its way to that pod, so requests with the same prefix arriving meanwhile would spread over
the fleet. `speculate` records the routed blocks as held by the picked pod for
speculative_ttl_s. As in llm-d, a speculative entry lives beside what the events say: a
BlockStored confirms the block (it stays held once the entry expires, until a BlockRemoved),
and a BlockRemoved does not end the entry, since the routed request will store the block
again when it is prefilled. A block counts as held while the pod has cached copies or a live
entry, so a prompt whose first blocks are confirmed and whose later ones are speculative
matches in full.

With `hold_in_flight` (ours; llm-d has a fixed TTL only) a request's entries are renewed for
another TTL while it is still in flight: under load a request can queue in the engine far
longer than any fixed TTL, and until it is served the pod will hold its prompt, whatever the
events said about an earlier copy. `request_done` ends the renewals; the entries then expire
within one TTL (covering the event lag after the prefill). A request is followed for at most
MAX_HOLD_S, in case its completion is never reported.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Sequence
from typing import NamedTuple

from inference_gateway.kvevents.wire import (
    MEDIUM_GPU,
    AllBlocksCleared,
    BlockRemoved,
    BlockStored,
    EventBatch,
)
from inference_gateway.scheduling.prefix_index import BlockHolders

DEFAULT_SPECULATIVE_TTL_S = 2.0  # llm-d's defaultSpeculativeTTL
MAX_HOLD_S = 600.0


class _Speculation(NamedTuple):
    deadline: float
    pod: str
    hashes: Sequence[int]
    request_id: str | None
    picked_at: float


class KVBlockIndex:
    def __init__(
        self, speculative_ttl_s: float = DEFAULT_SPECULATIVE_TTL_S, hold_in_flight: bool = False
    ) -> None:
        # A pod's bit is set for a block while it has cached copies or a speculative entry.
        self.cached = BlockHolders()
        self.speculative_ttl_s = speculative_ttl_s
        self.hold_in_flight = hold_in_flight
        self._copies: dict[str, dict[int, int]] = {}
        self._speculative: dict[str, dict[int, float]] = {}  # pod -> block -> entry's deadline
        self._expiry: deque[_Speculation] = deque()  # in deadline order
        self._in_flight: set[str] = set()  # requests whose entries are renewed (hold_in_flight)
        self.events_applied = 0
        self.speculative_expired = 0

    def has_pod(self, pod: str) -> bool:
        """Whether the pod has sent events (so its entry is exact, not just empty)."""
        return pod in self._copies

    def pods(self) -> list[str]:
        return list(self._copies)

    def size(self) -> int:
        return sum(len(c) for c in self._copies.values())

    def speculative_size(self) -> int:
        return sum(len(s) for s in self._speculative.values())

    def apply(self, pod: str, batch: EventBatch) -> None:
        copies = self._copies.setdefault(pod, {})
        guesses = self._speculative.get(pod) or {}
        bit = self.cached.bit_of(pod)
        for event in batch.events:
            if isinstance(event, AllBlocksCleared):
                self._clear(pod, bit)
            elif event.medium not in (None, MEDIUM_GPU):
                continue
            elif isinstance(event, BlockStored):
                for h in event.block_hashes:
                    n = copies.get(h, 0)
                    copies[h] = n + 1
                    if n == 0 and h not in guesses:
                        self.cached.hold(h, bit)
            elif isinstance(event, BlockRemoved):
                for h in event.block_hashes:
                    n = copies.get(h, 0) - 1
                    if n > 0:
                        copies[h] = n
                    elif n == 0:
                        del copies[h]
                        if h not in guesses:
                            self.cached.drop(h, bit)
            self.events_applied += 1

    def _clear(self, pod: str, bit: int) -> None:
        """Forget every block the pod holds, cached or speculative (its engine reset)."""
        for blocks in (self._copies.get(pod), self._speculative.get(pod)):
            if blocks:
                for h in blocks:
                    self.cached.drop(h, bit)
                blocks.clear()

    def reset_pod(self, pod: str) -> None:
        """Forget what the pod holds but keep it as an event source (its engine restarted)."""
        if pod in self._copies or pod in self._speculative:
            self._clear(pod, self.cached.bit_of(pod))

    def remove_pod(self, pod: str) -> None:
        if pod in self._copies or pod in self._speculative:
            self._clear(pod, self.cached.bit_of(pod))
        self._copies.pop(pod, None)
        self._speculative.pop(pod, None)
        self.cached.release_bit(pod)

    def retain(self, pods: Collection[str]) -> None:
        known = set(self._copies) | set(self._speculative)
        for pod in [p for p in known if p not in pods]:
            self.remove_pod(pod)

    # ---- speculative entries: blocks just routed ------------------------------------------
    def speculate(self, pod: str, hashes: Sequence[int], now: float, request_id: str | None = None) -> None:
        """Count the blocks as held by the pod for speculative_ttl_s (and, with
        hold_in_flight, until `request_done(request_id)`)."""
        self._expire(now)
        if not hashes:
            return
        if self.hold_in_flight and request_id is not None:
            self._in_flight.add(request_id)
        else:
            request_id = None
        self._extend(pod, hashes, now + self.speculative_ttl_s)
        self._expiry.append(_Speculation(now + self.speculative_ttl_s, pod, hashes, request_id, now))

    def _extend(self, pod: str, hashes: Sequence[int], deadline: float) -> None:
        guesses = self._speculative.setdefault(pod, {})
        bit = self.cached.bit_of(pod)
        held = self._copies.get(pod) or {}
        for h in hashes:
            if h not in guesses and h not in held:
                self.cached.hold(h, bit)
            guesses[h] = deadline  # entries only ever move to a later deadline

    def request_done(self, request_id: str) -> None:
        """The request completed (served, failed or cancelled): stop renewing its entries."""
        self._in_flight.discard(request_id)

    def _expire(self, now: float) -> None:
        expiry, ttl = self._expiry, self.speculative_ttl_s
        while expiry and expiry[0].deadline <= now:
            entry = expiry.popleft()
            guesses = self._speculative.get(entry.pod)
            if guesses is None:
                continue  # the pod left the pool
            rid = entry.request_id
            if rid is not None and rid in self._in_flight:
                if now - entry.picked_at < MAX_HOLD_S:
                    # Every queued deadline is at most now + ttl, so the queue stays in order.
                    self._extend(entry.pod, entry.hashes, now + ttl)
                    expiry.append(entry._replace(deadline=now + ttl))
                    continue
                self._in_flight.discard(rid)
            bit = self.cached.bit_of(entry.pod)
            held = self._copies.get(entry.pod) or {}
            for h in entry.hashes:
                deadline = guesses.get(h)
                # A later speculation of the same block set a later deadline: it stays.
                if deadline is not None and deadline <= now:
                    del guesses[h]
                    self.speculative_expired += 1
                    if h not in held:
                        self.cached.drop(h, bit)

    def match(self, hashes: Sequence[int], now: float) -> dict[str, int]:
        """Leading blocks per pod: cached ones, or speculative ones not yet expired."""
        self._expire(now)
        return self.cached.match(hashes)
