"""Engine metric mappings: which Prometheus families carry the state the scheduler needs.

Selected per pod by the label `inference.networking.k8s.io/engine-type` (vllm by default).
"""

from __future__ import annotations

from dataclasses import dataclass

ENGINE_LABEL = "inference.networking.k8s.io/engine-type"


@dataclass(frozen=True, slots=True)
class EngineMapping:
    engine: str
    waiting: tuple[str, ...]
    running: tuple[str, ...]
    kv_usage: tuple[str, ...]
    lora_info: str | None = None
    cache_info: str | None = None

    def families(self) -> frozenset[str]:
        names = {*self.waiting, *self.running, *self.kv_usage}
        names.update(n for n in (self.lora_info, self.cache_info) if n)
        return frozenset(names)


MAPPINGS: dict[str, EngineMapping] = {
    "vllm": EngineMapping(
        engine="vllm",
        waiting=("vllm:num_requests_waiting",),
        running=("vllm:num_requests_running",),
        kv_usage=("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
        lora_info="vllm:lora_requests_info",
        cache_info="vllm:cache_config_info",
    ),
    "sglang": EngineMapping(
        engine="sglang",
        waiting=("sglang:num_queue_reqs",),
        running=("sglang:num_running_reqs",),
        kv_usage=("sglang:token_usage",),
    ),
}


def mapping_for(engine: str) -> EngineMapping:
    return MAPPINGS.get(engine, MAPPINGS["vllm"])
