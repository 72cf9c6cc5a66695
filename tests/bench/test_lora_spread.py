"""Adapters spread over the pods: the EPP never sends a request to a pod without its adapter,
the bench counts the requests other routers misroute, and scenario mistakes name their path."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest
import yaml

from inference_gateway.bench.detail_tables import lora_table
from inference_gateway.bench.policies import PolicySpec
from inference_gateway.bench.scenario import ServerGroup, load_scenario
from inference_gateway.bench.virtual import VirtualJob, run_job, server_configs
from inference_gateway.bench.workloads import WorkloadSpec
from inference_gateway.metrics.inventory import InventoryConfig, served_models
from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.fleet import Fleet, run_fleet
from inference_gateway.simulator.fleet_types import SimRequest
from inference_gateway.simulator.gateway import VirtualGateway
from inference_gateway.simulator.model_list import VirtualInventory
from inference_gateway.simulator.schedulers import RoundRobinScheduler
from inference_gateway.simulator.server import SimulatedServer

ROOT = Path(__file__).resolve().parents[2]
BASE = "meta-llama/Llama-2-7b-hf"
HALVES = [["lora-0", "lora-3"], ["lora-1", "lora-2"]]


def _job(policy: str, spec: PolicySpec) -> VirtualJob:
    fleet = [ServerGroup(name=f"g{i}", count=2, server={"lora_adapters": a}) for i, a in enumerate(HALVES)]
    workload = WorkloadSpec(kind="multi-lora", adapters=4)
    return VirtualJob(policy, spec, 20, workload, 10, seed=1, servers=4, server={"max_loras": 2}, fleet=fleet)


def _run(policy: str, spec: PolicySpec) -> dict[str, int]:
    job = _job(policy, spec)
    return dict(run_job(job)["lora"])


def test_the_epp_never_picks_a_pod_without_the_adapter() -> None:
    job = _job("epp-default", PolicySpec(kind="epp"))
    configs = server_configs(job)
    assert [c.lora_adapters for c in configs] == [HALVES[0], HALVES[0], HALVES[1], HALVES[1]]
    gateway = VirtualGateway()
    requests = [SimRequest(i, 0.05 * i, 100, 20, model=f"lora-{i % 4}") for i in range(200)]
    result = run_fleet(iter(requests), configs, gateway)
    assert len(result.results) == 200
    for r in result.results:
        assert r.status == "ok"
        assert f"lora-{int(r.request_id) % 4}" in configs[r.endpoint].lora_adapters
    # Every pod served: the filter narrows to the pods holding the adapter, not to one pod.
    assert {r.endpoint for r in result.results} == {0, 1, 2, 3}
    assert gateway.inventory.reads == 4  # each list read once, before the first request


def test_misrouted_requests_are_counted_and_fail_with_a_404() -> None:
    epp = _run("epp-default", PolicySpec(kind="epp"))
    assert epp["adapter_requests"] > 150 and epp["misrouted"] == epp["misrouted_errors"] == 0
    blind = _run("round-robin", PolicySpec(kind="round-robin"))
    assert blind["adapter_requests"] == epp["adapter_requests"]
    # Round robin sends each request to any of the 4 pods, 2 of which lack its adapter.
    assert 0.35 < blind["misrouted"] / blind["adapter_requests"] < 0.65
    assert blind["misrouted_errors"] == blind["misrouted"]
    row = run_job(_job("round-robin", PolicySpec(kind="round-robin")))
    assert row["errors"] == {"not-found": blind["misrouted"]}
    table = lora_table([row])
    assert f"| 20 | round-robin | {blind['adapter_requests']:,} | {blind['misrouted']:,} (" in table


def test_upstream_default_has_no_inventory_and_misroutes() -> None:
    spec = PolicySpec(kind="epp", config=Path("bench/profiles/upstream-default.yaml"))
    job = _job("upstream-default", spec)
    job.base_dir = ROOT
    lora = run_job(job)["lora"]
    assert lora["misrouted"] > 0 and lora["misrouted_errors"] == lora["misrouted"]


def test_a_404_rereads_that_pods_list_no_sooner_than_the_gap() -> None:
    now = [0.0]
    inventory = VirtualInventory(InventoryConfig(interval_s=30, min_refresh_gap_s=1), lambda: now[0])
    gateway = VirtualGateway()
    (server,) = Fleet([ServerConfig(name="p", lora_adapters=["lora-0"])], RoundRobinScheduler()).servers
    gateway.sync([server.snapshot(0.0)])
    (endpoint,) = gateway.endpoints
    inventory.refresh_due(gateway.endpoints, [server.snapshot(0.0)])
    assert served_models(endpoint).adapters == {"lora-0": BASE}  # type: ignore[union-attr]
    server.engine.lora.register("lora-9")  # loaded at runtime: unseen until the next read
    now[0] = 0.5
    inventory.refresh_due(gateway.endpoints, [server.snapshot(0.5)])
    assert not served_models(endpoint).serves("lora-9")  # type: ignore[union-attr]
    inventory.on_complete(SimpleNamespace(response_status=404, served=endpoint))  # type: ignore[arg-type]
    inventory.refresh_due(gateway.endpoints, [server.snapshot(0.5)])  # within the gap: not yet
    assert not served_models(endpoint).serves("lora-9")  # type: ignore[union-attr]
    now[0] = 1.0
    inventory.refresh_due(gateway.endpoints, [server.snapshot(1.0)])
    assert served_models(endpoint).serves("lora-9")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("lora_adaptrs: [lora-0]", "virtual.fleet[1].server.lora_adaptrs: not a simulator server field"),
        ("lora_adapters: lora-0", "virtual.fleet[1].server.lora_adapters: Input should be a valid list"),
        ("lora_adapters: [lora-0]", "virtual.fleet: adapter lora-1 of the workload is on no server"),
    ],
)
def test_scenario_mistakes_name_their_path(tmp_path: Path, edit: str, message: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(f"""name: s
workload: {{kind: multi-lora, adapters: 2}}
policies: {{rr: {{kind: round-robin}}}}
virtual:
  qps: [1]
  policies: [rr]
  fleet:
  - {{name: a, count: 1, server: {{lora_adapters: [lora-0]}}}}
  - {{name: b, count: 1, server: {{{edit}}}}}
""")
    with pytest.raises(ValueError) as err:
        load_scenario(path, ROOT)
    assert str(err.value) == f"{path}: {message}"


def test_spread_scenario_loads_with_four_adapters_per_pod() -> None:
    scenario = load_scenario(ROOT / "bench" / "multi-lora-spread.yaml", ROOT)
    assert scenario.virtual is not None and scenario.virtual.servers == 4
    job = VirtualJob("rr", scenario.policy("round-robin"), 20, scenario.workload, 1, 1,
                     servers=4, server=scenario.virtual.server, fleet=scenario.virtual.fleet)  # fmt: skip
    held = [c.lora_adapters for c in server_configs(job)]
    assert all(len(a) == 4 for a in held) and sorted({x for a in held for x in a}) == [
        f"lora-{i}" for i in range(8)
    ]


async def test_a_simulated_pod_lists_its_adapters_and_answers_404_for_others() -> None:
    server = SimulatedServer(ServerConfig(served_model_name=BASE, lora_adapters=["lora-0"], time_scale=0.01))
    await server.start("127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{server.url}/v1/models") as r:
                cards = (await r.json())["data"]
            assert [(c["id"], c["parent"]) for c in cards] == [(BASE, None), ("lora-0", BASE)]
            body = {"model": "lora-1", "prompt": "hi", "max_tokens": 2}
            async with s.post(f"{server.url}/v1/completions", json=body) as r:
                assert r.status == 404
                assert await r.json() == {
                    "error": {"message": "The model `lora-1` does not exist.", "type": "NotFoundError",
                              "param": None, "code": 404}
                }  # fmt: skip
    finally:
        await server.stop()


@pytest.mark.e2e
async def test_realtime_epp_reads_the_pods_lists_before_its_first_request() -> None:
    """Through Envoy and the EPP process, the pods' lists read over HTTP: from the first request
    on, none reaches a pod without its adapter, while Envoy's round robin sends some there."""
    from inference_gateway.bench.realtime import RealtimeOptions, RealtimePolicy, run_realtime

    fleet = [ServerGroup(name=f"g{i}", count=1, server={"lora_adapters": [f"lora-{i}"]}) for i in range(2)]
    options = RealtimeOptions(
        stack_dir=ROOT / "bench" / "stack",
        workload=WorkloadSpec(
            kind="multi-lora", adapters=2, output={"median": 8, "mean": 10, "min": 2, "max": 16}
        ),
        policies=[RealtimePolicy("round-robin", False), RealtimePolicy("epp-default", True)],
        qps=[8],
        duration_s=1.5,
        time_scale=0.1,
        sample_interval_s=0.2,
        subnet=92,
        fleet=fleet,
    )
    blind, epp = await run_realtime(options)
    assert blind["pods"] == epp["pods"] == 2
    assert blind["lora"]["misrouted"] > 0 and blind["errors"] == {"404": blind["lora"]["misrouted"]}
    assert epp["lora"]["misrouted"] == 0 and epp["ok"] == epp["requests"] > 0, epp["errors"]


def test_realtime_fleet_becomes_one_pod_group_each(tmp_path: Path) -> None:
    from inference_gateway.bench.realtime import RealtimeOptions, prepare_stack_dir

    fleet = [
        ServerGroup(name="a", count=2, server={"lora_adapters": ["lora-0"], "max_loras": 1}),
        ServerGroup(name="b", count=1, server={"profile": "h100-llama2-7b"}),
    ]
    options = RealtimeOptions(
        ROOT / "bench" / "stack", WorkloadSpec(kind="multi-lora", adapters=2), [], [1],
        simulator_args=["--max-loras", "2"], fleet=fleet, pods=4,
    )  # fmt: skip
    stack = prepare_stack_dir(options, tmp_path / "stack")
    (doc,) = [
        d
        for f in stack.glob("*.yaml")
        for d in yaml.safe_load_all(f.read_text())
        if d and d["kind"] == "LocalFleet"
    ]
    a, b = doc["spec"]["pods"]
    assert (a["replicas"], b["replicas"]) == (2, 1) and a["addressBase"] != b["addressBase"]
    assert a["simulator"]["loras"] == ["lora-0"] and b["simulator"]["loras"] == ["lora-0", "lora-1"]
    assert a["simulator"]["args"][-4:] == ["--max-loras", "2", "--max-loras", "1"]  # the group's wins
    assert b["simulator"]["profile"] == "h100-llama2-7b"


def test_realtime_fleet_takes_only_what_a_pod_command_line_sets(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("""name: s
policies: {rr: {kind: round-robin}}
realtime:
  qps: [1]
  policies: [rr]
  fleet: [{name: a, count: 1, server: {kv_events_config: "{}"}}]
""")
    with pytest.raises(
        ValueError, match=r"realtime\.fleet\[0\]\.server\.kv_events_config: not settable on a realtime pod"
    ):
        load_scenario(path, ROOT)
