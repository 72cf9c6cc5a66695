"""/metrics parses as Prometheus text and tracks engine state, in each engine's naming."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from inference_gateway.simulator.server import SimulatedServer

from .conftest import ServerFactory
from .helpers import words

Samples = dict[str, list[tuple[dict[str, str], float]]]


async def _scrape(server: SimulatedServer, path: str = "/metrics") -> tuple[Samples, dict[str, str]]:
    async with aiohttp.ClientSession() as session, session.get(server.url + path) as resp:
        assert resp.status == 200
        text = await resp.text()
    samples: Samples = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            samples.setdefault(s.name, []).append((s.labels, s.value))
    return samples, types


def _value(samples: Samples, name: str, **labels: str) -> float:
    matches = [v for lbl, v in samples[name] if all(lbl.get(k) == x for k, x in labels.items())]
    assert len(matches) == 1, (name, labels, samples.get(name))
    return matches[0]


async def _start_streams(
    server: SimulatedServer, bodies: list[dict[str, object]]
) -> list[asyncio.Task[None]]:
    async def run(body: dict[str, object]) -> None:
        async with aiohttp.ClientSession() as session:
            data = orjson.dumps({**body, "stream": True})
            async with session.post(server.url + "/v1/completions", data=data) as resp:
                async for _ in resp.content:
                    pass

    return [asyncio.create_task(run(b)) for b in bodies]


async def _until(cond: object, limit_s: float = 5.0) -> None:
    for _ in range(int(limit_s / 0.005)):
        if cond():  # type: ignore[operator]
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


async def test_vllm_metrics_track_engine_state(make_server: ServerFactory) -> None:
    server = await make_server(time_scale=0.1, max_num_seqs=2)
    engine, model = server.engine, server.config.served_model_name
    prompts = [words(100 + 10 * i, seed=i) for i in range(5)]
    tasks = await _start_streams(server, [{"prompt": p, "max_tokens": 150} for p in prompts])
    await _until(lambda: len(engine.running) == 2 and engine.num_waiting == 3)
    samples, types = await _scrape(server)
    assert _value(samples, "vllm:num_requests_running", model_name=model) == 2
    assert _value(samples, "vllm:num_requests_waiting", model_name=model) == 3
    usage = _value(samples, "vllm:kv_cache_usage_perc", model_name=model)
    assert 0 < usage < 0.1
    assert usage == _value(samples, "vllm:gpu_cache_usage_perc", model_name=model)
    info = samples["vllm:cache_config_info"][0][0]
    assert (info["block_size"], info["num_gpu_blocks"]) == ("16", str(engine.cfg.num_gpu_blocks))
    assert types["vllm:time_to_first_token_seconds"] == "histogram"
    assert types["vllm:num_preemptions"] == "counter"
    await asyncio.gather(*tasks)
    samples, _ = await _scrape(server)
    assert _value(samples, "vllm:num_requests_running", model_name=model) == 0
    assert _value(samples, "vllm:kv_cache_usage_perc", model_name=model) == 0
    assert _value(samples, "vllm:request_success_total", finished_reason="length") == 5
    assert _value(samples, "vllm:generation_tokens_total", model_name=model) == 750
    prompt_tokens = sum(server.tokenizer.count(p) for p in prompts)
    assert _value(samples, "vllm:prompt_tokens_total", model_name=model) == prompt_tokens
    assert _value(samples, "vllm:prefix_cache_queries_total", model_name=model) == prompt_tokens
    assert _value(samples, "vllm:time_to_first_token_seconds_count", model_name=model) == 5
    assert _value(samples, "vllm:e2e_request_latency_seconds_count", model_name=model) == 5
    assert _value(samples, "vllm:inter_token_latency_seconds_count", model_name=model) == 5 * 149


async def test_lora_requests_info_reports_running_and_waiting_adapters(
    make_server: ServerFactory,
) -> None:
    server = await make_server(time_scale=0.2, lora_adapters=["a", "b"], max_loras=1, max_cpu_loras=2)
    engine = server.engine
    tasks = await _start_streams(
        server,
        [
            {"model": "a", "prompt": "x y z", "max_tokens": 400},
            {"model": "b", "prompt": "q", "max_tokens": 2},
        ],
    )
    await _until(lambda: engine.lora.running == {"a": 1} and engine.lora.waiting == {"b": 1})
    samples, types = await _scrape(server)
    assert types["vllm:lora_requests_info"] == "gauge"
    newest = max(samples["vllm:lora_requests_info"], key=lambda s: s[1])[0]
    assert newest == {"max_lora": "1", "running_lora_adapters": "a", "waiting_lora_adapters": "b"}
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_lora_requests_info_appears_only_after_the_first_engine_step(
    make_server: ServerFactory,
) -> None:
    """As vLLM: the LoRA state is recorded from engine steps, so a fresh server has no series."""
    server = await make_server(time_scale=0.01, lora_adapters=["a"])
    samples, _ = await _scrape(server)
    assert not samples.get("vllm:lora_requests_info")
    tasks = await _start_streams(server, [{"model": "a", "prompt": "x", "max_tokens": 2}])
    await asyncio.gather(*tasks)
    samples, _ = await _scrape(server)
    assert {s[0]["max_lora"] for s in samples["vllm:lora_requests_info"]} == {"1"}


@pytest.mark.parametrize(
    ("flavor", "path", "running", "waiting", "usage"),
    [
        (
            "sglang",
            "/metrics",
            "sglang:num_running_reqs",
            "sglang:num_queue_reqs",
            "sglang:token_usage",
        ),
        (
            "trtllm",
            "/prometheus/metrics",
            "trtllm_num_requests_running",
            "trtllm_num_requests_waiting",
            "trtllm_kv_cache_utilization",
        ),
    ],
)
async def test_other_flavors_expose_their_engine_names(
    make_server: ServerFactory, flavor: str, path: str, running: str, waiting: str, usage: str
) -> None:
    server = await make_server(time_scale=0.2, max_num_seqs=1, metrics_flavor=flavor)
    engine = server.engine
    tasks = await _start_streams(server, [{"prompt": words(64, seed=i), "max_tokens": 300} for i in range(3)])
    await _until(lambda: len(engine.running) == 1 and engine.num_waiting == 2)
    samples, _ = await _scrape(server, path)
    assert _value(samples, running) == 1 and _value(samples, waiting) == 2
    assert 0 < _value(samples, usage) < 1
    assert not any(name.startswith("vllm:") for name in samples)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
