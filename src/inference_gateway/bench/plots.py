"""PNG plots of benchmark results (matplotlib, headless)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

_STYLE = {
    "round-robin": "k--",
    "random": "C7:",
    "least-queue": "C2-.",
    "epp-default": "C0-",
    "epp-best": "C3-",
}


def _lines(rows: list[dict[str, Any]], value: Any) -> dict[str, tuple[list[float], list[float]]]:
    per: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        per[r["policy"]][float(r["qps"])].append(float(value(r)))
    return {p: (sorted(d), [sum(d[q]) / len(d[q]) for q in sorted(d)]) for p, d in per.items()}


def _panel(ax: Any, rows: list[dict[str, Any]], value: Any, title: str, log: bool = False) -> None:
    for policy, (xs, ys) in _lines(rows, value).items():
        ax.plot(xs, ys, _STYLE.get(policy, "-"), marker="o", markersize=3, label=policy)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("offered QPS")
    if log:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)


def plot_virtual(rows: list[dict[str, Any]], out: Path, name: str) -> list[Path]:
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    _panel(axes[0][0], rows, lambda r: r["output_tps"], "output tokens/s")
    _panel(axes[0][1], rows, lambda r: r["ntpot"]["p90"], "p90 NTPOT (ms/token)", log=True)
    _panel(axes[0][2], rows, lambda r: r["ttft"]["p90"], "p90 TTFT (ms)", log=True)
    _panel(axes[1][0], rows, lambda r: r["tpot"]["p90"], "p90 TPOT (ms)")
    _panel(axes[1][1], rows, lambda r: 100 * r.get("server", {}).get("kv_mean", 0.0), "mean KV-cache use (%)")
    _panel(
        axes[1][2], rows, lambda r: r.get("server", {}).get("waiting_mean", 0.0) + 1, "mean queue + 1", True
    )
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{name}: virtual time, simulated fleet, real scheduler code")
    fig.tight_layout()
    latency = out / f"{name}-virtual.png"
    fig.savefig(latency, dpi=90)
    plt.close(fig)
    paths = [latency]
    series = _series_plot(rows, out, name)
    if series is not None:
        paths.append(series)
    return paths


def _series_plot(rows: list[dict[str, Any]], out: Path, name: str) -> Path | None:
    """Queue depth and KV use over time at the rate where the policies differ most."""
    with_series = [r for r in rows if r.get("series")]
    if not with_series:
        return None

    def spread(q: float) -> float:
        values = [r["ntpot"]["p90"] or 0.0 for r in with_series if float(r["qps"]) == q]
        return max(values) / max(min(values), 1e-9) if values else 0.0

    qps = max(sorted({float(r["qps"]) for r in with_series}), key=spread)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for r in with_series:
        if float(r["qps"]) != qps:
            continue
        t = [p[0] for p in r["series"]]
        style = _STYLE.get(r["policy"], "-")
        axes[0].plot(t, [100 * p[1] for p in r["series"]], style, label=r["policy"], linewidth=1)
        axes[1].plot(t, [p[2] for p in r["series"]], style, label=r["policy"], linewidth=1)
    axes[0].set_title(f"KV-cache use, fleet mean (%) at {qps:g} QPS", fontsize=10)
    axes[1].set_title(f"waiting requests, fleet mean, at {qps:g} QPS", fontsize=10)
    for ax in axes:
        ax.set_xlabel("virtual time (s)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path = out / f"{name}-virtual-series.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_realtime(rows: list[dict[str, Any]], out: Path, name: str) -> Path:
    fig, axes = plt.subplots(1, 4, figsize=(17, 4))
    _panel(axes[0], rows, lambda r: r["output_tps"], "output tokens/s")
    _panel(axes[1], rows, lambda r: r["ntpot"]["p90"], "p90 NTPOT (ms/token)")
    _panel(axes[2], rows, lambda r: r["ttft"]["p90"], "p90 TTFT (ms)")
    _panel(axes[3], rows, lambda r: r["itl"]["p90"], "p90 ITL (ms)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{name}: real time through Envoy (round robin vs EPP)")
    fig.tight_layout()
    path = out / f"{name}-realtime.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_overhead(rows: list[dict[str, Any]], out: Path, name: str) -> Path:
    rates = [r for r in rows if not r.get("prompt_bytes") and not r.get("itl_tokens")]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, pct in zip(axes, ("p50_ms", "p99_ms"), strict=True):
        for mode, style in (
            ("backend", "C7:"),
            ("envoy", "k--"),
            ("envoy+noop", "C2-."),
            ("envoy+epp", "C0-"),
            ("envoy+epp-send", "C3-"),
        ):
            xs = [r["qps"] for r in rates if mode in r]
            ax.plot(xs, [r[mode][pct] for r in rates if mode in r], style, marker="o", label=mode)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("offered QPS")
        ax.set_title(f"end-to-end {pct[:3]} (ms), instant backend", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path = out / f"{name}-overhead.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
