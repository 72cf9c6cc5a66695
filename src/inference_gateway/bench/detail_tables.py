"""Per-run detail tables for scenario features: a mixed fleet, EPP replicas, any per-row metric.

`metric_table` is the one way to print virtual-time rows as (QPS, policy, metrics...): every
feature table below is a list of columns, each a header and a function of one row.
Seeds are averaged per (policy, QPS) first, on every number a column reads.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

Row = dict[str, Any]
Column = tuple[str, Callable[[Row], str]]


def ms(value: float | None) -> str:
    """A latency in ms, in seconds once it passes 10 s (queues past saturation)."""
    if value is None:
        return "-"
    return f"{value:,.0f} ms" if value < 10_000 else f"{value / 1000:,.0f} s"


def _mean(values: list[Any]) -> Any:
    if all(isinstance(v, dict) for v in values):
        return {k: _mean([v.get(k) for v in values]) for k in values[0]}
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(numbers) != len(values):
        return values[0]
    return sum(numbers) / len(numbers)


def seed_means(rows: Sequence[Row]) -> list[Row]:
    """One row per (policy, QPS), in first-seen policy order and rising QPS; numbers (also
    nested ones) are averaged over the seeds."""
    grouped: dict[tuple[str, float], list[Row]] = defaultdict(list)
    for r in rows:
        grouped[(r["policy"], float(r["qps"]))].append(r)
    order = list(dict.fromkeys(r["policy"] for r in rows))
    keys = sorted(grouped, key=lambda k: (k[1], order.index(k[0])))
    return [{k: _mean([g.get(k) for g in grouped[key]]) for k in grouped[key][0]} for key in keys]


def metric_table(rows: Sequence[Row], columns: Sequence[Column]) -> str:
    header = ["QPS", "policy", *(title for title, _ in columns)]
    body = [[f"{r['qps']:g}", r["policy"], *(cell(r) for _, cell in columns)] for r in seed_means(rows)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(b) + " |" for b in body])


def fleet_table(rows: Sequence[Row]) -> str:
    """A mixed fleet: latency, output tokens/s while requests arrived, share routed per group."""
    groups = list(rows[0]["fleet"])
    columns: list[Column] = [
        ("TTFT p50", lambda r: ms(r["ttft"]["p50"])),
        ("TTFT p90", lambda r: ms(r["ttft"]["p90"])),
        ("TPOT p50", lambda r: f"{r['tpot']['p50']:.1f} ms"),
        ("TPOT p90", lambda r: f"{r['tpot']['p90']:.1f} ms"),
        ("output tok/s", lambda r: f"{r['window_output_tps']:,.0f}"),
    ]
    columns += [(f"to {group}", _routed_share(group)) for group in groups]
    seeds = len({r["seed"] for r in rows})
    note = (
        f"\n\nMeans over {seeds} seed(s). Output tok/s counts the tokens generated while"
        ' requests were arriving; "to <group>" is the share of requests routed to that group.'
    )
    return metric_table(rows, columns) + note


def _routed_share(group: str) -> Callable[[Row], str]:
    return lambda r: f"{100 * r['fleet'][group]['routed_share']:.1f} %"


def lora_table(rows: Sequence[Row]) -> str:
    """Adapters spread over the pods: requests sent to a pod without their adapter, per policy."""

    def misrouted(r: Row) -> str:
        lora = r["lora"]
        share = lora["misrouted"] / max(lora["adapter_requests"], 1)
        return f"{lora['misrouted']:,.0f} ({100 * share:.1f} %)"

    columns: list[Column] = [
        ("adapter requests", lambda r: f"{r['lora']['adapter_requests']:,.0f}"),
        ("misrouted", misrouted),
        ("misrouted that failed", lambda r: f"{r['lora']['misrouted_errors']:,.0f}"),
        ("served", lambda r: f"{r['ok']:,.0f}"),
        ("TTFT p90", lambda r: ms(r["ttft"]["p90"])),
        ("output tok/s", lambda r: f"{r['output_tps']:,.0f}"),
    ]
    note = (
        '\n\n"misrouted": requests for an adapter sent to a pod that does not list it on GET'
        " /v1/models; the simulated vLLM answers them 404 NotFoundError (no on-demand loading)."
        " TTFT and tokens/s count the requests served."
    )
    return metric_table(rows, columns) + note


def replicas_table(rows: Sequence[Row]) -> str:
    """Prefix-cache routing: pods' hit rate, requests that prefilled part of their shared prefix."""

    def sync(r: Row) -> str:
        replicas = r.get("replicas")
        if not replicas or replicas["count"] == 1:
            return "-"
        delay = replicas["sync_delay_s"]
        return "none" if delay is None else f"{1000 * delay:g} ms"

    columns: list[Column] = [
        ("EPP replicas", lambda r: str(round(r["replicas"]["count"])) if r.get("replicas") else "-"),
        ("sync delay", sync),
        ("pod prefix hit rate", lambda r: f"{r['server']['prefix_hit_rate']:.3f}"),
        ("shared-prefix prefills", lambda r: f"{r['prefix_prefills']:,.0f}"),
        ("TTFT p50", lambda r: f"{r['ttft']['p50']:.1f} ms"),
        ("TTFT p99", lambda r: f"{r['ttft']['p99']:.1f} ms"),
    ]
    return metric_table(rows, columns)


def sync_table(rows: Sequence[Row]) -> str:
    """Loopback prefix sync: pick-to-applied delay per flush interval, one stream's rate."""
    lines = ["| measurement | result | cores / load |", "|---|---|---|"]
    for r in rows:
        machine = f"{r['cores']:.0f} / {r['loadavg']:.1f}"
        if r["kind"] == "lag":
            result = (f"p50 {r['lag_p50_ms']:.1f} ms, p99 {r['lag_p99_ms']:.1f} ms, "
                      f"max {r['lag_max_ms']:.1f} ms ({r['samples']} updates)")  # fmt: skip
            lines.append(f"| pick on A -> applied on B, flush {r['flush_ms']:g} ms | {result} | {machine} |")
        else:
            result = f"{r['updates_per_s']:,.0f} updates/s, {r['dropped']:.0f} dropped"
            what = f"one stream, {r['updates']:,} updates of {r['blocks_per_update']} block hashes"
            lines.append(f"| {what} | {result} | {machine} |")
    return "\n".join(lines)
