"""Speculative indexing (llm-d's speculativeIndexing): blocks routed to a pod count as held
there until the pod's KV events confirm or remove them, or their TTL passes."""

from __future__ import annotations

import pytest

from inference_gateway.kvevents.index import KVBlockIndex
from inference_gateway.kvevents.wire import AllBlocksCleared, BlockRemoved, BlockStored, EventBatch
from inference_gateway.scheduling.config import load_config
from inference_gateway.scheduling.plugins.precise_prefix_cache_scorer import PrecisePrefixCacheScorer
from inference_gateway.scheduling.types import CycleState, SchedulingRequest
from tests.scheduling.sched_helpers import endpoint

MODEL = "m"
PRECISE_HELD = """
plugins:
- type: precise-prefix-cache-scorer
  parameters: {tokenizer: sim, speculativeIndexing: true, speculativeTTL: 1s, speculativeHoldInFlight: true}
schedulingProfiles:
- name: default
  plugins: [{pluginRef: precise-prefix-cache-scorer}]
"""


def _stored(*hashes: int) -> EventBatch:
    return EventBatch(0, [BlockStored(list(hashes), None, [], 4)])


def _removed(*hashes: int) -> EventBatch:
    return EventBatch(0, [BlockRemoved(list(hashes))])


def test_entries_count_until_their_ttl() -> None:
    index = KVBlockIndex(speculative_ttl_s=2.0)
    index.apply("a", _stored(1))
    index.speculate("b", [1, 2], now=10.0)
    assert index.match([1, 2], now=11.9) == {"a": 1, "b": 2}
    assert index.match([1, 2], now=12.0) == {"a": 1}
    assert index.speculative_size() == 0 and index.speculative_expired == 2


def test_a_later_speculation_extends_the_entry() -> None:
    index = KVBlockIndex(speculative_ttl_s=2.0)
    index.speculate("b", [1, 2], now=10.0)
    index.speculate("b", [1], now=11.0)
    # block 2's entry ends at 12; block 1's at 13 (the first deadline passing leaves it).
    assert index.match([1, 2], now=12.5) == {"b": 1}
    assert index.match([1], now=13.0) == {}


def test_block_stored_confirms_the_blocks_beyond_the_ttl() -> None:
    index = KVBlockIndex(speculative_ttl_s=2.0)
    index.speculate("b", [1, 2, 3], now=0.0)
    index.apply("b", _stored(1, 2))  # the prefill reported two blocks so far
    # confirmed and speculative blocks chain: the whole prompt matches
    assert index.match([1, 2, 3], now=1.0) == {"b": 3}
    # the unconfirmed block expires; the confirmed ones are now the events' to keep
    assert index.match([1, 2, 3], now=5.0) == {"b": 2}
    index.apply("b", _removed(2))
    assert index.match([1, 2, 3], now=5.0) == {"b": 1}


def test_block_removed_ends_a_confirmed_block_but_not_a_live_entry() -> None:
    index = KVBlockIndex(speculative_ttl_s=2.0)
    index.apply("b", _stored(1, 2))  # the pod caches the prefix...
    index.speculate("b", [1, 2], now=0.0)  # ...a request for it is routed there...
    index.apply("b", _removed(1, 2))  # ...and the engine evicts the old copy before serving it
    # the routed request will store the prefix again: the entry still counts
    assert index.match([1, 2], now=1.0) == {"b": 2}
    assert index.match([1, 2], now=2.0) == {}  # nothing confirmed it again
    index.speculate("b", [1, 2], now=3.0)
    index.apply("b", _stored(1, 2))  # confirmed this time
    assert index.match([1, 2], now=6.0) == {"b": 2}
    index.apply("b", _removed(2))  # once the entry is over, the events alone decide
    assert index.match([1, 2], now=6.0) == {"b": 1}


def test_in_flight_requests_hold_their_entries_past_the_ttl() -> None:
    index = KVBlockIndex(speculative_ttl_s=2.0, hold_in_flight=True)
    index.speculate("b", [1, 2], now=0.0, request_id="r1")  # queued in the engine for long
    index.speculate("c", [1], now=0.0)  # no request id: the TTL alone
    assert index.match([1, 2], now=30.0) == {"b": 2}
    index.request_done("r1")
    assert index.match([1, 2], now=31.9) == {"b": 2}  # one more TTL for the events to arrive
    assert index.match([1, 2], now=32.0) == {}
    assert index.speculative_size() == 0


def test_without_hold_in_flight_the_ttl_alone_decides() -> None:
    index = KVBlockIndex(speculative_ttl_s=2.0)
    index.speculate("b", [1], now=0.0, request_id="r1")
    assert index.match([1], now=2.0) == {}


def test_cleared_and_departed_pods_lose_their_entries() -> None:
    index = KVBlockIndex(speculative_ttl_s=60.0, hold_in_flight=True)
    index.speculate("a", [1, 2], now=0.0)
    index.speculate("b", [1, 2], now=0.0, request_id="r")
    index.apply("a", EventBatch(0, [AllBlocksCleared()]))
    assert index.match([1, 2], now=1.0) == {"b": 2}
    index.retain({"a"})  # b left the pool before it sent any event
    assert index.match([1, 2], now=1.0) == {} and index.speculative_size() == 0
    index.speculate("c", [1], now=2.0)  # a freed bit is reused without stale holders
    assert index.match([1, 2], now=3.0) == {"c": 1}
    assert index.match([1], now=200.0) == {}  # b's in-flight request does not bring it back


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _pick_then_score(params: dict[str, object], clock: Clock, later_s: float = 0.0) -> list[float]:
    """Score two event-source pods for a prompt, pick b, let `later_s` pass, score again."""
    scorer = PrecisePrefixCacheScorer(parameters={"tokenizer": "sim", **params})
    scorer.clock = clock
    eps = [endpoint("a"), endpoint("b")]
    for e in eps:  # both pods are event sources, so the exact index scores them
        scorer.index.apply(e.address, EventBatch(0, []))
    request = SchedulingRequest("r", MODEL, MODEL, prompt="shared system prompt " * 40)
    state = CycleState()
    assert scorer.score(state, request, eps) == [0.0, 0.0]
    scorer.on_picked(state, request, eps[1])
    clock.now += later_s
    return scorer.score(CycleState(), request, eps)


def test_the_scorer_speculates_on_pick_only_when_enabled() -> None:
    assert _pick_then_score({}, Clock()) == [0.0, 0.0]  # llm-d's default: off
    on = {"speculativeIndexing": True, "speculativeTTL": "500ms"}
    assert _pick_then_score(on, Clock(), later_s=0.49) == [0.0, 1.0]
    assert _pick_then_score(on, Clock(), later_s=0.5) == [0.0, 0.0]
    held = {**on, "speculativeHoldInFlight": True}
    assert _pick_then_score(held, Clock(), later_s=60.0) == [0.0, 1.0]  # "r" has not completed


def test_completions_reach_the_scorer_through_the_scheduler() -> None:
    config = load_config(PRECISE_HELD)
    scorer = config.plugins["precise-prefix-cache-scorer"]
    assert isinstance(scorer, PrecisePrefixCacheScorer)
    clock = Clock()
    scorer.clock = clock
    eps = [endpoint("a"), endpoint("b")]
    request = SchedulingRequest("r9", MODEL, MODEL, prompt="shared system prompt " * 40)
    result, state = config.scheduler.schedule(request, eps)
    config.scheduler.bind(state, request, result)
    clock.now += 60.0
    assert scorer.index.match(scorer.block_hashes(request) or [], clock()) != {}
    config.scheduler.observe_latency("r9", None, None)  # an error response: still a completion
    clock.now += 1.0
    assert scorer.index.match(scorer.block_hashes(request) or [], clock()) == {}


@pytest.mark.parametrize(
    ("params", "enabled", "ttl"),
    [
        ({}, False, 2.0),
        ({"speculativeIndexing": True}, True, 2.0),
        ({"speculativeIndexing": True, "speculativeTTL": "0s"}, True, 2.0),  # llm-d: <= 0 -> 2s
        ({"expectTTL": "3s"}, True, 3.0),  # our older name turns it on
        ({"expectTTL": "3s", "speculativeIndexing": False}, False, 3.0),
    ],
)
def test_speculation_parameters(params: dict[str, object], enabled: bool, ttl: float) -> None:
    scorer = PrecisePrefixCacheScorer(parameters=params)
    assert (scorer.speculative, scorer.index.speculative_ttl_s) == (enabled, ttl)


@pytest.mark.parametrize(
    ("params", "message"),
    [({"speculativeIndexing": "yes"}, "speculativeIndexing"), ({"speculativeTTL": "2 s"}, "speculativeTTL")],
)
def test_bad_speculation_parameters_name_the_field(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PrecisePrefixCacheScorer(parameters=params)
