"""The virtual-time fleet: routing through the scheduler Protocol, stale snapshots,
heterogeneous servers, and workload generation."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import pairwise

import pytest

from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.fleet import run_fleet
from inference_gateway.simulator.fleet_types import EndpointSnapshot, RequestResult, SimRequest
from inference_gateway.simulator.schedulers import (
    LeastRequestsScheduler,
    RandomScheduler,
    RoundRobinScheduler,
)
from inference_gateway.simulator.tokenizer import SimTokenizer, block_hashes
from inference_gateway.simulator.workload import SharedPrefixes, sharegpt_like


class Recorder:
    """Routes round-robin; records what it saw and what finished."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, tuple[EndpointSnapshot, ...]]] = []
        self.finished: list[RequestResult] = []
        self._rr = RoundRobinScheduler()

    def pick(self, request: SimRequest, endpoints: Sequence[EndpointSnapshot]) -> int | None:
        self.seen.append((request.arrival, tuple(endpoints)))
        return self._rr.pick(request, endpoints)

    def on_finished(self, result: RequestResult) -> None:
        self.finished.append(result)


def test_round_robin_spreads_evenly_and_all_requests_complete() -> None:
    work = list(sharegpt_like(40, 5.0, seed=3))
    result = run_fleet(work, [ServerConfig() for _ in range(4)], RoundRobinScheduler())
    per_server = Counter(r.endpoint for r in result.results)
    assert max(per_server.values()) - min(per_server.values()) <= 1
    assert len(result.results) == len(work) and result.incomplete == 0
    summary = result.summary()
    assert summary["completed"] == len(work)
    assert summary["ttft_p50"] <= summary["ttft_p90"] <= summary["ttft_p99"]
    total_out = sum(r.output_tokens for r in work if r.output_tokens)
    assert sum(s.stats.generation_tokens for s in result.servers) == total_out


@pytest.mark.parametrize(("interval", "staleness"), [(0.05, 0.0), (0.1, 0.2)])
def test_scheduler_sees_snapshots_no_fresher_than_scrape_interval_plus_staleness(
    interval: float, staleness: float
) -> None:
    recorder = Recorder()
    work = list(sharegpt_like(50, 3.0, seed=4))
    result = run_fleet(
        work,
        [ServerConfig(), ServerConfig()],
        recorder,
        scrape_interval=interval,
        staleness=staleness,
    )
    assert len(recorder.finished) == len(work) == len(result.results)
    for arrival, snaps in recorder.seen[20:]:
        for snap in snaps:
            age = arrival - snap.updated_at
            assert staleness <= age <= staleness + interval + 1e-9


def test_stale_metrics_make_least_requests_herd() -> None:
    """With very stale metrics, a load-aware scheduler sends bursts to one server."""

    def spread(staleness: float) -> float:
        work = list(sharegpt_like(200, 5.0, seed=5))
        res = run_fleet(
            work,
            [ServerConfig() for _ in range(4)],
            LeastRequestsScheduler(),
            scrape_interval=0.05,
            staleness=staleness,
        )
        return res.summary()["ttft_p90"]

    assert spread(2.0) > spread(0.0)


def test_rejection_and_heterogeneous_profiles() -> None:
    class FastOnly:
        def pick(self, request: SimRequest, endpoints: Sequence[EndpointSnapshot]) -> int | None:
            return None if request.request_id == "drop" else int(request.request_id == "l4")

    work = [
        SimRequest("h100", 0.0, 500, 50),
        SimRequest("l4", 0.0, 500, 50),
        SimRequest("drop", 0.1, 5, 5),
    ]
    servers = [ServerConfig(profile="h100-llama2-7b"), ServerConfig(profile="l4-llama2-7b")]
    res = {r.request_id: r for r in run_fleet(work, servers, FastOnly()).results}
    assert res["drop"].status == "rejected" and res["drop"].endpoint == -1
    assert res["l4"].endpoint == 1
    assert res["l4"].tpot > 5 * res["h100"].tpot  # 300 GB/s vs 3.35 TB/s decode


def test_random_scheduler_is_seeded() -> None:
    work = list(sharegpt_like(20, 2.0, seed=6))

    def endpoints() -> list[int]:
        res = run_fleet(work, [ServerConfig()] * 3, RandomScheduler(seed=9))
        return [r.endpoint for r in sorted(res.results, key=lambda r: r.arrival)]

    assert endpoints() == endpoints()
    assert len(set(endpoints())) == 3


def test_workload_is_deterministic_and_shares_prefixes_consistently_with_its_text() -> None:
    prefixes = SharedPrefixes(groups=2, tokens=320, fraction=0.5)
    a = list(sharegpt_like(100, 2.0, seed=7, prefixes=prefixes, with_text=True))
    b = list(sharegpt_like(100, 2.0, seed=7, prefixes=prefixes, with_text=True))
    assert a == b
    assert all(x.arrival < y.arrival for x, y in pairwise(a))
    shared = [r for r in a if r.block_hashes]
    assert 0.3 * len(a) < len(shared) < 0.7 * len(a)
    assert len({tuple(r.block_hashes or ()) for r in shared}) == 2
    tok = SimTokenizer()
    for r in shared[:5]:  # the carried hashes are those of the text's leading blocks
        assert r.prompt is not None
        ids = tok.encode(r.prompt)
        assert block_hashes(ids, 16)[:20] == list(r.block_hashes or ())
    mean_prompt = sum(r.prompt_tokens for r in a if not r.block_hashes) / max(1, len(a) - len(shared))
    assert 150 < mean_prompt < 500  # ShareGPT-like: mean ~300


def test_shared_prefixes_produce_cache_hits_in_the_fleet() -> None:
    prefixes = SharedPrefixes(groups=1, tokens=512, fraction=1.0)
    work = list(sharegpt_like(20, 3.0, seed=8, prefixes=prefixes))
    res = run_fleet(work, [ServerConfig()], RoundRobinScheduler())
    hits = [r.cached_tokens for r in res.results]
    assert hits.count(0) <= 1 and max(hits) == 512
    assert res.servers[0].stats.prefix_hit_rate > 0.4
