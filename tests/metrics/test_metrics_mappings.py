"""Engine metric mappings: built-in engines, selection by pod label, upstream engineConfigs."""

from __future__ import annotations

import pytest

from inference_gateway.datastore.endpoint import EndpointMetrics
from inference_gateway.metrics.extract import metrics_from_page
from inference_gateway.metrics.mappings import ENGINE_LABEL, MappingRegistry
from inference_gateway.metrics.spec import MetricSpec

VLLM_V0 = """vllm:num_requests_waiting{model_name="m"} 2
vllm:num_requests_running{model_name="m"} 5
vllm:gpu_cache_usage_perc{model_name="m"} 0.3
"""
SGLANG = """sglang:num_queue_reqs{model_name="m"} 4
sglang:num_running_reqs{model_name="m"} 9
sglang:token_usage{model_name="m"} 0.55
sglang:cache_config_info{page_size="32",num_pages="5000"} 1
"""
TRTLLM_SERVE = """trtllm_num_requests_waiting 3
trtllm_num_requests_running 6
trtllm_kv_cache_utilization 0.25
trtllm_kv_cache_tokens_per_block 64
trtllm_kv_cache_max_blocks 4096
"""
TRITON_TRTLLM = """nv_trt_llm_request_metrics{model="tensorrt_llm",request_type="waiting",version="1"} 8
nv_trt_llm_request_metrics{model="tensorrt_llm",request_type="scheduled",version="1"} 2
nv_trt_llm_request_metrics{model="tensorrt_llm",request_type="active",version="1"} 10
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="tokens_per",model="tensorrt_llm",version="1"} 64
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="max",model="tensorrt_llm",version="1"} 6239
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="fraction",model="tensorrt_llm",version="1"} 0.7
"""
TRITON = """nv_inference_pending_request_count{model="a",version="1"} 2
nv_inference_pending_request_count{model="b",version="1"} 3
nv_inference_exec_count{model="a",version="1"} 12345
"""


@pytest.mark.parametrize(
    ("engine", "page", "expected"),
    [
        ("vllm", VLLM_V0, (2, 5, 0.3, 0, 0)),
        ("sglang", SGLANG, (4, 9, 0.55, 32, 5000)),
        ("trtllm-serve", TRTLLM_SERVE, (3, 6, 0.25, 64, 4096)),
        ("triton-tensorrt-llm", TRITON_TRTLLM, (8, 2, 0.7, 64, 6239)),
        ("triton", TRITON, (5, 0, 0.0, 0, 0)),
    ],
)
def test_engine_mappings_extract_their_metrics(
    engine: str, page: str, expected: tuple[int, int, float, int, int]
) -> None:
    mapping = MappingRegistry().for_labels({ENGINE_LABEL: engine})
    assert mapping.engine == engine
    m = metrics_from_page(page, mapping)
    assert (m.waiting_queue, m.running_requests, m.kv_cache_usage, m.block_size, m.num_gpu_blocks) == expected


def test_vllm_lora_and_cache_info() -> None:
    page = """vllm:num_requests_waiting 1
vllm:kv_cache_usage_perc 0.1
vllm:lora_requests_info{max_lora="4",running_lora_adapters="old",waiting_lora_adapters=""} 100
vllm:lora_requests_info{max_lora="4",running_lora_adapters="a1, a2",waiting_lora_adapters="w1"} 200
vllm:cache_config_info{block_size="16",num_gpu_blocks="31250"} 1
"""
    m = metrics_from_page(page, MappingRegistry().default)
    assert m.active_adapters == {"a1", "a2"}
    assert m.waiting_adapters == {"w1"}
    assert (m.max_active_adapters, m.block_size, m.num_gpu_blocks, m.kv_cache_usage) == (4, 16, 31250, 0.1)


def test_cache_geometry_is_kept_from_previous_scrape() -> None:
    previous = EndpointMetrics(block_size=16, num_gpu_blocks=100)
    m = metrics_from_page("vllm:num_requests_waiting 1\n", MappingRegistry().default, previous)
    assert (m.block_size, m.num_gpu_blocks, m.waiting_queue) == (16, 100, 1)


def test_unknown_or_missing_engine_label_uses_default() -> None:
    reg = MappingRegistry()
    assert reg.for_labels({}).engine == "vllm"
    assert reg.for_labels({ENGINE_LABEL: "mystery"}).engine == "vllm"


def test_engine_configs_add_and_replace_engines() -> None:
    reg = MappingRegistry.from_params(
        {
            "engineLabelKey": "engine",
            "defaultEngine": "custom",
            "engineConfigs": [
                {"name": "custom", "queuedRequestsSpec": "q_total{kind=waiting}", "kvUsageSpec": "kv"},
                {"name": "vllm", "queuedRequestsSpec": "vllm:num_requests_waiting", "loraSpec": ""},
            ],
        }
    )
    custom = reg.for_labels({})
    page = 'q_total{kind="waiting"} 6\nq_total{kind="running"} 2\nkv 0.5\n'
    m = metrics_from_page(page, custom)
    assert (m.waiting_queue, m.kv_cache_usage) == (6, 0.5)
    assert reg.for_labels({"engine": "vllm"}).lora_info == ()  # replaced: LoRA disabled
    assert reg.for_labels({"engine": "sglang"}).engine == "sglang"  # built-ins still there


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"engineConfigs": [{"queuedRequestsSpec": "x"}]}, "name cannot be empty"),
        ({"engineConfigs": [{"name": "default"}]}, "reserved"),
        ({"engineConfigs": [{"name": "a", "kvUsageSpec": "bad{"}]}, "invalid metric spec"),
        ({"defaultEngine": "none"}, "defaultEngine 'none' not found"),
        ({"engineConfigs": [{"name": "a"}, {"name": "a"}]}, "configured twice"),
    ],
)
def test_engine_config_errors(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MappingRegistry.from_params(params)


def test_metric_spec_parsing() -> None:
    assert MetricSpec.parse("a:b") == MetricSpec("a:b")
    spec = MetricSpec.parse('m{x=1, y="two"}')
    assert spec.labels == (("x", "1"), ("y", "two"))
    assert str(spec) == 'm{x="1",y="two"}'
    with pytest.raises(ValueError):
        MetricSpec.parse("m{x~1}")
