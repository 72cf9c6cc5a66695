"""The Grafana dashboard only queries metrics the EPP really exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from inference_gateway.epp import EndpointPicker, EPPOptions
from inference_gateway.scheduling.config import DEFAULT_CONFIG
from tests.helpers import make_store

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "inference-gateway-dashboard.json"


# The default config gates flow control, so the flow-control families exist too.
CONFIG = DEFAULT_CONFIG


def exported_names() -> set[str]:
    epp = EndpointPicker(EPPOptions(config_text=CONFIG), store=make_store())
    text = generate_latest(epp.metrics.registry).decode()
    return {f.name for f in text_string_to_metric_families(text)}


def test_every_panel_queries_an_exported_metric() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    names = exported_names()
    assert "inference_objective_request" in names  # counters are listed without _total
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used = set(
                re.findall(r"\b(inference_[a-z0-9_]+?)(?:_bucket|_sum|_count|_total)?\b", target["expr"])
            )
            assert used, panel["title"]
            missing = {u for u in used if u not in names}
            assert not missing, f"{panel['title']}: {missing} not exported"
