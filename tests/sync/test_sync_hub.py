"""The sync hub on real schedulers: local picks go out, peers' updates come in and are never sent on."""

from __future__ import annotations

import pytest

from inference_gateway.api.types import ObjectRef
from inference_gateway.datastore.endpoint import Endpoint
from inference_gateway.scheduling.config import load_config
from inference_gateway.scheduling.plugins.prefix_cache_scorer import PrefixCacheScorer
from inference_gateway.scheduling.prefix_sync.hub import PrefixSyncHub, prefix_scorers
from inference_gateway.scheduling.prefix_sync.updates import Batch, IndexUpdate, UpdateQueue, encode_batch
from inference_gateway.scheduling.types import CycleState, SchedulingRequest

SYSTEM = "You are a careful assistant for a travel agency; answer in two sentences. " * 10
MODEL = "base-model"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def endpoints() -> list[Endpoint]:
    return [Endpoint(f"pod-{i}", ObjectRef("default", f"pod-{i}"), f"10.9.0.{i}", 8000, {}) for i in range(3)]


class Replica:
    """A scheduler from the default config plus a hub with one outbox, like one EPP replica."""

    def __init__(self, name: str, clock: Clock) -> None:
        self.config = load_config()
        self.scorer = prefix_scorers(self.config.plugins)["prefix-cache-scorer"]
        self.hub = PrefixSyncHub(prefix_scorers(self.config.plugins), name, max_age_s=5.0, clock=clock)
        self.outbox = UpdateQueue(1000)
        self.hub.add_outbox(self.outbox)
        self.endpoints = endpoints()

    def pick(self, prompt: str) -> str:
        req = SchedulingRequest("r", MODEL, MODEL, prompt=prompt)
        result, state = self.config.scheduler.schedule(req, self.endpoints)
        self.config.scheduler.bind(state, req, result)
        return result.endpoints[0].address

    def prefix_scores(self, prompt: str) -> dict[str, float]:
        req = SchedulingRequest("r", MODEL, MODEL, prompt=prompt)
        scores = self.scorer.score(CycleState(), req, self.endpoints)
        return {e.address: s for e, s in zip(self.endpoints, scores, strict=True)}


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_pick_publishes_one_update_per_outbox(clock: Clock) -> None:
    a = Replica("a", clock)
    second = UpdateQueue(10)
    a.hub.add_outbox(second)
    picked = a.pick(SYSTEM + "Where can I ski in March?")
    (update,) = a.outbox.take_now(10)
    assert second.take_now(10) == [update]
    assert update.endpoint == picked
    assert update.scorer == "prefix-cache-scorer"
    assert update.ts == clock.now
    assert len(update.hashes) == len(SYSTEM + "Where can I ski in March?") // 64
    assert a.hub.stats.published == 1


def test_applied_updates_make_the_peer_score_that_endpoint(clock: Clock) -> None:
    a, b = Replica("a", clock), Replica("b", clock)
    picked = a.pick(SYSTEM + "Where can I ski in March?")
    assert set(b.prefix_scores(SYSTEM + "Is Lisbon warm in May?").values()) == {0.0}
    clock.now += 0.02
    assert b.hub.apply(Batch("a", a.outbox.take_now(100))) == 1
    scores = b.prefix_scores(SYSTEM + "Is Lisbon warm in May?")
    assert max(scores, key=scores.__getitem__) == picked
    assert scores[picked] > 0.5
    assert b.pick(SYSTEM + "Is Lisbon warm in May?") == picked
    assert b.hub.stats.lag_max_s == pytest.approx(0.02)


def test_received_updates_are_not_sent_on(clock: Clock) -> None:
    a, b = Replica("a", clock), Replica("b", clock)
    a.pick(SYSTEM + "q1")
    b.hub.apply(Batch("a", a.outbox.take_now(100)))
    assert len(b.outbox) == 0
    assert b.hub.stats.published == 0


def test_own_stale_and_unknown_updates_are_not_applied(clock: Clock) -> None:
    b = Replica("b", clock)
    fresh = IndexUpdate("prefix-cache-scorer", "10.9.0.1:8000", [1, 2, 3], clock.now)
    assert b.hub.apply(Batch("b", [fresh])) == 0  # echoed back to its origin
    stale = IndexUpdate("prefix-cache-scorer", "10.9.0.1:8000", [4, 5], clock.now - 60)
    unknown = IndexUpdate("no-such-scorer", "10.9.0.1:8000", [6], clock.now)
    assert b.hub.apply(Batch("a", [stale, unknown, fresh])) == 1
    assert b.hub.stats.dropped["stale"] == 1
    assert b.hub.stats.dropped["unknown_scorer"] == 1
    assert b.scorer.index.match([1, 2, 3]) == {"10.9.0.1:8000": 3}
    assert b.scorer.index.match([4]) == {}


def test_fresh_filters_updates_that_waited_too_long(clock: Clock) -> None:
    a = Replica("a", clock)
    a.pick(SYSTEM + "q1")
    clock.now += 10.0
    assert a.hub.fresh(a.outbox.take_now(10)) == []
    assert a.hub.stats.dropped["stale"] == 1


def test_malformed_bytes_are_counted_not_raised(clock: Clock) -> None:
    b = Replica("b", clock)
    assert b.hub.decode(b"\x01garbage") is None
    assert b.hub.stats.dropped["malformed"] == 1
    good = encode_batch("a", [IndexUpdate("prefix-cache-scorer", "10.9.0.2:8000", [9], clock.now)])
    batch = b.hub.decode(good)
    assert batch is not None and b.hub.apply(batch) == 1


async def test_apply_gently_applies_everything_across_slices(clock: Clock) -> None:
    b = Replica("b", clock)
    updates = [
        IndexUpdate(
            "prefix-cache-scorer", f"10.9.0.{i % 3}:8000", list(range(i * 50, i * 50 + 50)), clock.now
        )
        for i in range(30)
    ]
    assert await b.hub.apply_gently(Batch("a", updates), hashes_per_slice=120) == 30
    assert b.scorer.index.size() == 30 * 50


def test_detach_stops_publishing(clock: Clock) -> None:
    a = Replica("a", clock)
    a.hub.detach()
    a.pick(SYSTEM + "q")
    assert len(a.outbox) == 0
    assert all(not isinstance(p, PrefixCacheScorer) or not p.listeners for p in a.config.plugins.values())
