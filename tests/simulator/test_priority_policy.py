"""vLLM's `--scheduling-policy priority` in the simulated engine: waiting order by
(priority, arrival), preemption of the largest (priority, arrival) on KV shortage, and the
400 that vLLM gives a non-zero priority under the default fcfs policy."""

from __future__ import annotations

import aiohttp
import pytest

from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.engine import Engine
from inference_gateway.simulator.fleet_types import SimRequest
from inference_gateway.simulator.profile import load_profile
from inference_gateway.simulator.waiting import SchedulingPolicy

from .conftest import ServerFactory
from .helpers import run_one_server

PROFILE = load_profile("h100-llama2-7b")


def _requests() -> list[SimRequest]:
    # One seat: "first" holds it; "low" (priority 5) then "high" (priority -1) queue behind it.
    return [
        SimRequest("first", 0.0, 64, 20),
        SimRequest("low", 0.001, 64, 20, engine_priority=5),
        SimRequest("high", 0.002, 64, 20, engine_priority=-1),
    ]


def test_priority_policy_admits_lower_priority_value_first() -> None:
    res, _ = run_one_server(_requests(), ServerConfig(max_num_seqs=1, scheduling_policy="priority"))
    assert res["first"].first_token < res["high"].first_token < res["low"].first_token
    assert all(r.status == "ok" for r in res.values())


def test_fcfs_policy_rejects_a_nonzero_priority_like_vllm() -> None:
    res, _ = run_one_server(_requests(), ServerConfig(max_num_seqs=1))
    assert res["first"].status == "ok"
    assert res["low"].status == res["high"].status == "error"
    engine = Engine(ServerConfig().resolve(PROFILE), PROFILE)
    with pytest.raises(ValueError, match="Priority scheduling is not enabled"):
        engine.add_request("x", 10, 10, 0.0, priority=1)


def test_equal_priorities_keep_arrival_order() -> None:
    reqs = [SimRequest(i, i * 0.001, 64, 5, engine_priority=3) for i in range(6)]
    res, _ = run_one_server(reqs, ServerConfig(max_num_seqs=1, scheduling_policy="priority"))
    firsts = [res[i].first_token for i in range(6)]
    assert firsts == sorted(firsts)


def _first_victims(policy: SchedulingPolicy) -> list[str]:
    """Three requests decode until KV blocks run out; which one is preempted first?"""
    cfg = ServerConfig(num_gpu_blocks=12, block_size=16, scheduling_policy=policy)
    engine = Engine(cfg.resolve(PROFILE), PROFILE)
    prio = {"a": 0, "b": 5, "c": 0} if policy == "priority" else {"a": 0, "b": 0, "c": 0}
    seqs = [engine.add_request(rid, 32, 100, i * 1e-4, priority=p) for i, (rid, p) in enumerate(prio.items())]
    now = 0.0
    while engine.stats.num_preemptions == 0:
        plan = engine.begin_step(now)
        assert plan is not None
        now = plan.end
        engine.finish_step()
    return [str(s.request_id) for s in seqs if s.preemptions]


def test_kv_shortage_preempts_the_lowest_priority_running_request() -> None:
    assert _first_victims("priority") == ["b"]  # largest (priority, arrival): b has priority 5


def test_kv_shortage_under_fcfs_preempts_the_newest() -> None:
    assert _first_victims("fcfs") == ["c"]


def test_preempted_low_priority_request_waits_behind_higher_priority_ones() -> None:
    cfg = ServerConfig(num_gpu_blocks=12, block_size=16, scheduling_policy="priority")
    reqs = [
        SimRequest("a", 0.0, 32, 100),
        SimRequest("b", 0.0001, 32, 100, engine_priority=5),
        SimRequest("c", 0.0002, 32, 100),
    ]
    res, _ = run_one_server(reqs, cfg)
    assert res["b"].preemptions >= 1
    assert res["a"].preemptions == 0
    assert res["b"].finish > max(res["a"].finish, res["c"].finish)


async def test_server_accepts_priority_only_under_the_priority_policy(make_server: ServerFactory) -> None:
    fcfs = await make_server(time_scale=0.01)
    prio = await make_server(time_scale=0.01, scheduling_policy="priority")
    body = {"model": "meta-llama/Llama-2-7b-hf", "prompt": "hi", "max_tokens": 2, "priority": 3}
    async with aiohttp.ClientSession() as s:
        async with s.post(f"http://127.0.0.1:{fcfs.port}/v1/completions", json=body) as r:
            assert r.status == 400
            assert "Priority scheduling is not enabled" in (await r.json())["error"]["message"]
        async with s.post(f"http://127.0.0.1:{fcfs.port}/v1/completions", json={**body, "priority": 0}) as r:
            assert r.status == 200
        async with s.post(f"http://127.0.0.1:{prio.port}/v1/completions", json=body) as r:
            assert r.status == 200
        async with s.post(
            f"http://127.0.0.1:{prio.port}/v1/completions", json={**body, "priority": "x"}
        ) as r:
            assert r.status == 400
