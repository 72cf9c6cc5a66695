"""Pickers and filters on constructed states."""

from __future__ import annotations

from collections import Counter

import pytest
from sched_helpers import endpoint, request

from inference_gateway.scheduling.config import load_config
from inference_gateway.scheduling.plugins.least_kv_cache_filter import LeastKVCacheFilter
from inference_gateway.scheduling.plugins.least_queue_filter import LeastQueueFilter
from inference_gateway.scheduling.plugins.lora_affinity_filter import LoraAffinityFilter
from inference_gateway.scheduling.plugins.low_queue_filter import LowQueueFilter
from inference_gateway.scheduling.plugins.max_score_picker import MaxScorePicker
from inference_gateway.scheduling.plugins.random_picker import RandomPicker
from inference_gateway.scheduling.plugins.sheddable_capacity_filter import SheddableCapacityFilter
from inference_gateway.scheduling.plugins.weighted_random_picker import WeightedRandomPicker
from inference_gateway.scheduling.types import CycleState, SchedulingError

EPS = [endpoint(n) for n in "abcde"]


def test_max_score_picker_orders_pick_then_fallbacks() -> None:
    picked = MaxScorePicker(parameters={"seed": 1}).pick(CycleState(), EPS, [0.1, 0.9, 0.5, 0.7, 0.3])
    assert [e.name for e in picked] == ["b-rank-0", "d-rank-0", "c-rank-0"]


def test_max_score_picker_breaks_ties_randomly() -> None:
    picker = MaxScorePicker(parameters={"seed": 7, "maxNumOfEndpoints": 1})
    firsts = Counter(picker.pick(CycleState(), EPS, [1.0, 1.0, 0.2, 1.0, 0.0])[0].name for _ in range(300))
    assert set(firsts) == {"a-rank-0", "b-rank-0", "d-rank-0"}
    assert min(firsts.values()) > 50


def test_max_score_picker_ties_come_before_runners_up() -> None:
    picker = MaxScorePicker(parameters={"seed": 3})
    picked = picker.pick(CycleState(), EPS, [0.5, 1.0, 0.9, 1.0, 0.1])
    assert {e.name for e in picked[:2]} == {"b-rank-0", "d-rank-0"}
    assert picked[2].name == "c-rank-0"


def test_random_picker_ignores_scores() -> None:
    picker = RandomPicker(parameters={"seed": 5, "maxNumOfEndpoints": 1})
    seen = Counter(picker.pick(CycleState(), EPS, [1.0, 0, 0, 0, 0])[0].name for _ in range(500))
    assert len(seen) == 5


def test_weighted_random_picker_follows_weights() -> None:
    picker = WeightedRandomPicker(parameters={"seed": 11, "maxNumOfEndpoints": 1})
    seen = Counter(picker.pick(CycleState(), EPS[:3], [3.0, 1.0, 0.0])[0].name for _ in range(2000))
    assert "c-rank-0" not in seen
    assert 0.65 < seen["a-rank-0"] / 2000 < 0.85  # expected 0.75


def test_weighted_random_picker_all_zero_is_uniform() -> None:
    picker = WeightedRandomPicker(parameters={"seed": 2, "maxNumOfEndpoints": 2})
    picked = picker.pick(CycleState(), EPS, [0.0] * 5)
    assert len(picked) == 2 and len(set(picked)) == 2


def test_low_queue_filter_threshold() -> None:
    eps = [endpoint("a", waiting=3), endpoint("b", waiting=4)]
    kept = LowQueueFilter(parameters={"threshold": 3}).filter(CycleState(), request(), eps)
    assert [e.name for e in kept] == ["a-rank-0"]


def test_least_queue_and_kv_filters_keep_the_lowest_band() -> None:
    eps = [
        endpoint("a", waiting=0, kv=0.1),
        endpoint("b", waiting=2, kv=0.4),
        endpoint("c", waiting=9, kv=0.9),
    ]
    assert [e.name for e in LeastQueueFilter().filter(CycleState(), request(), eps)] == [
        "a-rank-0",
        "b-rank-0",
    ]
    assert [e.name for e in LeastKVCacheFilter().filter(CycleState(), request(), eps)] == ["a-rank-0"]


def test_lora_affinity_filter_prefers_affinity_group() -> None:
    eps = [
        endpoint("has", active=["lora"], max_lora=2),
        endpoint("room", active=[], max_lora=2),
        endpoint("full", active=["x"], max_lora=1),
    ]
    always = LoraAffinityFilter(parameters={"threshold": 1.0})
    assert [e.name for e in always.filter(CycleState(), request(model="lora"), eps)] == ["has-rank-0"]
    never = LoraAffinityFilter(parameters={"threshold": 0.0})
    assert [e.name for e in never.filter(CycleState(), request(model="lora"), eps)] == ["room-rank-0"]
    only_room = always.filter(CycleState(), request(model="new"), eps)
    assert [e.name for e in only_room] == ["has-rank-0", "room-rank-0"]


def test_sheddable_capacity_filter_only_constrains_sheddable() -> None:
    eps = [endpoint("busy", waiting=5), endpoint("hot", kv=0.85), endpoint("ok", waiting=4, kv=0.79)]
    f = SheddableCapacityFilter()
    assert [e.name for e in f.filter(CycleState(), request(priority=-1), eps)] == ["ok-rank-0"]
    assert len(f.filter(CycleState(), request(priority=0), eps)) == 3


def test_sheddable_request_filtered_to_nothing_gets_429() -> None:
    text = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: sheddable-capacity
- type: queue-scorer
schedulingProfiles:
- name: p
  plugins: [{pluginRef: sheddable-capacity}, {pluginRef: queue-scorer}]
"""
    scheduler = load_config(text).scheduler
    busy = [endpoint("busy", waiting=9)]
    with pytest.raises(SchedulingError) as err:
        scheduler.schedule(request(priority=-1), busy)
    assert err.value.status == 429
    result, _ = scheduler.schedule(request(priority=1), busy)
    assert result.endpoints == busy
