"""Benchmark-style summary of per-request results (throughput and latency percentiles)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from inference_gateway.simulator.fleet_types import RequestResult


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]) of an ascending sequence."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(results: Sequence[RequestResult]) -> dict[str, float]:
    done = [r for r in results if r.status == "ok" and r.finish >= 0]
    out: dict[str, float] = {
        "requests": float(len(results)),
        "completed": float(len(done)),
        "rejected": float(sum(r.status == "rejected" for r in results)),
        "errors": float(sum(r.status in ("error", "not-found") for r in results)),
    }
    if not done:
        return out
    start = min(r.arrival for r in done)
    span = max(r.finish for r in done) - start
    out_tokens = sum(r.output_tokens for r in done)
    out["duration_s"] = span
    out["request_throughput"] = len(done) / span if span > 0 else math.nan
    out["output_token_throughput"] = out_tokens / span if span > 0 else math.nan
    out["preemptions"] = float(sum(r.preemptions for r in done))
    metrics = {
        "ttft": [r.ttft for r in done],
        "tpot": [r.tpot for r in done if r.output_tokens > 1],
        "ntpot": [r.ntpot for r in done],
        "e2e": [r.e2e for r in done],
    }
    for name, values in metrics.items():
        values.sort()
        if not values:
            continue
        out[f"{name}_mean"] = sum(values) / len(values)
        for q in (50, 90, 99):
            out[f"{name}_p{q}"] = percentile(values, q)
    return out
