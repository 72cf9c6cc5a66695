"""Results (JSON lines) -> markdown tables in docs/benchmarks.md and PNG plots.

The document is hand-written; blocks between `<!-- generated:NAME -->` and
`<!-- /generated:NAME -->` are replaced with tables built from the results, so the prose
stays and the numbers always match the last run.
"""

from __future__ import annotations

import math
import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from inference_gateway.bench.detail_tables import fleet_table, lora_table, replicas_table, sync_table
from inference_gateway.bench.markdown import fmt as _fmt
from inference_gateway.bench.markdown import table as _table
from inference_gateway.bench.overhead_tables import capacity_table, epp_modes, overhead_table, workers_table
from inference_gateway.bench.peers import target_table
from inference_gateway.bench.plots import plot_overhead, plot_realtime, plot_virtual
from inference_gateway.bench.runner import read_rows
from inference_gateway.bench.slo import attainment_table, classes_table

BASELINE = "round-robin"


def _pct(value: float | None, base: float | None) -> str:
    if value is None or not base or math.isnan(base) or math.isnan(value):
        return ""
    return f" ({100 * (value - base) / base:+.1f}%)"


def _percent(share: float | None, digits: int = 1) -> str:
    return "-" if share is None or math.isnan(share) else _fmt(100 * share, digits)


def _avg(values: list[float | None]) -> float:
    """Mean of the numbers present (JSON has no NaN: empty statistics come back as null)."""
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else float("nan")


def _mean_rows(rows: list[dict[str, Any]]) -> dict[tuple[str, float], dict[str, Any]]:
    """One row per (policy, qps); seeds averaged on the numbers the tables use."""
    grouped: dict[tuple[str, float], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        grouped[(r["policy"], float(r["qps"]))].append(r)
    out: dict[tuple[str, float], dict[str, Any]] = {}
    for key, group in grouped.items():
        merged = dict(group[0])
        for field in ("throughput_rps", "output_tps"):
            merged[field] = _avg([g[field] for g in group])
        for dist in ("ttft", "tpot", "ntpot", "e2e", "itl"):
            merged[dist] = {k: _avg([g[dist][k] for g in group]) for k in group[0][dist]}
        merged["seeds"] = len(group)
        out[key] = merged
    return out


def virtual_tables(rows: list[dict[str, Any]]) -> str:
    """Throughput and p90 NTPOT per policy and rate, each with its difference vs round robin."""
    if not rows:
        return "_no results yet_"
    data = _mean_rows(rows)
    policies = list(dict.fromkeys(r["policy"] for r in rows))
    rates = sorted({q for _, q in data})
    out = []
    for title, metric in (
        ("Output tokens/s (difference vs round-robin)", lambda r: r["output_tps"]),
        ("p90 NTPOT, ms per output token (difference vs round-robin)", lambda r: r["ntpot"]["p90"]),
        ("p90 TTFT, ms (difference vs round-robin)", lambda r: r["ttft"]["p90"]),
    ):
        body = []
        for q in rates:
            base = data.get((BASELINE, q))
            cells = [f"{q:g}"]
            for p in policies:
                r = data.get((p, q))
                if r is None:
                    cells.append("-")
                    continue
                value = metric(r)
                cells.append(_fmt(value) + (_pct(value, metric(base)) if base and p != BASELINE else ""))
            body.append(cells)
        out.append(f"**{title}**\n\n" + _table(["QPS", *policies], body))
    return "\n\n".join(out)


def server_table(rows: list[dict[str, Any]]) -> str:
    """Server-side state per policy and rate: KV use, queue, busy fraction, preemptions."""
    if not rows:
        return "_no results yet_"
    data = _mean_rows(rows)
    body = []
    for (policy, q), r in sorted(data.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        s = r.get("server", {})
        body.append(
            [
                f"{q:g}",
                policy,
                _fmt(100 * s.get("kv_mean", float("nan"))),
                _fmt(100 * s.get("kv_max", float("nan"))),
                _fmt(s.get("waiting_mean")),
                _fmt(s.get("running_mean")),
                _fmt(100 * s.get("busy_mean", float("nan"))),
                _fmt(s.get("preemptions"), 0),
                _fmt(100 * s.get("prefix_hit_rate", float("nan"))),
            ]
        )
    header = ["QPS", "policy", "KV mean %", "KV max %", "waiting mean", "running mean", "busy %",
              "preemptions", "prefix hit %"]  # fmt: skip
    return _table(header, body)


def groups_table(rows: list[dict[str, Any]]) -> str:
    """Per request group (criticality class, adapter): completed share and p90 NTPOT."""
    body = []
    for r in sorted(rows, key=lambda r: (r["qps"], r["policy"])):
        for group, g in (r.get("groups") or {}).items():
            body.append([f"{r['qps']:g}", r["policy"], group, f"{g['ok']}/{g['requests']}",
                         _fmt(g["ntpot"]["p90"]), _fmt(g["ttft"]["p90"])])  # fmt: skip
    if not body:
        return "_no per-group results_"
    return _table(["QPS", "policy", "group", "served", "p90 NTPOT ms", "p90 TTFT ms"], body)


def stages_table(rows: list[dict[str, Any]]) -> str:
    """Disaggregated and multimodal runs: latency, cache and where each stage ran."""
    body = []
    for r in sorted(rows, key=lambda r: (r["qps"], r["seed"])):
        st, srv = r.get("stages") or {}, r.get("server", {})
        body.append([
            f"{r['qps']:g}", r["policy"], _fmt(r["ttft"]["p50"], 0), _fmt(r["ttft"]["p90"], 0),
            _fmt(r["tpot"]["p50"]), _fmt(r["tpot"]["p99"]), _percent(srv.get("prefix_hit_rate")),
            _percent(st.get("encoded_share")), _percent(st.get("encode_disaggregated"), 0),
            _percent(st.get("prefill_disaggregated"), 0), _fmt(r["throughput_rps"]),
        ])  # fmt: skip
    header = ["QPS", "policy", "TTFT p50 ms", "TTFT p90 ms", "TPOT p50 ms", "TPOT p99 ms", "prefix hit %",
              "encoded %", "remote encode %", "remote prefill %", "req/s"]  # fmt: skip
    return _table(header, body)


def realtime_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "_no results yet_"
    body = []
    pods_counted = any("prefix_hit_rate" in r for r in rows)  # rows from runs that read pod counters
    for r in sorted(rows, key=lambda r: (r["qps"], r["policy"])):
        s = r.get("server", {})
        errors = ", ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "0"
        body.append(
            [
                f"{r['qps']:g}",
                r["policy"],
                f"{r['ok']}/{r['requests']}",
                _fmt(r["throughput_rps"], 2),
                _fmt(r["output_tps"]),
                _fmt(r["ttft"]["p50"]),
                _fmt(r["ttft"]["p90"]),
                _fmt(r["tpot"]["p90"]),
                _fmt(r["itl"]["p90"]),
                _fmt(r["ntpot"]["p90"]),
                _fmt(r["e2e"]["p90"], 0),
                _fmt(100 * s.get("kv_mean", float("nan"))),
                _fmt(s.get("waiting_mean")),
                _fmt(r.get("client_lag", {}).get("p99")),
                errors,
                *(_pod_columns(r) if pods_counted else []),
            ]
        )
    header = ["QPS", "policy", "ok", "req/s", "out tok/s", "TTFT p50", "TTFT p90", "TPOT p90", "ITL p90",
              "NTPOT p90", "e2e p90", "KV %", "queue", "send lag p99", "errors"]  # fmt: skip
    note = "\n\nLatencies in ms; KV % and queue are means over pods and samples."
    if pods_counted:
        header += ["hit %", "load 1m"]
        note += (
            " hit % = prefix-cache tokens hit / queried, from the pods' own counters; load 1m = the"
            " machine's 1-minute load average (2 vCPUs) when the rate ended."
        )
    return _table(header, body) + note


def _pod_columns(row: dict[str, Any]) -> list[str]:
    hit = row.get("prefix_hit_rate")
    return [_fmt(100 * hit) if hit is not None else "-", _fmt(row.get("loadavg"))]


def decisions_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "_no results yet_"
    body = []
    for r in rows:
        what = (
            f"schedule, {r['endpoints']} endpoints"
            if r["kind"] == "schedule"
            else (f"director.route, {r['endpoints']} endpoints, {r['body_bytes'] // 1000} KB body")
        )
        body.append([r["profile"], what, _fmt(r["mean_us"]), _fmt(r["p50_us"]), _fmt(r["p99_us"])])
    return _table(["profile", "what", "mean µs", "p50 µs", "p99 µs"], body)


def speed_table(rows: list[dict[str, Any]]) -> str:
    """The simulator's own speed: the round-robin runs, whose routing costs next to nothing."""
    body = [
        [_fmt(r["qps"], 0), str(r["seed"]), f"{r['requests']:,}", _fmt(r["sim_time_s"], 0), _fmt(r["wall_s"]),
         f"{r['requests'] / r['wall_s']:,.0f}", f"{r['server'].get('preemptions', 0):,.0f}",
         _fmt(r.get("loadavg"))]
        for r in sorted(rows, key=lambda r: (r["qps"], r["seed"]))
        if r["policy"] == "round-robin" and r.get("wall_s")
    ]  # fmt: skip
    header = ["QPS", "seed", "requests", "virtual s", "wall s", "requests / wall s", "preemptions", "load"]
    return _table(header, body) if body else "_no round-robin runs_"


def micro_table(rows: list[dict[str, Any]]) -> str:
    body = [[r["what"], _fmt(r["mean_us"]), _fmt(r["p50_us"]), _fmt(r["p99_us"])] for r in rows]
    return _table(["what", "mean µs", "p50 µs", "p99 µs"], body)


def render(results: Path, images: Path, doc_dir: Path) -> dict[str, str]:
    """Every generated block, by name; writes the plots as a side effect."""
    blocks: dict[str, str] = {}
    images.mkdir(parents=True, exist_ok=True)
    rel = Path(_relpath(images, doc_dir))
    for scenario_dir in sorted(p for p in results.iterdir() if p.is_dir()):
        name = scenario_dir.name
        virtual = read_rows(scenario_dir / "virtual.jsonl")
        if virtual:
            blocks[f"{name}-virtual"] = virtual_tables(virtual)
            blocks[f"{name}-virtual-server"] = server_table(virtual)
            blocks[f"{name}-virtual-speed"] = speed_table(virtual)
            if any(r.get("stages") for r in virtual):
                blocks[f"{name}-virtual-stages"] = stages_table(virtual)
            if any(r.get("groups") for r in virtual):
                blocks[f"{name}-virtual-groups"] = groups_table(virtual)
            if any(r.get("slo") for r in virtual):
                blocks[f"{name}-virtual-slo"] = attainment_table(virtual)
                blocks[f"{name}-virtual-slo-classes"] = classes_table(virtual)
            if all(r.get("fleet") for r in virtual):
                blocks[f"{name}-virtual-fleet"] = fleet_table(virtual)
            if all(r.get("lora") for r in virtual):
                blocks[f"{name}-virtual-lora"] = lora_table(virtual)
            if all("prefix_prefills" in r for r in virtual):
                blocks[f"{name}-virtual-prefix"] = replicas_table(virtual)
            for png in plot_virtual(virtual, images, name):
                blocks.setdefault(f"{name}-virtual-plots", "")
                blocks[f"{name}-virtual-plots"] += f"![{png.stem}]({rel / png.name})\n"
        realtime = read_rows(scenario_dir / "realtime.jsonl")
        if realtime:
            blocks[f"{name}-realtime"] = realtime_table(realtime)
            if any(r.get("router") for r in realtime):
                blocks[f"{name}-realtime-target"] = target_table(realtime)
            if all(r.get("lora") for r in realtime):
                blocks[f"{name}-realtime-lora"] = lora_table(realtime)
            png = plot_realtime(realtime, images, name)
            blocks[f"{name}-realtime-plots"] = f"![{png.stem}]({rel / png.name})\n"
        overhead = read_rows(scenario_dir / "overhead.jsonl")
        if overhead:
            blocks[f"{name}-overhead"] = overhead_table(overhead)
            blocks[f"{name}-overhead-capacity"] = capacity_table(overhead)
            if any("-w" in m for m in epp_modes(overhead)):
                blocks[f"{name}-overhead-workers"] = workers_table(overhead)
            png = plot_overhead(overhead, images, name)
            blocks[f"{name}-overhead-plots"] = f"![{png.stem}]({rel / png.name})\n"
        decisions = read_rows(scenario_dir / "decisions.jsonl")
        if decisions:
            blocks[f"{name}-decisions"] = decisions_table(decisions)
        sync = read_rows(scenario_dir / "sync.jsonl")
        if sync:
            blocks[f"{name}-sync"] = sync_table(sync)
        micro = read_rows(scenario_dir / "micro.jsonl")
        if micro:
            blocks[f"{name}-micro"] = micro_table(micro)
        profile = scenario_dir / "epp-profile.txt"
        if profile.exists():
            blocks[f"{name}-profile"] = "```\n" + _profile_head(profile.read_text()) + "\n```"
    return blocks


_PATH_PREFIX = re.compile(r"/\S*?/(?:site-packages|src|lib/python3\.\d+)/")


def _profile_head(text: str, lines: int = 30) -> str:
    """The top of a pstats listing, with machine-specific path prefixes removed."""
    kept = [_PATH_PREFIX.sub("", line.rstrip()) for line in text.splitlines() if line.strip()]
    return "\n".join(kept[:lines])


def _relpath(target: Path, start: Path) -> str:
    return os.path.relpath(target.resolve(), start.resolve())


_BLOCK = re.compile(r"(<!-- generated:(?P<name>[\w.-]+) -->\n)(.*?)(<!-- /generated:(?P=name) -->)", re.S)


def update_document(doc: Path, blocks: dict[str, str]) -> list[str]:
    """Replace every generated block in `doc` that has new content; returns the names replaced."""
    text = doc.read_text()
    replaced: list[str] = []

    def sub(m: re.Match[str]) -> str:
        name = m.group("name")
        if name not in blocks:
            return m.group(0)
        replaced.append(name)
        return f"{m.group(1)}{blocks[name].rstrip()}\n{m.group(4)}"

    doc.write_text(_BLOCK.sub(sub, text))
    return replaced
