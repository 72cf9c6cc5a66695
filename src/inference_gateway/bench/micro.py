"""Micro-benchmarks of the EPP's per-request and per-scrape building blocks (in-process).

The overhead section's decision rows time whole decisions; these time the pieces inside
them that grow with input size: hashing a large prompt into prefix blocks, the prefix index
lookup with 1 and 100 holders of every block, and parsing a large vLLM /metrics page the way
the scraper does (only the families it maps) against a full prometheus_client parse.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from inference_gateway.metrics.extract import metrics_from_page
from inference_gateway.metrics.mappings import MappingRegistry
from inference_gateway.scheduling.prefix_index import PrefixIndex, hash_prompt

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
BLOCK_CHARS, MAX_BLOCKS = 64, 256
LARGE_PROMPT_BYTES = 220 * 1024
_HISTOGRAMS = (
    "request_prompt_tokens", "request_generation_tokens", "iteration_tokens_total",
    "request_params_max_tokens", "time_to_first_token_seconds", "time_per_output_token_seconds",
    "inter_token_latency_seconds", "e2e_request_latency_seconds", "request_queue_time_seconds",
    "request_inference_time_seconds", "request_prefill_time_seconds", "request_decode_time_seconds",
)  # fmt: skip


def timed(fn: Callable[[], object], iterations: int, warmup: int = 20) -> dict[str, float]:
    """mean / p50 / p99 of `fn` in microseconds, garbage collection paused while timing."""
    for _ in range(warmup):
        fn()
    samples = np.empty(iterations)
    gc.disable()
    try:
        for i in range(iterations):
            started = time.perf_counter_ns()
            fn()
            samples[i] = (time.perf_counter_ns() - started) / 1000
    finally:
        gc.enable()
    p50, p99 = np.percentile(samples, [50, 99])
    return {"mean_us": float(samples.mean()), "p50_us": float(p50), "p99_us": float(p99)}


def vllm_metrics_page(engines: int, models: int) -> str:
    """A large vLLM v1-style page: process stats, gauges and many histograms per engine/model."""
    out: list[str] = []
    for i in range(40):
        out += [f"# HELP python_gc_objects_{i} process stat", f"# TYPE python_gc_objects_{i} gauge"]
        out.append(f'python_gc_objects_{i}{{generation="{i % 3}"}} {i * 17.0}')
    series = [f'engine="{e}",model_name="model-{m}"' for m in range(models) for e in range(engines)]
    for gauge in ("num_requests_running", "num_requests_waiting", "kv_cache_usage_perc"):
        out += [f"# HELP vllm:{gauge} gauge", f"# TYPE vllm:{gauge} gauge"]
        out += [f"vllm:{gauge}{{{labels}}} {(i + 1) / 10}" for i, labels in enumerate(series)]
    buckets = [*(f"{0.001 * 2**k:g}" for k in range(24)), "+Inf"]
    for hist in _HISTOGRAMS:
        out += [f"# HELP vllm:{hist} histogram", f"# TYPE vllm:{hist} histogram"]
        for labels in series:
            out += [f'vllm:{hist}_bucket{{{labels},le="{b}"}} {k * 3.0}' for k, b in enumerate(buckets)]
            out += [f"vllm:{hist}_sum{{{labels}}} 1234.5", f"vllm:{hist}_count{{{labels}}} 77.0"]
    cache = 'block_size="16",num_gpu_blocks="31250",enable_prefix_caching="True"'
    out.append(f"vllm:cache_config_info{{{cache}}} 1")
    out.append('vllm:lora_requests_info{max_lora="4",running_lora_adapters="a,b",waiting_lora_adapters=""} 1')
    return "\n".join(out) + "\n"


def _full_parse(page: str) -> list[object]:
    return list(text_string_to_metric_families(page))


def micro_rows(iterations: int) -> list[dict[str, Any]]:
    prompt = ("The quick brown fox jumps over the lazy dog. " * 5000)[:LARGE_PROMPT_BYTES]
    kb = LARGE_PROMPT_BYTES // 1024
    rows = [
        {"what": f"prefix hashing, {kb} KB prompt ({MAX_BLOCKS} blocks)",
         **timed(lambda: hash_prompt(prompt, MODEL, BLOCK_CHARS, MAX_BLOCKS), iterations)},
    ]  # fmt: skip
    hashes = hash_prompt(prompt, MODEL, BLOCK_CHARS, MAX_BLOCKS)
    for holders in (1, 100):
        index = PrefixIndex(31250)
        for i in range(holders):
            index.add(hashes, f"10.0.0.{i}:8000")
        what = f"prefix index match, {kb} KB prompt held by {holders} endpoint(s)"
        rows.append({"what": what, **timed(partial(index.match, hashes), iterations)})
    mapping = MappingRegistry().default
    for engines, models in ((1, 1), (4, 2)):
        page = vllm_metrics_page(engines, models)
        previous = metrics_from_page(page, mapping)  # steady state: cache geometry already known
        label = f"/metrics page, {engines} engine(s) x {models} model(s), {len(page) // 1024} KB"
        targeted = timed(partial(metrics_from_page, page, mapping, previous), iterations)
        rows.append({"what": f"{label}: the scraper's parse", **targeted})
        full = timed(partial(_full_parse, page), max(1, iterations // 50), 1)
        rows.append({"what": f"{label}: prometheus_client full parse", **full})
    return rows
