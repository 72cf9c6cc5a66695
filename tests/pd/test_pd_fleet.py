"""Virtual-time P/D: prefill pods prefill, KV moves at the configured bandwidth, decode pods
only decode. Times are checked against the profile's step-time formula."""

from __future__ import annotations

import pytest

from inference_gateway.simulator.config import KVTransfer, ServerConfig
from inference_gateway.simulator.engine import Engine
from inference_gateway.simulator.fleet import run_fleet
from inference_gateway.simulator.fleet_types import SimRequest
from inference_gateway.simulator.pd_fleet import LeastLoadedPDScheduler, PDPick, run_pd_fleet
from inference_gateway.simulator.profile import load_profile
from inference_gateway.simulator.schedulers import RoundRobinScheduler

PROFILE = load_profile("h100-llama2-7b")


def step(tokens: int, context: int) -> float:
    return PROFILE.step_seconds(tokens, context, False)


def pd_servers(kv: KVTransfer | None = None) -> list[ServerConfig]:
    kv = kv or KVTransfer()
    return [ServerConfig(name="prefill", kv_transfer=kv), ServerConfig(name="decode", kv_transfer=kv)]


@pytest.mark.parametrize("prompt", [200, 4000])
def test_ttft_is_prefill_plus_transfer_plus_one_decode_step(prompt: int) -> None:
    kv = KVTransfer(bandwidth_gb_s=10.0, latency_ms=2.0)
    out = 5
    result = run_pd_fleet(
        [SimRequest(1, 0.0, prompt, out)], pd_servers(kv), LeastLoadedPDScheduler(["prefill", "decode"])
    )
    (res,) = result.results
    assert (res.endpoint, res.prefill_endpoint, res.output_tokens) == (1, 0, out)
    transfer = 2e-3 + (prompt - 1) * PROFILE.kv_bytes_per_token / 10e9
    assert res.ttft == pytest.approx(step(prompt, prompt) + transfer + step(1, prompt), rel=1e-9)
    aggregated = run_fleet([SimRequest(1, 0.0, prompt, out)], [ServerConfig()], RoundRobinScheduler())
    assert aggregated.results[0].ttft == pytest.approx(step(prompt, prompt), rel=1e-9)
    assert result.extra["kv_transfer_mean_s"] == pytest.approx(transfer)


def test_decode_pod_does_no_prefill_work() -> None:
    prompt = 3000
    result = run_pd_fleet(
        [SimRequest(i, 0.01 * i, prompt, 20) for i in range(5)],
        pd_servers(),
        LeastLoadedPDScheduler(["prefill", "decode"]),
    )
    prefill, decode = (s.stats for s in result.servers)
    assert prefill.prompt_tokens_computed == 5 * prompt
    assert prefill.generation_tokens == 5  # one token each, then the request leaves
    # the decode pod computes only each request's last prompt token and receives the rest
    assert decode.prompt_tokens_computed == 5
    assert decode.prompt_tokens_kv_transfer == 5 * (prompt - 1)
    assert decode.generation_tokens == 5 * 20
    assert all(r.prefill_endpoint == 0 and r.endpoint == 1 for r in result.results)


def test_transfers_from_one_prefill_pod_share_its_link() -> None:
    kv = KVTransfer(bandwidth_gb_s=5.0, latency_ms=0.0)
    prompt = 2000
    wire = (prompt - 1) * PROFILE.kv_bytes_per_token / 5e9
    work = [SimRequest(i, 0.0, prompt, 4) for i in range(2)]  # prefilled in the same step
    shared = run_pd_fleet(work, pd_servers(kv), LeastLoadedPDScheduler(["prefill", "decode"]))
    assert shared.extra["kv_link_wait_mean_s"] == pytest.approx(wire / 2)  # the second waits one wire time
    first, second = sorted(r.first_token for r in shared.results)
    assert second - first >= wire
    separate = run_pd_fleet(
        work, pd_servers(kv), LeastLoadedPDScheduler(["prefill", "decode"]), shared_links=False
    )
    assert separate.extra["kv_link_wait_mean_s"] == 0.0


def test_short_prompts_below_threshold_stay_on_the_decode_pod() -> None:
    work = [SimRequest(0, 0.0, 100, 5), SimRequest(1, 0.5, 2000, 5)]
    result = run_pd_fleet(
        work, pd_servers(), LeastLoadedPDScheduler(["prefill", "decode"], threshold_tokens=512)
    )
    by_id = {r.request_id: r for r in result.results}
    assert (by_id[0].endpoint, by_id[0].prefill_endpoint) == (1, -1)
    assert (by_id[1].endpoint, by_id[1].prefill_endpoint) == (1, 0)
    assert by_id[0].ttft == pytest.approx(step(100, 100))
    assert result.extra["disaggregated"] == 1.0


def test_prefill_pick_equal_to_decode_pick_runs_aggregated() -> None:
    class Same:
        def pick(self, request: SimRequest, endpoints: object) -> int:
            return 0

        def pick_pd(self, request: SimRequest, endpoints: object) -> PDPick:
            return PDPick(0, 0)

    result = run_pd_fleet([SimRequest(0, 0.0, 500, 3)], [ServerConfig()], Same())
    assert result.results[0].prefill_endpoint == -1
    assert result.results[0].ttft == pytest.approx(step(500, 500))


def test_unknown_roles_and_fleets_without_decoders_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown roles"):
        LeastLoadedPDScheduler(["prefill", "decoder"])
    with pytest.raises(ValueError, match="decode-capable"):
        LeastLoadedPDScheduler(["prefill", "prefill"])


def test_preempted_request_recomputes_its_transferred_kv_locally() -> None:
    config = ServerConfig(num_gpu_blocks=8).resolve(PROFILE)
    engine = Engine(config, PROFILE)
    prompt, out = 40, 40  # 3 blocks each at admission; 5 each by the end: 10 > 8 forces a preemption
    seqs = [engine.add_request(i, prompt, out, 0.0, kv_transferred=prompt - 1) for i in range(2)]
    computed, now = 0, 0.0
    while engine.has_work():
        plan = engine.begin_step(now)
        assert plan is not None
        computed += sum(n for _, n in plan.chunks)
        engine.finish_step()
        now = plan.end
    assert seqs[1].preemptions >= 1 and seqs[0].preemptions == 0
    assert computed > prompt + 2  # the preempted one computed its prompt here after all
    assert engine.stats.prompt_tokens_kv_transfer == 2 * (prompt - 1)  # counted once
    assert engine.pool.num_free == 8


def test_transferred_tokens_must_leave_the_last_prompt_token() -> None:
    engine = Engine(ServerConfig().resolve(PROFILE), PROFILE)
    with pytest.raises(ValueError, match="kv_transferred"):
        engine.add_request("x", 10, 5, 0.0, kv_transferred=10)
