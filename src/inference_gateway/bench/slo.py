"""Per-class SLO attainment of a mixed-SLO run (workload kind `mixed-slo`) and its tables.

A request meets its TTFT (TPOT) objective when it was served and its TTFT (mean time per
output token after the first) is at most the objective. Shed and failed requests count as
missing every objective they carry: attainment is over all requests of a class, not only
the served ones, so a policy cannot look better by shedding what it would serve late.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inference_gateway.bench.detail_tables import seed_means
from inference_gateway.bench.workloads import SloClass
from inference_gateway.simulator.fleet_types import RequestResult

ALL = "with TTFT objective"  # the row over every request that carries a TTFT objective


@dataclass
class _Tally:
    ttft_ms: float | None
    tpot_ms: float | None
    requests: int = 0
    shed: int = 0
    ttft_met: int = 0
    tpot_met: int = 0
    ttfts: list[float] = field(default_factory=list)
    tpots: list[float] = field(default_factory=list)

    def add(self, r: RequestResult, ttft_ms: float | None, tpot_ms: float | None) -> None:
        self.requests += 1
        if r.status == "rejected":  # the gateway answered without routing it (shed)
            self.shed += 1
        if r.status != "ok" or r.first_token < 0 or r.finish < 0:
            return
        ttft, tpot = 1000.0 * r.ttft, 1000.0 * r.tpot
        self.ttfts.append(ttft)
        if r.output_tokens > 1:
            self.tpots.append(tpot)
        self.ttft_met += ttft_ms is not None and ttft <= ttft_ms
        self.tpot_met += tpot_ms is not None and tpot <= tpot_ms

    def summary(self) -> dict[str, Any]:
        n = max(self.requests, 1)
        return {
            "requests": self.requests,
            "ttft_objective_ms": self.ttft_ms,
            "tpot_objective_ms": self.tpot_ms,
            "shed_share": self.shed / n,
            "ttft_met": self.ttft_met / n if self.ttft_ms is not None else None,
            "tpot_met": self.tpot_met / n if self.tpot_ms is not None else None,
            "ttft_p90_ms": float(np.percentile(self.ttfts, 90)) if self.ttfts else None,
            "tpot_p90_ms": float(np.percentile(self.tpots, 90)) if self.tpots else None,
        }


def slo_summary(
    results: Sequence[RequestResult], groups: Sequence[str], classes: dict[str, SloClass]
) -> dict[str, dict[str, Any]]:
    """Per class (by each request's group label) and over every request with a TTFT objective:
    requests, shed share, shares meeting the TTFT / TPOT objective, p90 TTFT and TPOT (ms)."""
    tallies = {name: _Tally(c.ttft_ms, c.tpot_ms) for name, c in classes.items()}
    overall = _Tally(0.0, None)  # objective per request; the 0 only marks "has one"
    for r in results:
        name = groups[r.request_id] if isinstance(r.request_id, int) else ""
        slo = classes.get(name)
        if slo is None:
            continue
        tallies[name].add(r, slo.ttft_ms, slo.tpot_ms)
        if slo.ttft_ms is not None:
            overall.add(r, slo.ttft_ms, None)
    out = {name: t.summary() for name, t in tallies.items()}
    out[ALL] = overall.summary() | {"ttft_objective_ms": None}
    return out


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.1f}"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def attainment_table(rows: Sequence[dict[str, Any]]) -> str:
    """QPS x policy: % of requests with a TTFT objective that met it (shed ones count as missed)."""
    data = seed_means([r for r in rows if r.get("slo")])
    policies = list(dict.fromkeys(r["policy"] for r in data))
    rates = sorted({r["qps"] for r in data})
    cell = {(r["policy"], r["qps"]): r["slo"][ALL]["ttft_met"] for r in data}
    lines = ["| QPS | " + " | ".join(policies) + " |", "|---|" + "---|" * len(policies)]
    for q in rates:
        lines.append(f"| {q:g} | " + " | ".join(_pct(cell.get((p, q))) for p in policies) + " |")
    return "\n".join(lines)


def classes_table(rows: Sequence[dict[str, Any]]) -> str:
    """Per rate, policy and class: shed share, objectives met, p90 TTFT and TPOT."""
    header = ["QPS", "policy", "class", "objectives (TTFT / TPOT ms)", "requests", "shed %",
              "TTFT met %", "TPOT met %", "p90 TTFT ms", "p90 TPOT ms"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in seed_means([r for r in rows if r.get("slo")]):
        for name, c in r["slo"].items():
            if name == ALL:
                continue
            objectives = " / ".join(
                "-" if v is None else f"{v:g}" for v in (c["ttft_objective_ms"], c["tpot_objective_ms"])
            )
            cells = [f"{r['qps']:g}", r["policy"], name, objectives, f"{c['requests']:,.0f}",
                     _pct(c["shed_share"]), _pct(c["ttft_met"]), _pct(c["tpot_met"]),
                     _ms(c["ttft_p90_ms"]), _ms(c["tpot_p90_ms"])]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
