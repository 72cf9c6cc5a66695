"""Projected endpoint state: scraped metrics corrected by the in-flight ledger; no herding."""

from __future__ import annotations

from sched_helpers import endpoint, request

from inference_gateway.scheduling import projection
from inference_gateway.scheduling.config import load_config
from inference_gateway.scheduling.plugins.round_robin_picker import RoundRobinPicker
from inference_gateway.scheduling.saturation import SaturationConfig, SaturationDetector
from inference_gateway.scheduling.types import CycleState


def test_dispatches_since_the_scrape_count_until_the_next_scrape() -> None:
    e = endpoint("a", waiting=1, running=4, kv=0.5, block_size=16, num_blocks=100)
    projection.mark_scraped(e)
    e.load.add(160)
    e.load.add(160)
    assert (projection.waiting(e), projection.running(e)) == (3, 6)
    assert projection.kv_usage(e) == 0.5 + 320 / 1600
    e.load.remove(160)
    assert projection.waiting(e) == 2
    # A new scrape already counts what was in flight: the correction starts again from zero.
    e.metrics = endpoint("a", waiting=2, running=5, kv=0.6, block_size=16, num_blocks=100).metrics
    projection.mark_scraped(e)
    assert (projection.waiting(e), projection.kv_usage(e)) == (2, 0.6)
    for _ in range(3):
        e.load.remove(160)
    assert projection.waiting(e) == 1 and projection.running(e) == 4 and projection.kv_usage(e) == 0.6 - 0.1


def test_unmarked_metrics_are_marked_on_first_read() -> None:
    e = endpoint("a", waiting=3)
    e.load.requests = 7  # requests sent before these metrics were read
    assert projection.waiting(e) == 3
    e.load.add(0)
    assert projection.waiting(e) == 4


def test_default_profile_spreads_requests_between_scrapes() -> None:
    scheduler = load_config().scheduler
    eps = [endpoint(f"p{i}", running=10, kv=0.3) for i in range(4)]
    picks = []
    for i in range(8):  # no scrape in between: every pod's metrics stay the same
        req = request("hello world " * 3, request_id=f"r{i}")
        result, state = scheduler.schedule(req, eps)
        scheduler.bind(state, req, result)
        result.endpoints[0].load.add(10)
        picks.append(result.endpoints[0].name)
    assert sorted(picks.count(e.name) for e in eps) == [2, 2, 2, 2]


def test_upstream_profile_reads_the_scrape_only_and_herds() -> None:
    text = open("bench/profiles/upstream-default.yaml").read()  # noqa: SIM115
    scheduler = load_config(text).scheduler
    eps = [endpoint(f"p{i}", running=10, kv=0.3 + i / 100) for i in range(4)]
    for i in range(5):
        req = request(f"prompt {i}", request_id=f"r{i}")
        result, state = scheduler.schedule(req, eps)
        scheduler.bind(state, req, result)
        result.endpoints[0].load.add(10)
        assert result.endpoints[0] is eps[0]


def test_saturation_sees_requests_sent_since_the_scrape() -> None:
    detector = SaturationDetector(SaturationConfig(queue_depth_threshold=3))
    e = endpoint("a", waiting=1)
    projection.mark_scraped(e)
    assert detector.has_capacity(e)
    e.load.add(0)
    e.load.add(0)
    assert not detector.has_capacity(e)
    assert detector.describe(e) == "queue 3 >= 3"


def test_round_robin_picker_rotates_within_the_tolerance() -> None:
    picker = RoundRobinPicker(parameters={"tolerance": 0.5, "maxNumOfEndpoints": 2})
    eps = [endpoint(n) for n in ("a", "b", "c")]
    totals = [1.0, 0.8, 0.1]  # c is too far below the best
    first = [picker.pick(CycleState(), eps, totals)[0].pod.name for _ in range(4)]
    assert first == ["a", "b", "a", "b"]
    fallback = picker.pick(CycleState(), eps, totals)
    assert [e.pod.name for e in fallback] == ["a", "b"]
    rr = RoundRobinPicker(parameters={"tolerance": 100})
    assert [rr.pick(CycleState(), eps, totals)[0].pod.name for _ in range(3)] == ["a", "b", "c"]
