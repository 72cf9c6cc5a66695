"""Every EndpointPickerConfig sample gathered from upstream (GIE v1.5.0 docs, chart, conformance and
tests; llm-d's deploy configs, docs and e2e configs) loads, or fails as upstream's loader fails.

upstream_configs/index.yaml names each sample's source path and commit and what loading it must
do; `missing` marks samples upstream loads that need a plugin type we do not have (listed in
docs/compatibility.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from upstream_doubles import registry_with_doubles

from inference_gateway.scheduling.config import ConfigError, load_config

HERE = Path(__file__).parent / "upstream_configs"
INDEX: list[dict[str, Any]] = yaml.safe_load((HERE / "index.yaml").read_text())
HEADER = "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n"


def sample_text(entry: dict[str, Any]) -> str:
    text = (HERE / entry["file"]).read_text()
    return HEADER + text if entry.get("fragment") else text


def test_index_covers_every_fixture() -> None:
    on_disk = {str(p.relative_to(HERE)) for p in HERE.glob("*/*.yaml")}
    assert on_disk == {e["file"] for e in INDEX}
    assert sum(e["file"].startswith("gie/") for e in INDEX) >= 70
    for entry in INDEX:
        assert entry["expect"] in ("load", "reject", "missing"), entry
        assert len(entry["commit"]) == 40 and ":" in entry["source"], entry


@pytest.mark.parametrize("entry", INDEX, ids=[e["file"] for e in INDEX])
def test_upstream_sample(entry: dict[str, Any]) -> None:
    text = sample_text(entry)
    if entry["expect"] == "load":
        config = load_config(text, registry_with_doubles(), source=entry["file"])
        assert config.scheduler.profiles
        return
    with pytest.raises(ConfigError) as caught:
        load_config(text, registry_with_doubles(), source=entry["file"])
    message = str(caught.value)
    assert message.startswith(entry["file"] + ":"), message  # file:line first
    assert entry["reason"] in message
    if entry["expect"] == "missing":
        assert "is not registered" in message
