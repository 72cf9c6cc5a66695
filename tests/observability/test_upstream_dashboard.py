"""Upstream's Grafana dashboard (GIE v1.5.0, unchanged) works against our EPP: every EPP metric it
queries exists in our registry with the same type and every label it groups or filters by."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from inference_gateway.epp import EndpointPicker, EPPOptions
from inference_gateway.scheduling.config import DEFAULT_CONFIG
from tests.helpers import make_store

DASHBOARD = Path(__file__).parent / "upstream" / "inference_gateway.json"
# Other components' metrics on the same dashboard: body-based routing and the model servers.
NOT_EPP = ("bbr_", "vllm:")
# Labels Prometheus adds to every series from its scrape target, not the exporter.
TARGET_LABELS = {"pod", "namespace", "instance", "job", "le"}
SUFFIX = re.compile(r"_(bucket|sum|count|total)$")
KIND = {"_bucket": Histogram, "_sum": Histogram, "_count": Histogram, "_total": Counter}


def queries(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        return found + [q for v in node.values() for q in queries(v)]
    if isinstance(node, list):
        return [q for v in node for q in queries(v)]
    return []


def exported() -> dict[str, tuple[type | None, set[str]]]:
    """Family name -> (metric class, label names), flow control gated on as upstream's dashboard expects."""
    epp = EndpointPicker(
        EPPOptions(config_text=DEFAULT_CONFIG),
        store=make_store(),  # it gates flowControl
    )
    registry: CollectorRegistry = epp.metrics.registry
    families: dict[str, tuple[type | None, set[str]]] = {}
    for collector in list(registry._collector_to_names):  # the registry has no public walk of collectors
        if isinstance(collector, MetricWrapperBase):
            kind = next(k for k in (Counter, Gauge, Histogram) if isinstance(collector, k))
            families[collector._name] = (kind, set(collector._labelnames))
        else:
            for family in collector.collect():
                labels = {k for s in family.samples for k in s.labels}
                families[family.name] = (Gauge if family.type == "gauge" else None, labels)
    return families


def test_every_epp_metric_on_upstreams_dashboard_is_exported_with_its_labels() -> None:
    ours = exported()
    checked = set()
    for expr in queries(json.loads(DASHBOARD.read_text())):
        used_labels = set(re.findall(r"\b(?:by|on)\s*\(([^)]*)\)", expr))
        labels = {label.strip() for group in used_labels for label in group.split(",") if label.strip()}
        labels |= set(re.findall(r"(\w+)\s*=~?\s*\"", expr))
        selectors = re.sub(r"\b(?:by|on)\s*\([^)]*\)", "", expr)  # label lists are not metric names
        for raw in re.findall(r"\b([a-z_:][a-z0-9_:]*)(?=\s*[{\[)])", selectors):
            if raw.startswith(NOT_EPP) or not raw.startswith("inference_"):
                continue
            suffix = SUFFIX.search(raw)
            name = SUFFIX.sub("", raw)
            assert name in ours, f"{name} (queried as {raw}) is not exported"
            kind, have = ours[name]
            if suffix is not None and kind is not None:
                assert kind is KIND[suffix.group(0)], f"{raw}: we export a {kind.__name__}"
            missing = labels - have - TARGET_LABELS
            assert not missing, f"{expr}\n{name} lacks labels {missing}"
            checked.add(name)
    assert {
        "inference_objective_request",
        "inference_pool_average_kv_cache_utilization",
        "inference_extension_flow_control_queue_size",
        "inference_extension_flow_control_pool_saturation",
    } <= checked
