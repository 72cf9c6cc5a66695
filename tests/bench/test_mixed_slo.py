"""The mixed-SLO workload: classes with objectives as headers, through the real director to
latency-scorer, and per-class attainment accounting."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference_gateway.bench.policies import PolicySpec
from inference_gateway.bench.report import render
from inference_gateway.bench.scenario import load_scenario
from inference_gateway.bench.slo import ALL, attainment_table, classes_table, slo_summary
from inference_gateway.bench.virtual import VirtualJob, run_job
from inference_gateway.bench.workloads import Lengths, SloClass, WorkloadSpec, generate
from inference_gateway.simulator.fleet_types import RequestResult

ROOT = Path(__file__).resolve().parents[2]


def test_classes_carry_their_share_criticality_and_objective_headers() -> None:
    spec = WorkloadSpec(
        kind="mixed-slo",
        slo_classes={
            "chat": SloClass(share=0.25, criticality="Critical", ttft_ms=50, tpot_ms=20),
            "api": SloClass(share=0.5, ttft_ms=150),
            "batch": SloClass(share=0.25, criticality="Sheddable"),
        },
        class_models={"chat": "chat-model"},
    )
    reqs = list(generate(spec, 4000, seed=2))
    by_class = {name: [r for r in reqs if r.group == name] for name in spec.slo_classes}
    assert len(by_class["api"]) / len(reqs) == pytest.approx(0.5, abs=0.03)
    assert {r.priority for r in by_class["chat"]} == {1} and {r.priority for r in by_class["batch"]} == {-1}
    assert {r.model for r in by_class["chat"]} == {"chat-model"}
    assert {r.model for r in by_class["api"]} == {spec.model}
    assert all(r.headers == {"x-slo-ttft-ms": "50", "x-slo-tpot-ms": "20"} for r in by_class["chat"])
    assert all(r.headers == {"x-slo-ttft-ms": "150"} for r in by_class["api"])
    assert all(r.headers == {} for r in by_class["batch"])
    # the same seed gives the same classes
    assert [r.group for r in generate(spec, 50, seed=2)] == [r.group for r in reqs[:50]]


def test_bad_class_is_rejected_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nworkload: {kind: mixed-slo, slo_classes: {chat: {share: 1, ttft_ms: -5}}}\n")
    with pytest.raises(ValueError, match=r"slo_classes\.chat\.ttft_ms"):
        load_scenario(path, ROOT)


def _result(
    i: int, status: str = "ok", ttft: float = 0.01, tpot: float = 0.01, tokens: int = 11
) -> RequestResult:
    first = 1.0 + ttft if status == "ok" else -1.0
    finish = first + tpot * (tokens - 1) if status == "ok" else -1.0
    return RequestResult(i, 0 if status == "ok" else -1, 1.0, first, finish, 100, tokens, status=status)


def test_attainment_counts_shed_and_late_requests_as_missed() -> None:
    classes = {
        "chat": SloClass(share=1, criticality="Critical", ttft_ms=50, tpot_ms=20),
        "batch": SloClass(share=1, criticality="Sheddable"),
    }
    results = [
        _result(0, ttft=0.040, tpot=0.010),  # chat: meets both
        _result(1, ttft=0.060, tpot=0.010),  # chat: late first token
        _result(2, ttft=0.020, tpot=0.030),  # chat: slow tokens
        _result(3, status="rejected"),  # chat: shed, misses both
        _result(4, status="rejected"),  # batch: shed
        _result(5, ttft=5.0),  # batch: served, no objective
    ]
    groups = ["chat", "chat", "chat", "chat", "batch", "batch"]
    s = slo_summary(results, groups, classes)
    assert s["chat"]["requests"] == 4 and s["chat"]["shed_share"] == 0.25
    assert s["chat"]["ttft_met"] == 0.5 and s["chat"]["tpot_met"] == 0.5
    assert s["chat"]["ttft_p90_ms"] == pytest.approx(56.0)
    assert s["batch"]["shed_share"] == 0.5 and s["batch"]["ttft_met"] is None
    # the overall row counts only requests that carry a TTFT objective
    assert s[ALL]["requests"] == 4 and s[ALL]["ttft_met"] == 0.5


def _job(policy: str, spec: PolicySpec, workload: WorkloadSpec) -> VirtualJob:
    return VirtualJob(
        policy, spec, 60, workload, 6, seed=1, server={"profile": "h100-llama2-7b"}, with_text=True
    )


def test_objective_headers_reach_latency_scorer_through_the_director() -> None:
    """A Sheddable class whose objective no pod can meet is shed by latency-scorer's filter once
    its predictor is warm (30 observations), and only under the SLO-aware profile: the headers
    travel from the workload through the VirtualGateway and the real Director to the plugin."""
    workload = WorkloadSpec(
        kind="mixed-slo",
        output=Lengths(median=8, mean=10, min=2, max=16),
        slo_classes={
            "chat": SloClass(share=0.5, criticality="Critical", ttft_ms=10_000),
            "hopeless": SloClass(share=0.5, criticality="Sheddable", ttft_ms=0.001),
        },
    )
    slo_aware = PolicySpec(kind="epp", config=ROOT / "bench" / "profiles" / "slo-aware.yaml")
    aware = run_job(_job("slo-aware", slo_aware, workload))
    default = run_job(_job("epp-default", PolicySpec(kind="epp"), workload))
    assert default["slo"]["hopeless"]["shed_share"] == 0.0
    assert aware["slo"]["hopeless"]["shed_share"] > 0.8
    assert aware["slo"]["chat"]["shed_share"] == 0.0 and aware["slo"]["chat"]["ttft_met"] == 1.0
    assert aware["slo"]["hopeless"]["ttft_met"] == 0.0
    assert aware["groups"]["hopeless"]["errors"]  # shed requests appear as errors of their class

    table = attainment_table([aware, default])
    assert table.splitlines()[0] == "| QPS | slo-aware | epp-default |"
    met = [100 * row["slo"][ALL]["ttft_met"] for row in (aware, default)]
    assert met[1] == pytest.approx(50, abs=5)  # chat meets its objective, hopeless never does
    assert table.splitlines()[2] == f"| 60 | {met[0]:.1f} | {met[1]:.1f} |"
    assert "| 60 | slo-aware | hopeless | 0.001 / - | 190 | " in classes_table([aware, default])


def test_report_renders_the_slo_blocks(tmp_path: Path) -> None:
    from inference_gateway.bench.runner import write_rows

    workload = WorkloadSpec(kind="mixed-slo", output=Lengths(median=8, mean=10, min=2, max=16))
    row = run_job(_job("round-robin", PolicySpec(kind="round-robin"), workload))
    write_rows(tmp_path / "mixed" / "virtual.jsonl", [row])
    blocks = render(tmp_path, tmp_path / "img", tmp_path)
    assert blocks["mixed-virtual-slo"].splitlines()[::2] == ["| QPS | round-robin |", "| 60 | 100.0 |"]
    assert "| 60 | round-robin | interactive | 200 / 50 |" in blocks["mixed-virtual-slo-classes"]
