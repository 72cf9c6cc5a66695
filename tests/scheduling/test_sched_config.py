"""EndpointPickerConfig loading: defaults, every plugin type, and errors that say what is wrong."""

from __future__ import annotations

import pytest
from sched_helpers import endpoint, request

from inference_gateway.scheduling.config import ConfigError, load_config
from inference_gateway.scheduling.plugins.decision_tree_filter import DecisionTreeFilter
from inference_gateway.scheduling.plugins.lora_affinity_scorer import LoraAffinityScorer
from inference_gateway.scheduling.plugins.prefix_cache_scorer import PrefixCacheScorer
from inference_gateway.scheduling.plugins.round_robin_picker import RoundRobinPicker
from inference_gateway.scheduling.registry import default_registry

HEADER = "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n"


def test_default_config_has_upstream_chart_scorers_lora_affinity_and_a_round_robin_picker() -> None:
    cfg = load_config()
    profile = cfg.scheduler.profiles["default"]
    weights = {ws.scorer.type_name: ws.weight for ws in profile.scorers}
    assert weights == {
        "queue-scorer": 2.0,
        "kv-cache-utilization-scorer": 10.0,
        "prefix-cache-scorer": 24.0,
        "lora-affinity-scorer": 30.0,
    }
    lora = next(ws.scorer for ws in profile.scorers if isinstance(ws.scorer, LoraAffinityScorer))
    assert lora.adapters_only and lora.drain_blocked
    assert isinstance(profile.picker, RoundRobinPicker)
    assert profile.picker.tolerance == 2.0
    assert [type(p) for p in profile.post_pick] == [PrefixCacheScorer]
    # flow control's late binding: hold requests once every pod has 2 waiting or 95 % KV
    assert cfg.flow_control_enabled
    assert cfg.saturation.queue_depth_threshold == 2
    assert not cfg.saturation_detector().config.adapter_queue_is_load
    assert cfg.saturation.kv_cache_util_threshold == 0.95


def test_every_builtin_type_is_registered() -> None:
    expected = {
        "queue-scorer",
        "kv-cache-utilization-scorer",
        "running-requests-size-scorer",
        "lora-affinity-scorer",
        "prefix-cache-scorer",
        "session-affinity-scorer",
        "max-score-picker",
        "random-picker",
        "weighted-random-picker",
        "low-queue",
        "least-queue",
        "least-KV-cache",
        "lora-affinity",
        "sheddable-capacity",
        "decision-tree",
        "single-profile-handler",
    }
    assert expected <= set(default_registry().types())


def test_full_config_with_parameters_and_sections() -> None:
    text = (
        HEADER
        + """
plugins:
- type: prefix-cache-scorer
  parameters: {blockSize: 32, maxPrefixBlocksToMatch: 128, lruCapacityPerServer: 1000, autoTune: false}
- type: lora-affinity-scorer
- name: sticky
  type: session-affinity-scorer
  parameters: {headerName: x-user-session}
- type: weighted-random-picker
  parameters: {maxNumOfEndpoints: 2}
- type: model-server-protocol-metrics
  parameters:
    defaultEngine: sglang
    engineConfigs:
    - name: mine
      queuedRequestsSpec: my_queue
- type: metrics-data-source
  parameters: {path: /stats}
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: prefix-cache-scorer
    weight: 3
  - pluginRef: lora-affinity-scorer
  - pluginRef: sticky
    weight: 100
  - pluginRef: weighted-random-picker
saturationDetector:
  queueDepthThreshold: 10
  kvCacheUtilThreshold: 0.9
  metricsStalenessThreshold: 500ms
featureGates: [flowControl]
flowControl: {maxBytes: 1000}
"""
    )
    cfg = load_config(text)
    profile = cfg.scheduler.profiles["default"]
    assert [(ws.scorer.name, ws.weight) for ws in profile.scorers] == [
        ("prefix-cache-scorer", 3.0),
        ("lora-affinity-scorer", 1.0),
        ("sticky", 100.0),
    ]
    prefix = cfg.plugins["prefix-cache-scorer"]
    assert isinstance(prefix, PrefixCacheScorer)
    assert (prefix.block_size, prefix.max_blocks, prefix.auto_tune) == (32, 128, False)
    assert profile.picker is not None and profile.picker.type_name == "weighted-random-picker"
    assert cfg.saturation.metrics_staleness_s == pytest.approx(0.5)
    assert cfg.saturation.queue_depth_threshold == 10
    assert cfg.sections["flowControl"] == {"maxBytes": 1000}
    assert cfg.metric_mappings.default.engine == "sglang"
    assert "mine" in cfg.metric_mappings.engines()
    assert cfg.metrics_path == "/stats"


def test_legacy_decision_tree_profile() -> None:
    text = (
        HEADER
        + """
plugins:
- type: low-queue
  parameters: {threshold: 128}
- type: lora-affinity
  parameters: {threshold: 1.0}
- type: least-queue
- type: least-KV-cache
- name: legacy
  type: decision-tree
  parameters:
    current: {pluginRef: low-queue}
    nextOnSuccessOrFailure:
      decisionTree:
        current: {pluginRef: lora-affinity}
        nextOnSuccessOrFailure:
          decisionTree:
            current: {pluginRef: least-queue}
            nextOnSuccessOrFailure:
              decisionTree:
                current: {pluginRef: least-KV-cache}
- type: random-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: legacy
  - pluginRef: random-picker
"""
    )
    cfg = load_config(text)
    assert isinstance(cfg.plugins["legacy"], DecisionTreeFilter)
    eps = [
        endpoint("lora-busy", waiting=20, kv=0.1, active=["ad"], max_lora=2),
        endpoint("lora-idle", waiting=1, kv=0.7, active=["ad"], max_lora=2),
        endpoint("lora-idle-cool", waiting=1, kv=0.2, active=["ad"], max_lora=2),
        endpoint("no-lora", waiting=0, kv=0.0, max_lora=0),
    ]
    result, _ = cfg.scheduler.schedule(request(model="ad"), eps)
    assert result.endpoints[0].name == "lora-idle-cool-rank-0"


def test_implicit_default_profile_uses_all_plugins() -> None:
    cfg = load_config(HEADER + "plugins:\n- type: queue-scorer\n- type: random-picker\n")
    profile = cfg.scheduler.profiles["default"]
    assert [ws.scorer.type_name for ws in profile.scorers] == ["queue-scorer"]
    assert profile.picker is not None and profile.picker.type_name == "random-picker"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("plugins: [\n", "invalid YAML"),
        ("- just a list\n", "must be a YAML mapping"),
        ("kind: Pod\n", "kind: must be EndpointPickerConfig"),
        ("apiVersion: v9\nkind: EndpointPickerConfig\n", "apiVersion: must be one of"),
        (HEADER + "bogus: 1\n", "EndpointPickerConfig:3: bogus: unknown field"),
        (HEADER + "plugins:\n- name: x\n", r"Config:4: plugins\[0\]: plugin 'x' is missing a type"),
        (
            HEADER + "plugins:\n- type: no-such-scorer\n",
            r"Config:4: plugins\[0\].type: plugin type 'no-such-scorer' is not registered",
        ),
        (HEADER + "plugins:\n- type: queue-scorer\n- type: queue-scorer\n", "duplicate plugin name"),
        (
            HEADER + "plugins:\n- type: prefix-cache-scorer\n  parameters: {blockSize: big}\n",
            r"plugins\[0\]: failed to create plugin 'prefix-cache-scorer' .*: parameter 'blockSize' must",
        ),
        (
            HEADER + "plugins:\n- type: queue-scorer\nschedulingProfiles:\n- name: p\n  plugins:\n"
            "  - pluginRef: nope\n",
            r"Config:8: schedulingProfiles\[0\].plugins\[0\]: .* references undefined plugin 'nope'",
        ),
        (
            HEADER + "plugins:\n- type: queue-scorer\nschedulingProfiles:\n- name: p\n  plugins:\n"
            "  - pluginRef: queue-scorer\n    weight: -1\n",
            "weight must not be negative",
        ),
        (
            HEADER + "plugins:\n- type: random-picker\n- type: max-score-picker\nschedulingProfiles:\n"
            "- name: p\n  plugins:\n  - pluginRef: random-picker\n  - pluginRef: max-score-picker\n",
            "already have a registered picker plugin",
        ),
        (
            HEADER + "plugins:\n- type: queue-scorer\nschedulingProfiles:\n- name: a\n"
            "  plugins: [{pluginRef: queue-scorer}]\n- name: b\n  plugins: [{pluginRef: queue-scorer}]\n",
            "no profile handler configured",
        ),
        (
            HEADER + "plugins:\n- type: decision-tree\n  parameters: {current: {pluginRef: low-queue}}\n",
            "'low-queue' is not defined before this decision tree",
        ),
        (
            HEADER + "plugins:\n- type: queue-scorer\n- type: decision-tree\n"
            "  parameters: {current: {pluginRef: queue-scorer}}\n",
            "'queue-scorer' is not a filter",
        ),
        (
            HEADER + "plugins:\n- type: model-server-protocol-metrics\n  parameters: {defaultEngine: nope}\n",
            "defaultEngine 'nope' not found",
        ),
        (HEADER + "saturationDetector: {metricsStalenessThreshold: soon}\n", "must be a duration"),
        (HEADER + "saturationDetector: {kvCacheUtilThreshold: 1.5}\n", "kvCacheUtilThreshold"),
    ],
)
def test_config_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(text)
