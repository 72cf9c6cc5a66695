"""capacity-load-scorer: decode speed learned from inter-token-latency counters, load scored in time."""

from __future__ import annotations

import pytest

from inference_gateway.api.types import ObjectRef
from inference_gateway.datastore.endpoint import Endpoint, EndpointMetrics
from inference_gateway.scheduling.config import ConfigError, load_config
from inference_gateway.scheduling.plugins.capacity_load_scorer import CapacityLoadScorer
from inference_gateway.scheduling.types import CycleState, SchedulingRequest

REQUEST = SchedulingRequest("r", "m", "m")


def endpoint(name: str, ip: str) -> Endpoint:
    return Endpoint(name, ObjectRef("default", name), ip, 8000, {})


def scrape(
    e: Endpoint, at: float, itl: tuple[float, float] | None, running: int = 0, waiting: int = 0
) -> None:
    """`itl`: the inter-token latency histogram's cumulative (sum in seconds, count)."""
    e.metrics = EndpointMetrics(
        running_requests=running,
        waiting_queue=waiting,
        itl_sum_seconds=itl[0] if itl else None,
        itl_count=itl[1] if itl else None,
        updated_at=at,
    )


def decode(speed: float, running: int, seconds: float) -> tuple[float, float]:
    """Histogram totals after `running` sequences decoded for `seconds` at `speed` tokens/s each."""
    tokens = running * speed * seconds
    return tokens / speed, tokens


def run_at_speeds(
    scorer: CapacityLoadScorer,
    endpoints: list[Endpoint],
    speeds: list[float],
    seconds: float,
    running: int = 4,
    every_s: float = 0.05,
) -> None:
    """The scorer looks every `every_s` while each endpoint decodes at its speed."""
    for step in range(int(seconds / every_s) + 1):
        for e, speed in zip(endpoints, speeds, strict=True):
            scrape(e, 100.0 + step * every_s, decode(speed, running, step * every_s), running)
        scorer.score(CycleState(), REQUEST, endpoints)


@pytest.mark.parametrize("every_s", [0.05, 2.5])
def test_learns_each_endpoint_speed_from_the_latency_counters(every_s: float) -> None:
    """Counter rates are exact however rarely the scorer looks (rare requests)."""
    fast, slow = endpoint("fast", "10.0.0.1"), endpoint("slow", "10.0.0.2")
    scorer = CapacityLoadScorer()
    run_at_speeds(scorer, [fast, slow], [150.0, 20.0], seconds=5, every_s=every_s)
    assert scorer.speed(fast.address) == pytest.approx(150.0, rel=0.01)
    assert scorer.speed(slow.address) == pytest.approx(20.0, rel=0.01)


def test_a_slower_endpoint_counts_each_request_as_more_load() -> None:
    fast, slow = endpoint("fast", "10.0.0.1"), endpoint("slow", "10.0.0.2")
    scorer = CapacityLoadScorer()
    run_at_speeds(scorer, [fast, slow], [150.0, 20.0], seconds=2)
    t = 100.5
    # Same load: the fast endpoint is 7.5x cheaper.
    scrape(fast, t, fast_totals := decode(150.0, 4, 2.0), running=4)
    scrape(slow, t, slow_totals := decode(20.0, 4, 2.0), running=4)
    scores = scorer.score(CycleState(), REQUEST, [fast, slow])
    assert scores[0] == 1.0 and scores[1] == pytest.approx(20 / 150, rel=0.02)
    # The slow pod wins only once the fast one holds more than 7.5x its requests: 8 vs 0 (9/150 > 1/20).
    scrape(fast, t + 0.05, fast_totals, running=8)
    scrape(slow, t + 0.05, slow_totals, running=0)
    assert scorer.score(CycleState(), REQUEST, [fast, slow])[1] == 1.0
    scrape(fast, t + 0.1, fast_totals, running=6)
    assert scorer.score(CycleState(), REQUEST, [fast, slow])[0] == 1.0


def test_requests_sent_since_the_last_scrape_count_through_in_flight() -> None:
    a, b = endpoint("a", "10.0.0.1"), endpoint("b", "10.0.0.2")
    scrape(a, 1.0, None, running=0)
    scrape(b, 1.0, None, running=0)
    a.load.requests = 3
    assert CapacityLoadScorer().score(CycleState(), REQUEST, [a, b]) == [0.25, 1.0]
    ignoring = CapacityLoadScorer(parameters={"useInFlight": False})
    assert ignoring.score(CycleState(), REQUEST, [a, b]) == [1.0, 1.0]


def test_unknown_speed_defaults_to_the_median_of_the_known_ones() -> None:
    fast, slow, new = endpoint("fast", "10.0.0.1"), endpoint("slow", "10.0.0.2"), endpoint("new", "10.0.0.3")
    scorer = CapacityLoadScorer()
    run_at_speeds(scorer, [fast, slow], [100.0, 20.0], seconds=2)
    scrape(fast, 102.0, decode(100.0, 4, 2.0), running=2)
    scrape(slow, 102.0, decode(20.0, 4, 2.0), running=2)
    scrape(new, 102.0, None, running=2)  # e.g. an engine without the latency histogram
    scores = scorer.score(CycleState(), REQUEST, [fast, slow, new])
    assert scorer.speed(new.address) is None
    assert scores[2] == pytest.approx(60 / 100, rel=0.02)  # median of 100 and 20 = 60


def test_idle_time_and_counter_resets_leave_the_estimate_alone() -> None:
    e = endpoint("e", "10.0.0.1")
    scorer = CapacityLoadScorer()
    run_at_speeds(scorer, [e], [80.0], seconds=2)
    learned = scorer.speed(e.address)
    totals = decode(80.0, 4, 2.0)
    for step in range(60):  # 3 s idle: counters flat
        scrape(e, 102.0 + step * 0.05, totals)
        scorer.score(CycleState(), REQUEST, [e])
    assert scorer.speed(e.address) == learned
    scrape(e, 105.1, (0.5, 10.0), running=1)  # restarted engine: counters went backwards
    scorer.score(CycleState(), REQUEST, [e])
    assert scorer.speed(e.address) == learned
    # After the restart it keeps learning from the new counters (now 40 tokens/s).
    scrape(e, 106.2, (0.5 + 40 / 40.0, 10.0 + 40), running=1)
    scorer.score(CycleState(), REQUEST, [e])
    assert scorer.speed(e.address) == pytest.approx(learned + 0.3 * (40.0 - learned))


def test_estimates_of_removed_endpoints_are_dropped() -> None:
    a, b = endpoint("a", "10.0.0.1"), endpoint("b", "10.0.0.2")
    scorer = CapacityLoadScorer()
    run_at_speeds(scorer, [a, b], [50.0, 50.0], seconds=2)
    scorer.endpoints_changed({a.address})
    assert scorer.speed(a.address) is not None and scorer.speed(b.address) is None


def test_configured_by_type_name_with_checked_parameters() -> None:
    config = load_config(
        """
plugins:
- {type: capacity-load-scorer, parameters: {windowSeconds: 2, alpha: 0.5}}
schedulingProfiles: [{name: default, plugins: [{pluginRef: capacity-load-scorer, weight: 3}]}]
"""
    )
    scorer = config.plugins["capacity-load-scorer"]
    assert isinstance(scorer, CapacityLoadScorer) and (scorer.window_s, scorer.alpha) == (2.0, 0.5)
    with pytest.raises(ConfigError, match="alpha"):
        load_config("plugins: [{type: capacity-load-scorer, parameters: {alpha: 2}}]")
