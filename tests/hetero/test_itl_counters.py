"""The scraper reads each engine's inter-token latency histogram totals, as the simulator exports them."""

from __future__ import annotations

import pytest

from inference_gateway.metrics.extract import metrics_from_page
from inference_gateway.metrics.mappings import ENGINE_LABEL, MappingRegistry
from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.engine import Engine
from inference_gateway.simulator.metrics import EngineCollector, make_registry, render
from inference_gateway.simulator.profile import load_profile


def exported_page(flavor: str, itl_seconds: list[float]) -> str:
    profile = load_profile("h100-llama2-7b")
    engine = Engine(ServerConfig().resolve(profile), profile)
    for value in itl_seconds:
        engine.stats.itl.observe(value, n=4)
    collector = EngineCollector(engine, "m", flavor, lambda: 0.0)
    return render(make_registry(collector)).decode()


@pytest.mark.parametrize(
    ("flavor", "engine"), [("vllm", "vllm"), ("sglang", "sglang"), ("trtllm", "trtllm-serve")]
)
def test_inter_token_latency_totals_are_scraped(flavor: str, engine: str) -> None:
    mapping = MappingRegistry().for_labels({ENGINE_LABEL: engine})
    m = metrics_from_page(exported_page(flavor, [0.006, 0.05]), mapping)
    assert m.itl_count == 8 and m.itl_sum_seconds == pytest.approx(4 * 0.056)


def test_engines_without_the_histogram_report_none() -> None:
    mapping = MappingRegistry().for_labels({ENGINE_LABEL: "triton"})
    m = metrics_from_page("nv_inference_pending_request_count 2\n", mapping)
    assert m.itl_sum_seconds is None and m.itl_count is None


def test_older_vllm_name_and_engine_configs() -> None:
    old_vllm = (
        "vllm:num_requests_waiting 0\n"  # a real page always has the load gauges
        'vllm:time_per_output_token_seconds_sum{engine="0"} 1.5\n'
        'vllm:time_per_output_token_seconds_count{engine="0"} 100\n'
        'vllm:time_per_output_token_seconds_sum{engine="1"} 0.5\n'
        'vllm:time_per_output_token_seconds_count{engine="1"} 60\n'
    )
    m = metrics_from_page(old_vllm, MappingRegistry().default)
    assert (m.itl_sum_seconds, m.itl_count) == (2.0, 160)  # series add up (data-parallel engines)
    registry = MappingRegistry.from_params(
        {"engineConfigs": [{"name": "custom", "interTokenLatencySpec": "my_itl_seconds"}]}
    )
    page = "vllm:num_requests_waiting 0\nmy_itl_seconds_sum 3\nmy_itl_seconds_count 30\n"
    m = metrics_from_page(page, registry.for_labels({ENGINE_LABEL: "custom"}))
    assert (m.itl_sum_seconds, m.itl_count) == (3.0, 30)
