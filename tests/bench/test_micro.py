"""Benchmarks that replaced stand-alone scripts: the overhead scenario's micro rows (formerly
bench/scheduling_bench.py) and the simulator speed table (formerly bench/sim_speed.py)."""

from __future__ import annotations

from pathlib import Path

from inference_gateway.bench.micro import micro_rows, vllm_metrics_page
from inference_gateway.bench.report import micro_table, update_document
from inference_gateway.bench.scenario import load_scenario
from inference_gateway.metrics.extract import metrics_from_page
from inference_gateway.metrics.mappings import MappingRegistry

ROOT = Path(__file__).resolve().parents[2]


def test_overhead_scenario_runs_the_micro_rows_and_smoke_keeps_them_short() -> None:
    scenario = load_scenario(ROOT / "bench" / "overhead.yaml", ROOT)
    assert scenario.overhead is not None and scenario.overhead.micro_iterations >= 1000
    smoke = scenario.smoke_version()
    assert smoke.overhead is not None and 1 <= smoke.overhead.micro_iterations <= 5


def test_micro_rows_time_every_case_and_the_scraper_parse_beats_the_full_parse() -> None:
    rows = {r["what"]: r for r in micro_rows(3)}
    assert len(rows) == 7
    assert all(0 < r["p50_us"] <= r["p99_us"] for r in rows.values())
    for page in ("1 engine(s) x 1 model(s)", "4 engine(s) x 2 model(s)"):
        scraper = next(r for w, r in rows.items() if page in w and "scraper" in w)
        full = next(r for w, r in rows.items() if page in w and "prometheus_client" in w)
        assert scraper["p50_us"] < full["p50_us"]


def test_the_synthetic_page_parses_to_the_metrics_it_declares() -> None:
    metrics = metrics_from_page(vllm_metrics_page(4, 2), MappingRegistry().default)
    assert metrics.block_size == 16 and metrics.num_gpu_blocks == 31250
    assert metrics.max_active_adapters == 4


def test_report_fills_the_micro_block(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("<!-- generated:overhead-micro -->\nold\n<!-- /generated:overhead-micro -->\n")
    rows = [{"what": "prefix hashing", "mean_us": 40.0, "p50_us": 39.5, "p99_us": 51.0}]
    assert update_document(doc, {"overhead-micro": micro_table(rows)}) == ["overhead-micro"]
    assert "| prefix hashing | 40.0 | 39.5 | 51.0 |" in doc.read_text()


def test_speed_table_reports_the_round_robin_runs_only() -> None:
    from inference_gateway.bench.report import speed_table

    row = {"qps": 1000.0, "seed": 1, "requests": 600_000, "sim_time_s": 4185.0, "wall_s": 20.0}
    rows = [
        {**row, "policy": "round-robin", "server": {"preemptions": 229087.0}, "loadavg": 3.25},
        {**row, "policy": "epp-default", "wall_s": 90.0, "server": {}},
    ]
    table = speed_table(rows).splitlines()
    assert table[2:] == ["| 1000 | 1 | 600,000 | 4185 | 20.0 | 30,000 | 229,087 | 3.2 |"]
    assert table[0].endswith("| preemptions | load |")
