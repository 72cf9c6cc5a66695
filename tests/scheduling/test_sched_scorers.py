"""Each scorer's scores on constructed endpoint states."""

from __future__ import annotations

import base64
import re

import pytest
from sched_helpers import endpoint, request

from inference_gateway.metrics.inventory import ServedModels, attach
from inference_gateway.scheduling.plugins.kv_cache_utilization_scorer import KVCacheUtilizationScorer
from inference_gateway.scheduling.plugins.lora_affinity_scorer import LoraAffinityScorer
from inference_gateway.scheduling.plugins.queue_scorer import QueueScorer
from inference_gateway.scheduling.plugins.running_requests_scorer import RunningRequestsScorer
from inference_gateway.scheduling.plugins.session_affinity_scorer import (
    SessionAffinityScorer,
    decode_token,
    encode_token,
)
from inference_gateway.scheduling.types import CycleState


def test_queue_scorer_min_max_normalises_waiting() -> None:
    eps = [endpoint("a", waiting=0), endpoint("b", waiting=5), endpoint("c", waiting=10)]
    assert QueueScorer().score(CycleState(), request(), eps) == [1.0, 0.5, 0.0]


def test_queue_scorer_equal_queues_all_score_one() -> None:
    eps = [endpoint("a", waiting=3), endpoint("b", waiting=3)]
    assert QueueScorer().score(CycleState(), request(), eps) == [1.0, 1.0]


def test_running_requests_scorer_prefers_fewer_running() -> None:
    eps = [endpoint("a", running=8), endpoint("b", running=2), endpoint("c", running=4)]
    scores = RunningRequestsScorer().score(CycleState(), request(), eps)
    assert scores == pytest.approx([0.0, 1.0, 4 / 6])


def test_kv_cache_scorer_is_one_minus_usage() -> None:
    eps = [endpoint("a", kv=0.0), endpoint("b", kv=0.25), endpoint("c", kv=1.0)]
    assert KVCacheUtilizationScorer().score(CycleState(), request(), eps) == [1.0, 0.75, 0.0]


def test_lora_affinity_scorer_tiers() -> None:
    eps = [
        endpoint("active", active=["sql-lora"], max_lora=1),
        endpoint("free-slot", active=["other"], max_lora=2),
        endpoint("queued", active=["x"], queued_adapters=["sql-lora"], max_lora=2),
        endpoint("full", active=["x", "y"], max_lora=2),
    ]
    scores = LoraAffinityScorer().score(CycleState(), request(model="sql-lora"), eps)
    assert scores == [1.0, 0.8, 0.6, 0.0]


def test_lora_affinity_scorer_treats_unreported_slots_as_unknown_not_full() -> None:
    """A fresh or restarted vLLM has no lora_requests_info sample until its first request."""
    eps = [endpoint("warm", max_lora=1), endpoint("fresh"), endpoint("no-slots", max_lora=0)]
    scores = LoraAffinityScorer().score(CycleState(), request(model="sql-lora"), eps)
    assert scores == [0.8, 0.8, 0.0]


def test_lora_affinity_scorer_scores_base_models_like_adapters_as_upstream() -> None:
    """Upstream v1.5 scores any target model by adapter slots: base traffic leans to free slots."""
    eps = [endpoint("free-slot", active=["a"], max_lora=2), endpoint("full", active=["a", "b"], max_lora=2)]
    assert LoraAffinityScorer().score(CycleState(), request(), eps) == [0.8, 0.0]


def test_lora_affinity_scorer_adapters_only_scores_base_models_alike() -> None:
    eps = [endpoint("free-slot", active=["a"], max_lora=2), endpoint("full", active=["a", "b"], max_lora=2)]
    scorer = LoraAffinityScorer(parameters={"adaptersOnly": True})
    assert scorer.score(CycleState(), request(), eps) == [0.0, 0.0]
    # An adapter (running somewhere) is still scored by its tiers.
    assert scorer.score(CycleState(), request(model="b"), eps) == [0.8, 1.0]


def test_lora_affinity_scorer_adapters_only_knows_adapters_from_model_lists() -> None:
    """An adapter running nowhere yet is still an adapter when a pod's model list names it."""
    listed = endpoint("listed", active=["x", "y"], max_lora=2)
    attach(listed, ServedModels(frozenset({"base-model"}), {"sql-lora": "base-model"}))
    eps = [listed, endpoint("free", max_lora=2)]
    scorer = LoraAffinityScorer(parameters={"adaptersOnly": True})
    assert scorer.score(CycleState(), request(model="sql-lora"), eps) == [0.0, 0.8]


def test_lora_affinity_scorer_drain_blocked_lowers_adapters_of_a_batch_that_blocks_another() -> None:
    eps = [
        # full, "y" waits without running: the batch's adapters must drain before y can start
        endpoint("blocking", active=["sql-lora", "x"], queued_adapters=["y"], max_lora=2),
        # full, but only adapters of the batch wait: nothing is blocked
        endpoint("busy", active=["sql-lora", "x"], queued_adapters=["sql-lora"], max_lora=2),
        endpoint("room", active=["sql-lora"], queued_adapters=["y"], max_lora=3),
    ]
    upstream = LoraAffinityScorer().score(CycleState(), request(model="sql-lora"), eps)
    assert upstream == [1.0, 1.0, 1.0]
    drain = LoraAffinityScorer(parameters={"drainBlocked": True})
    assert drain.score(CycleState(), request(model="sql-lora"), eps) == [0.6, 1.0, 1.0]
    # The waiting adapter itself keeps upstream's tiers: it waits at the blocking endpoint.
    assert drain.score(CycleState(), request(model="y"), eps) == [0.6, 0.0, 0.8]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"drainBlocked": "yes"}, "parameter 'drainBlocked' must be true or false"),
        ({"adapterOnly": True}, "unknown parameter(s) adapterOnly"),
    ],
)
def test_lora_affinity_scorer_rejects_bad_parameters(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        LoraAffinityScorer(parameters=params)


def test_session_affinity_scores_the_endpoint_named_by_the_header() -> None:
    a, b = endpoint("a", ip="10.0.0.1"), endpoint("b", ip="10.0.0.2")
    scorer = SessionAffinityScorer()
    token = scorer.response_headers(request(), b)["x-session-token"]
    scores = scorer.score(CycleState(), request(headers={"x-session-token": token}), [a, b])
    assert scores == [0.0, 1.0]


def test_session_affinity_accepts_raw_address_cookie_and_pod_tokens() -> None:
    a, b = endpoint("a", ip="10.0.0.1"), endpoint("b", ip="10.0.0.2")
    scorer = SessionAffinityScorer(parameters={"cookieName": "gw-session"})
    raw = request(headers={"x-session-token": "10.0.0.1:8000"})
    assert scorer.score(CycleState(), raw, [a, b]) == [1.0, 0.0]
    cookie = request(headers={"cookie": f"theme=dark; gw-session={encode_token(b.address)}"})
    assert scorer.score(CycleState(), cookie, [a, b]) == [0.0, 1.0]
    llmd = request(headers={"x-session-token": base64.b64encode(b"default/a").decode()})
    assert scorer.score(CycleState(), llmd, [a, b]) == [1.0, 0.0]
    assert "gw-session=" in scorer.response_headers(raw, a)["set-cookie"]


def test_session_affinity_falls_back_when_endpoint_is_gone() -> None:
    a, b = endpoint("a", ip="10.0.0.1"), endpoint("b", ip="10.0.0.2")
    gone = request(headers={"x-session-token": encode_token("10.9.9.9:8000")})
    assert SessionAffinityScorer().score(CycleState(), gone, [a, b]) == [0.0, 0.0]
    garbage = request(headers={"x-session-token": "%%%not-base64"})
    assert SessionAffinityScorer().score(CycleState(), garbage, [a, b]) == [0.0, 0.0]


def test_session_token_round_trips() -> None:
    assert decode_token(encode_token("10.1.2.3:8001")) == "10.1.2.3:8001"
    assert decode_token("") == ""
