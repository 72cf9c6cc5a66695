"""The transport-independent core of prefix sync: local picks go out, peers' updates come in.

The hub listens to each prefix-cache scorer's index additions (made after a pick on this
replica) and copies each one, as an IndexUpdate, into every peer's outbox. Updates that
arrive from peers are applied straight to the scorer's PrefixIndex, which does not notify
listeners, so nothing a replica receives is ever sent on: no loops, no duplicates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from inference_gateway.scheduling.interfaces import SharedPrefixIndex
from inference_gateway.scheduling.prefix_sync.updates import (
    Batch,
    IndexUpdate,
    MalformedBatch,
    UpdateQueue,
    decode_batch,
)

log = logging.getLogger(__name__)

DROP_REASONS = ("overflow", "stale", "lost", "unknown_scorer", "malformed")


@dataclass
class SyncStats:
    """Plain counters; exported by SyncCollector at scrape time so the hot path stays cheap."""

    published: int = 0  # local index additions handed to the outboxes
    sent: int = 0  # updates written to peers (summed over peers)
    batches_sent: int = 0
    received: int = 0
    applied: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    lag_sum_s: float = 0.0  # receive time - pick time, over applied updates
    lag_max_s: float = 0.0
    peers_connected: int = 0


class PrefixSyncHub:
    def __init__(
        self,
        scorers: Mapping[str, SharedPrefixIndex],
        origin: str,
        *,
        max_age_s: float = 30.0,
        clock: Callable[[], float] = time.time,
        stats: SyncStats | None = None,
    ) -> None:
        self.scorers = dict(scorers)
        self.origin = origin
        self.max_age_s = max_age_s
        self.clock = clock
        self.stats = stats or SyncStats()
        self._outboxes: list[UpdateQueue] = []
        self._retired_overflow = 0
        self._listeners = {name: self._listener(name) for name in self.scorers}
        for name, scorer in self.scorers.items():
            scorer.subscribe(self._listeners[name])

    def _listener(self, scorer: str) -> Callable[[str, list[int], int | None], None]:
        def publish(endpoint: str, hashes: list[int], capacity: int | None) -> None:
            if not self._outboxes:
                return
            update = IndexUpdate(scorer, endpoint, hashes, self.clock(), capacity)
            for queue in self._outboxes:
                queue.put(update)
            self.stats.published += 1

        return publish

    def publish(self, scorer: str, endpoint: str, hashes: list[int], capacity: int | None = None) -> None:
        """Queue an index addition for the peers as if `scorer` had made it after a pick."""
        self._listeners[scorer](endpoint, hashes, capacity)

    def detach(self) -> None:
        """Stop listening to the scorers (their indexes are left as they are)."""
        for name, scorer in self.scorers.items():
            scorer.unsubscribe(self._listeners[name])

    # ---- outboxes (one per peer) ------------------------------------------------------
    def add_outbox(self, queue: UpdateQueue) -> None:
        self._outboxes.append(queue)

    def remove_outbox(self, queue: UpdateQueue) -> None:
        if queue in self._outboxes:
            self._outboxes.remove(queue)
            self._retired_overflow += queue.dropped

    def overflow_drops(self) -> int:
        return self._retired_overflow + sum(q.dropped for q in self._outboxes)

    def fresh(self, updates: Iterable[IndexUpdate]) -> list[IndexUpdate]:
        """The updates still young enough to send; the rest are counted as stale."""
        oldest = self.clock() - self.max_age_s
        updates = list(updates)
        kept = [u for u in updates if u.ts >= oldest]
        self.stats.dropped["stale"] += len(updates) - len(kept)
        return kept

    # ---- inbound ----------------------------------------------------------------------
    def decode(self, data: bytes) -> Batch | None:
        try:
            return decode_batch(data)
        except MalformedBatch as exc:
            self.stats.dropped["malformed"] += 1
            log.warning("prefix sync: dropping a malformed batch: %s", exc)
            return None

    async def apply_gently(self, batch: Batch, hashes_per_slice: int = 4096) -> int:
        """apply() in slices of about `hashes_per_slice` block hashes, yielding to the event
        loop between slices, so a large batch never holds up routing for long."""
        applied, start, weight = 0, 0, 0
        updates = batch.updates
        for i, u in enumerate(updates):
            weight += len(u.hashes)
            if weight >= hashes_per_slice or i == len(updates) - 1:
                applied += self.apply(Batch(batch.origin, updates[start : i + 1]))
                start, weight = i + 1, 0
                await asyncio.sleep(0)
        return applied

    def apply(self, batch: Batch) -> int:
        """Add a peer's updates to the local indexes; returns how many were applied."""
        if batch.origin == self.origin:  # our own batch echoed back (Redis, or a peer list naming us)
            return 0
        stats = self.stats
        stats.received += len(batch.updates)
        now = self.clock()
        applied = 0
        for u in batch.updates:
            scorer = self.scorers.get(u.scorer)
            if scorer is None:
                stats.dropped["unknown_scorer"] += 1
                continue
            lag = now - u.ts
            if lag > self.max_age_s:
                stats.dropped["stale"] += 1
                continue
            scorer.add_from_peer(u.hashes, u.endpoint, u.capacity)
            applied += 1
            if lag > 0:
                stats.lag_sum_s += lag
                stats.lag_max_s = max(stats.lag_max_s, lag)
        stats.applied += applied
        return applied


def prefix_scorers(plugins: Mapping[str, object]) -> dict[str, SharedPrefixIndex]:
    """The plugins with a shareable prefix index, by plugin name."""
    return {name: p for name, p in plugins.items() if isinstance(p, SharedPrefixIndex)}


class SyncCollector(Collector):
    """inference_extension_prefix_sync_* families, read from the hub at scrape time."""

    PREFIX = "inference_extension_prefix_sync_"

    def __init__(self, hub: PrefixSyncHub) -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        s, p = self.hub.stats, self.PREFIX
        yield _counter(p + "updates_published", "Local prefix-index additions queued for peers.", s.published)
        yield _counter(p + "updates_sent", "Updates written to peers (summed over peers).", s.sent)
        yield _counter(p + "updates_received", "Prefix-index updates received from peers.", s.received)
        yield _counter(p + "updates_applied", "Peer updates applied to the local prefix index.", s.applied)
        dropped = CounterMetricFamily(
            p + "updates_dropped", "Updates not delivered or not applied, by reason.", labels=["reason"]
        )
        counts = dict(s.dropped, overflow=self.hub.overflow_drops())
        for reason in DROP_REASONS:
            dropped.add_metric([reason], counts[reason])
        yield dropped
        yield SummaryMetricFamily(
            p + "lag_seconds",
            "Pick-to-apply delay of applied peer updates (wall clocks of two replicas).",
            count_value=s.applied,
            sum_value=s.lag_sum_s,
        )
        yield GaugeMetricFamily(p + "peers_connected", "Peers with an open update stream.", s.peers_connected)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)
