"""Per-run statistics: throughput, latency percentiles, errors; one JSON-able dict per run.

Latency names follow vLLM's benchmark_serving: TTFT (time to first token), TPOT (time per
output token after the first), ITL (gap between streamed chunks), e2e, and NTPOT
(normalised time per output token = e2e / output tokens, the seed benchmark's metric).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inference_gateway.bench.loadgen import RequestRecord

PERCENTILES = (50, 90, 99)


def distribution(values: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Mean and p50/p90/p99 in milliseconds (values are in seconds); empty -> NaNs."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return {"mean": float("nan"), **{f"p{p}": float("nan") for p in PERCENTILES}}
    pct = np.percentile(arr, PERCENTILES)
    out = {"mean": float(arr.mean() * 1e3)}
    out.update({f"p{p}": float(v * 1e3) for p, v in zip(PERCENTILES, pct, strict=True)})
    return out


@dataclass
class Outcomes:
    """Columns of per-request outcomes, from either the HTTP client or the virtual fleet."""

    ttft: list[float] = field(default_factory=list)
    tpot: list[float] = field(default_factory=list)
    ntpot: list[float] = field(default_factory=list)
    e2e: list[float] = field(default_factory=list)
    itl: list[float] = field(default_factory=list)
    output_tokens: int = 0
    prompt_tokens: int = 0
    ok: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    lag: list[float] = field(default_factory=list)

    def add_ok(self, ttft: float, e2e: float, output_tokens: int, prompt_tokens: int) -> None:
        self.ok += 1
        self.ttft.append(ttft)
        self.e2e.append(e2e)
        self.ntpot.append(e2e / max(output_tokens, 1))
        if output_tokens > 1:
            self.tpot.append((e2e - ttft) / (output_tokens - 1))
        self.output_tokens += output_tokens
        self.prompt_tokens += prompt_tokens


def outcomes_from_records(records: Iterable[RequestRecord]) -> Outcomes:
    out = Outcomes()
    for r in records:
        out.lag.append(r.lag)
        if r.ok:
            out.statuses["200"] += 1
            out.add_ok(r.ttft, r.e2e, r.output_tokens, r.prompt_tokens)
            out.itl.extend(r.itl)
        else:
            out.statuses[str(r.status) if r.status else "conn-error"] += 1
    return out


def summarize(outcomes: Outcomes, span_s: float, **labels: Any) -> dict[str, Any]:
    """One result row: `labels` (scenario, mode, policy, qps, ...) plus the statistics."""
    total = sum(outcomes.statuses.values())
    span = max(span_s, 1e-9)
    row: dict[str, Any] = dict(labels)
    row.update(
        requests=total,
        ok=outcomes.ok,
        errors={k: v for k, v in sorted(outcomes.statuses.items()) if k != "200"},
        span_s=round(span_s, 3),
        throughput_rps=outcomes.ok / span,
        output_tps=outcomes.output_tokens / span,
        input_tps=outcomes.prompt_tokens / span,
        ttft=distribution(outcomes.ttft),
        tpot=distribution(outcomes.tpot),
        ntpot=distribution(outcomes.ntpot),
        itl=distribution(outcomes.itl),
        e2e=distribution(outcomes.e2e),
    )
    if outcomes.lag:
        row["client_lag"] = distribution(outcomes.lag)
    return row


def series_summary(series: Sequence[dict[str, float]]) -> dict[str, float]:
    """Server-side gauges over time (kv, waiting, running per sample) -> means and peaks."""
    if not series:
        return {}
    out: dict[str, float] = {}
    for key in ("kv", "waiting", "running"):
        values = np.asarray([s[key] for s in series if key in s], dtype=float)
        if values.size:
            out[f"{key}_mean"] = float(values.mean())
            out[f"{key}_p90"] = float(np.percentile(values, 90))
            out[f"{key}_max"] = float(values.max())
    return out
