"""Prefix-index updates exchanged between EPP replicas: the record, its wire format, a bounded queue.

Wire format of one batch (the payload of one gRPC message or one Redis message):

    byte 0        format version (1)
    bytes 1..4    header length H, uint32 little-endian
    bytes 5..5+H  orjson header {"o": origin, "u": [[scorer, endpoint, ts, capacity, n], ...]}
    rest          the hashes of every update in order, uint64 little-endian (n per update)

Hashes travel as raw 8-byte integers (a 256-block prompt is 2 KiB), the rest as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import sys
from array import array
from collections import deque
from dataclasses import dataclass

import orjson

VERSION = 1
_HEADER = struct.Struct("<BI")
_SWAP = sys.byteorder != "little"


@dataclass(frozen=True, slots=True)
class IndexUpdate:
    """`hashes` were routed to `endpoint` by prefix-cache scorer `scorer` at wall time `ts`."""

    scorer: str
    endpoint: str
    hashes: list[int]
    ts: float
    capacity: int | None = None


@dataclass(frozen=True, slots=True)
class Batch:
    origin: str
    updates: list[IndexUpdate]


class MalformedBatch(ValueError):
    pass


def encode_batch(origin: str, updates: list[IndexUpdate]) -> bytes:
    header = orjson.dumps(
        {"o": origin, "u": [[u.scorer, u.endpoint, u.ts, u.capacity or 0, len(u.hashes)] for u in updates]}
    )
    hashes = array("Q")
    for u in updates:
        hashes.extend(u.hashes)
    if _SWAP:
        hashes.byteswap()
    return b"".join((_HEADER.pack(VERSION, len(header)), header, hashes.tobytes()))


def decode_batch(data: bytes) -> Batch:
    try:
        version, size = _HEADER.unpack_from(data)
    except struct.error:
        raise MalformedBatch("batch shorter than its header") from None
    if version != VERSION:
        raise MalformedBatch(f"unknown batch format version {version}")
    start = _HEADER.size + size
    try:
        header = orjson.loads(data[_HEADER.size : start])
        origin, rows = str(header["o"]), header["u"]
        counts = [int(row[4]) for row in rows]
    except (orjson.JSONDecodeError, KeyError, TypeError, IndexError, ValueError) as exc:
        raise MalformedBatch(f"bad batch header: {exc}") from None
    body = memoryview(data)[start:]
    if len(body) != 8 * sum(counts) or min(counts, default=0) < 0:
        raise MalformedBatch("hash count does not match the header")
    hashes = array("Q")
    hashes.frombytes(body)
    if _SWAP:
        hashes.byteswap()
    updates: list[IndexUpdate] = []
    at = 0
    for row, n in zip(rows, counts, strict=True):
        scorer, endpoint, ts, capacity = row[0], row[1], row[2], row[3]
        if not isinstance(scorer, str) or not isinstance(endpoint, str) or not isinstance(ts, int | float):
            raise MalformedBatch("bad update row")
        chunk = hashes[at : at + n].tolist()
        updates.append(IndexUpdate(scorer, endpoint, chunk, float(ts), capacity or None))
        at += n
    return Batch(origin, updates)


class UpdateQueue:
    """Bounded FIFO of updates for one peer; when full, the oldest update is dropped and counted."""

    def __init__(self, limit: int) -> None:
        if limit <= 0:
            raise ValueError("queue limit must be positive")
        self.limit = limit
        self.dropped = 0
        self._items: deque[IndexUpdate] = deque()
        self._nonempty = asyncio.Event()
        self._enough = asyncio.Event()
        self._want = sys.maxsize

    def __len__(self) -> int:
        return len(self._items)

    def put(self, update: IndexUpdate) -> None:
        items = self._items
        if len(items) >= self.limit:
            items.popleft()
            self.dropped += 1
        items.append(update)
        self._nonempty.set()
        if len(items) >= self._want:
            self._enough.set()

    async def take(self, max_items: int, linger_s: float) -> list[IndexUpdate]:
        """Wait for an update, then up to `linger_s` more for `max_items`; return at most that many."""
        while not self._items:
            self._nonempty.clear()
            await self._nonempty.wait()
        if len(self._items) < max_items and linger_s > 0:
            self._want = max_items
            self._enough.clear()
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._enough.wait(), linger_s)
            finally:
                self._want = sys.maxsize
        return self.take_now(max_items)

    def take_now(self, max_items: int) -> list[IndexUpdate]:
        items = self._items
        return [items.popleft() for _ in range(min(max_items, len(items)))]

    def clear(self) -> None:
        self._items.clear()
