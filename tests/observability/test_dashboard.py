"""The Grafana dashboard only queries metrics the EPP really exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "inference-gateway-dashboard.json"
SOURCES = Path(__file__).resolve().parents[2] / "src" / "inference_gateway"


def exported_names() -> set[str]:
    text = "\n".join(p.read_text() for p in SOURCES.rglob("*.py"))
    return set(re.findall(r'"((?:inference_objective|inference_pool|inference_extension)_[a-z_]+)"', text))


def test_every_panel_queries_an_exported_metric() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    names = exported_names()
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used = set(re.findall(r"\b(inference_[a-z_]+?)(?:_bucket|_sum|_count)?\b", target["expr"]))
            assert used, panel["title"]
            missing = {u for u in used if u not in names}
            assert not missing, f"{panel['title']}: {missing} not exported"
