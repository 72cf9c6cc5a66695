"""Prefix-cache routing with several EPP replicas: 1 vs 3 replicas, with and without prefix sync.

    PYTHONPATH=src python bench/replicas_bench.py [--quick] [--json]

Virtual time (the simulator's fleet): N system prompts x about M questions each, Poisson
arrivals, 4 simulated H100 pods. Requests are spread round-robin over the EPP replicas
(each its own Scheduler and PrefixIndex, default EndpointPickerConfig); with sync, a
replica's index additions reach the others `delay` later. Reported: the pods' prefix-cache
hit rate (hit tokens / queried tokens) and TTFT.

Real time: two PrefixSync runtimes on loopback gRPC; the pick-to-visible delay of single
updates (scored by the peer's PrefixIndex), and the update rate one stream sustains.
"""

from __future__ import annotations

import asyncio
import json
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from inference_gateway.scheduling.config import load_config
from inference_gateway.scheduling.prefix_sync import (
    PrefixSync,
    PrefixSyncOptions,
    StaticPeers,
    prefix_scorers,
)
from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.fleet import run_fleet
from inference_gateway.simulator.replicas import (
    ReplicaSet,
    ReplicaSetOptions,
    SystemPromptWorkload,
)
from inference_gateway.simulator.workload import SHAREGPT_PROMPT

QUESTION = SHAREGPT_PROMPT  # question lengths: ShareGPT-like prompts (median ~200 tokens)

app = typer.Typer(add_completion=False)


def run_case(
    work: SystemPromptWorkload, replicas: int, sync: bool, delay_s: float, scrape_s: float = 0.05
) -> dict[str, Any]:
    servers = [ServerConfig(name=f"pod-{i}", seed=i) for i in range(work.pods)]
    options = ReplicaSetOptions(replicas=replicas, sync=sync, delay_s=delay_s, scrape_interval_s=scrape_s)
    # The fleet publishes the pods' state every 5 ms; each replica copies it on its own 50 ms ticks.
    requests = work.requests()
    full_prefix = 16 * min(len(r.block_hashes or ()) for r in requests)
    result = run_fleet(requests, servers, ReplicaSet(options), scrape_interval=0.005)
    hits = sum(s.stats.prefix_hits for s in result.servers)
    queries = sum(s.stats.prefix_queries for s in result.servers)
    summary = result.summary()
    done = [r for r in result.results if r.status == "ok"]
    # Requests that had to prefill (part of) their system prompt: cold or evicted copies.
    prefix_misses = sum(1 for r in done if r.cached_tokens < full_prefix)
    return {
        "replicas": replicas,
        "sync": f"{delay_s * 1000:g} ms" if sync and replicas > 1 else "-",
        "requests": int(summary["requests"]),
        "prefix_hit_rate": round(hits / queries, 4) if queries else 0.0,
        "system_prompt_prefills": prefix_misses,
        "ttft_p50_ms": round(1000 * summary.get("ttft_p50", 0.0), 1),
        "ttft_p99_ms": round(1000 * summary.get("ttft_p99", 0.0), 1),
        "wall_s": round(result.wall_time, 1),
    }


def virtual_cases(work: SystemPromptWorkload, delays: list[float]) -> list[dict[str, Any]]:
    rows = [run_case(work, 1, False, 0.0), run_case(work, 3, False, 0.0)]
    rows += [run_case(work, 3, True, d) for d in delays]
    return rows


# ---- real time: two PrefixSync runtimes on loopback -------------------------------------------
async def _until(check: Callable[[], bool], step_s: float, within_s: float = 30.0) -> None:
    for _ in range(int(within_s / step_s)):
        if check():
            return
        await asyncio.sleep(step_s)
    raise TimeoutError("prefix sync did not converge")


async def _pair(flush_s: float, limit: int = 1 << 20) -> tuple[Any, Any, Any, Any]:
    configs = [load_config(), load_config()]
    syncs = [
        PrefixSync.for_plugins(
            c.plugins, PrefixSyncOptions(port=0, flush_interval_s=flush_s, queue_limit=limit)
        )
        for c in configs
    ]
    ports = [await s.start() for s in syncs]
    for s, port in zip(syncs, reversed(ports), strict=True):
        s.sources = [StaticPeers((f"127.0.0.1:{port}",))]
        await s.refresh_peers()
    await _until(lambda: all(s.connected_peers() for s in syncs), 0.005)
    scorers = [prefix_scorers(c.plugins)["prefix-cache-scorer"] for c in configs]
    return syncs[0], syncs[1], scorers[0], scorers[1]


async def propagation(samples: int, flush_s: float) -> dict[str, Any]:
    """Pick-to-visible delay: publish one update on A, poll B's index until it matches."""
    a, b, left, right = await _pair(flush_s)
    lags: list[float] = []
    try:
        for i in range(samples):
            hashes = [i * 1000 + k for k in range(1, 33)]
            t0 = time.perf_counter()
            left.listeners[0]("10.0.0.1:8000", hashes, None)
            await _until(lambda h=hashes: right.index.match(h[:1]).get("10.0.0.1:8000") == 1, 0.0005)
            lags.append(time.perf_counter() - t0)
            await asyncio.sleep(0.01)
    finally:
        await a.stop()
        await b.stop()
    lags.sort()
    return {
        "flush_ms": flush_s * 1000,
        "samples": samples,
        "lag_p50_ms": round(1000 * statistics.median(lags), 1),
        "lag_p99_ms": round(1000 * lags[int(0.99 * (len(lags) - 1))], 1),
        "lag_max_ms": round(1000 * lags[-1], 1),
    }


async def throughput(updates: int, blocks: int) -> dict[str, Any]:
    """How fast one stream moves updates of `blocks` hashes, publish to applied on the peer."""
    a, b, left, _ = await _pair(0.02)
    try:
        publish = left.listeners[0]
        t0 = time.perf_counter()
        for i in range(updates):
            publish(f"10.0.{i % 8}.1:8000", list(range(i * blocks, (i + 1) * blocks)), None)
            if i % 1024 == 1023:
                await asyncio.sleep(0)
        await _until(lambda: b.hub.stats.applied >= updates, 0.005)
        wall = time.perf_counter() - t0
    finally:
        await a.stop()
        await b.stop()
    return {
        "updates": updates,
        "blocks_per_update": blocks,
        "updates_per_s": round(updates / wall),
        "dropped": a.hub.overflow_drops(),
    }


def _table(title: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=title)
    for key in rows[0]:
        table.add_column(key)
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    return table


@app.command()
def main(
    quick: Annotated[bool, typer.Option(help="Smaller workloads (a smoke run).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    scale = 4 if quick else 1
    pressure = SystemPromptWorkload(prompts=128, questions=20 // scale)
    light = SystemPromptWorkload(prompts=32, questions=80 // scale)
    delays = [0.0, 0.02, 0.1, 0.5]
    report: dict[str, Any] = {
        "python": platform.python_version(),
        "cache_pressure": {"workload": asdict(pressure), "rows": virtual_cases(pressure, delays)},
        "no_cache_pressure": {"workload": asdict(light), "rows": virtual_cases(light, [0.02])},
        "loopback_lag": [asyncio.run(propagation(50 if quick else 200, f)) for f in (0.02, 0.0)],
        "loopback_throughput": asyncio.run(throughput(5_000 if quick else 50_000, 64)),
    }
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    console = Console()
    for key in ("cache_pressure", "no_cache_pressure"):
        w = report[key]["workload"]
        title = (
            f"{key}: {w['prompts']} system prompts x {w['questions']} questions, "
            f"{w['prefix_tokens']}-token prefixes, {w['qps']} QPS, {w['pods']} pods"
        )
        console.print(_table(title, report[key]["rows"]))
    console.print(_table("loopback gRPC: pick on A -> visible on B", report["loopback_lag"]))
    console.print(_table("loopback gRPC: one stream", [report["loopback_throughput"]]))


if __name__ == "__main__":
    app()
