"""Engine metric mappings: which Prometheus series carry the state the scheduler needs.

Selected per pod by the label `inference.networking.k8s.io/engine-type` (vllm when absent).
The built-in table matches upstream's core metrics extractor (vllm, sglang, trtllm-serve,
triton-tensorrt-llm, triton); an EndpointPickerConfig can add engines or replace one by name
with upstream's `engineConfigs` parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from inference_gateway.metrics.spec import MetricSpec, parse_specs

ENGINE_LABEL = "inference.networking.k8s.io/engine-type"
DEFAULT_ENGINE = "vllm"


@dataclass(frozen=True, slots=True)
class EngineMapping:
    """Each field lists specs in preference order; the first one present on a page is used."""

    engine: str
    waiting: tuple[MetricSpec, ...] = ()
    running: tuple[MetricSpec, ...] = ()
    kv_usage: tuple[MetricSpec, ...] = ()
    lora_info: tuple[MetricSpec, ...] = ()
    cache_info: tuple[MetricSpec, ...] = ()
    block_size_label: str = "block_size"
    num_blocks_label: str = "num_gpu_blocks"
    block_size: tuple[MetricSpec, ...] = ()
    num_blocks: tuple[MetricSpec, ...] = ()
    # Histogram base names (the page has <name>_sum and <name>_count): inter-token latency.
    itl: tuple[MetricSpec, ...] = ()
    families: frozenset[str] = field(default=frozenset(), compare=False)

    def __post_init__(self) -> None:
        specs = (
            self.waiting
            + self.running
            + self.kv_usage
            + self.lora_info
            + self.cache_info
            + self.block_size
            + self.num_blocks
        )
        histograms = {f"{s.name}{suffix}" for s in self.itl for suffix in ("_sum", "_count")}
        object.__setattr__(self, "families", frozenset({s.name for s in specs} | histograms))

    @classmethod
    def from_engine_config(cls, cfg: Mapping[str, Any]) -> EngineMapping:
        """Build from upstream's engineConfigs entry (queuedRequestsSpec, kvUsageSpec, ...)."""
        name = cfg.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError("engine config name cannot be empty")
        try:
            return cls(
                engine=name,
                waiting=parse_specs(cfg.get("queuedRequestsSpec")),
                running=parse_specs(cfg.get("runningRequestsSpec")),
                kv_usage=parse_specs(cfg.get("kvUsageSpec")),
                lora_info=parse_specs(cfg.get("loraSpec")),
                cache_info=parse_specs(cfg.get("cacheInfoSpec")),
                block_size_label=cfg.get("cacheBlockSizeLabelName") or "block_size",
                num_blocks_label=cfg.get("cacheNumBlocksLabelName") or "num_gpu_blocks",
                block_size=parse_specs(cfg.get("cacheBlockSizeSpec")),
                num_blocks=parse_specs(cfg.get("cacheNumBlocksSpec")),
                itl=parse_specs(cfg.get("interTokenLatencySpec")),
            )
        except ValueError as exc:
            raise ValueError(f"engine {name!r}: {exc}") from None


def _builtin() -> dict[str, EngineMapping]:
    vllm = EngineMapping(
        engine="vllm",
        waiting=parse_specs("vllm:num_requests_waiting"),
        running=parse_specs("vllm:num_requests_running"),
        # vLLM v0 exported gpu_cache_usage_perc; v1 renamed it.
        kv_usage=parse_specs("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
        lora_info=parse_specs("vllm:lora_requests_info"),
        cache_info=parse_specs("vllm:cache_config_info"),
        # v0.11 renamed time_per_output_token_seconds (per token, despite the name).
        itl=parse_specs("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"),
    )
    sglang = EngineMapping(
        engine="sglang",
        waiting=parse_specs("sglang:num_queue_reqs"),
        running=parse_specs("sglang:num_running_reqs"),
        kv_usage=parse_specs("sglang:token_usage"),
        cache_info=parse_specs("sglang:cache_config_info"),
        block_size_label="page_size",
        num_blocks_label="num_pages",
        itl=parse_specs("sglang:inter_token_latency_seconds", "sglang:time_per_output_token_seconds"),
    )
    trtllm_serve = EngineMapping(
        engine="trtllm-serve",
        waiting=parse_specs("trtllm_num_requests_waiting"),
        running=parse_specs("trtllm_num_requests_running"),
        kv_usage=parse_specs("trtllm_kv_cache_utilization"),
        block_size=parse_specs("trtllm_kv_cache_tokens_per_block"),
        num_blocks=parse_specs("trtllm_kv_cache_max_blocks"),
        itl=parse_specs("trtllm_time_per_output_token_seconds"),
    )
    triton_trtllm = EngineMapping(
        engine="triton-tensorrt-llm",
        waiting=parse_specs("nv_trt_llm_request_metrics{request_type=waiting}"),
        running=parse_specs("nv_trt_llm_request_metrics{request_type=scheduled}"),
        kv_usage=parse_specs("nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=fraction}"),
        block_size=parse_specs("nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=tokens_per}"),
        num_blocks=parse_specs("nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=max}"),
    )
    # Plain Triton has no running-requests gauge (nv_inference_exec_count is a counter), so
    # only the pending queue is mapped.
    triton = EngineMapping(engine="triton", waiting=parse_specs("nv_inference_pending_request_count"))
    return {m.engine: m for m in (vllm, sglang, trtllm_serve, triton_trtllm, triton)}


BUILTIN_MAPPINGS: Mapping[str, EngineMapping] = _builtin()


class MappingRegistry:
    """Engine name -> mapping, with a default for pods that carry no (or an unknown) engine label."""

    def __init__(
        self,
        mappings: Mapping[str, EngineMapping] | None = None,
        default_engine: str = DEFAULT_ENGINE,
        label_key: str = ENGINE_LABEL,
    ) -> None:
        self.mappings = dict(BUILTIN_MAPPINGS)
        self.mappings.update(mappings or {})
        if default_engine not in self.mappings:
            raise ValueError(f"defaultEngine {default_engine!r} not found in engineConfigs")
        self.default = self.mappings[default_engine]
        self.label_key = label_key

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> MappingRegistry:
        """Upstream's model-server-protocol-metrics / core-metrics-extractor parameters."""
        configs = params.get("engineConfigs") or []
        if not isinstance(configs, list):
            raise ValueError("engineConfigs must be a list")
        user: dict[str, EngineMapping] = {}
        for cfg in configs:
            if not isinstance(cfg, dict):
                raise ValueError("each engineConfigs entry must be a mapping")
            mapping = EngineMapping.from_engine_config(cfg)
            if mapping.engine == "default":
                raise ValueError('engine config name cannot be "default" (reserved)')
            if mapping.engine in user:
                raise ValueError(f"engine {mapping.engine!r} configured twice")
            user[mapping.engine] = mapping
        return cls(
            user,
            default_engine=params.get("defaultEngine") or DEFAULT_ENGINE,
            label_key=params.get("engineLabelKey") or ENGINE_LABEL,
        )

    def with_default_specs(self, specs: Mapping[str, str]) -> MappingRegistry:
        """Upstream's legacy `--*-metric` flags: replace the default engine's specs per signal
        (queue, running, kv, lora, cache_info); an empty spec disables the signal."""
        if not specs:
            return self
        fields = {"queue": "waiting", "running": "running", "kv": "kv_usage", "lora": "lora_info"}
        fields["cache_info"] = "cache_info"
        changes: dict[str, Any] = {fields[k]: parse_specs(v.strip().strip('"')) for k, v in specs.items()}
        default = replace(self.default, **changes)
        out = MappingRegistry(self.mappings, self.default.engine, self.label_key)
        out.mappings[default.engine] = out.default = default
        return out

    def for_labels(self, labels: Mapping[str, str]) -> EngineMapping:
        engine = labels.get(self.label_key)
        if engine is None:
            return self.default
        return self.mappings.get(engine, self.default)

    def engines(self) -> list[str]:
        return sorted(self.mappings)


def mapping_for(engine: str) -> EngineMapping:
    return BUILTIN_MAPPINGS.get(engine, BUILTIN_MAPPINGS[DEFAULT_ENGINE])
