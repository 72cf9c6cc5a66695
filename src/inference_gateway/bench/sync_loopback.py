"""Prefix sync between two EPP replicas on loopback gRPC, in real time (the `sync` section).

Two PrefixSync runtimes (the EPP's own, built from the default EndpointPickerConfig) dial
each other on 127.0.0.1. Measured: the pick-to-applied delay of single updates at each flush
interval, and the rate one stream moves updates of `blocks_per_update` hashes. Timings depend
on the machine and its load: each row records the core count and the 1-minute load average.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from inference_gateway.scheduling.config import load_config
from inference_gateway.scheduling.prefix_sync import PrefixSync, PrefixSyncOptions, StaticPeers

SCORER = "prefix-cache-scorer"


@dataclass(frozen=True)
class SyncBenchOptions:
    lag_samples: int = 200
    flush_intervals_s: tuple[float, ...] = (0.02, 0.0)
    throughput_updates: int = 50_000
    blocks_per_update: int = 64


async def _until(check: Callable[[], bool], step_s: float, within_s: float = 30.0) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("prefix sync did not converge")
        await asyncio.sleep(step_s)


async def _pair(flush_s: float) -> tuple[PrefixSync, PrefixSync]:
    syncs = [
        PrefixSync.for_plugins(load_config().plugins, PrefixSyncOptions(port=0, flush_interval_s=flush_s))
        for _ in range(2)
    ]
    ports = [await s.start() for s in syncs]
    for sync, port in zip(syncs, reversed(ports), strict=True):
        sync.sources = [StaticPeers((f"127.0.0.1:{port}",))]
        await sync.refresh_peers()
    await _until(lambda: all(s.connected_peers() for s in syncs), 0.005)
    return syncs[0], syncs[1]


def _machine() -> dict[str, Any]:
    return {"cores": float(os.cpu_count() or 0), "loadavg": os.getloadavg()[0]}


async def lag_row(samples: int, flush_s: float) -> dict[str, Any]:
    """Publish one update on A, wait until B has applied it; repeat."""
    a, b = await _pair(flush_s)
    lags: list[float] = []
    try:
        for i in range(samples):
            applied = b.hub.stats.applied
            started = time.perf_counter()
            a.hub.publish(SCORER, "10.0.0.1:8000", [i * 1000 + k for k in range(1, 33)])
            await _until(lambda: b.hub.stats.applied > applied, 0.0005)  # noqa: B023
            lags.append(time.perf_counter() - started)
            await asyncio.sleep(0.01)
    finally:
        await a.stop()
        await b.stop()
    lags.sort()
    return {
        "kind": "lag", "flush_ms": 1000 * flush_s, "samples": samples,
        "lag_p50_ms": 1000 * statistics.median(lags), "lag_p99_ms": 1000 * lags[int(0.99 * (len(lags) - 1))],
        "lag_max_ms": 1000 * lags[-1], **_machine(),
    }  # fmt: skip


async def throughput_row(updates: int, blocks: int) -> dict[str, Any]:
    """Publish `updates` updates as fast as the event loop allows; time until B applied all."""
    a, b = await _pair(0.02)
    try:
        started = time.perf_counter()
        for i in range(updates):
            a.hub.publish(SCORER, f"10.0.{i % 8}.1:8000", list(range(i * blocks, (i + 1) * blocks)))
            if i % 1024 == 1023:
                await asyncio.sleep(0)
        await _until(lambda: b.hub.stats.applied >= updates, 0.005, within_s=120)
        wall = time.perf_counter() - started
    finally:
        await a.stop()
        await b.stop()
    return {
        "kind": "throughput", "updates": updates, "blocks_per_update": blocks,
        "updates_per_s": updates / wall, "dropped": float(a.hub.overflow_drops()), **_machine(),
    }  # fmt: skip


async def run_sync_bench(options: SyncBenchOptions) -> list[dict[str, Any]]:
    rows = [await lag_row(options.lag_samples, flush) for flush in options.flush_intervals_s]
    if options.throughput_updates:
        rows.append(await throughput_row(options.throughput_updates, options.blocks_per_update))
    return rows
