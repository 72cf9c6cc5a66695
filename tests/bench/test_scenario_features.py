"""Scenario features: a mixed fleet, EPP replicas with prefix sync, the loopback sync section."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference_gateway.bench.detail_tables import fleet_table, replicas_table
from inference_gateway.bench.policies import PolicySpec, make_policy
from inference_gateway.bench.report import render
from inference_gateway.bench.runner import read_rows, run_scenario
from inference_gateway.bench.scenario import Scenario, load_scenario
from inference_gateway.bench.virtual import VirtualJob, server_configs
from inference_gateway.bench.workloads import WorkloadSpec, generate
from inference_gateway.simulator.gateway import VirtualGateway
from inference_gateway.simulator.replicas import ReplicaSet

ROOT = Path(__file__).resolve().parents[2]


def _scenario(text: str, tmp_path: Path) -> Scenario:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return load_scenario(path, ROOT)


def test_sharegpt_prefix_share_opens_that_share_with_a_shared_system_prompt() -> None:
    plain = list(generate(WorkloadSpec(), 200, seed=3))
    assert plain == list(generate(WorkloadSpec(prefix_share=0.0), 200, seed=3))
    spec = WorkloadSpec(prefix_share=0.5, groups=8, prefix_tokens=512)
    reqs = list(generate(spec, 4000, seed=3))
    prefixed = [r for r in reqs if r.prefix_group >= 0]
    assert 0.45 < len(prefixed) / len(reqs) < 0.55
    assert {r.prefix_group for r in prefixed} == set(range(8))
    assert all(r.prefix_tokens == 512 < r.prompt_tokens for r in prefixed)
    a, b = [r for r in prefixed if r.prefix_group == prefixed[0].prefix_group][:2]
    assert a.prompt()[:1000] == b.prompt()[:1000] and a.prompt() != b.prompt()


def test_mixed_fleet_builds_each_group_and_counts_servers(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "bench" / "hetero-l4.yaml", ROOT)
    v = scenario.virtual
    assert v is not None and v.servers == 4
    job = VirtualJob("round-robin", scenario.policy("round-robin"), 40, scenario.workload, 5, 1,
                     servers=v.servers, server=v.server, fleet=v.fleet)  # fmt: skip
    configs = server_configs(job)
    assert [(c.name, c.profile) for c in configs] == [
        ("h100-0", "h100-llama2-7b"), ("h100-1", "h100-llama2-7b"),
        ("l4-0", "l4-llama2-7b"), ("l4-1", "l4-llama2-7b"),
    ]  # fmt: skip


def test_mixed_fleet_rows_report_the_share_routed_per_group(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "bench" / "hetero-l4.yaml", ROOT).smoke_version()
    rows = read_rows(run_scenario(scenario, tmp_path, only={"virtual"})["virtual"])
    by_policy = {r["policy"]: r for r in rows}
    for row in rows:
        assert sum(g["routed_share"] for g in row["fleet"].values()) == pytest.approx(1.0)
        assert row["window_output_tps"] > 0
    assert by_policy["round-robin"]["fleet"]["l4"]["routed_share"] == pytest.approx(0.5, abs=0.01)
    # the L4 has 1/9 of an H100's KV cache and decodes ~6x slower: the EPP routes around it
    assert by_policy["epp-capacity"]["fleet"]["l4"]["routed_share"] < 0.3
    table = fleet_table(rows)
    assert "| to h100 | to l4 |" in table and "| 40 | epp-capacity |" in table
    assert "hetero-l4-virtual-fleet" in render(tmp_path, tmp_path / "img", tmp_path)


def test_replica_fields_apply_to_the_epp_only(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kind epp only"):
        PolicySpec(kind="round-robin", replicas=3)
    text = """name: x
policies: {r: {kind: epp, replicas: 2}}
realtime: {qps: [1], policies: [r]}
"""
    with pytest.raises(ValueError, match="virtual time only"):
        _scenario(text, tmp_path)


def test_replicated_policy_is_a_replica_set_of_epps_with_sync() -> None:
    one = make_policy(PolicySpec(kind="epp"), seed=1)
    assert isinstance(one, VirtualGateway)
    spec = PolicySpec(kind="epp", replicas=3, sync_delay_s=0.1, scrape_interval_s=0.05)
    replicas = make_policy(spec, seed=1)
    assert isinstance(replicas, ReplicaSet)
    assert len(replicas.replicas) == 3 and replicas.options.sync and replicas.options.delay_s == 0.1
    assert replicas.replicas[1].config.plugins["round-robin-picker"] is not None
    unsynced = make_policy(PolicySpec(kind="epp", replicas=3), seed=1)
    assert isinstance(unsynced, ReplicaSet) and not unsynced.options.sync


def test_replicas_scenario_sync_recovers_the_prefix_hits_unsynced_replicas_lose(tmp_path: Path) -> None:
    text = """name: reps
seeds: [1]
workload: {kind: sharegpt, prefix_share: 1.0, groups: 64, prefix_tokens: 2000,
           output: {median: 8, mean: 10, min: 2, max: 16}}
policies:
  one: {kind: epp, scrape_interval_s: 0.05}
  three: {kind: epp, replicas: 3, scrape_interval_s: 0.05}
  synced: {kind: epp, replicas: 3, scrape_interval_s: 0.05, sync_delay_s: 0.02}
virtual: {qps: [30], duration_s: 12, servers: 4, scrape_interval_s: 0.005, with_text: true,
          policies: [one, three, synced], workers: 1}
"""
    rows = read_rows(run_scenario(_scenario(text, tmp_path), tmp_path, only={"virtual"})["virtual"])
    by_policy = {r["policy"]: r for r in rows}
    assert by_policy["three"]["prefix_prefills"] > by_policy["synced"]["prefix_prefills"]
    assert by_policy["three"]["server"]["prefix_hit_rate"] < by_policy["synced"]["server"]["prefix_hit_rate"]
    assert by_policy["synced"]["replicas"] == {"count": 3, "sync_delay_s": 0.02}
    table = replicas_table(rows)
    assert "| 30 | three | 3 | none |" in table and "| 30 | synced | 3 | 20 ms |" in table


def test_sync_section_measures_loopback_lag_and_stream_rate(tmp_path: Path) -> None:
    text = "name: s\nsync: {lag_samples: 3, flush_intervals_s: [0.0], throughput_updates: 200}\n"
    rows = read_rows(run_scenario(_scenario(text, tmp_path), tmp_path)["sync"])
    lag, rate = rows
    assert lag["kind"] == "lag" and lag["samples"] == 3 and 0 < lag["lag_p50_ms"] <= lag["lag_max_ms"]
    assert rate["kind"] == "throughput" and rate["updates_per_s"] > 0 and rate["dropped"] == 0
    assert lag["cores"] >= 1
    blocks = render(tmp_path, tmp_path / "img", tmp_path)
    assert "flush 0 ms" in blocks["s-sync"] and "200 updates of 64 block hashes" in blocks["s-sync"]
