"""The overhead benchmark's tables: latency added per path, the EPP as deployed (--workers N),
the CPU each process on the path spends per request, and the highest rate each path holds."""

from __future__ import annotations

from typing import Any

from inference_gateway.bench.markdown import fmt as _fmt
from inference_gateway.bench.markdown import table as _table
from inference_gateway.bench.overhead import CPU_PARTS


def overhead_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "_no results yet_"
    modes = ("backend", "envoy", "envoy+noop", "envoy+epp", "envoy+epp-send")
    body = []
    for r in rows:
        label = f"{r['qps']:g}" + (f" ({r['prompt_bytes'] // 1000} KB)" if r.get("prompt_bytes") else "")
        if r.get("itl_tokens"):  # a streaming row: inter-token latency instead of e2e
            label = f"{r['qps']:g} (ITL, {r['itl_tokens']} tokens)"
        cells = [label]
        for mode in modes:
            m = r.get(mode, {})
            cells.append(f"{_fmt(m.get('p50_ms'), 2)} / {_fmt(m.get('p99_ms'), 2)}")
        epp = r.get("envoy+epp", {})
        errors = sum(sum(r.get(m, {}).get("errors", {}).values()) for m in modes)
        cells += [
            f"**{_fmt(r.get('added_p50_ms'), 2)} / {_fmt(r.get('added_p99_ms'), 2)}**",
            f"{_fmt(r.get('added_send_p50_ms'), 2)} / {_fmt(r.get('added_send_p99_ms'), 2)}",
            f"{_fmt(r.get('floor_p50_ms'), 2)} / {_fmt(r.get('floor_p99_ms'), 2)}",
            _fmt(epp.get("gateway_cpu_ms_per_request"), 2),
            _fmt(epp.get("achieved_qps"), 0),
            _fmt(epp.get("client_lag_p99_ms"), 1),
            str(errors),
            f"{r.get('cores', '?')} / {_fmt(r.get('loadavg'), 1)}",
        ]
        body.append(cells)
    header = ["QPS", "backend", "Envoy", "Envoy + no-op ext_proc", "Envoy + EPP",
              "Envoy + EPP, response on path", "EPP adds", "EPP adds, response on path",
              "no-op ext_proc adds", "EPP CPU ms/req", "sent QPS", "send lag p99", "errors",
              "cores / load"]  # fmt: skip
    return (
        _table(header, body)
        + "\n\nEnd-to-end latency at the client (ITL rows: inter-token latency), p50 / p99 in ms."
        + ' "EPP adds" = Envoy + EPP minus Envoy alone; the EPP\'s default Envoy config reports the'
        + ' response off the critical path (Envoy\'s gRPC access log, batched); "response on path" sends'
        + " the response phases through the EPP as a gateway configured that way does. The no-op"
        + " ext_proc speaks the default protocol and does nothing. Load: 1-minute load average."
    )


def epp_modes(rows: list[dict[str, Any]]) -> list[str]:
    found = {k for r in rows for k, v in r.items() if isinstance(v, dict) and k.startswith("envoy+")}
    floors_first = lambda m: (not m.startswith("envoy+noop"), m != "envoy+epp", m)  # noqa: E731
    return sorted(found - {"envoy+epp-send"}, key=floors_first)


def workers_table(rows: list[dict[str, Any]]) -> str:
    """The EPP as `epp --workers N` processes, per rate: latency added over Envoy alone, CPU."""
    modes = epp_modes(rows)
    body = []
    for r in rows:
        if r.get("prompt_bytes"):
            continue
        label = f"{r['qps']:g}" + (f" (ITL, {r['itl_tokens']} tokens)" if r.get("itl_tokens") else "")
        envoy = r.get("envoy", {})
        body.append([label, "Envoy alone", f"{_fmt(envoy.get('p50_ms'), 2)} / {_fmt(envoy.get('p99_ms'), 2)}",
                     "", _cpu_parts(envoy, gateway=False), _fmt(envoy.get("throughput_rps"), 0),
                     str(sum(envoy.get("errors", {}).values())), "", "",
                     f"{r.get('cores', '?')} / {_fmt(r.get('loadavg'), 1)}"])  # fmt: skip
        for mode in modes:
            m = r.get(mode, {})
            body.append([
                label, mode.removeprefix("envoy+"),
                f"{_fmt(m.get('p50_ms'), 2)} / {_fmt(m.get('p99_ms'), 2)}",
                f"**{_fmt(m.get('added_p50_ms'), 2)} / {_fmt(m.get('added_p99_ms'), 2)}**",
                _cpu_parts(m), _fmt(m.get("throughput_rps"), 0),
                str(sum(m.get("errors", {}).values())),
                " / ".join(f"{v:g}" for v in m.get("worker_spread", [])) or "-",
                " / ".join(f"{v:g}" for v in m.get("burst_spread") or []) or "-",
                f"{r.get('cores', '?')} / {_fmt(r.get('loadavg'), 1)}",
            ])  # fmt: skip
    header = ["QPS", "path", "p50 / p99", "adds p50 / p99", "CPU ms/req: ext_proc / Envoy / client / backend",
              "req/s", "errors", "requests per worker", "burst of 64 per worker", "cores / load"]  # fmt: skip
    return (
        _table(header, body)
        + "\n\nEnd-to-end latency at the client in ms (ITL rows: inter-token latency of streamed"
        + ' answers); "adds" is over Envoy alone in the same run. noop: the do-nothing Python ext_proc'
        + " (its own process, grpc.aio on uvloop; noop-sync: grpc's thread-pool server); epp-wN:"
        + " `inference-gateway epp --workers N` in its own processes (uvloop unless named). CPU per"
        + " request of each process on the machine: the ext_proc server (EPP supervisor + workers,"
        + " idle scraping subtracted), Envoy, the load generator and the instant backend."
    )


def _cpu_parts(mode: dict[str, Any], gateway: bool = True) -> str:
    """ext_proc / Envoy / client / backend CPU ms per request; '-' for rows that predate them."""
    parts = [mode.get(f"{p}_cpu_ms_per_request") for p in CPU_PARTS]
    if not gateway:
        parts[0] = None
    return " / ".join(_fmt(v, 2) if v is not None else "-" for v in parts)


def _machine_cpu(mode: dict[str, Any]) -> float | None:
    """CPU ms per request of every process on the path, None for rows without the breakdown."""
    if "envoy_cpu_ms_per_request" not in mode:
        return None
    return sum(mode.get(f"{p}_cpu_ms_per_request") or 0.0 for p in CPU_PARTS)


def capacity_table(rows: list[dict[str, Any]], p99_budget_ms: float = 10.0) -> str:
    """Per EPP mode: the highest rate of the run held with p99 added <= budget and zero errors."""
    body = []
    for mode in epp_modes(rows):
        held = [r for r in rows if not r.get("itl_tokens") and not r.get("prompt_bytes") and mode in r
                and (r[mode].get("added_p99_ms") or 0.0) <= p99_budget_ms
                and not sum(r[mode].get("errors", {}).values())]  # fmt: skip
        best = max(held, key=lambda r: r["qps"], default=None)
        tried = max((r["qps"] for r in rows if mode in r and not r.get("prompt_bytes")), default=0)
        m = best[mode] if best else {}
        machine, cores = _machine_cpu(m), best.get("cores") if best else None
        body.append([
            mode.removeprefix("envoy+"), f"{best['qps']:g}" if best else "none", f"{tried:g}",
            _fmt(m.get("throughput_rps"), 0), _fmt(m.get("gateway_cpu_ms_per_request"), 2),
            _fmt(machine, 2), _fmt(1e3 * cores / machine, 0) if machine and cores else "-",
            f"{best.get('cores', '?')} / {_fmt(best.get('loadavg'), 1)}" if best else "-",
        ])  # fmt: skip
    header = ["EPP path", f"highest QPS with p99 added <= {p99_budget_ms:g} ms, 0 errors",
              "highest QPS tried", "req/s served there", "ext_proc CPU ms/req there",
              "whole-path CPU ms/req there", "req/s that CPU allows", "cores / load"]  # fmt: skip
    return _table(header, body) + (
        "\n\nWhole-path CPU: the ext_proc server, Envoy, the load generator and the instant backend"
        " together, all on this machine; the ceiling is cores x 1000 / that, at 100 % CPU."
    )
