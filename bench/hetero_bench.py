"""Heterogeneous fleet benchmark: the default profile vs capacity-load-scorer, in virtual time.

    PYTHONPATH=src python bench/hetero_bench.py [--quick] [--markdown]

Fleets: 2x H100 + 2x L4, and 2x H100 + 2x A100 (simulator profiles; L4 and A100 are scaled
estimates, see docs/simulator.md). Workload: ShareGPT-like lengths, Poisson arrivals, half of
the requests opening with one of 8 shared 512-token system prompts (prompt text included, so
the prefix-cache scorer works as in production). Each scheduler is the EPP's own code (its
Director and PoolRuntime, simulator/gateway.py) reading metrics scraped every 50 ms; pickers
are seeded and every (fleet, QPS, scheduler) cell pools the requests of the same seeds, so the
comparison is paired. Output throughput counts tokens generated while requests were arriving
(the stragglers a slow pod finishes afterwards do not stretch the denominator).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.fleet import run_fleet
from inference_gateway.simulator.fleet_types import RequestResult, Scheduler
from inference_gateway.simulator.gateway import VirtualGateway
from inference_gateway.simulator.report import percentile
from inference_gateway.simulator.schedulers import RoundRobinScheduler
from inference_gateway.simulator.workload import SharedPrefixes, sharegpt_like

DEFAULT_PROFILE = """
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
- {type: max-score-picker, parameters: {seed: 1}}
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: queue-scorer, weight: 2}
  - {pluginRef: kv-cache-utilization-scorer, weight: 2}
  - {pluginRef: prefix-cache-scorer, weight: 3}
  - {pluginRef: max-score-picker}
"""

# The default profile plus capacity-load-scorer (what docs/heterogeneous.md recommends).
CAPACITY_PROFILE = """
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
- type: capacity-load-scorer
- {type: max-score-picker, parameters: {seed: 1}}
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: queue-scorer, weight: 2}
  - {pluginRef: kv-cache-utilization-scorer, weight: 2}
  - {pluginRef: prefix-cache-scorer, weight: 3}
  - {pluginRef: capacity-load-scorer, weight: 3}
  - {pluginRef: max-score-picker}
"""

SCHEDULERS: dict[str, Callable[[], Scheduler]] = {
    "round robin": RoundRobinScheduler,
    "default profile": lambda: VirtualGateway(DEFAULT_PROFILE),
    "default + capacity-load": lambda: VirtualGateway(CAPACITY_PROFILE),
}
FLEETS = {"2x H100 + 2x L4": "l4-llama2-7b", "2x H100 + 2x A100": "a100-llama2-7b"}
PREFIXES = SharedPrefixes(groups=8, tokens=512, fraction=0.5)


@dataclass
class Cell:
    ttft_p50: float
    ttft_p90: float
    tpot_p50: float
    tpot_p90: float
    output_tps: float
    slow_share: float


def fleet(slow_profile: str) -> list[ServerConfig]:
    fast = [ServerConfig(name=f"h100-{i}", seed=i) for i in range(2)]
    slow = [ServerConfig(name=f"slow-{i}", profile=slow_profile, seed=10 + i) for i in range(2)]
    return fast + slow


def tokens_in_window(r: RequestResult, end: float) -> float:
    """Output tokens produced before `end`, spread evenly from the first token to the last."""
    if r.first_token < 0 or r.first_token >= end:
        return 0.0
    if r.finish <= end or r.finish <= r.first_token:
        return float(r.output_tokens)
    return 1 + (r.output_tokens - 1) * (end - r.first_token) / (r.finish - r.first_token)


def run_cell(
    make: Callable[[], Scheduler],
    servers: list[ServerConfig],
    qps: float,
    duration: float,
    seeds: Sequence[int],
) -> Cell:
    results: list[RequestResult] = []
    produced = 0.0
    for seed in seeds:
        work = sharegpt_like(qps, duration, seed=seed, prefixes=PREFIXES, with_text=True)
        run = run_fleet(work, servers, make())
        results += run.results
        produced += sum(tokens_in_window(r, duration) for r in run.results)
    done = [r for r in results if r.status == "ok" and r.finish >= 0]
    ttft = sorted(r.ttft for r in done)
    tpot = sorted(r.tpot for r in done if r.output_tokens > 1)
    slow = sum(1 for r in results if r.endpoint >= 2) / max(len(results), 1)
    return Cell(
        percentile(ttft, 50),
        percentile(ttft, 90),
        percentile(tpot, 50),
        percentile(tpot, 90),
        produced / (duration * len(seeds)),
        slow,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="one seed, 30 s per cell (smoke run)")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table instead")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of arrivals per run")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    duration, seeds = (30.0, [1]) if args.quick else (args.duration, list(range(1, args.seeds + 1)))
    loads = {"2x H100 + 2x L4": (40, 60, 70), "2x H100 + 2x A100": (60, 80, 100)}

    header = [
        "fleet",
        "QPS",
        "scheduler",
        "TTFT p50",
        "TTFT p90",
        "TPOT p50",
        "TPOT p90",
        "output tok/s",
        "to slow pods",
    ]
    rows: list[list[str]] = []
    for fleet_name, slow_profile in FLEETS.items():
        servers = fleet(slow_profile)
        for qps in loads[fleet_name]:
            for name, make in SCHEDULERS.items():
                c = run_cell(make, servers, qps, duration, seeds)
                rows.append(
                    [
                        fleet_name,
                        str(qps),
                        name,
                        _ms(c.ttft_p50),
                        _ms(c.ttft_p90),
                        _ms(c.tpot_p50, 1),
                        _ms(c.tpot_p90, 1),
                        f"{c.output_tps:,.0f}",
                        f"{c.slow_share:.1%}",
                    ]
                )
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    table = Table(
        title=f"heterogeneous fleets, {duration:.0f} s x {len(seeds)} seed(s) per cell (virtual time)"
    )
    for h in header:
        table.add_column(h, justify="left" if h in ("fleet", "scheduler") else "right")
    for row in rows:
        table.add_row(*row)
    Console(width=140).print(table)


def _ms(seconds: float, digits: int = 0) -> str:
    value = seconds * 1000
    return f"{value:,.{digits}f} ms" if value < 10_000 else f"{seconds:,.0f} s"


if __name__ == "__main__":
    main()
