"""Saturation detection and decision explanations."""

from __future__ import annotations

import pytest
from sched_helpers import endpoint, request

from inference_gateway.scheduling.config import load_config
from inference_gateway.scheduling.saturation import SaturationConfig, SaturationDetector


def test_endpoint_saturation_thresholds_are_inclusive() -> None:
    d = SaturationDetector()
    assert not d.endpoint_saturated(endpoint("a", waiting=4, kv=0.79))
    assert d.endpoint_saturated(endpoint("a", waiting=5))
    assert d.endpoint_saturated(endpoint("a", kv=0.8))
    assert d.describe(endpoint("a", waiting=7)) == "queue 7 >= 5"


def test_stale_or_failing_metrics_count_as_saturated() -> None:
    d = SaturationDetector(SaturationConfig(metrics_staleness_s=1.0))
    assert d.endpoint_saturated(endpoint("old", age_s=5.0))
    failing = endpoint("failing")
    failing.metrics_ok = False
    assert d.endpoint_saturated(failing)
    assert "stale" in d.describe(endpoint("old", age_s=5.0))


def test_pool_saturated_only_when_every_endpoint_is() -> None:
    d = SaturationDetector()
    busy = [endpoint("a", waiting=9), endpoint("b", kv=0.95)]
    assert d.is_saturated(busy)
    assert not d.is_saturated([*busy, endpoint("c", waiting=1, kv=0.1)])
    assert d.is_saturated([])


def test_pool_with_no_fresh_metrics_anywhere_is_not_held_back() -> None:
    d = SaturationDetector(SaturationConfig(metrics_staleness_s=1.0))
    blind = [endpoint("a", age_s=5.0), endpoint("b", age_s=9.0)]
    assert not d.is_saturated(blind)  # blind: route on what is known rather than queue everything
    # One fresh, loaded endpoint is enough to judge: the stale ones count as saturated again.
    assert d.is_saturated([*blind, endpoint("c", waiting=9)])
    assert not d.is_saturated([*blind, endpoint("c", waiting=1)])


def test_saturation_config_from_upstream_keys() -> None:
    cfg = SaturationConfig.from_params(
        {"queueDepthThreshold": 3, "kvCacheUtilThreshold": 0.5, "metricsStalenessThreshold": "1m30s"}
    )
    assert (cfg.queue_depth_threshold, cfg.kv_cache_util_threshold, cfg.metrics_staleness_s) == (3, 0.5, 90.0)
    with pytest.raises(ValueError, match="queueDepthThreshold"):
        SaturationConfig.from_params({"queueDepthThreshold": 0})


def test_explain_lists_per_scorer_scores_and_why_the_winner_won() -> None:
    scheduler = load_config().scheduler
    eps = [endpoint("idle", waiting=0, kv=0.1), endpoint("busy", waiting=8, kv=0.6)]
    result, _ = scheduler.schedule(request("hello"), eps, explain=True)
    info = result.explain()["profiles"]["default"]
    assert info["picked"][0] == eps[0].address
    by_name = {c["endpoint"]: c for c in info["candidates"]}
    assert by_name["idle-rank-0"]["scores"]["queue-scorer"] == 1.0
    assert by_name["busy-rank-0"]["scores"]["kv-cache-utilization-scorer"] == pytest.approx(0.4)
    assert info["weights"]["prefix-cache-scorer"] == 24.0
    assert "idle-rank-0 had the highest total" in info["reason"]
    assert "queue-scorer +2.000" in info["reason"]


def test_explain_reports_ties_and_filters() -> None:
    scheduler = load_config().scheduler
    result, _ = scheduler.schedule(request(), [endpoint("a"), endpoint("b")], explain=True)
    assert "2 endpoints tied" in result.explain()["profiles"]["default"]["reason"]

    text = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: low-queue
  parameters: {threshold: 2}
- type: queue-scorer
schedulingProfiles:
- name: p
  plugins: [{pluginRef: low-queue}, {pluginRef: queue-scorer}]
"""
    result, _ = load_config(text).scheduler.schedule(
        request(), [endpoint("a", waiting=1), endpoint("b", waiting=9)], explain=True
    )
    info = result.explain()["profiles"]["p"]
    assert info["filtered_out"] == {"low-queue": ["b-rank-0"]}
    assert "only candidate" in info["reason"]


def test_explain_caps_listed_candidates_but_keeps_the_winner() -> None:
    scheduler = load_config().scheduler
    eps = [endpoint(f"e{i}", waiting=i) for i in range(30)]
    result, _ = scheduler.schedule(request(), eps, explain=True)
    info = result.explain()["profiles"]["default"]
    assert info["candidates_total"] == 30
    assert len(info["candidates"]) == 10
    assert info["candidates"][0]["address"] == info["picked"][0]
