"""When does disaggregated prefill/decode beat aggregated serving? (a benchmark, not a test)

Four simulated H100s (Llama-2-7B) in virtual time, routed by the EPP's own scheduler:
aggregated (the default EndpointPickerConfig) or P/D (pd-profile-handler, prefill-filter /
decode-filter over `llm-d.ai/role` labels, KV over a 25 GB/s link per pod) with 1 prefill +
3 decode or 2 + 2 pods. Workloads: short prompts (~200 tokens) and long prompts (~3.8k tokens),
both ~200 output tokens, Poisson arrivals at several loads; and a 75/25 mix of the two, where
a `nonCachedTokens` threshold disaggregates only the long ones. Results and their reading are
in docs/disaggregation.md. Run:

    PYTHONPATH=src python bench/pd_bench.py [--duration 60] [--seed 1] [--bandwidth 25] [--markdown out.md]
"""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from inference_gateway.simulator.config import KVTransfer, LengthDistribution, ServerConfig
from inference_gateway.simulator.fleet_types import SimRequest
from inference_gateway.simulator.gateway import VirtualGateway
from inference_gateway.simulator.pd_fleet import run_pd_fleet
from inference_gateway.simulator.stats import Histogram
from inference_gateway.simulator.workload import sharegpt_like

MODEL = "meta-llama/Llama-2-7b-hf"
app = typer.Typer(add_completion=False)
console = Console()

# The chart default, with a seeded picker so that runs repeat exactly.
AGGREGATED_CONFIG = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
- type: max-score-picker
  parameters: {seed: 1}
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: queue-scorer, weight: 2}
  - {pluginRef: kv-cache-utilization-scorer, weight: 2}
  - {pluginRef: prefix-cache-scorer, weight: 3}
  - {pluginRef: max-score-picker}
"""

# The same scorers per profile, plus llm-d's role filters, decider and profile handler.
PD_CONFIG = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
- type: max-score-picker
  parameters: {seed: 1}
- type: prefill-filter
- type: decode-filter
- type: prefix-based-pd-decider
  parameters: {nonCachedTokens: THRESHOLD}
- type: pd-profile-handler
  parameters: {deciderPluginName: prefix-based-pd-decider}
schedulingProfiles:
- name: prefill
  plugins:
  - {pluginRef: prefill-filter}
  - {pluginRef: queue-scorer, weight: 2}
  - {pluginRef: kv-cache-utilization-scorer, weight: 2}
  - {pluginRef: prefix-cache-scorer, weight: 3}
  - {pluginRef: max-score-picker}
- name: decode
  plugins:
  - {pluginRef: decode-filter}
  - {pluginRef: queue-scorer, weight: 2}
  - {pluginRef: kv-cache-utilization-scorer, weight: 2}
  - {pluginRef: prefix-cache-scorer, weight: 3}
  - {pluginRef: max-score-picker}
"""


@dataclass(frozen=True)
class Workload:
    """Poisson arrivals; with `long_share` > 0, that share of them has `long_prompt`."""

    name: str
    prompt: LengthDistribution
    output: LengthDistribution
    loads: tuple[float, ...]  # QPS
    long_share: float = 0.0
    long_prompt: LengthDistribution | None = None

    def requests(self, qps: float, duration: float, seed: int) -> Iterator[SimRequest]:
        if not self.long_share or self.long_prompt is None:
            return self._stream("r", qps, self.prompt, duration, seed)
        short = self._stream("s", qps * (1 - self.long_share), self.prompt, duration, seed)
        long = self._stream("l", qps * self.long_share, self.long_prompt, duration, seed + 1)
        return heapq.merge(short, long, key=lambda r: r.arrival)

    def _stream(
        self, tag: str, qps: float, prompt: LengthDistribution, duration: float, seed: int
    ) -> Iterator[SimRequest]:
        work = sharegpt_like(qps, duration, seed=seed, prompt=prompt, output=self.output, with_text=True)
        for r in work:
            yield dataclasses.replace(r, request_id=f"{tag}{r.request_id}")


@dataclass(frozen=True)
class FleetSpec:
    name: str
    roles: tuple[str | None, ...]  # None: no role label (aggregated)
    threshold_tokens: int = 0


OUTPUT = LengthDistribution(median=200, sigma=0.3, minimum=16, maximum=240)
SHORT = LengthDistribution(200, 0.3, 50, 400)
LONG = LengthDistribution(3800, 0.05, 3000, 3850)  # + output stays within Llama-2's 4096
AGGREGATED = FleetSpec("aggregated 4", (None, None, None, None))
P1D3 = FleetSpec("P/D 1P+3D", ("prefill", "decode", "decode", "decode"))
P2D2 = FleetSpec("P/D 2P+2D", ("prefill", "prefill", "decode", "decode"))
SELECTIVE = FleetSpec("P/D 2P+2D, nonCachedTokens 1024", P2D2.roles, threshold_tokens=1024)
CASES: tuple[tuple[Workload, tuple[FleetSpec, ...]], ...] = (
    (Workload("short (~200 in)", SHORT, OUTPUT, (100.0, 180.0)), (AGGREGATED, P1D3, P2D2)),
    (Workload("long (~3.8k in)", LONG, OUTPUT, (8.0, 16.0, 24.0)), (AGGREGATED, P1D3, P2D2)),
    (
        Workload("mixed (75% short, 25% long)", SHORT, OUTPUT, (40.0,), 0.25, LONG),
        (AGGREGATED, P2D2, SELECTIVE),
    ),
)
STALL_S = 0.05  # an inter-token gap this long is a visible stall in a stream


def run_case(
    work: Workload, qps: float, spec: FleetSpec, duration: float, seed: int, kv: KVTransfer
) -> dict[str, float]:
    servers = [ServerConfig(name=f"pod-{i}", seed=seed + i, kv_transfer=kv) for i in range(len(spec.roles))]
    pd = any(spec.roles)
    config = PD_CONFIG.replace("THRESHOLD", str(spec.threshold_tokens)) if pd else AGGREGATED_CONFIG
    scheduler = VirtualGateway(config, roles=spec.roles)  # the EPP's Director, roles as pod labels
    result = run_pd_fleet(work.requests(qps, duration, seed), servers, scheduler)
    row = result.summary() | result.extra
    row["stalled"] = _stalled_share([s.stats.itl for s in result.servers])
    row["wall_s"] = result.wall_time
    return row


def _stalled_share(histograms: Sequence[Histogram]) -> float:
    """Share of decoded tokens that came more than STALL_S after the previous one (from the
    engines' inter-token-latency histograms; a long prefill in the same step causes these)."""
    total = stalled = 0
    for itl in histograms:
        above = bisect.bisect_left(itl.bounds, STALL_S) + 1  # buckets entirely above STALL_S
        total += itl.count
        stalled += sum(itl.counts[above:])
    return stalled / total if total else 0.0


def _ms(row: dict[str, float], key: str) -> str:
    return f"{1000 * row.get(key, float('nan')):.0f}"


def _tpot(row: dict[str, float], key: str) -> str:
    return f"{1000 * row.get(key, float('nan')):.1f}"


COLUMNS = (
    "workload",
    "QPS",
    "fleet",
    "TTFT p50 ms",
    "TTFT p90 ms",
    "TPOT p50 ms",
    "TPOT p99 ms",
    "tokens after a >50 ms gap",
    "req/s",
    "output tok/s",
    "disaggregated",
)


def cells(work: Workload, qps: float, spec: FleetSpec, row: dict[str, float]) -> list[str]:
    done = row.get("completed", 0.0)
    return [
        work.name,
        f"{qps:g}",
        spec.name,
        _ms(row, "ttft_p50"),
        _ms(row, "ttft_p90"),
        _tpot(row, "tpot_p50"),
        _tpot(row, "tpot_p99"),
        f"{row['stalled']:.1%}",
        f"{row.get('request_throughput', 0.0):.1f}",
        f"{row.get('output_token_throughput', 0.0):.0f}",
        f"{row.get('disaggregated', 0.0) / done:.0%}" if done else "-",
    ]


@app.command()
def main(
    duration: Annotated[float, typer.Option(help="Seconds of arrivals (virtual).")] = 60.0,
    seed: Annotated[int, typer.Option()] = 1,
    bandwidth: Annotated[float, typer.Option(help="KV transfer GB/s.")] = 25.0,
    markdown: Annotated[Path | None, typer.Option(help="Also write the table here.")] = None,
) -> None:
    kv = KVTransfer(bandwidth_gb_s=bandwidth)
    table = Table(*COLUMNS)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    wall = time.perf_counter()
    for work, fleets in CASES:
        for qps in work.loads:
            for spec in fleets:
                row = run_case(work, qps, spec, duration, seed, kv)
                values = cells(work, qps, spec, row)
                table.add_row(*values)
                lines.append("| " + " | ".join(values) + " |")
    console.print(table)
    console.print(
        f"{duration:g} s of arrivals per case, seed {seed}, KV link {bandwidth:g} GB/s; "
        f"wall {time.perf_counter() - wall:.0f} s"
    )
    if markdown is not None:
        markdown.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    app()
