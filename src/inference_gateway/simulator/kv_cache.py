"""Paged KV cache with automatic prefix caching, modelled on vLLM v1's BlockPool.

Blocks whose content is identified by a chain hash (full prompt blocks) are cached: they
stay reusable after their owners finish, until evicted. Free blocks sit in one queue in the
order they were freed and allocation takes from its head, so eviction of cached blocks is
LRU, exactly as vLLM's free-block queue behaves.

For speed, blocks that can never be shared (partial prompt blocks, unique prompt text,
generated tokens) are not tracked one by one: a request's anonymous blocks are freed as a
single queue entry holding a count. The queue keeps its LRU order, so cached blocks compete
for space with them as they do in vLLM.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from itertools import count


class BlockPool:
    def __init__(self, num_blocks: int) -> None:
        self.num_blocks = num_blocks
        self.num_free = num_blocks
        # hash -> reference count of the cached block holding that content
        self._refs: dict[int, int] = {}
        # free queue, head = next to evict: hash (>= 0) -> 1, or group id (< 0) -> count
        self._free: OrderedDict[int, int] = OrderedDict()
        self._group_ids = count(-1, -1)
        self._free[next(self._group_ids)] = num_blocks
        self.on_evict: Callable[[int], None] | None = None  # told each evicted cached hash

    @property
    def usage(self) -> float:
        return 1.0 - self.num_free / self.num_blocks

    @property
    def num_cached(self) -> int:
        return len(self._refs)

    def lookup(self, hashes: Sequence[int], limit: int) -> tuple[int, int]:
        """Length of the cached prefix of `hashes` (at most `limit` blocks), and how many of
        those blocks are currently free (they leave the free queue when acquired)."""
        refs = self._refs
        hits = idle = 0
        for h in hashes:
            if hits >= limit:
                break
            r = refs.get(h)
            if r is None:
                break
            hits += 1
            if r == 0:
                idle += 1
        return hits, idle

    def acquire(self, hashes: Sequence[int]) -> None:
        """Take a reference on cached blocks found by lookup()."""
        refs, free = self._refs, self._free
        for h in hashes:
            r = refs[h]
            if r == 0:
                del free[h]
                self.num_free -= 1
            refs[h] = r + 1

    def allocate(self, n: int) -> None:
        """Take n blocks from the head of the free queue, evicting cached content."""
        if n > self.num_free:
            raise RuntimeError(f"allocate({n}) with only {self.num_free} free blocks")
        self.num_free -= n
        free, refs = self._free, self._refs
        while n > 0:
            key = next(iter(free))
            if key >= 0:
                free.popitem(last=False)
                del refs[key]
                if self.on_evict is not None:
                    self.on_evict(key)
                n -= 1
                continue
            size = free[key]
            if size <= n:
                free.popitem(last=False)
                n -= size
            else:
                free[key] = size - n
                n = 0

    def register(self, h: int) -> bool:
        """Publish an owned, just-filled block under hash h. False if h is already cached
        (another request computed the same block concurrently; ours stays anonymous)."""
        if h in self._refs:
            return False
        self._refs[h] = 1
        return True

    def release(self, anonymous: int, held: Sequence[int]) -> None:
        """Return a request's blocks: tail (anonymous) first, then cached ones last-to-first,
        so a request's prefix outlives its suffix, as vLLM frees in reverse order."""
        free, refs = self._free, self._refs
        if anonymous > 0:
            free[next(self._group_ids)] = anonymous
            self.num_free += anonymous
        for h in reversed(held):
            r = refs[h] - 1
            refs[h] = r
            if r == 0:
                free[h] = 1
                self.num_free += 1
