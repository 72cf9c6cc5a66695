"""Smoke runs through real processes: the whole stack (Envoy +/- EPP) and the overhead harness."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference_gateway.bench.overhead import OverheadOptions, run_overhead
from inference_gateway.bench.overhead_modes import envoy_config
from inference_gateway.bench.scenario import load_scenario
from inference_gateway.bench.schedtime import decision_table

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


async def test_realtime_smoke_round_robin_vs_epp() -> None:
    pytest.importorskip("inference_gateway.simulator.server")
    from inference_gateway.bench.realtime import RealtimeOptions, RealtimePolicy, run_realtime

    scenario = load_scenario(ROOT / "bench" / "seed.yaml", ROOT).smoke_version()
    assert scenario.realtime is not None
    options = RealtimeOptions(
        stack_dir=scenario.resolve(scenario.realtime.stack),
        workload=scenario.workload,
        policies=[RealtimePolicy("round-robin", False), RealtimePolicy("epp-default", True)],
        qps=[8],
        duration_s=1.0,
        pods=2,
        time_scale=0.1,
        sample_interval_s=0.2,
        subnet=91,
    )
    rows = await run_realtime(options)
    assert [r["policy"] for r in rows] == ["round-robin", "epp-default"]
    for row in rows:
        assert row["ok"] == row["requests"] > 0, row["errors"]
        assert row["ttft"]["p50"] > 0 and row["itl"]["p50"] > 0
        assert "kv_mean" in row["server"]
        by_request = row["ttft_ms_by_request"]  # what the paired comparison of policies reads
        assert len(by_request) == row["requests"] and all(t is not None and t > 0 for t in by_request)
    # only the EPP path reports which pod served each request
    assert rows[0]["per_pod"] == {}
    assert sum(rows[1]["per_pod"].values()) == rows[1]["ok"]


async def test_overhead_smoke() -> None:
    options = OverheadOptions(
        qps=[40], duration_s=0.5, pods=2, large_prompt_bytes=50_000, large_qps=8, large_duration_s=0.5,
        profile_s=0.2, subnet=61, client_process=False, repeats=1, itl_tokens=4, itl_ms=20, itl_qps=10,
        itl_duration_s=0.5,
    )  # fmt: skip
    rows, profile = await run_overhead(options)
    assert [r.get("prompt_bytes", 0) for r in rows] == [0, 50_000, 0]
    for row in rows:
        for mode in ("backend", "envoy", "envoy+noop", "envoy+epp", "envoy+epp-send"):
            assert row[mode]["errors"] == {}, (mode, row[mode])
            assert row[mode]["p50_ms"] > 0
        assert "added_p50_ms" in row and "floor_p99_ms" in row and "added_send_p50_ms" in row
    # the streaming row measures the gaps between tokens (20 ms apart at the backend)
    assert rows[-1]["itl_tokens"] == 4 and rows[-1]["envoy+epp"]["p50_ms"] >= 15
    assert "extproc" in profile


def test_decision_times_grow_with_pool_size() -> None:
    rows = decision_table({"default": None}, sizes=(10, 200), iterations=200)
    schedule = {r["endpoints"]: r for r in rows if r["kind"] == "schedule"}
    assert schedule[200]["p50_us"] > schedule[10]["p50_us"] > 0
    route = [r for r in rows if r["kind"] == "route"]
    assert [r["body_bytes"] > 200_000 for r in route] == [False, True]


async def test_overhead_measures_the_epp_as_deployed_with_workers() -> None:
    """`epp_processes`: the EPP as `inference-gateway epp --workers 2`, both workers routing
    (Envoy restarted until its connections reach both), rows and report tables for it."""
    from inference_gateway.bench.overhead_tables import capacity_table, workers_table

    options = OverheadOptions(
        qps=[40], duration_s=0.5, pods=2, large_prompt_bytes=0, profile_s=0, subnet=62,
        client_process=False, repeats=1, modes=("envoy",), epp_processes=["2"], envoy_concurrency=4,
    )  # fmt: skip
    rows, _ = await run_overhead(options)
    workers = rows[0]["envoy+epp-w2"]
    assert workers["errors"] == {} and workers["p50_ms"] > 0
    assert "added_p50_ms" in workers
    assert all(n > 0 for n in workers["burst_spread"])  # Envoy's connections reach both workers
    assert len(workers["worker_spread"]) == 2 and sum(workers["worker_spread"]) > 0  # counted per run
    assert "| 40 | epp-w2 |" in workers_table(rows)
    assert "| epp-w2 | 40 | 40 |" in capacity_table(rows, p99_budget_ms=1e9)


def test_each_mode_gets_its_response_phases() -> None:
    assert envoy_config("envoy+epp", 1).response_phases == "access-log"  # the EPP's default
    assert envoy_config("envoy+noop", 1).response_phases == "access-log"  # the floor of the default
    assert envoy_config("envoy+epp-observe", 1).response_phases == "observe"
    assert envoy_config("envoy+noop-observe", 1).response_phases == "observe"
    assert envoy_config("envoy+epp-send", 1).response_phases == "send"
    assert not envoy_config("envoy", 1).use_epp


async def test_overhead_measures_the_observer_stream_beside_the_access_log() -> None:
    """The optional "observe" modes (one observability-mode ext_proc stream per request) run
    beside the default (access log), the no-op floor of each included."""
    from inference_gateway.bench.overhead_tables import workers_table

    options = OverheadOptions(
        qps=[40], duration_s=0.5, pods=2, large_prompt_bytes=0, profile_s=0, subnet=63,
        client_process=False, repeats=1,
        modes=("envoy", "envoy+noop", "envoy+noop-observe", "envoy+epp", "envoy+epp-observe"),
    )  # fmt: skip
    rows, _ = await run_overhead(options)
    for mode in options.modes:
        assert rows[0][mode]["errors"] == {} and rows[0][mode]["p50_ms"] > 0, mode
    table = workers_table(rows)
    assert "| 40 | noop-observe |" in table and "| 40 | epp-observe |" in table
