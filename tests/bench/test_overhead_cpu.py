"""The overhead rows' CPU breakdown: every process on the path, and the rate that CPU allows."""

from __future__ import annotations

from typing import Any

from inference_gateway.bench.overhead import overhead_row
from inference_gateway.bench.overhead_tables import capacity_table, workers_table


def _run(
    p50: float, gateway: float, envoy: float, client: float = 0.3, backend: float = 0.2
) -> dict[str, Any]:
    return {
        "e2e": {"p50": p50, "p99": 2 * p50},
        "achieved_qps": 100.0,
        "throughput_rps": 100.0,
        "errors": {},
        "gateway_cpu_ms_per_request": gateway,
        "envoy_cpu_ms_per_request": envoy,
        "client_cpu_ms_per_request": client,
        "backend_cpu_ms_per_request": backend,
    }


def test_rows_keep_the_median_cpu_of_each_process_per_mode() -> None:
    runs = {
        "envoy": [_run(1.0, 0.0, 0.2), _run(1.1, 0.0, 0.25), _run(0.9, 0.0, 0.9)],
        "envoy+epp-w1": [_run(2.0, 1.0, 0.5), _run(2.2, 1.2, 0.4), _run(9.0, 3.0, 0.45)],
    }
    row = overhead_row(100, runs)
    epp = row["envoy+epp-w1"]
    assert epp["gateway_cpu_ms_per_request"] == 1.2  # the median, not the noisy third run
    assert epp["envoy_cpu_ms_per_request"] == 0.45
    assert row["envoy"]["envoy_cpu_ms_per_request"] == 0.25
    assert epp["client_cpu_ms_per_request"] == 0.3 and epp["backend_cpu_ms_per_request"] == 0.2


def test_tables_show_the_breakdown_and_the_ceiling_the_cores_allow() -> None:
    runs = {"envoy": [_run(1.0, 0.0, 0.2)], "envoy+epp-w1": [_run(2.0, 1.0, 0.5)]}
    row = {**overhead_row(100, runs), "cores": 2}
    workers = workers_table([row])
    assert "| 1.00 / 0.50 / 0.30 / 0.20 |" in workers  # ext_proc / Envoy / client / backend
    assert "| - / 0.20 / 0.30 / 0.20 |" in workers  # Envoy alone runs no ext_proc server
    # 1.0 + 0.5 + 0.3 + 0.2 = 2 ms of CPU per request: 2 cores allow 1000 req/s at most.
    assert "| 2.00 | 1000 |" in capacity_table([row])


def test_rows_from_before_the_breakdown_still_render() -> None:
    runs = {"envoy": [_run(1.0, 0.0, 0.2)], "envoy+epp-w1": [_run(2.0, 1.0, 0.5)]}
    row = overhead_row(100, runs)
    for mode in ("envoy", "envoy+epp-w1"):
        for part in ("envoy", "client", "backend"):
            del row[mode][f"{part}_cpu_ms_per_request"]
    assert "| 1.00 / - / - / - |" in workers_table([row])
    assert "| - | - |" in capacity_table([row])
