"""The exact KV-block index: which pod holds which block, as its KV events say.

Per pod a count of cached copies of each block hash (vLLM can cache one hash twice and
removes copies one by one); a pod holds a block while its count is positive. Only GPU blocks
count (events for CPU offload tiers carry another `medium`). Lookups share BlockHolders with
the approximate index: contiguous prefix matches, one AND per block.

Between routing a request and the engine's BlockStored (its prefill time) the index would not
know the prompt is on its way to that pod; `expect` records the routed blocks for a short
time so requests with the same prefix that arrive meanwhile follow it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Sequence

from inference_gateway.kvevents.wire import (
    MEDIUM_GPU,
    AllBlocksCleared,
    BlockRemoved,
    BlockStored,
    EventBatch,
)
from inference_gateway.scheduling.prefix_index import BlockHolders


class KVBlockIndex:
    def __init__(self, expect_ttl_s: float = 2.0) -> None:
        self.cached = BlockHolders()
        self.expected = BlockHolders()
        self.expect_ttl_s = expect_ttl_s
        self._copies: dict[str, dict[int, int]] = {}
        self._expiry: deque[tuple[float, str, Sequence[int]]] = deque()
        self._expected_refs: dict[tuple[str, int], int] = {}
        self.events_applied = 0

    def has_pod(self, pod: str) -> bool:
        """Whether the pod has sent events (so its entry is exact, not just empty)."""
        return pod in self._copies

    def pods(self) -> list[str]:
        return list(self._copies)

    def size(self) -> int:
        return sum(len(c) for c in self._copies.values())

    def apply(self, pod: str, batch: EventBatch) -> None:
        copies = self._copies.setdefault(pod, {})
        bit = self.cached.bit_of(pod)
        for event in batch.events:
            if isinstance(event, AllBlocksCleared):
                self._clear(pod, copies, bit)
            elif event.medium not in (None, MEDIUM_GPU):
                continue
            elif isinstance(event, BlockStored):
                for h in event.block_hashes:
                    n = copies.get(h, 0)
                    copies[h] = n + 1
                    if n == 0:
                        self.cached.hold(h, bit)
            elif isinstance(event, BlockRemoved):
                for h in event.block_hashes:
                    n = copies.get(h, 0) - 1
                    if n > 0:
                        copies[h] = n
                    elif n == 0:
                        del copies[h]
                        self.cached.drop(h, bit)
            self.events_applied += 1

    def _clear(self, pod: str, copies: dict[int, int], bit: int) -> None:
        for h in copies:
            self.cached.drop(h, bit)
        copies.clear()

    def reset_pod(self, pod: str) -> None:
        """Forget what the pod holds but keep it as an event source (its engine restarted)."""
        copies = self._copies.get(pod)
        if copies is not None:
            self._clear(pod, copies, self.cached.bit_of(pod))

    def remove_pod(self, pod: str) -> None:
        copies = self._copies.pop(pod, None)
        if copies is not None:
            self._clear(pod, copies, self.cached.bit_of(pod))
        self.cached.release_bit(pod)

    def retain(self, pods: Collection[str]) -> None:
        for pod in [p for p in self._copies if p not in pods]:
            self.remove_pod(pod)

    # ---- blocks just routed -------------------------------------------------------------
    def expect(self, pod: str, hashes: Sequence[int], now: float) -> None:
        self._expire(now)
        bit = self.expected.bit_of(pod)
        refs = self._expected_refs
        for h in hashes:
            key = (pod, h)
            n = refs.get(key, 0)
            refs[key] = n + 1
            if n == 0:
                self.expected.hold(h, bit)
        self._expiry.append((now + self.expect_ttl_s, pod, hashes))

    def _expire(self, now: float) -> None:
        expiry, refs = self._expiry, self._expected_refs
        while expiry and expiry[0][0] <= now:
            _, pod, hashes = expiry.popleft()
            bit = self.expected.bit_of(pod)
            for h in hashes:
                key = (pod, h)
                n = refs[key] - 1
                if n:
                    refs[key] = n
                else:
                    del refs[key]
                    self.expected.drop(h, bit)

    def match(self, hashes: Sequence[int], now: float) -> dict[str, int]:
        """Leading blocks per pod: cached ones, or routed there within the last expect_ttl_s."""
        self._expire(now)
        counts = self.cached.match(hashes)
        if self._expiry:
            for pod, n in self.expected.match(hashes).items():
                if n > counts.get(pod, 0):
                    counts[pod] = n
        return counts
