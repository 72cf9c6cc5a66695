"""Real-time runs draw new traffic at each rate (the pods' caches carry over between rates)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from inference_gateway.bench import realtime
from inference_gateway.bench.realtime import RealtimeOptions, RealtimePolicy, run_realtime
from inference_gateway.bench.workloads import WorkloadSpec, generate

ROOT = Path(__file__).resolve().parents[2]


class _Stack:
    """A LocalStack without processes: no pods, nothing to start."""

    pods: list[Any] = []
    base_url = "http://127.0.0.1:1/v1"

    def __init__(self, options: object) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class _Client:
    """The load client's process: records its argv and writes an empty result."""

    def __init__(self, argv: tuple[str, ...]) -> None:
        self.argv = argv
        out = Path(argv[argv.index("--out") + 1])
        out.write_bytes(orjson.dumps({"requests": 0}))

    async def wait(self) -> int:
        return 0


async def test_each_rate_draws_its_own_traffic_every_policy_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    clients: list[_Client] = []

    async def spawn(*argv: str, **_: object) -> _Client:
        clients.append(_Client(argv))
        return clients[-1]

    monkeypatch.setattr(realtime, "LocalStack", _Stack)
    monkeypatch.setattr(asyncio, "create_subprocess_exec", spawn)
    workload = WorkloadSpec()
    options = RealtimeOptions(
        stack_dir=ROOT / "bench" / "stack", workload=workload, qps=[3.0, 6.0, 9.0], seed=7,
        policies=[RealtimePolicy("round-robin", False), RealtimePolicy("epp-default", True)],
    )  # fmt: skip
    rows = await run_realtime(options)

    seeds = [int(c.argv[c.argv.index("--seed") + 1]) for c in clients]
    assert seeds == [7, 8, 9, 7, 8, 9]  # per rate: base seed + the rate's index, for each policy
    assert [r["traffic_seed"] for r in rows] == seeds
    assert {r["seed"] for r in rows} == {7}  # rows still group by the scenario's seed
    # what the clients send: different prompts at each rate, the same ones for both policies
    prompts = [[r.prompt() for r in generate(workload, 20, seed)] for seed in seeds]
    assert not set(prompts[0]) & set(prompts[1]) and not set(prompts[1]) & set(prompts[2])
    assert prompts[:3] == prompts[3:]
