"""Scheduler micro-benchmarks: decision time, prompt hashing, /metrics parsing.

    PYTHONPATH=src python bench/scheduling_bench.py [--quick]

Prints medians on one core: a default-profile decision (queue 2, kv-cache 2, prefix-cache 3,
max-score picker) for 10/100/1000 endpoints, prefix hashing of a 220 KB prompt, the prefix
index lookup of that prompt held by 1 and by 100 endpoints, and parsing a
large vLLM /metrics page with the family-targeted parser vs a full prometheus_client parse.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from inference_gateway.api.types import ObjectRef
from inference_gateway.datastore.endpoint import Endpoint, EndpointMetrics
from inference_gateway.metrics.extract import metrics_from_page
from inference_gateway.metrics.mappings import MappingRegistry
from inference_gateway.scheduling.config import load_config
from inference_gateway.scheduling.prefix_index import PrefixIndex, hash_prompt
from inference_gateway.scheduling.types import SchedulingRequest

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def median_us(fn: Callable[[], object], iterations: int, warmup: int = 50) -> float:
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    gc.disable()
    try:
        for _ in range(iterations):
            t0 = time.perf_counter_ns()
            fn()
            samples.append((time.perf_counter_ns() - t0) / 1000)
    finally:
        gc.enable()
    return statistics.median(samples)


def make_endpoints(n: int, rng: random.Random) -> list[Endpoint]:
    now = time.monotonic()
    return [
        Endpoint(
            f"pod-{i}-rank-0",
            ObjectRef("default", f"pod-{i}"),
            f"10.0.{i // 250}.{i % 250}",
            8000,
            {},
            metrics=EndpointMetrics(
                waiting_queue=rng.randint(0, 20),
                running_requests=rng.randint(0, 64),
                kv_cache_usage=rng.random(),
                updated_at=now,
            ),
        )
        for i in range(n)
    ]


def bench_decision(n: int, iterations: int) -> tuple[float, float]:
    """(schedule only, schedule + post-pick index update) medians in microseconds."""
    rng = random.Random(n)
    endpoints = make_endpoints(n, rng)
    scheduler = load_config().scheduler
    system = "You are a helpful assistant. " * 40  # ~1.1 KB shared system prompt
    prompts = [system + f"Question {i}: " + "tell me about scheduling. " * 20 for i in range(64)]
    for i, p in enumerate(prompts):  # warm the prefix index
        req = SchedulingRequest(f"warm-{i}", MODEL, MODEL, prompt=p)
        result, state = scheduler.schedule(req, endpoints)
        scheduler.bind(state, req, result)
    requests = [SchedulingRequest(f"r{i}", MODEL, MODEL, prompt=prompts[i % 64]) for i in range(256)]
    it = iter(range(1 << 62))

    def decide() -> None:
        scheduler.schedule(requests[next(it) % 256], endpoints)

    def decide_and_bind() -> None:
        req = requests[next(it) % 256]
        result, state = scheduler.schedule(req, endpoints)
        scheduler.bind(state, req, result)

    return median_us(decide, iterations), median_us(decide_and_bind, iterations)


def bench_prefix_match(prompt: str, holders: int, iterations: int) -> float:
    """Median index lookup for a prompt whose every block is held by `holders` endpoints."""
    hashes = hash_prompt(prompt, MODEL, 64, 256)
    index = PrefixIndex(31250)
    for i in range(holders):
        index.add(hashes, f"10.0.0.{i}:8000")
    return median_us(lambda: index.match(hashes), iterations)


def vllm_metrics_page(engines: int = 4, models: int = 2) -> str:
    """A large vLLM v1-style page: gauges, counters and many histograms per engine/model."""
    out: list[str] = []
    for i in range(40):
        out += [f"# HELP python_gc_objects_{i} process stat", f"# TYPE python_gc_objects_{i} gauge"]
        out.append(f'python_gc_objects_{i}{{generation="{i % 3}"}} {i * 17.0}')
    gauges = ("num_requests_running", "num_requests_waiting", "kv_cache_usage_perc")
    histograms = (
        "request_prompt_tokens",
        "request_generation_tokens",
        "iteration_tokens_total",
        "request_params_max_tokens",
        "time_to_first_token_seconds",
        "time_per_output_token_seconds",
        "inter_token_latency_seconds",
        "e2e_request_latency_seconds",
        "request_queue_time_seconds",
        "request_inference_time_seconds",
        "request_prefill_time_seconds",
        "request_decode_time_seconds",
    )
    buckets = [0.001 * (2**k) for k in range(24)] + ["+Inf"]
    series = [f'engine="{e}",model_name="model-{m}"' for m in range(models) for e in range(engines)]
    for g in gauges:  # a family's samples form one group, as the exposition format requires
        out += [f"# HELP vllm:{g} gauge", f"# TYPE vllm:{g} gauge"]
        out += [f"vllm:{g}{{{labels}}} {(i + 1) / 10}" for i, labels in enumerate(series)]
    for h in histograms:
        out += [f"# HELP vllm:{h} histogram", f"# TYPE vllm:{h} histogram"]
        for labels in series:
            out += [f'vllm:{h}_bucket{{{labels},le="{b}"}} {k * 3.0}' for k, b in enumerate(buckets)]
            out += [f"vllm:{h}_sum{{{labels}}} 1234.5", f"vllm:{h}_count{{{labels}}} 77.0"]
    out.append(
        'vllm:cache_config_info{block_size="16",num_gpu_blocks="31250",enable_prefix_caching="True"} 1.0'
    )
    out.append(
        'vllm:lora_requests_info{max_lora="4",running_lora_adapters="a,b",waiting_lora_adapters=""} 1.7e9'
    )
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    args = parser.parse_args()
    scale = 10 if args.quick else 1

    table = Table(title="scheduler benchmarks (median, one core)")
    table.add_column("case")
    table.add_column("median", justify="right")
    table.add_column("notes")
    for n, iters in ((10, 20000), (100, 5000), (1000, 1000)):
        schedule_us, bound_us = bench_decision(n, iters // scale)
        table.add_row(
            f"decision, {n} endpoints", f"{schedule_us:.1f} us", f"with post-pick update: {bound_us:.1f} us"
        )

    prompt = ("The quick brown fox jumps over the lazy dog. " * 5000)[: 220 * 1024]
    hash_us = median_us(lambda: hash_prompt(prompt, MODEL, 64, 256), 5000 // scale)
    table.add_row(
        "prefix hashing, 220 KB prompt", f"{hash_us:.1f} us", "64-char blocks, 256 max -> 256 hashes"
    )
    for holders in (1, 100):
        match_us = bench_prefix_match(prompt, holders, 5000 // scale)
        table.add_row(
            f"prefix match, 220 KB prompt held by {holders} pod(s)",
            f"{match_us:.1f} us",
            "index lookup of 256 blocks",
        )

    mapping = MappingRegistry().default
    for engines, models in ((1, 1), (4, 2)):
        page = vllm_metrics_page(engines, models)
        previous = metrics_from_page(page, mapping)  # steady state: cache geometry already known
        fast_us = median_us(lambda p=page, m=previous: metrics_from_page(p, mapping, m), 2000 // scale)
        full_us = median_us(
            lambda p=page: list(text_string_to_metric_families(p)), 40 // scale or 2, warmup=2
        )
        label = f"vLLM page, {engines} engine(s) x {models} model(s), {len(page) / 1024:.0f} KB"
        table.add_row(f"{label}: targeted parse", f"{fast_us:.1f} us", "what the scraper does per scrape")
        table.add_row(
            f"{label}: prometheus_client", f"{full_us:.1f} us", f"full parse, {full_us / fast_us:.0f}x slower"
        )
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
