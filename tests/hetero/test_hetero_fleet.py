"""A mixed fleet in virtual time, scheduled by the EPP's own code: the capacity scorer learns
which pods are slow and keeps the requests in flight on each pod proportional to its speed,
where a load-only scorer keeps them equal."""

from __future__ import annotations

from collections import defaultdict

import pytest

from inference_gateway.scheduling.plugins.capacity_load_scorer import CapacityLoadScorer
from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.fleet import run_fleet
from inference_gateway.simulator.fleet_server import FleetResult
from inference_gateway.simulator.gateway import VirtualGateway
from inference_gateway.simulator.workload import sharegpt_like

ONE_SCORER = """
plugins:
- type: %s
- {type: max-score-picker, parameters: {seed: 7}}
schedulingProfiles: [{name: default, plugins: [{pluginRef: %s}, {pluginRef: max-score-picker}]}]
"""
DURATION_S = 20.0


def run(scorer: str, slow_profile: str) -> tuple[FleetResult, VirtualGateway]:
    servers = [ServerConfig(name="h100-0"), ServerConfig(name="h100-1")]
    servers += [ServerConfig(name=f"slow-{i}", profile=slow_profile) for i in range(2)]
    scheduler = VirtualGateway(ONE_SCORER % (scorer, scorer))
    result = run_fleet(sharegpt_like(40, DURATION_S, seed=3), servers, scheduler)
    assert all(r.status == "ok" for r in result.results)
    return result, scheduler


def mean_in_flight(result: FleetResult, start: float = 5.0, end: float = DURATION_S) -> dict[int, float]:
    """Requests in flight on each server, averaged over the steady part of the arrivals."""
    seconds: dict[int, float] = defaultdict(float)
    for r in result.results:
        seconds[r.endpoint] += max(0.0, min(r.finish, end) - max(r.arrival, start))
    return {i: s / (end - start) for i, s in seconds.items()}


def fast_to_slow(values: dict[int, float]) -> float:
    return (values[0] + values[1]) / (values[2] + values[3])


@pytest.mark.parametrize("slow_profile", ["a100-llama2-7b", "l4-llama2-7b"])
def test_requests_in_flight_follow_the_learned_speeds(slow_profile: str) -> None:
    load_only, _ = run("running-requests-size-scorer", slow_profile)
    by_capacity, scheduler = run("capacity-load-scorer", slow_profile)
    scorer = scheduler.config.plugins["capacity-load-scorer"]
    assert isinstance(scorer, CapacityLoadScorer)
    speeds = {i: scorer.speed(e.address) or 0.0 for i, e in enumerate(scheduler.endpoints)}
    speed_ratio = fast_to_slow(speeds)
    assert speed_ratio > 1.3  # H100 decodes faster than A100 and L4 in the simulator's profiles

    # Load-only scheduling keeps about as many requests on a slow pod as on a fast one ...
    assert fast_to_slow(mean_in_flight(load_only)) < 1.3
    # ... capacity-normalised scheduling keeps them in proportion to speed.
    assert fast_to_slow(mean_in_flight(by_capacity)) == pytest.approx(speed_ratio, rel=0.25)
    slow_requests = [sum(r.endpoint >= 2 for r in res.results) for res in (load_only, by_capacity)]
    assert slow_requests[1] < slow_requests[0]
