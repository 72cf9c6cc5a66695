"""The oracle prefix policy sees every server's KV cache through the fleet's CacheOracle hook."""

from __future__ import annotations

import json

import pytest

from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.fleet import run_fleet
from inference_gateway.simulator.fleet_types import SimRequest
from inference_gateway.simulator.schedulers import OraclePrefixScheduler, RoundRobinScheduler


def _requests(prefixes: int, per_prefix: int) -> list[SimRequest]:
    """Requests cycling over `prefixes` long system prompts, spaced so each finishes first."""
    out = []
    for i in range(prefixes * per_prefix):
        system = f"<system {i % prefixes}> " + f"instructions for tenant {i % prefixes} " * 40
        out.append(SimRequest(i, 0.5 * i, 0, 4, None, None, system + f"question {i}"))
    return out


@pytest.mark.parametrize("events", [False, True])
def test_oracle_sends_each_prefix_where_it_is_cached(events: bool) -> None:
    config = json.dumps({"enable_kv_cache_events": True}) if events else None
    servers = [ServerConfig(name=f"s{i}", seed=i, kv_events_config=config) for i in range(3)]
    requests = _requests(prefixes=2, per_prefix=6)
    oracle = run_fleet(requests, servers, OraclePrefixScheduler())
    rr = run_fleet(requests, servers, RoundRobinScheduler())
    assert all(r.status == "ok" for r in oracle.results)
    # After each prefix's first request, the oracle always finds it cached; round robin over 3
    # servers with 2 prefixes often does not.
    cold = [r for r in oracle.results if r.cached_tokens == 0]
    assert len(cold) == 2
    assert sum(r.cached_tokens == 0 for r in rr.results) > 2


def test_oracle_needs_a_fleet() -> None:
    with pytest.raises(RuntimeError, match="cache lookup"):
        OraclePrefixScheduler().pick(SimRequest(0, 0.0, 8), [])
