"""The v1.5 / llm-d plugin types added for upstream configs: load-aware, active-request and
no-hit-lru scorers; prefix-cache-affinity, label-selector, encode and conformance filters; the
approximate prefix producer; prefix-scorer token parameters."""

from __future__ import annotations

import pytest
from sched_helpers import endpoint, request

from inference_gateway.scheduling.config import ConfigError, load_config
from inference_gateway.scheduling.plugins.active_request_scorer import ActiveRequestScorer
from inference_gateway.scheduling.plugins.approx_prefix_cache_producer import ApproxPrefixCacheProducer
from inference_gateway.scheduling.plugins.by_role_filter import EncodeFilter, PrefillFilter
from inference_gateway.scheduling.plugins.header_testing_filter import HeaderBasedTestingFilter
from inference_gateway.scheduling.plugins.label_selector_filter import LabelSelectorFilter
from inference_gateway.scheduling.plugins.load_aware_scorer import LoadAwareScorer
from inference_gateway.scheduling.plugins.prefix_cache_scorer import PrefixCacheScorer
from inference_gateway.scheduling.types import CycleState

HEADER = "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\n"
PROMPT = "the same long system prompt " * 40


def test_load_aware_scorer_is_absolute() -> None:
    scorer = LoadAwareScorer(parameters={"threshold": 10})
    eps = [endpoint("idle"), endpoint("some", waiting=5), endpoint("full", waiting=50)]
    assert scorer.score(CycleState(), request(), eps) == [0.5, 0.25, 0.0]
    assert LoadAwareScorer(parameters={"threshold": 0}).threshold == 128  # llm-d: <= 0 is the default


def test_active_request_scorer_uses_in_flight_counts() -> None:
    a, b, c = endpoint("a"), endpoint("b"), endpoint("c")
    a.load.requests, b.load.requests, c.load.requests = 0, 2, 4
    scorer = ActiveRequestScorer(parameters={"maxBusyScore": 0.8})
    assert scorer.score(CycleState(), request(), [a, b, c]) == [1.0, pytest.approx(0.4), 0.0]
    lenient = ActiveRequestScorer(parameters={"idleThreshold": 2})
    assert lenient.score(CycleState(), request(), [a, b, c]) == [1.0, 1.0, 0.0]


def test_label_selector_filter() -> None:
    f = LabelSelectorFilter(
        parameters={
            "matchLabels": {"tier": "gpu"},
            "matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["b"]}],
        }
    )
    eps = [endpoint(n) for n in ("x", "y", "z")]
    eps[0].labels.update(tier="gpu", zone="a")
    eps[1].labels.update(tier="gpu", zone="b")
    eps[2].labels.update(tier="cpu")
    assert f.filter(CycleState(), request(), eps) == [eps[0]]
    with pytest.raises(ConfigError, match="'Near' is not a valid label selector operator"):
        load_config(
            HEADER + "plugins:\n- type: label-selector-filter\n"
            "  parameters: {matchExpressions: [{key: a, operator: Near}]}\n"
        )


def test_role_filters_follow_llm_d_roles() -> None:
    roles = ["encode", "encode-prefill", "prefill", "decode", "prefill-decode", "encode-prefill-decode"]
    eps = [endpoint(r) for r in roles]
    for e, role in zip(eps, roles, strict=True):
        e.labels["llm-d.ai/role"] = role
    encode = [e.pod.name for e in EncodeFilter().filter(CycleState(), request(), eps)]
    prefill = [e.pod.name for e in PrefillFilter().filter(CycleState(), request(), eps)]
    assert encode == ["encode", "encode-prefill", "encode-prefill-decode"]
    assert prefill == ["encode-prefill", "prefill", "prefill-decode", "encode-prefill-decode"]


def test_header_based_testing_filter_keeps_listed_endpoints_in_order() -> None:
    a, b, c = endpoint("a", ip="10.0.0.1"), endpoint("b", ip="10.0.0.2"), endpoint("c", ip="10.0.0.3")
    f = HeaderBasedTestingFilter()
    req = request(headers={"test-epp-endpoint-selection": "10.0.0.3, 10.0.0.1:8000, 10.0.0.9"})
    assert f.filter(CycleState(), req, [a, b, c]) == [c, a]
    assert f.filter(CycleState(), request(), [a, b, c]) == []


def test_prefix_scorer_token_parameters() -> None:
    scorer = PrefixCacheScorer(
        parameters={"blockSizeTokens": 8, "maxPrefixTokensToMatch": 64, "autoTune": False}
    )
    assert scorer.block_size == 32  # 8 tokens x 4 characters
    hashes, _ = scorer.match(CycleState(), request(PROMPT), [endpoint("a")])
    assert len(hashes) == 64 // 8
    legacy = PrefixCacheScorer(parameters={"blockSize": 20})
    assert legacy.block_size == 20


def _schedule_twice(config_text: str) -> tuple[str, str]:
    cfg = load_config(config_text)
    eps = [endpoint("a"), endpoint("b"), endpoint("c")]
    first, state = cfg.scheduler.schedule(request(PROMPT, request_id="1"), eps)
    cfg.scheduler.bind(state, request(PROMPT, request_id="1"), first)
    second, _ = cfg.scheduler.schedule(request(PROMPT, request_id="2"), eps)
    return first.endpoints[0].name, second.endpoints[0].name


def test_affinity_filter_with_a_standalone_producer_sends_the_prefix_back() -> None:
    text = HEADER + (
        "plugins:\n- type: approx-prefix-cache-producer\n  parameters: {autoTune: false}\n"
        "- type: prefix-cache-affinity-filter\n  parameters: {explorationProbability: 0, seed: 1}\n"
        "- type: random-picker\n  parameters: {seed: 7}\n"
        "schedulingProfiles:\n- name: default\n  plugins:\n"
        "  - pluginRef: prefix-cache-affinity-filter\n  - pluginRef: random-picker\n"
    )
    for _ in range(5):  # a random picker alone would scatter the second request
        first, second = _schedule_twice(text)
        assert first == second


def test_producer_shares_a_configured_scorer_index() -> None:
    cfg = load_config(
        HEADER + "plugins:\n- type: prefix-cache-scorer\n- type: approx-prefix-cache-producer\n"
        "- type: prefix-cache-affinity-filter\n"
    )
    producer = cfg.plugins["approx-prefix-cache-producer"]
    assert isinstance(producer, ApproxPrefixCacheProducer)
    assert producer.shared and producer.cache is cfg.plugins["prefix-cache-scorer"]
    assert vars(cfg.plugins["prefix-cache-affinity-filter"])["prefix"] is cfg.plugins["prefix-cache-scorer"]


def test_no_hit_lru_spreads_cold_requests_and_stays_neutral_on_hits() -> None:
    cfg = load_config(
        HEADER + "plugins:\n- type: prefix-cache-scorer\n  parameters: {autoTune: false}\n"
        "- type: no-hit-lru-scorer\n- type: max-score-picker\n"
        "schedulingProfiles:\n- name: default\n  plugins:\n"
        "  - pluginRef: no-hit-lru-scorer\n  - pluginRef: prefix-cache-scorer\n    weight: 2\n"
    )
    eps = [endpoint("a"), endpoint("b"), endpoint("c")]
    served = []
    for i in range(3):  # three different cold prompts land on three different endpoints
        req = request(f"cold prompt number {i} " * 30, request_id=str(i))
        result, state = cfg.scheduler.schedule(req, eps)
        cfg.scheduler.bind(state, req, result)
        served.append(result.endpoints[0].name)
    assert len(set(served)) == 3
    warm = request("cold prompt number 1 " * 30, request_id="warm")
    result, state = cfg.scheduler.schedule(warm, eps, explain=True)
    assert result.endpoints[0].name == served[1]  # the hit wins; no-hit-lru scored 0.5 everywhere
    lru_scores = [b.scores for b in result.profiles["default"].breakdown if b.scorer == "no-hit-lru-scorer"]
    assert lru_scores == [[0.5, 0.5, 0.5]]


def test_conformance_config_loads_and_the_verifier_echoes_the_served_endpoint() -> None:
    from pathlib import Path

    text = (Path(__file__).parent / "upstream_configs" / "gie" / "resources-base.yaml").read_text()
    cfg = load_config(text)
    served = endpoint("a", ip="10.0.0.7")
    req = request(headers={"test-epp-endpoint-selection": "10.0.0.7"})
    result, _ = cfg.scheduler.schedule(req, [endpoint("b", ip="10.0.0.8"), served])
    assert result.endpoints == [served]
    assert cfg.plugins["destination-endpoint-served-verifier"].response_headers(req, served) == {  # type: ignore[attr-defined]
        "x-conformance-test-served-endpoint": "10.0.0.7:8000"
    }
