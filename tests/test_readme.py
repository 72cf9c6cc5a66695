"""The README's examples are real: its config loads, its manifests validate."""

from __future__ import annotations

import re
from pathlib import Path

from inference_gateway.api.manifests import load_path
from inference_gateway.scheduling.config import load_config

ROOT = Path(__file__).resolve().parent.parent


def yaml_blocks(text: str) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", text, re.S)


def test_readme_endpoint_picker_config_loads() -> None:
    blocks = [b for b in yaml_blocks((ROOT / "README.md").read_text()) if "EndpointPickerConfig" in b]
    assert blocks
    for block in blocks:
        config = load_config(block)
        assert "default" in config.scheduler.profiles
        assert config.sections["flowControl"]["maxRequests"] == 5000


def test_local_example_manifests_validate() -> None:
    resources = load_path(ROOT / "examples" / "local")
    assert {m.model_name for m in resources.models} >= {"food-review", "meta-llama/Llama-2-7b-hf"}
