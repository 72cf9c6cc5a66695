"""Prometheus exposition of an engine's state under vLLM, SGLang or TensorRT-LLM names.

A custom collector reads the engine at scrape time and is registered in a per-server
CollectorRegistry. Names, types and labels follow the engines (vLLM: vllm/v1/metrics;
SGLang: docs/references/production_metrics.md; trtllm-serve: tensorrt_llm/metrics and the
names the Gateway API Inference Extension's model-server protocol reads).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from inference_gateway.simulator.engine import Engine
from inference_gateway.simulator.stats import Histogram

_LORA_HISTORY = 32


class _Families:
    """Builds single-series families that share one label set."""

    def __init__(self, labels: list[str], values: list[str]) -> None:
        self.labels, self.values = labels, values

    def gauge(self, name: str, doc: str, v: float) -> Metric:
        g = GaugeMetricFamily(name, doc, labels=self.labels)
        g.add_metric(self.values, v)
        return g

    def counter(self, name: str, doc: str, v: float) -> Metric:
        c = CounterMetricFamily(name, doc, labels=self.labels)
        c.add_metric(self.values, v)
        return c

    def hist(self, name: str, doc: str, h: Histogram) -> Metric:
        m = HistogramMetricFamily(name, doc, labels=self.labels)
        m.add_metric(self.values, h.cumulative(), h.total)
        return m

    def by_reason(self, name: str, doc: str, counts: dict[str, int]) -> Metric:
        return self.by_label(name, doc, "finished_reason", counts)

    def by_label(self, name: str, doc: str, label: str, counts: dict[str, int]) -> Metric:
        c = CounterMetricFamily(name, doc, labels=[*self.labels, label])
        for value, n in counts.items():
            c.add_metric([*self.values, value], n)
        return c


class EngineCollector:
    def __init__(
        self,
        engine: Engine,
        model_name: str,
        flavor: str,
        clock: Callable[[], float],
        lora_enabled: bool = True,
    ) -> None:
        self.engine = engine
        self.model_name = model_name
        self.flavor = flavor
        self.clock = clock
        self.lora_enabled = lora_enabled
        self._lora_series: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lora_steps_seen = 0
        self._last_gen: tuple[float, int] = (clock(), 0)

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        if self.flavor == "sglang":
            return self._sglang()
        if self.flavor == "trtllm":
            return self._trtllm()
        return self._vllm()

    # ---- vLLM -------------------------------------------------------------------------
    def _vllm(self) -> Iterator[Metric]:
        e, st = self.engine, self.engine.stats
        f = _Families(["model_name", "engine"], [self.model_name, "0"])
        usage = e.pool.usage
        yield f.gauge(
            "vllm:num_requests_running",
            "Number of requests in model execution batches.",
            len(e.running),
        )
        yield f.gauge(
            "vllm:num_requests_waiting",
            "Number of requests waiting to be processed.",
            e.num_waiting,
        )
        yield f.gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", usage)
        yield f.gauge("vllm:gpu_cache_usage_perc", "GPU KV-cache usage. DEPRECATED.", usage)
        yield f.counter("vllm:prefix_cache_queries", "Prefix cache queries, in tokens.", st.prefix_queries)
        yield f.counter("vllm:prefix_cache_hits", "Prefix cache hits, in tokens.", st.prefix_hits)
        yield f.counter(
            "vllm:num_preemptions",
            "Cumulative number of preemption from the engine.",
            st.num_preemptions,
        )
        yield f.counter("vllm:prompt_tokens", "Number of prefill tokens processed.", st.prompt_tokens)
        # Not a vLLM metric: what this simulated engine's encoder computed (E/P/D checks).
        yield f.counter("simulator:encoder_tokens", "Image/audio tokens encoded.", st.encoder_tokens)
        sources = {
            "local_compute": st.prompt_tokens_computed,
            "local_cache_hit": st.prompt_tokens_cache_hit,
            "external_kv_transfer": st.prompt_tokens_kv_transfer,
        }
        yield f.by_label(
            "vllm:prompt_tokens_by_source", "Number of prompt tokens by source.", "source", sources
        )
        yield f.counter(
            "vllm:generation_tokens", "Number of generation tokens processed.", st.generation_tokens
        )
        yield f.by_reason("vllm:request_success", "Count of successfully processed requests.", st.finished)
        yield f.hist(
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            st.ttft,
        )
        yield f.hist(
            "vllm:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
            st.itl,
        )
        yield f.hist(
            "vllm:time_per_output_token_seconds",
            "Histogram of time per output token in seconds.",
            st.itl,
        )
        yield f.hist(
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            st.e2e,
        )
        yield f.hist(
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase.",
            st.queue_time,
        )
        yield self._cache_config_info()
        if self.lora_enabled:
            yield self._lora_info()

    def _cache_config_info(self) -> Metric:
        cfg = self.engine.cfg
        labels = {
            "block_size": str(cfg.block_size),
            "cache_dtype": "auto",
            "enable_prefix_caching": str(cfg.enable_prefix_caching),
            "num_cpu_blocks": "None",
            "num_gpu_blocks": str(cfg.num_gpu_blocks),
            "engine": "0",
        }
        info = GaugeMetricFamily(
            "vllm:cache_config_info",
            "Information of the LLMEngine CacheConfig",
            labels=list(labels),
        )
        info.add_metric(list(labels.values()), 1.0)
        return info

    def _lora_info(self) -> Metric:
        """One series per adapter-set combination seen, valued with the time it was last
        current, like vLLM's; consumers take the newest. As in vLLM, the state is recorded from
        engine steps, so a server that has not run a step yet has no series at all."""
        lora = self.engine.lora
        if self.engine.stats.steps > self._lora_steps_seen or self._lora_series:
            self._lora_steps_seen = self.engine.stats.steps
            key = (",".join(sorted(lora.running)), ",".join(sorted(lora.waiting)))
            self._lora_series[key] = time.time()
            self._lora_series.move_to_end(key)
        while len(self._lora_series) > _LORA_HISTORY:
            self._lora_series.popitem(last=False)
        g = GaugeMetricFamily(
            "vllm:lora_requests_info",
            "Running stats on lora requests.",
            labels=["max_lora", "waiting_lora_adapters", "running_lora_adapters"],
        )
        for (running, waiting), ts in self._lora_series.items():
            g.add_metric([str(lora.max_loras), waiting, running], ts)
        return g

    # ---- SGLang -----------------------------------------------------------------------
    def _sglang(self) -> Iterator[Metric]:
        e, st, cfg = self.engine, self.engine.stats, self.engine.cfg
        f = _Families(["model_name"], [self.model_name])
        now = self.clock()
        t0, g0 = self._last_gen
        rate = (st.generation_tokens - g0) / (now - t0) if now > t0 else 0.0
        self._last_gen = (now, st.generation_tokens)
        capacity = cfg.num_gpu_blocks * cfg.block_size
        used = (cfg.num_gpu_blocks - e.pool.num_free) * cfg.block_size
        yield f.gauge("sglang:num_running_reqs", "The number of running requests", len(e.running))
        yield f.gauge("sglang:num_queue_reqs", "The number of requests in the waiting queue", e.num_waiting)
        yield f.gauge("sglang:token_usage", "The token usage", e.pool.usage)
        yield f.gauge("sglang:num_used_tokens", "The number of used tokens", used)
        yield f.gauge("sglang:max_total_num_tokens", "Maximum total number of tokens", capacity)
        yield f.gauge("sglang:cache_hit_rate", "The cache hit rate", st.prefix_hit_rate)
        yield f.gauge("sglang:gen_throughput", "The generate throughput (token/s)", rate)
        info = GaugeMetricFamily(
            "sglang:cache_config_info",
            "KV cache configuration",
            labels=["model_name", "page_size", "num_pages"],
        )
        info.add_metric([self.model_name, str(cfg.block_size), str(cfg.num_gpu_blocks)], 1.0)
        yield info
        yield f.counter("sglang:prompt_tokens", "Number of prefill tokens processed.", st.prompt_tokens)
        yield f.counter(
            "sglang:generation_tokens",
            "Number of generation tokens processed.",
            st.generation_tokens,
        )
        yield f.counter("sglang:num_requests", "Number of requests processed.", sum(st.finished.values()))
        yield f.hist(
            "sglang:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            st.ttft,
        )
        yield f.hist(
            "sglang:e2e_request_latency_seconds",
            "Histogram of End-to-end request latency in seconds",
            st.e2e,
        )
        yield f.hist(
            "sglang:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
            st.itl,
        )
        yield f.hist(
            "sglang:time_per_output_token_seconds",
            "Histogram of time per output token in seconds.",
            st.itl,
        )

    # ---- TensorRT-LLM (trtllm-serve) --------------------------------------------------
    def _trtllm(self) -> Iterator[Metric]:
        e, st, cfg = self.engine, self.engine.stats, self.engine.cfg
        f = _Families(["model_name", "engine_type"], [self.model_name, "trtllm"])
        yield f.gauge("trtllm_num_requests_waiting", "Requests waiting to be scheduled.", e.num_waiting)
        yield f.gauge("trtllm_num_requests_running", "Requests being executed.", len(e.running))
        yield f.gauge("trtllm_kv_cache_utilization", "Fraction of KV cache blocks in use.", e.pool.usage)
        yield f.gauge("trtllm_kv_cache_hit_rate", "KV cache reuse hit rate.", st.prefix_hit_rate)
        yield f.gauge("trtllm_kv_cache_tokens_per_block", "Tokens per KV cache block.", cfg.block_size)
        yield f.gauge("trtllm_kv_cache_max_blocks", "Total KV cache blocks.", cfg.num_gpu_blocks)
        yield f.by_reason("trtllm_request_success", "Count of successfully processed requests.", st.finished)
        yield f.hist(
            "trtllm_e2e_request_latency_seconds",
            "Histogram of end to end request latency in seconds.",
            st.e2e,
        )
        yield f.hist(
            "trtllm_time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            st.ttft,
        )
        yield f.hist(
            "trtllm_time_per_output_token_seconds",
            "Histogram of time per output token in seconds.",
            st.itl,
        )
        yield f.hist(
            "trtllm_request_queue_time_seconds",
            "Histogram of time spent in WAITING phase.",
            st.queue_time,
        )


def make_registry(collector: EngineCollector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)  # type: ignore[arg-type]
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
