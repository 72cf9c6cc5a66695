"""Prompt block hashing and the approximate prefix-cache index behind prefix-cache-scorer.

The prompt is cut into fixed-size blocks and each block hash is chained to the previous one,
so hash i identifies the whole prefix up to block i. The index remembers, per endpoint, the
block hashes recently routed there (an LRU bounded like the engine's KV cache), which
approximates what each engine still has cached.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Iterable

from xxhash import xxh64_intdigest


def hash_prompt(prompt: str, model: str, block_size: int, max_blocks: int, salt: str = "") -> list[int]:
    """Chained xxh64 of the first `max_blocks` full blocks; the chain is seeded by the model.

    hash[-1] = xxh64(model + salt); hash[i] = xxh64(block_i, seed=hash[i-1]). A trailing
    partial block is ignored, as upstream does.
    """
    limit = block_size * max_blocks
    # Encoding `limit` characters yields at least `limit` bytes whenever the prompt is longer,
    # so huge prompts are never encoded in full.
    data = prompt[:limit].encode()
    count = min(len(data) // block_size, max_blocks)
    if count == 0:
        return []
    view = memoryview(data)
    seed = xxh64_intdigest((model + salt).encode())
    return [
        seed := xxh64_intdigest(view[i : i + block_size], seed)
        for i in range(0, count * block_size, block_size)
    ]


class PrefixIndex:
    """hash -> endpoints that probably hold it, plus one LRU of hashes per endpoint."""

    def __init__(self, capacity_per_server: int) -> None:
        if capacity_per_server <= 0:
            raise ValueError("capacity_per_server must be positive")
        self.capacity = capacity_per_server
        self._owners: dict[int, set[str]] = {}
        self._lru: dict[str, OrderedDict[int, None]] = {}
        self._caps: dict[str, int] = {}

    def match(self, hashes: Iterable[int]) -> dict[str, int]:
        """For each endpoint, how many of the leading blocks it holds (stops at the first miss)."""
        counts: dict[str, int] = {}
        owners = self._owners
        for h in hashes:
            servers = owners.get(h)
            if not servers:
                break
            for s in servers:
                counts[s] = counts.get(s, 0) + 1
        return counts

    def add(self, hashes: Iterable[int], server: str, capacity: int | None = None) -> None:
        lru = self._lru.get(server)
        if lru is None:
            lru = self._lru[server] = OrderedDict()
            self._caps[server] = capacity if capacity and capacity > 0 else self.capacity
        cap = self._caps[server]
        owners = self._owners
        for h in hashes:
            if h in lru:
                lru.move_to_end(h)
                continue
            lru[h] = None
            holders = owners.get(h)
            if holders is None:
                owners[h] = {server}
            else:
                holders.add(server)
            if len(lru) > cap:
                self._evict(server, lru.popitem(last=False)[0])

    def _evict(self, server: str, h: int) -> None:
        holders = self._owners.get(h)
        if holders is not None:
            holders.discard(server)
            if not holders:
                del self._owners[h]

    def remove_server(self, server: str) -> None:
        lru = self._lru.pop(server, None)
        self._caps.pop(server, None)
        for h in lru or ():
            self._evict(server, h)

    def retain(self, servers: Collection[str]) -> None:
        """Forget every endpoint not in `servers`."""
        for server in [s for s in self._lru if s not in servers]:
            self.remove_server(server)

    def servers(self) -> list[str]:
        return list(self._lru)

    def size(self, server: str | None = None) -> int:
        if server is not None:
            return len(self._lru.get(server, ()))
        return sum(len(lru) for lru in self._lru.values())
