"""What the simulated engine tells KV-event subscribers, as vLLM's KVEventBatch.

vLLM records a BlockStored when a request's newly filled blocks enter the prefix cache and a
BlockRemoved when a cached block is evicted for reuse, and publishes the events of each engine
step as one batch. The engine calls `stored` / `removed`; whoever drives the engine takes the
step's batch with `take` and publishes it (kvevents.publisher, or in-process in virtual time).
"""

from __future__ import annotations

from inference_gateway.kvevents.wire import BlockRemoved, BlockStored, EventBatch, KVEvent
from inference_gateway.simulator.sequence import Sequence


class KVEventLog:
    def __init__(self, block_size: int) -> None:
        self.block_size = block_size
        self._pending: list[KVEvent] = []

    def stored(self, seq: Sequence, first: int, end: int) -> None:
        """seq's prompt blocks [first, end) were just cached."""
        bs = self.block_size
        tokens = list(seq.token_ids[first * bs : end * bs]) if seq.token_ids is not None else []
        self._pending.append(
            BlockStored(
                block_hashes=list(seq.hashes[first:end]),
                parent_block_hash=seq.hashes[first - 1] if first > 0 else None,
                token_ids=tokens,
                block_size=bs,
                lora_name=seq.lora,
            )
        )

    def removed(self, block_hash: int) -> None:
        last = self._pending[-1] if self._pending else None
        if isinstance(last, BlockRemoved):
            last.block_hashes.append(block_hash)
        else:
            self._pending.append(BlockRemoved([block_hash]))

    def take(self, ts: float) -> EventBatch | None:
        if not self._pending:
            return None
        batch = EventBatch(ts, self._pending)
        self._pending = []
        return batch
