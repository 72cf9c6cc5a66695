"""Strict decoding (typos name file:line and the field path), feature gates, and the section
references upstream's loader resolves: parser, saturationDetector, dataLayer."""

from __future__ import annotations

import pytest
from sched_helpers import endpoint

from inference_gateway.scheduling.config import ConfigError, load_config
from inference_gateway.scheduling.plugins.concurrency_detector import ConcurrencyDetector
from inference_gateway.scheduling.plugins.parsers import OpenAIParser, PassthroughParser
from inference_gateway.scheduling.plugins.utilization_detector import UtilizationDetector

HEADER = "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "plugins:\n- type: queue-scorer\nschedulingProfiles:\n- name: default\n  plugins:\n"
            "  - pluginRef: queue-scorer\n    wieght: 2\n",
            "epp.yaml:9: schedulingProfiles[0].plugins[0].wieght: unknown field (did you mean 'weight'?)",
        ),
        ("plugin:\n- type: queue-scorer\n", "epp.yaml:3: plugin: unknown field (did you mean 'plugins'?)"),
        (
            "plugins:\n- type: queue-scorer\n  parameter: {}\n",
            "epp.yaml:5: plugins[0].parameter: unknown field",
        ),
        (
            "saturationDetector:\n  pluginReff: x\n",
            "epp.yaml:4: saturationDetector.pluginReff: unknown field",
        ),
        (
            "flowControl:\n  maxByte: 10\n",
            "epp.yaml:4: flowControl.maxByte: unknown field (did you mean 'maxBytes'?)",
        ),
        (
            "flowControl:\n  priorityBands:\n  - priority: high\n",
            "epp.yaml:5: flowControl.priorityBands[0].priority: must be an integer, got 'high'",
        ),
        (
            "plugins:\n- type: queue-scorer\nschedulingProfiles:\n- name: d\n  plugins:\n"
            "  - pluginRef: queue-scorer\n    weight: '2'\n",
            "epp.yaml:9: schedulingProfiles[0].plugins[0].weight: must be an integer or a number, got '2'",
        ),
        (
            "plugins:\n- type: queue-scorer\n  type: kv-cache-utilization-scorer\n",
            "epp.yaml:5: plugins[0].type: duplicate",
        ),
        (
            "featureGates: [flowcontrol]\n",
            "epp.yaml:3: featureGates[0]: feature gate 'flowcontrol' is unknown",
        ),
        (
            "parser: {pluginRef: nope}\n",
            "epp.yaml:3: parser.pluginRef: the configured parser 'nope' is not loaded",
        ),
        (
            "plugins:\n- type: queue-scorer\ndataLayer:\n  sources:\n  - pluginRef: queue-scorer\n",
            "epp.yaml:7: dataLayer.sources[0].pluginRef: the plugin 'queue-scorer' is not a data source",
        ),
        (
            "plugins:\n- type: queue-scorer\nsaturationDetector: {pluginRef: queue-scorer}\n",
            "plugin 'queue-scorer' (queue-scorer) is not a saturation detector",
        ),
        (
            "flowControl: {enabled: true}\n",
            "flowControl.enabled: flow control needs `featureGates: [flowControl]`",
        ),
    ],
)
def test_errors_name_file_line_and_path(body: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(HEADER + body, source="epp.yaml")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_flow_control_is_off_unless_gated() -> None:
    section = "flowControl: {maxRequests: 10}\n"
    off = load_config(HEADER + section)
    assert not off.flow_control_enabled and off.sections["flowControl"] == {"enabled": False}
    on = load_config(HEADER + section + "featureGates: [flowControl]\n")
    assert on.flow_control_enabled and on.sections["flowControl"] == {"maxRequests": 10}
    assert load_config(HEADER + "featureGates: [flowControl]\n").flow_control_enabled
    gated_off = load_config(HEADER + "featureGates: [flowControl]\nflowControl: {enabled: false}\n")
    assert not gated_off.flow_control_enabled
    # Our built-in default gates it (late binding, docs/benchmarks.md); upstream's does not.
    assert load_config().flow_control_enabled


def test_default_parser_and_detector_are_created() -> None:
    cfg = load_config(HEADER + "plugins:\n- type: queue-scorer\n")  # neither configured
    assert isinstance(cfg.parser, OpenAIParser) and cfg.parser.parses_body
    detector = cfg.saturation_detector()
    assert isinstance(detector, UtilizationDetector)
    assert detector.config.queue_depth_threshold == 5  # upstream's default parameters
    # the built-in default configures it tighter (flow control's late binding)
    assert load_config().saturation_detector().config.queue_depth_threshold == 2


def test_passthrough_parser_by_ref() -> None:
    cfg = load_config(
        HEADER + "plugins:\n- type: passthrough-parser\nparser: {pluginRef: passthrough-parser}\n"
    )
    assert isinstance(cfg.parser, PassthroughParser) and not cfg.parser.parses_body


def test_utilization_detector_parameters_via_plugin_ref() -> None:
    cfg = load_config(
        HEADER + "plugins:\n- name: sat\n  type: utilization-detector\n"
        "  parameters: {queueDepthThreshold: 2, kvCacheUtilThreshold: 0.5}\n"
        "saturationDetector: {pluginRef: sat}\n"
    )
    detector = cfg.saturation_detector()
    assert detector is cfg.plugins["sat"]
    assert cfg.saturation.queue_depth_threshold == 2
    busy = endpoint("busy", waiting=3)
    calm = endpoint("calm", waiting=1, kv=0.1)
    assert not detector.has_capacity(busy) and detector.has_capacity(calm)


def test_legacy_saturation_keys_still_configure_the_default_detector() -> None:
    cfg = load_config(
        HEADER + "saturationDetector: {queueDepthThreshold: 9, metricsStalenessThreshold: 500ms}\n"
    )
    assert cfg.saturation.queue_depth_threshold == 9
    assert cfg.saturation.metrics_staleness_s == pytest.approx(0.5)


def test_concurrency_detector_counts_in_flight_requests() -> None:
    cfg = load_config(
        HEADER + "plugins:\n- type: concurrency-detector\n  parameters: {maxConcurrency: 2, headroom: 0.5}\n"
        "saturationDetector: {pluginRef: concurrency-detector}\n"
    )
    detector = cfg.saturation_detector()
    assert isinstance(detector, ConcurrencyDetector)
    a, b = endpoint("a"), endpoint("b")
    a.load.requests, b.load.requests = 2, 1
    assert not detector.is_saturated([a, b])  # 3 of 4
    b.load.requests = 2
    assert detector.is_saturated([a, b]) and detector.is_saturated([])
    assert [e.name for e in detector.filter({}, None, [a, b])] == [a.name, b.name]  # type: ignore[arg-type]
    a.load.requests = 3  # limit is 2 x 1.5
    assert detector.filter({}, None, [a, b]) == [b]  # type: ignore[arg-type]


def test_concurrency_detector_refuses_token_mode() -> None:
    with pytest.raises(ConfigError, match="concurrencyMode 'tokens' is not supported"):
        load_config(
            HEADER + "plugins:\n- type: concurrency-detector\n  parameters: {concurrencyMode: tokens}\n"
        )
