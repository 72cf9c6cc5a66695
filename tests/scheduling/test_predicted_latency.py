"""The predicted-latency family (upstream v1.5 / llm-d types) on the in-process predictor:
predicted-latency-producer, latency-scorer with a producer, slo-headroom-tier-filter,
latency-slo-admitter and the affinity filter's TTFT gate."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import orjson
import pytest
from sched_helpers import MODEL, endpoint, pool_store, request

from inference_gateway.requestcontrol.director import Director
from inference_gateway.requestcontrol.errors import GatewayError
from inference_gateway.runtime import PoolRuntime
from inference_gateway.scheduling.config import ConfigError, EndpointPickerConfig, load_config
from inference_gateway.scheduling.latency import features
from inference_gateway.scheduling.plugins.latency_scorer import LatencyScorer
from inference_gateway.scheduling.plugins.latency_slo_admitter import LatencySloAdmitter
from inference_gateway.scheduling.plugins.predicted_latency_producer import PredictedLatencyProducer
from inference_gateway.scheduling.plugins.predicted_latency_scorer import PredictedLatencyScorer
from inference_gateway.scheduling.plugins.prefix_cache_affinity_filter import PrefixCacheAffinityFilter
from inference_gateway.scheduling.plugins.prefix_cache_scorer import PrefixCacheScorer
from inference_gateway.scheduling.plugins.slo_headroom_tier_filter import SloHeadroomTierFilter
from inference_gateway.scheduling.types import CycleState

CHART = Path(__file__).parent / "upstream_configs" / "gie" / "chart-epplib-latency-predictor.yaml"
HEADER = "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n"


def train(producer: PredictedLatencyProducer, n: int = 200) -> None:
    """TTFT = 30 ms + 20 ms per waiting request; TPOT = 8 ms + 10 ms per 64 running."""
    rng = random.Random(3)
    for i in range(n):
        e = endpoint(f"t{i % 4}", waiting=rng.randint(0, 10), running=rng.randint(0, 128), kv=rng.random())
        producer.predictor.dispatched(f"train-{i}", e.address, features(e, 0))
        ttft = 30 + 20 * e.metrics.waiting_queue + rng.gauss(0, 1)
        tpot = 8 + 10 * e.metrics.running_requests / 64 + rng.gauss(0, 0.2)
        producer.predictor.observed(f"train-{i}", ttft, tpot)


def family(extra: str = "", producer_params: str = "{}") -> EndpointPickerConfig:
    config = load_config(
        HEADER
        + f"""
plugins:
- type: predicted-latency-producer
  parameters: {producer_params}
- type: slo-headroom-tier-filter
  parameters: {{seed: 1}}
- type: latency-scorer
- type: latency-slo-admitter
{extra}
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: slo-headroom-tier-filter
  - pluginRef: latency-scorer
"""
    )
    producer = config.plugins["predicted-latency-producer"]
    assert isinstance(producer, PredictedLatencyProducer)
    train(producer)
    return config


def producer_of(config: EndpointPickerConfig) -> PredictedLatencyProducer:
    producer = config.plugins["predicted-latency-producer"]
    assert isinstance(producer, PredictedLatencyProducer)
    return producer


def test_upstream_chart_with_the_latency_predictor_loads_and_routes_on_predictions() -> None:
    config = load_config(CHART.read_text())
    producer = producer_of(config)
    train(producer)
    busy, idle = endpoint("busy", waiting=8, running=30), endpoint("idle", waiting=0, running=30)
    req = request("hello", headers={"x-slo-ttft-ms": "100"})
    picks = [config.scheduler.schedule(req, [busy, idle])[0].endpoints[0] for _ in range(200)]
    # The tier filter keeps the endpoint that meets 100 ms (~30 vs ~190 ms predicted), but for
    # its 1 % exploration of the negative tier.
    assert picks.count(busy) <= 10


def test_producer_predicts_and_computes_headroom_against_the_objectives() -> None:
    producer = PredictedLatencyProducer(parameters={"streamingMode": True, "sloBufferFactor": 0.5})
    train(producer)
    e = endpoint("e", waiting=5, running=64)
    table = producer.predictions(request("x", headers={"x-slo-ttft-ms": "200", "x-slo-tpot-ms": "40"}), [e])
    assert table is not None
    p = table.get(e)
    assert p is not None
    assert p.ttft_ms == pytest.approx(130, abs=8) and p.tpot_ms == pytest.approx(18, abs=1.5)
    assert p.ttft_headroom == pytest.approx(200 - p.ttft_ms)
    assert p.tpot_headroom == pytest.approx(40 * 0.5 - p.tpot_ms)  # the buffer tightens the TPOT SLO
    assert p.valid and p.positive


def test_without_streaming_mode_tpot_is_neutralised_and_without_objectives_headroom_is_negative() -> None:
    producer = PredictedLatencyProducer()
    train(producer)
    e = endpoint("e", waiting=2, running=64)
    table = producer.predictions(request("x"), [e])
    assert table is not None and not table.has_slo
    p = table.get(e)
    assert p is not None
    assert p.tpot_headroom == 0.0 and p.tpot_valid
    assert p.ttft_headroom == pytest.approx(-p.ttft_ms) and not p.ttft_valid


def test_running_requests_tighten_the_tpot_objective_and_prefill_pods_ignore_it() -> None:
    producer = PredictedLatencyProducer(parameters={"streamingMode": True, "endpointRoleLabel": "role"})
    train(producer)
    decode, prefill = endpoint("d", running=64), endpoint("p", running=64)
    prefill.labels["role"] = "prefill"
    strict = request("x", headers={"x-slo-tpot-ms": "10"}, request_id="strict")
    result, _ = load_config().scheduler.schedule(strict, [decode])
    producer.pre_request(CycleState(), strict, result)  # a 10 ms TPOT request now runs on `d`
    assert producer.dispatched(decode) == 1
    loose = request("x", headers={"x-slo-tpot-ms": "100"}, request_id="loose")
    table = producer.predictions(loose, [decode, prefill])
    assert table is not None
    d, p = table.get(decode), table.get(prefill)
    assert d is not None and p is not None
    assert d.tpot_headroom == pytest.approx(10 - d.tpot_ms) and not d.tpot_valid
    assert p.tpot_headroom == 0.0 and p.tpot_valid
    producer.observe_latency("strict", None, None)  # it ended: no longer running there
    assert producer.dispatched(decode) == 0


def test_no_predictions_while_learning_or_when_turned_off() -> None:
    e = endpoint("e")
    assert PredictedLatencyProducer().predictions(request("x"), [e]) is None
    off = PredictedLatencyProducer(parameters={"predictInProduce": False})
    train(off)
    assert off.predictions(request("x"), [e]) is None


def test_sidecar_environment_is_ignored_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    env = {"PREDICTION_SERVER_URL": "http://localhost:8001", "TRAINING_SERVER_URL": "http://localhost:8000"}
    with caplog.at_level(logging.WARNING):
        PredictedLatencyProducer(environ=env)
        PredictedLatencyProducer(environ={})
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "PREDICTION_SERVER_URL, TRAINING_SERVER_URL" in warnings[0] and "in-process" in warnings[0]


def test_tier_filter_keeps_the_positive_tier_explores_the_negative_or_keeps_all() -> None:
    config = family()
    tier = config.plugins["slo-headroom-tier-filter"]
    assert isinstance(tier, SloHeadroomTierFilter)
    fast, slow = endpoint("fast", waiting=0, running=5), endpoint("slow", waiting=9, running=5)
    req = request("x", headers={"x-slo-ttft-ms": "100"})
    assert tier.filter(CycleState(), req, [fast, slow]) == [fast]
    explorer = SloHeadroomTierFilter(parameters={"epsilonExploreNeg": 1.0})
    explorer.link_latency_predictions(producer_of(config))
    assert explorer.filter(CycleState(), req, [fast, slow]) == [slow]
    impossible = request("x", headers={"x-slo-ttft-ms": "5"})
    assert tier.filter(CycleState(), impossible, [fast, slow]) == [fast, slow]  # only a negative tier
    unlinked = SloHeadroomTierFilter()
    unlinked.link_latency_predictions(None)
    assert unlinked.filter(CycleState(), req, [fast, slow]) == [fast, slow]


def test_latency_scorer_with_a_producer_scores_headroom_as_upstream() -> None:
    config = family()
    scorer = config.plugins["latency-scorer"]
    assert isinstance(scorer, LatencyScorer)
    near, far, missing = endpoint("near", waiting=3), endpoint("far", waiting=0), endpoint("miss", waiting=9)
    req = request("x", headers={"x-slo-ttft-ms": "100"})  # ~90, ~30, ~210 ms
    near_s, far_s, miss_s = scorer.score(CycleState(), req, [near, far, missing])
    assert miss_s == 0.0 and near_s > far_s > 0  # least: closest to the objective (bin packing)
    most = LatencyScorer(parameters={"headroomSelectionStrategy": "most"})
    most.link_latency_predictions(producer_of(config))
    near_s, far_s, _ = most.score(CycleState(), req, [near, far, missing])
    assert far_s > near_s
    # Every endpoint misses: the one with the least deficit wins.
    scores = scorer.score(CycleState(), request("x", headers={"x-slo-ttft-ms": "1"}), [near, missing])
    assert scores[0] > scores[1]
    assert list(scorer.filter(CycleState(), req, [near, far, missing])) == [near, far, missing]
    # ... unless an endpoint has nothing in flight: idle pods absorb traffic first.
    first = request("x", request_id="first")
    result, _ = load_config().scheduler.schedule(first, [near])
    producer_of(config).pre_request(CycleState(), first, result)
    scores = scorer.score(CycleState(), request("x", headers={"x-slo-ttft-ms": "1"}), [near, missing])
    assert scores[0] == 0.0 < scores[1]


def test_latency_scorer_falls_back_to_the_composite_while_the_producer_learns() -> None:
    config = load_config(
        HEADER + "plugins:\n- type: predicted-latency-producer\n- type: latency-scorer\n"
        "  parameters: {compositeKVWeight: 1, compositeQueueWeight: 0, compositePrefixWeight: 0}\n"
    )
    scorer = config.plugins["latency-scorer"]
    assert isinstance(scorer, LatencyScorer)
    scores = scorer.score(CycleState(), request("x"), [endpoint("a", kv=0.25), endpoint("b", kv=0.75)])
    assert scores == [0.75, 0.25]


async def test_admitter_sheds_a_sheddable_request_that_cannot_meet_its_objective() -> None:
    config = family()
    runtime = PoolRuntime(config, flow_control=False)
    eps = [endpoint("a", waiting=4, running=8, kv=0.5), endpoint("b", waiting=4, running=8, kv=0.5)]
    slo = {"x-slo-ttft-ms": "50"}  # ~110 ms predicted everywhere
    with pytest.raises(GatewayError) as caught:
        await runtime.decide(request("x", headers=slo, priority=-1, request_id="s"), lambda: eps)
    assert caught.value.status == 429 and caught.value.code == "admission_rejected"
    assert "latency-slo-admitter" in str(caught.value)
    decision = await runtime.decide(request("x", headers=slo, priority=1, request_id="c"), lambda: eps)
    assert decision.endpoints[0] in eps  # a Critical request is never shed
    admitter = config.plugins["latency-slo-admitter"]
    assert isinstance(admitter, LatencySloAdmitter)
    sheddable = request("x", headers=slo, priority=-1)
    assert admitter.admit_request(request("x", priority=-1), eps) is None  # no objective
    assert admitter.admit_request(sheddable, [*eps, endpoint("idle", waiting=4, kv=0.5)]) is None
    assert admitter.admit_request(sheddable, [*eps, endpoint("cold", waiting=4, running=3)]) is None
    fast = request("x", headers={"x-slo-ttft-ms": "500"}, priority=-1)
    assert admitter.admit_request(fast, eps) is None


def test_the_admitter_holds_sheddable_requests_without_objectives_to_the_sheddable_bar() -> None:
    """~110 ms predicted on both pods: a batch request without objectives passes with no bar
    (nothing to hold it to), is refused under a 50 ms sheddableTTFT, and passes a 500 ms one;
    a Standard request without objectives is never held to it."""
    eps = [endpoint("a", waiting=4, running=8, kv=0.5), endpoint("b", waiting=4, running=8, kv=0.5)]
    batch = request("x", priority=-1)
    for bar, refused in (("50ms", True), ("500ms", False)):
        admitter = family(producer_params=f"{{sheddableTTFT: {bar}}}").plugins["latency-slo-admitter"]
        assert isinstance(admitter, LatencySloAdmitter)
        assert (admitter.admit_request(batch, eps) is not None) is refused
        assert admitter.admit_request(request("x"), eps) is None
    plain = family().plugins["latency-slo-admitter"]
    assert isinstance(plain, LatencySloAdmitter)
    assert plain.admit_request(batch, eps) is None


def test_affinity_filter_breaks_stickiness_when_the_sticky_pod_is_predicted_too_slow() -> None:
    config = family(
        "- type: prefix-cache-scorer\n- type: prefix-cache-affinity-filter\n"
        "  parameters: {explorationProbability: 0, maxTTFTPenaltyMs: 50}\n"
    )
    affinity = config.plugins["prefix-cache-affinity-filter"]
    scorer = config.plugins["prefix-cache-scorer"]
    assert isinstance(affinity, PrefixCacheAffinityFilter) and isinstance(scorer, PrefixCacheScorer)
    sticky, other = endpoint("sticky", waiting=9), endpoint("other", waiting=0)
    prompt = "a shared system prompt " * 40
    state = CycleState()
    scorer.score(state, request(prompt, request_id="warm"), [sticky])
    scorer.on_picked(state, request(prompt, request_id="warm"), sticky)  # cached on `sticky` now
    req = request(prompt, request_id="next")
    assert scorer.score(CycleState(), req, [sticky, other]) == [1.0, 0.0]
    # ~210 ms there against ~30 ms elsewhere: more than 50 ms worse, stickiness breaks.
    assert affinity.filter(CycleState(), req, [sticky, other]) == [sticky, other]
    sticky.metrics.waiting_queue = 1  # ~50 vs ~30 ms: within the penalty, stickiness holds
    assert affinity.filter(CycleState(), req, [sticky, other]) == [sticky]


@pytest.mark.parametrize(
    ("plugin", "params", "path", "says"),
    [
        ("predicted-latency-producer", "{sloBufferFactor: 0}", "plugins[0]", "sloBufferFactor"),
        ("predicted-latency-producer", "{samplingMean: -1}", "plugins[0]", "samplingMean"),
        ("predicted-latency-producer", "{contextTTL: soon}", "plugins[0]", "contextTTL"),
        ("predicted-latency-producer", "{predictionServerURL: x}", "plugins[0]", "predictionServerURL"),
        ("slo-headroom-tier-filter", "{epsilonExploreNeg: 2}", "plugins[0]", "epsilonExploreNeg"),
        ("latency-slo-admitter", "{threshold: 1}", "plugins[0]", "threshold"),
        ("latency-scorer", "{headroomSelectionStrategy: best}", "plugins[0]", "headroomSelectionStrategy"),
        ("latency-scorer", "{ttftWeight: -1}", "plugins[0]", "ttftWeight"),
    ],
)
def test_bad_parameters_name_the_config_path(plugin: str, params: str, path: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(HEADER + f"plugins:\n- type: {plugin}\n  parameters: {params}\n", source="epp.yaml")
    message = str(caught.value)
    assert message.startswith("epp.yaml:") and path in message and says in message


def test_our_objectives_on_a_scorer_beside_a_producer_are_an_error_naming_the_path() -> None:
    text = (
        HEADER + "plugins:\n- type: predicted-latency-producer\n- type: latency-scorer\n"
        "  parameters: {defaultTTFT: 200ms}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(text, source="epp.yaml")
    assert "plugins[1].parameters" in str(caught.value) and "defaultTTFT" in str(caught.value)
    # On the producer they are ours to give: the request's objective without headers.
    config = load_config(
        HEADER + "plugins:\n- type: predicted-latency-producer\n  parameters: {defaultTTFT: 200ms}\n"
    )
    assert producer_of(config).slo(request("x")) == (200.0, None)


def monolith(params: str = "{selectionMode: max}", producer: bool = True) -> PredictedLatencyScorer:
    text = HEADER + "plugins:\n"
    if producer:
        text += "- type: predicted-latency-producer\n  parameters: {streamingMode: true}\n"
    config = load_config(text + f"- type: predicted-latency-scorer\n  parameters: {params}\n")
    scorer = config.plugins["predicted-latency-scorer"]
    assert isinstance(scorer, PredictedLatencyScorer)
    train(scorer.producer)
    return scorer


def test_predicted_latency_scorer_picks_one_endpoint_by_headroom_as_upstreams_monolith() -> None:
    near, far = endpoint("near", waiting=3, running=64), endpoint("far", waiting=0, running=64)
    slow = endpoint("slow", waiting=9, running=64)
    req = request("x", headers={"x-slo-ttft-ms": "100", "x-slo-tpot-ms": "50"})  # ~90 / ~30 / ~210 ms
    least = monolith()
    assert least.score(CycleState(), req, [near, far, slow]) == [1.0, 0.0, 0.0]  # closest to the SLO
    most = monolith("{selectionMode: max, headroomSelectionStrategy: most}")
    assert most.score(CycleState(), req, [near, far, slow]) == [0.0, 1.0, 0.0]
    # Every endpoint misses: the smallest deficit wins (and alone it learns on its own predictor).
    alone = monolith(producer=False)
    assert alone.score(CycleState(), request("x", headers={"x-slo-ttft-ms": "1"}), [near, slow]) == [1.0, 0.0]
    draws = monolith("{seed: 7}")
    picks = [draws.score(CycleState(), req, [near, far, slow]).index(1.0) for _ in range(200)]
    assert picks.count(0) > picks.count(1) > 0 and picks.count(2) <= 10  # a weighted draw
    explorer = monolith("{selectionMode: max, epsilonExploreNeg: 1}")
    assert explorer.score(CycleState(), req, [near, far, slow]) == [0.0, 0.0, 1.0]


def test_predicted_latency_scorer_draws_by_composite_without_predictions() -> None:
    config = load_config(
        HEADER + "plugins:\n- type: predicted-latency-scorer\n  parameters: {selectionMode: max}\n"
    )
    scorer = config.plugins["predicted-latency-scorer"]
    assert isinstance(scorer, PredictedLatencyScorer)
    busy, free = endpoint("busy", waiting=5, kv=0.9), endpoint("free", waiting=0, kv=0.1)
    assert scorer.score(CycleState(), request("x"), [busy, free]) == [0.0, 1.0]


def test_upstream_troubleshooting_sample_loads_without_its_unregistered_feature_gate() -> None:
    sample = Path(__file__).parent / "upstream_configs" / "gie" / "guides-troubleshooting-l142.yaml"
    text = sample.read_text().replace("featureGates:\n- prepareDataPlugins\n", "")
    config = load_config(text)
    assert isinstance(config.plugins["predicted-latency-scorer"], PredictedLatencyScorer)
    with pytest.raises(ConfigError) as caught:
        load_config(
            HEADER + "plugins:\n- type: predicted-latency-scorer\n  parameters: {affinityGateTau: 1.5}\n",
            source="epp.yaml",
        )
    assert "plugins[0]" in str(caught.value) and "affinityGateTau" in str(caught.value)


@pytest.mark.parametrize(("streaming", "learned_ms"), [(False, 500.0), (True, 20.0)])
def test_without_streaming_mode_the_producer_learns_end_to_end_latency_as_ttft(
    streaming: bool, learned_ms: float
) -> None:
    config = load_config(
        HEADER + "plugins:\n- type: predicted-latency-producer\n"
        f"  parameters: {{minSamples: 5, streamingMode: {str(streaming).lower()}}}\n"
    )
    producer = producer_of(config)
    e = endpoint("e", waiting=1, running=4)
    for i in range(40):
        req = request("x", request_id=f"r{i}")
        result, state = config.scheduler.schedule(req, [e])
        config.scheduler.bind(state, req, result)
        assert producer.dispatched(e) == 1
        config.scheduler.observe_latency(f"r{i}", 0.02, 0.005, 0.5)  # TTFT 20 ms, 500 ms in all
        assert producer.dispatched(e) == 0
    table = producer.predictions(request("x", request_id="next"), [e])
    assert table is not None
    prediction = table.get(e)
    assert prediction is not None and prediction.ttft_ms == pytest.approx(learned_ms, rel=0.05)


async def test_the_director_reports_a_non_streamed_responses_end_to_end_latency() -> None:
    clock = [100.0]
    store = pool_store({"pod-a": "10.0.0.1"})
    config = load_config(
        HEADER + "plugins:\n- type: predicted-latency-producer\n  parameters: {minSamples: 1}\n"
    )
    director = Director(store, PoolRuntime(config, flow_control=False), clock=lambda: clock[0])
    producer = producer_of(config)
    ctx = director.new_context({"x-request-id": "one"})
    decision = await director.route(ctx, orjson.dumps({"model": MODEL, "prompt": "hi", "max_tokens": 5}))
    director.on_response_headers(ctx, 200, decision.destination)
    clock[0] += 0.25
    director.on_response_body(ctx, b'{"choices": []}', end_of_stream=True)  # one chunk: no TTFT
    assert producer.predictor.warm  # it learned the 250 ms end to end
    endpoint_ = next(iter(store.endpoints()))
    table = producer.predictions(request("x", request_id="next"), [endpoint_])
    assert table is not None and table.by_address[endpoint_.address].ttft_ms > 0
