"""Peer routers (sglang-router, vllm-router) as real-time bench policies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from inference_gateway.bench import peers
from inference_gateway.bench.peers import PeerRouterSpec, PeerWorker, launch_args, missing_reason
from inference_gateway.bench.policies import PolicySpec
from inference_gateway.bench.scenario import Scenario, load_scenario

ROOT = Path(__file__).resolve().parents[2]
WORKERS = [PeerWorker("http://127.0.0.5:8000", "tcp://127.0.0.5:7001"), PeerWorker("http://127.0.0.6:8000")]


def _flag(args: list[str], name: str) -> list[str]:
    """The values after `name` up to the next flag."""
    i = args.index(name) + 1
    out = []
    while i < len(args) and not args[i].startswith("--"):
        out.append(args[i])
        i += 1
    return out


def test_sglang_cache_aware_command_line() -> None:
    spec = PeerRouterSpec("sglang-router", "cache_aware", ("--balance-abs-threshold", "8"))
    args = launch_args(spec, WORKERS, 30001, 30002, "m", 16)
    assert args[:2] == ["-m", "sglang_router.launch_router"]
    assert _flag(args, "--worker-urls") == ["http://127.0.0.5:8000", "http://127.0.0.6:8000"]
    assert _flag(args, "--policy") == ["cache_aware"] and _flag(args, "--port") == ["30001"]
    # its metrics listener would otherwise take a fixed port on every interface
    assert _flag(args, "--prometheus-port") == ["30002"] and _flag(args, "--prometheus-host") == ["127.0.0.1"]
    assert _flag(args, "--log-level") == ["warn"]
    assert "--kv-event-source" not in args and args[-2:] == ["--balance-abs-threshold", "8"]


def test_vllm_kv_aware_subscribes_to_every_pod() -> None:
    workers = [PeerWorker(w.url, f"tcp://127.0.0.{5 + i}:700{i}") for i, w in enumerate(WORKERS)]
    args = launch_args(PeerRouterSpec("vllm-router", "kv_aware"), workers, 1, 2, "llama", 32)
    assert args[:2] == ["-m", "vllm_router.launch_router"] and _flag(args, "--log-level") == ["warning"]
    sources = [args[i + 1] for i, a in enumerate(args) if a == "--kv-event-source"]
    assert sources == [
        "http://127.0.0.5:8000=tcp://127.0.0.5:7000",
        "http://127.0.0.6:8000=tcp://127.0.0.6:7001",
    ]
    assert _flag(args, "--kv-event-model") == ["llama"] and _flag(args, "--kv-event-block-size") == ["32"]
    with pytest.raises(ValueError, match="KV-event endpoint for every pod"):
        launch_args(PeerRouterSpec("vllm-router", "kv_aware"), WORKERS, 1, 2, "llama", 16)
    # cache_aware needs no events
    assert "--kv-event-source" not in launch_args(
        PeerRouterSpec("vllm-router", "cache_aware"), WORKERS, 1, 2, "m", 16
    )


def test_policy_spec_checks_router_fields() -> None:
    spec = PolicySpec(
        kind="vllm-router", router_policy="kv_aware", router_args=["--router-temperature", "0.1"]
    )
    assert spec.peer == PeerRouterSpec("vllm-router", "kv_aware", ("--router-temperature", "0.1"))
    sglang = PolicySpec(kind="sglang-router", router_policy="cache_aware").peer
    assert spec.peer.needs_kv_events and sglang is not None and not sglang.needs_kv_events
    with pytest.raises(ValueError, match="router_policy must be one of cache_aware"):
        PolicySpec(kind="sglang-router", router_policy="kv_aware")  # sglang-router has no kv_aware
    with pytest.raises(ValueError, match="router_policy must be one of"):
        PolicySpec(kind="vllm-router")
    with pytest.raises(ValueError, match="apply to sglang-router and vllm-router only"):
        PolicySpec(kind="epp", router_policy="cache_aware")
    assert PolicySpec(kind="round-robin").peer is None


def test_peer_routers_run_in_real_time_only() -> None:
    data = yaml.safe_load((ROOT / "bench" / "peers.yaml").read_text())
    data["virtual"]["policies"] = ["round-robin", "sglang-cache-aware"]
    with pytest.raises(
        ValueError, match="virtual policy sglang-cache-aware: peer routers run in real time only"
    ):
        Scenario.model_validate(data).check()
    scenario = load_scenario(ROOT / "bench" / "peers.yaml", ROOT)
    assert scenario.realtime is not None
    kinds = {scenario.policy(n).kind for n in scenario.realtime.policies}
    assert {"sglang-router", "vllm-router", "epp", "round-robin"} <= kinds


def test_missing_router_is_named_with_its_install_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(peers.importlib.util, "find_spec", lambda name: None)
    reason = missing_reason("vllm-router")
    assert reason is not None and "pip install 'inference-gateway[peers]'" in reason


def test_kv_events_give_every_pod_its_own_publisher_port(tmp_path: Path) -> None:
    from inference_gateway.bench.realtime import RealtimeOptions, prepare_stack_dir
    from inference_gateway.bench.workloads import WorkloadSpec

    options = RealtimeOptions(ROOT / "bench" / "stack", WorkloadSpec(), [], [1.0], pods=3, subnet=93)
    endpoints: dict[str, str] = {}
    stack = prepare_stack_dir(options, tmp_path / "stack", endpoints)
    fleet = next(d for d in yaml.safe_load_all((stack / "fleet.yaml").read_text()) if d)
    groups = fleet["spec"]["pods"]
    assert [g["addressBase"] for g in groups] == ["127.93.1.1", "127.93.1.2", "127.93.1.3"]
    assert all(g["replicas"] == 1 for g in groups)
    assert len({g["namePrefix"] for g in groups}) == 3  # pod names stay unique
    configs = [
        json.loads(g["simulator"]["args"][g["simulator"]["args"].index("--kv-events-config") + 1])
        for g in groups
    ]
    ports = [c["endpoint"].rsplit(":", 1)[1] for c in configs]
    assert all(c["endpoint"].startswith("tcp://*:") and c["enable_kv_cache_events"] for c in configs)
    assert len(set(ports)) == 3
    assert endpoints == {
        g["addressBase"]: f"tcp://{g['addressBase']}:{p}" for g, p in zip(groups, ports, strict=True)
    }


@pytest.mark.e2e
async def test_peer_routers_serve_the_same_traffic_from_the_same_pods() -> None:
    for kind in ("sglang-router", "vllm-router"):
        reason = missing_reason(kind)  # type: ignore[arg-type]
        if reason:
            pytest.skip(reason)
    from inference_gateway.bench.realtime import RealtimeOptions, RealtimePolicy, run_realtime
    from inference_gateway.bench.workloads import Lengths

    scenario = load_scenario(ROOT / "bench" / "peers-prefix.yaml", ROOT).smoke_version()
    assert scenario.realtime is not None
    workload = scenario.workload.model_copy(
        update={"groups": 2, "output": Lengths(median=4, mean=4, min=2, max=6)}
    )
    policies = [
        RealtimePolicy(name, False, None, scenario.policy(name).peer)
        for name in ("sglang-cache-aware", "vllm-kv-aware")
    ]
    options = RealtimeOptions(
        stack_dir=scenario.resolve(scenario.realtime.stack), workload=workload, policies=policies, qps=[6],
        duration_s=1.0, pods=2, time_scale=0.1, sample_interval_s=0.2, subnet=94,
    )  # fmt: skip
    rows = await run_realtime(options)
    assert [r["policy"] for r in rows] == ["sglang-cache-aware", "vllm-kv-aware"]
    assert rows[0]["requests"] == rows[1]["requests"] > 0  # same seed, same arrivals
    for row in rows:
        assert row["ok"] == row["requests"], row["errors"]
        # the pods themselves counted the requests, whichever router sent them
        assert sum(row["pod_finished"]) == row["ok"]
        # two prefixes, many repeats: a cache-aware router reuses them
        assert row["prefix_hit_rate"] is not None and row["prefix_hit_rate"] > 0.3


def _row(policy: str, qps: float, p90: float, router: str | None = None) -> dict:
    row = {"policy": policy, "qps": qps, "ttft": {"p90": p90}}
    return {**row, "router": router} if router else row


def test_target_table_compares_our_default_with_the_best_peer() -> None:
    from inference_gateway.bench.peers import target_table

    rows = [
        _row("epp-default", 3, 120.0),
        _row("round-robin", 3, 10.0),  # not a peer router: never the benchmark to beat
        _row("sglang-cache-aware", 3, 150.0, "sglang-router cache_aware"),
        _row("vllm-kv-aware", 3, 130.0, "vllm-router kv_aware"),
        _row("epp-default", 9, 400.0),
        _row("sglang-cache-aware", 9, 300.0, "sglang-router cache_aware"),
    ]
    lines = target_table(rows).splitlines()
    assert lines[2] == "| 3 | 120 | vllm-kv-aware | 130 | -8 % | - | - | yes |"
    assert lines[3] == "| 9 | 400 | sglang-cache-aware | 300 | +33 % | - | - | no |"


def test_paired_interval_separates_a_real_difference_from_noise() -> None:
    import random

    from inference_gateway.bench.peers import paired_p90_ci, target_table

    draw = random.Random(7)
    base = [draw.lognormvariate(4.5, 0.5) for _ in range(600)]
    noisy = [t * draw.uniform(0.97, 1.03) for t in base]  # the same requests, a little jitter
    faster = [t * 0.8 for t in base]
    tie = paired_p90_ci(noisy, base)
    assert tie is not None and tie[0] < 0 < tie[1]
    better = paired_p90_ci(faster, base)
    assert better is not None and -22 < better[0] <= better[1] < -18
    assert paired_p90_ci(base[:10], base[:10]) is None  # too few to say
    assert paired_p90_ci(base, base[:-1]) is None  # not the same requests

    rows = [
        {**_row("epp-default", 9, 0.0), "ttft_ms_by_request": faster},
        {**_row("vllm-kv-aware", 9, 0.0, "vllm-router kv_aware"), "ttft_ms_by_request": base},
    ]
    rows[0]["ttft"]["p90"], rows[1]["ttft"]["p90"] = 80.0, 100.0
    line = target_table(rows).splitlines()[2]
    assert line.startswith("| 9 | 80 | vllm-kv-aware | 100 | -20 % | -2")
    assert line.endswith("| better | yes |")


def test_a_peer_that_fails_requests_is_not_faster_for_it() -> None:
    """A router that sends half the requests where they 404 must not win on the half it served."""
    from inference_gateway.bench.peers import p90_ttft, target_table

    served = [100.0 + i % 50 for i in range(200)]
    half_failed: list[float | None] = [None if i % 2 else 50.0 for i in range(200)]
    ours = {**_row("epp-default", 4, 148.0), "ok": 200, "requests": 200, "ttft_ms_by_request": served}
    peer = {
        **_row("sglang-cache-aware", 4, 50.0, "sglang-router cache_aware"),
        "ok": 100,
        "requests": 200,
        "ttft_ms_by_request": half_failed,
    }
    assert p90_ttft(peer) == float("inf")  # the served half alone would say 50 ms
    assert p90_ttft(ours) == 148.0  # no failures: the run's own p90
    line = target_table([ours, peer]).splitlines()[2]
    assert line == (
        "| 4 | 148 | sglang-cache-aware | never (failed), 50 % failed | - | -100 to -100 % | better | yes |"
    )
