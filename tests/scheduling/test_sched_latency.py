"""SLO-aware routing: the online latency predictor and latency-scorer."""

from __future__ import annotations

import random

import pytest
from sched_helpers import endpoint, request

from inference_gateway.scheduling import projection
from inference_gateway.scheduling.config import load_config
from inference_gateway.scheduling.latency import LatencyPredictor, features
from inference_gateway.scheduling.plugins.latency_scorer import LatencyScorer
from inference_gateway.scheduling.types import CycleState, SchedulingError


def _train(scorer: LatencyScorer, n: int = 200) -> None:
    """Teach it that TTFT grows 20 ms per waiting request and TPOT 10 ms per 64 running."""
    rng = random.Random(3)
    for i in range(n):
        e = endpoint(f"t{i % 4}", waiting=rng.randint(0, 10), running=rng.randint(0, 128), kv=rng.random())
        f = features(e, 200)
        scorer.predictor.dispatched(f"train-{i}", e.address, f)
        ttft = 30 + 20 * e.metrics.waiting_queue + rng.gauss(0, 1)
        tpot = 8 + 10 * e.metrics.running_requests / 64 + rng.gauss(0, 0.2)
        scorer.observe_latency(f"train-{i}", ttft / 1000, tpot / 1000)


def test_predictor_learns_latency_from_load() -> None:
    scorer = LatencyScorer()
    _train(scorer)
    ttft, tpot = scorer.predictor.predict("unseen:1", features(endpoint("x", waiting=5, running=64), 200))
    assert ttft == pytest.approx(130, abs=8) and tpot == pytest.approx(18, abs=1.5)


def test_slo_comes_from_headers_then_objective_then_default() -> None:
    scorer = LatencyScorer(
        parameters={"defaultTTFT": "500ms", "objectives": {"premium": {"ttft": "100ms", "tpot": "20ms"}}}
    )
    assert scorer.slo(request("x")) == (500.0, None)
    premium = request("x", headers={"x-gateway-inference-objective": "premium"})
    assert scorer.slo(premium) == (100.0, 20.0)
    hinted = request("x", headers={"x-gateway-inference-objective": "premium", "x-slo-ttft-ms": "42"})
    assert scorer.slo(hinted) == (42.0, 20.0)


def test_scores_by_headroom_and_sheds_sheddable_requests_that_cannot_meet_it() -> None:
    scorer = LatencyScorer()
    _train(scorer)
    eps = [endpoint("busy", waiting=8, running=100), endpoint("idle", waiting=0, running=10)]
    req = request("x", headers={"x-slo-ttft-ms": "100"})
    scores = scorer.score(CycleState(), req, eps)
    assert scores[1] > 0.5 > scores[0]
    assert scorer.filter(CycleState(), req, eps) == [eps[1]]
    strict = request("x", headers={"x-slo-ttft-ms": "10"}, priority=-1)
    assert scorer.filter(CycleState(), strict, eps) == []
    standard = request("x", headers={"x-slo-ttft-ms": "10"})
    assert list(scorer.filter(CycleState(), standard, eps)) == eps  # never shed what is not sheddable


def test_cold_predictor_neither_filters_nor_scores() -> None:
    scorer = LatencyScorer()
    eps = [endpoint("a", waiting=50), endpoint("b")]
    req = request("x", headers={"x-slo-ttft-ms": "1"}, priority=-1)
    assert scorer.filter(CycleState(), req, eps) == eps
    assert scorer.score(CycleState(), req, eps) == [1.0, 1.0]


def test_a_sheddable_request_no_pod_can_serve_in_time_gets_429() -> None:
    config = load_config(
        """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: latency-scorer
  parameters: {minSamples: 5}
schedulingProfiles:
- name: default
  plugins: [{pluginRef: latency-scorer}]
"""
    )
    scorer = config.plugins["latency-scorer"]
    assert isinstance(scorer, LatencyScorer)
    _train(scorer)
    eps = [endpoint("a", waiting=9), endpoint("b", waiting=9)]
    with pytest.raises(SchedulingError) as err:
        config.scheduler.schedule(request("x", headers={"x-slo-ttft-ms": "50"}, priority=-1), eps)
    assert err.value.status == 429
    # The feedback path: a bound request is remembered until its latency is reported.
    req = request("y", request_id="live-1")
    result, state = config.scheduler.schedule(req, [endpoint("c")])
    config.scheduler.bind(state, req, result)
    before = scorer.predictor._pooled_ttft.samples
    config.scheduler.observe_latency("live-1", 0.05, 0.01)
    assert scorer.predictor._pooled_ttft.samples == before + 1


def test_features_read_the_projected_state() -> None:
    e = endpoint("a", waiting=1)
    projection.mark_scraped(e)
    e.load.add(0)
    assert features(e, 1000).ttft[:3] == [1.0, 1.0, 2.0]
    assert LatencyPredictor().warm is False


@pytest.mark.parametrize(
    "params", [{"defaultTTFT": "-1s"}, {"objectives": {"x": {"ttft": "1s", "p99": "2s"}}}, {"foo": 1}]
)
def test_bad_parameters_are_rejected(params: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        LatencyScorer(parameters=params)


def test_sheddable_objectives_apply_only_to_sheddable_requests_without_their_own() -> None:
    scorer = LatencyScorer(
        parameters={"defaultTTFT": "500ms", "sheddableTTFT": "30ms", "sheddableTPOT": "25ms"}
    )
    assert scorer.slo(request("x", priority=-1)) == (30.0, 25.0)
    assert scorer.slo(request("x")) == (500.0, None)  # Standard: the defaults
    assert scorer.slo(request("x", priority=1)) == (500.0, None)
    own = request("x", headers={"x-slo-ttft-ms": "80"}, priority=-1)
    assert scorer.slo(own) == (80.0, 25.0)  # the client's objective wins


def test_the_sheddable_bar_sheds_batch_while_pods_still_have_room_for_the_rest() -> None:
    """Predicted TTFT 30 + 20 x waiting: 70 ms on a pod with 2 waiting. A Sheddable request
    without objectives passes the 100 ms default there, but not a 50 ms sheddable bar; a
    Standard request without objectives is never dropped, and an idle pod admits batch."""
    loose = LatencyScorer(parameters={"defaultTTFT": "100ms"})
    barred = LatencyScorer(parameters={"defaultTTFT": "100ms", "sheddableTTFT": "50ms"})
    _train(loose)
    _train(barred)
    busy = [endpoint("a", waiting=2, running=64), endpoint("b", waiting=2, running=64)]
    batch = request("x", priority=-1)
    assert list(loose.filter(CycleState(), batch, busy)) == busy
    assert list(barred.filter(CycleState(), batch, busy)) == []
    assert list(barred.filter(CycleState(), request("x"), busy)) == busy
    with_idle = [*busy, endpoint("idle", waiting=0, running=10)]
    assert [e.address for e in barred.filter(CycleState(), batch, with_idle)] == [with_idle[2].address]


def test_the_sheddable_bar_does_not_shed_while_nothing_waits_anywhere() -> None:
    """Predicted TTFT is 30 ms on a pod with nothing waiting, over a 20 ms bar: what misses it
    then is the request, not the load, so batch still runs while every pod's queue is empty;
    one waiting request anywhere and the bar sheds again. A Sheddable request's own objective
    gets no such pass."""
    barred = LatencyScorer(parameters={"sheddableTTFT": "20ms"})
    _train(barred)
    calm = [endpoint("a", waiting=0, running=64), endpoint("b", waiting=0, running=64)]
    batch = request("x", priority=-1)
    assert list(barred.filter(CycleState(), batch, calm)) == calm
    assert list(barred.filter(CycleState(), batch, [*calm, endpoint("c", waiting=1)])) == []
    own = request("x", headers={"x-slo-ttft-ms": "20"}, priority=-1)
    assert list(barred.filter(CycleState(), own, calm)) == []


def test_a_bad_sheddable_objective_names_its_config_path() -> None:
    with pytest.raises(ValueError) as caught:
        load_config(
            "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n"
            "plugins:\n- type: queue-scorer\n- type: latency-scorer\n  parameters: {sheddableTTFT: 0s}\n"
            "schedulingProfiles:\n- name: default\n  plugins: [{pluginRef: latency-scorer}]\n"
        )
    assert "plugins[1]:" in str(caught.value) and "parameter 'sheddableTTFT'" in str(caught.value)
