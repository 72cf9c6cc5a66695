"""Several EPP replicas in virtual time: sync keeps their indexes equal and the pods' caches warm."""

from __future__ import annotations

from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.fleet import run_fleet
from inference_gateway.simulator.fleet_types import EndpointSnapshot, SimRequest
from inference_gateway.simulator.replicas import (
    ReplicaSet,
    ReplicaSetOptions,
    SystemPromptWorkload,
)

PREFIX_TOKENS = 512


def snapshots(n: int = 4) -> list[EndpointSnapshot]:
    return [
        EndpointSnapshot(
            i, f"pod-{i}", "m", 0.0, 0, 0, 0.1 * i, frozenset(), frozenset(), 0, 16, 4000, 0.0, 0
        )
        for i in range(n)
    ]


def index_contents(rs: ReplicaSet) -> list[dict[str, int]]:
    out = []
    for replica in rs.replicas:
        index = next(iter(replica.hub.scorers.values())).index
        out.append({server: index.size(server) for server in index.servers()})
    return out


def test_replicas_take_turns_and_converge_after_the_delay() -> None:
    rs = ReplicaSet(ReplicaSetOptions(replicas=3, sync=True, delay_s=0.02))
    snaps = snapshots()
    for i in range(6):
        prompt = f"<system {i % 2}> " + "policy text " * 40 + f"question {i}"
        rs.pick(SimRequest(i, 0.1 * i, 200, 10, None, None, prompt), snaps)
    # Each replica routed two requests itself; updates older than 20 ms reached the others.
    rs.pick(SimRequest(99, 10.0, 1, 1, None, None, ""), snaps)  # an empty prompt adds nothing
    contents = index_contents(rs)
    assert contents[0] == contents[1] == contents[2]
    assert sum(contents[0].values()) > 0
    assert rs.delivered == 6 * 2


def test_without_sync_each_replica_knows_only_its_own_picks() -> None:
    rs = ReplicaSet(ReplicaSetOptions(replicas=3, sync=False))
    snaps = snapshots()
    for i in range(3):
        rs.pick(SimRequest(i, 0.1 * i, 200, 10, None, None, f"<sys {i}> " + "x" * 640), snaps)
    sizes = [sum(c.values()) for c in index_contents(rs)]
    assert sizes == [10, 10, 10]  # 640+ characters, 64 per block, one request each
    assert rs.delivered == 0


def system_prompt_prefills(replicas: int, sync: bool) -> int:
    work = SystemPromptWorkload(prompts=24, questions=8, prefix_tokens=PREFIX_TOKENS, qps=20.0)
    servers = [ServerConfig(name=f"pod-{i}", seed=i, num_gpu_blocks=1000) for i in range(4)]
    options = ReplicaSetOptions(replicas=replicas, sync=sync, delay_s=0.02, scrape_interval_s=0.05)
    result = run_fleet(work.requests(), servers, ReplicaSet(options), scrape_interval=0.005)
    done = [r for r in result.results if r.status == "ok"]
    assert len(done) == 24 * 8
    return sum(1 for r in done if r.cached_tokens < PREFIX_TOKENS)


def test_sync_brings_three_replicas_close_to_one() -> None:
    single = system_prompt_prefills(1, sync=False)
    unsynced = system_prompt_prefills(3, sync=False)
    synced = system_prompt_prefills(3, sync=True)
    assert single >= 24  # every system prompt is computed at least once
    assert synced < unsynced
    assert synced - single < (unsynced - single) / 2
