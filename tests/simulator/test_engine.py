"""Analytic checks of the engine in virtual time against its profile."""

from __future__ import annotations

import math

import pytest

from inference_gateway.simulator.config import ServerConfig
from inference_gateway.simulator.fleet_types import SimRequest
from inference_gateway.simulator.profile import load_profile

from .helpers import run_one_server, text_request, words

PROFILE = load_profile("h100-llama2-7b")


@pytest.mark.parametrize("prompt", [1, 200, 2048, 5000])
def test_single_request_ttft_is_prefill_time(prompt: int) -> None:
    res, _ = run_one_server([SimRequest("a", 1.0, prompt, 1)], ServerConfig(max_model_len=8192))
    assert res["a"].ttft == pytest.approx(PROFILE.step_seconds(prompt, prompt, False), rel=1e-9)


def test_long_prompt_is_prefilled_in_chunks_of_the_token_budget() -> None:
    cfg = ServerConfig(max_num_batched_tokens=2048)
    res, fleet = run_one_server([SimRequest("a", 0.0, 3000, 1)], cfg)
    expected = PROFILE.step_seconds(2048, 2048, False) + PROFILE.step_seconds(952, 3000, False)
    assert res["a"].ttft == pytest.approx(expected, rel=1e-9)
    assert fleet.servers[0].engine.stats.steps == 2


def test_single_request_decode_rate_follows_profile() -> None:
    prompt, out = 500, 101
    res, _ = run_one_server([SimRequest("a", 0.0, prompt, out)])
    expected = sum(PROFILE.step_seconds(1, prompt + d, False) for d in range(1, out))
    assert res["a"].finish - res["a"].first_token == pytest.approx(expected, rel=1e-9)
    assert res["a"].tpot == pytest.approx(0.0056, abs=0.0002)  # calibration: ~5.6 ms at 1 token


def test_batched_decode_step_is_flat_up_to_128_sequences() -> None:
    def tpot(n: int) -> float:
        reqs = [SimRequest(i, 0.0, 16, 50) for i in range(n)]
        res, _ = run_one_server(reqs)
        return sum(r.tpot for r in res.values()) / n

    one, many = tpot(1), tpot(128)
    assert many / one < 1.25  # memory-bound: 128 sequences cost about as much as one
    assert tpot(512) > many  # max_num_seqs=256 queues the rest, which then decode too


def test_second_identical_prompt_hits_prefix_cache_and_has_lower_ttft() -> None:
    text = words(1000, seed=3)
    res, fleet = run_one_server([text_request("a", 0.0, text, 4), text_request("b", 1.0, text, 4)])
    a, b = res["a"], res["b"]
    assert a.cached_tokens == 0
    assert b.cached_tokens == (1000 - 1) // 16 * 16  # all full blocks but the last token's
    assert b.ttft < a.ttft / 3
    assert b.ttft == pytest.approx(PROFILE.step_seconds(1000 - b.cached_tokens, 1000, False))
    stats = fleet.servers[0].engine.stats
    assert stats.prefix_hits == b.cached_tokens
    assert stats.prefix_queries == 2000


def test_prefix_cache_distinguishes_lora_adapters() -> None:
    text = words(320, seed=4)
    cfg = ServerConfig(lora_adapters=["a1"], max_loras=1)
    res, _ = run_one_server(
        [text_request("base", 0.0, text, 2), text_request("lora", 1.0, text, 2, model="a1")], cfg
    )
    assert res["lora"].cached_tokens == 0


def _first_preemption_step(k: int, prompt: int, out: int, blocks: int, bs: int = 16) -> int:
    """All k requests prefill in step 1; at decode step s each holds prompt+s-1 tokens."""
    for s in range(2, out + 1):
        if k * math.ceil((prompt + s - 1) / bs) > blocks:
            return s
    return -1


@pytest.mark.parametrize(("k", "blocks"), [(10, 35), (10, 40), (6, 30), (10, 60)])
def test_kv_exhaustion_preempts_at_predicted_step(k: int, blocks: int) -> None:
    prompt, out = 40, 40
    cfg = ServerConfig(num_gpu_blocks=blocks)
    reqs = [SimRequest(i, 0.0, prompt, out) for i in range(k)]
    res, fleet = run_one_server(reqs, cfg)
    stats = fleet.servers[0].engine.stats
    predicted = _first_preemption_step(k, prompt, out, blocks)
    assert stats.first_preemption_step == predicted
    assert (stats.num_preemptions > 0) == (predicted > 0)
    assert len(res) == k and all(r.output_tokens == out for r in res.values())
    if predicted > 0:  # the newest request is the one preempted (LIFO, like vLLM)
        assert res[k - 1].preemptions >= 1 and res[0].preemptions == 0
    assert fleet.servers[0].engine.pool.num_free == blocks  # every block came back


def test_lora_beyond_max_loras_waits_for_a_slot() -> None:
    cfg = ServerConfig(lora_adapters=["a", "b"], max_loras=1, max_cpu_loras=2)
    reqs = [
        SimRequest("a", 0.0, 50, 200, model="a"),
        SimRequest("b", 0.01, 50, 5, model="b"),
        SimRequest("base", 0.02, 50, 5),
    ]
    res, _ = run_one_server(reqs, cfg)
    assert res["b"].first_token > res["a"].finish  # had to wait for adapter a to drain
    assert res["base"].first_token < res["a"].finish  # the base model is not held up
    wide, _ = run_one_server(reqs, ServerConfig(lora_adapters=["a", "b"], max_loras=2))
    assert wide["b"].first_token < wide["a"].finish


def test_lora_not_in_cpu_cache_pays_load_time() -> None:
    cfg = ServerConfig(lora_adapters=["a", "b"], max_loras=1, max_cpu_loras=1)
    res, fleet = run_one_server([SimRequest("x", 0.0, 100, 1, model="b")], cfg)
    expected = PROFILE.step_seconds(100, 100, True) + PROFILE.lora_load_ms / 1000
    assert res["x"].ttft == pytest.approx(expected)
    assert fleet.servers[0].engine.stats.lora_loads == 1


def test_unknown_adapter_and_oversized_requests_are_errors() -> None:
    reqs = [SimRequest("lora", 0.0, 10, 5, model="nope"), SimRequest("big", 0.1, 4000, 200)]
    res, _ = run_one_server(reqs)
    assert res["lora"].status == "not-found" and res["big"].status == "error"  # vLLM: 404 and 400


def test_max_num_seqs_bounds_the_running_batch() -> None:
    reqs = [SimRequest(i, 0.0, 20, 30) for i in range(5)]
    res, _ = run_one_server(reqs, ServerConfig(max_num_seqs=2))
    firsts = sorted(r.first_token for r in res.values())
    finishes = sorted(r.finish for r in res.values())
    assert firsts[2] >= finishes[0]  # the third starts only when one of the first two ends
