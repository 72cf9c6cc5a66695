"""Prompt block hashing and the approximate prefix-cache index behind prefix-cache-scorer.

The prompt is cut into fixed-size blocks and each block hash is chained to the previous one,
so hash i identifies the whole prefix up to block i. The index remembers, per endpoint, the
block hashes recently routed there (an LRU bounded like the engine's KV cache), which
approximates what each engine still has cached. A prompt matches an endpoint up to the
first block that endpoint lacks (prefix caches serve only a gap-free prefix).
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


class BlockHolders:
    """Which endpoints hold each block hash. Each endpoint owns one bit and a block's holders
    are an int bitmask, so a lookup costs one AND per block however many endpoints hold it."""

    def __init__(self) -> None:
        self._holders: dict[int, int] = {}
        self._bit: dict[str, int] = {}
        self._name_of_slot: list[str | None] = []
        self._free_slots: list[int] = []

    def match(self, hashes: Iterable[int]) -> dict[str, int]:
        """For each endpoint, how many leading blocks it holds without a gap: an endpoint's
        count stops at the first block it lacks, even if it holds later ones."""
        counts: dict[str, int] = {}
        holders = self._holders
        blocks = iter(hashes)
        first = next(blocks, None)
        alive = holders.get(first, 0) if first is not None else 0
        depth = 1
        for h in blocks:
            if not alive:
                return counts
            still = alive & holders.get(h, 0)
            if still != alive:
                self._record(alive & ~still, depth, counts)
                alive = still
            depth += 1
        if alive:
            self._record(alive, depth, counts)
        return counts

    def _record(self, bits: int, depth: int, counts: dict[str, int]) -> None:
        names = self._name_of_slot
        while bits:
            low = bits & -bits
            name = names[low.bit_length() - 1]
            if name is not None:
                counts[name] = depth
            bits ^= low

    def bit_of(self, server: str) -> int:
        """The endpoint's bit, allocated on first use."""
        bit = self._bit.get(server)
        if bit is None:
            if self._free_slots:
                slot = self._free_slots.pop()
                self._name_of_slot[slot] = server
            else:
                slot = len(self._name_of_slot)
                self._name_of_slot.append(server)
            bit = self._bit[server] = 1 << slot
        return bit

    def hold(self, h: int, bit: int) -> None:
        holders = self._holders
        holders[h] = holders.get(h, 0) | bit

    def drop(self, h: int, bit: int) -> None:
        mask = self._holders.get(h, 0) & ~bit
        if mask:
            self._holders[h] = mask
        else:
            self._holders.pop(h, None)

    def release_bit(self, server: str) -> int:
        """Free the endpoint's bit (after its blocks were dropped); 0 if it had none."""
        bit = self._bit.pop(server, 0)
        if bit:
            slot = bit.bit_length() - 1
            self._name_of_slot[slot] = None
            self._free_slots.append(slot)
        return bit


class PrefixIndex(BlockHolders):
    """Block holders plus one LRU of hashes per endpoint (the approximate index)."""

    def __init__(self, capacity_per_server: int) -> None:
        if capacity_per_server <= 0:
            raise ValueError("capacity_per_server must be positive")
        super().__init__()
        self.capacity = capacity_per_server
        self._lru: dict[str, OrderedDict[int, None]] = {}
        self._caps: dict[str, int] = {}

    def add(self, hashes: Iterable[int], server: str, capacity: int | None = None) -> None:
        lru = self._lru.get(server)
        if lru is None:
            lru = self._lru[server] = OrderedDict()
            self._caps[server] = capacity if capacity and capacity > 0 else self.capacity
        bit = self.bit_of(server)
        cap = self._caps[server]
        for h in hashes:
            if h in lru:
                lru.move_to_end(h)
                continue
            lru[h] = None
            self.hold(h, bit)
            if len(lru) > cap:
                self.drop(lru.popitem(last=False)[0], bit)

    def remove_server(self, server: str) -> None:
        lru = self._lru.pop(server, None)
        self._caps.pop(server, None)
        bit = self._bit.get(server, 0)
        for h in lru or ():
            self.drop(h, bit)
        self.release_bit(server)

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
