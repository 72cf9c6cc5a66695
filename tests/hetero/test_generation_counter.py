"""The scraper reads each engine's generated-token counter, as the simulator exports it."""

from __future__ import annotations

import pytest

from inference_gateway.metrics.extract import metrics_from_page
from inference_gateway.metrics.mappings import ENGINE_LABEL, MappingRegistry
from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.engine import Engine
from inference_gateway.simulator.metrics import EngineCollector, make_registry, render
from inference_gateway.simulator.profile import load_profile


def exported_page(flavor: str, generated: int) -> str:
    profile = load_profile("h100-llama2-7b")
    engine = Engine(ServerConfig().resolve(profile), profile)
    engine.stats.generation_tokens = generated
    collector = EngineCollector(engine, "m", flavor, lambda: 0.0)
    return render(make_registry(collector)).decode()


@pytest.mark.parametrize(("flavor", "engine"), [("vllm", "vllm"), ("sglang", "sglang")])
def test_generation_tokens_counter_is_scraped(flavor: str, engine: str) -> None:
    mapping = MappingRegistry().for_labels({ENGINE_LABEL: engine})
    assert metrics_from_page(exported_page(flavor, 12345), mapping).generation_tokens == 12345


def test_engines_without_the_counter_report_none() -> None:
    mapping = MappingRegistry().for_labels({ENGINE_LABEL: "trtllm-serve"})
    assert metrics_from_page(exported_page("trtllm", 777), mapping).generation_tokens is None


def test_engine_configs_can_name_the_counter() -> None:
    registry = MappingRegistry.from_params(
        {"engineConfigs": [{"name": "custom", "generationTokensSpec": "my_generated_tokens_total"}]}
    )
    page = 'my_generated_tokens_total{engine="0"} 40\nmy_generated_tokens_total{engine="1"} 2\n'
    assert metrics_from_page(page, registry.for_labels({ENGINE_LABEL: "custom"})).generation_tokens == 42
