"""Routing policies behind the virtual fleet's Scheduler protocol, the EPP's own among them."""

from __future__ import annotations

import pytest

pytest.importorskip("inference_gateway.simulator.fleet")

from inference_gateway.bench.policies import PolicySpec, SamplingScheduler, make_policy
from inference_gateway.simulator.fleet_types import EndpointSnapshot, RequestResult, SimRequest
from inference_gateway.simulator.gateway import VirtualGateway, seeded_config

MODEL = "meta-llama/Llama-2-7b-hf"


def snap(i: int, waiting: int, kv: float, t: float = 1.0) -> EndpointSnapshot:
    return EndpointSnapshot(
        index=i, name=f"sim-{i}", model=MODEL, updated_at=t, waiting_queue=waiting, running_requests=10,
        kv_cache_usage=kv, active_adapters=frozenset(), waiting_adapters=frozenset(), max_active_adapters=1,
        block_size=16, num_gpu_blocks=7000, prefix_cache_hit_rate=0.0, num_preemptions=0,
    )  # fmt: skip


def test_gateway_scheduler_avoids_the_loaded_endpoint_and_tracks_in_flight() -> None:
    policy = VirtualGateway(None)
    snaps = [snap(0, 20, 0.9), snap(1, 0, 0.1), snap(2, 20, 0.9)]
    picks = [policy.pick(SimRequest(i, 0.0, 100, 10), snaps) for i in range(5)]
    assert picks == [1] * 5
    assert policy.endpoints[1].in_flight == 5
    policy.on_finished(RequestResult(0, 1, 0.0, 0.1, 0.2, 100, 10))
    assert policy.endpoints[1].in_flight == 4
    # a newer scrape changes the view
    later = [snap(0, 0, 0.1, t=2.0), snap(1, 30, 0.95, t=2.0), snap(2, 30, 0.95, t=2.0)]
    assert policy.pick(SimRequest(9, 1.0, 100, 10), later) == 0


def test_reference_policies_by_kind() -> None:
    snaps = [snap(i, 0, 0.0) for i in range(3)]
    rr = make_policy(PolicySpec(kind="round-robin"), 1)
    assert [rr.pick(SimRequest(i, 0.0, 1, 1), snaps) for i in range(4)] == [0, 1, 2, 0]
    assert isinstance(make_policy(PolicySpec(kind="epp"), 1), VirtualGateway)


def test_sampler_records_state_and_forwards_completions() -> None:
    inner = VirtualGateway(None)
    sampler = SamplingScheduler(inner, interval_s=1.0)
    snaps = [snap(0, 3, 0.5), snap(1, 0, 0.0)]
    for i, t in enumerate([0.0, 0.5, 1.2]):
        sampler.pick(SimRequest(i, t, 10, 2), snaps)
    assert [s["t"] for s in sampler.series] == [0.0, 0.0, 1.2, 1.2]
    assert sampler.series[0]["waiting"] == 3
    sampler.on_finished(RequestResult(0, 1, 0.0, 0.1, 0.2, 10, 2))
    assert inner.endpoints[1].in_flight == 2


def test_sheddable_requests_are_dropped_only_while_every_endpoint_is_saturated() -> None:
    policy = VirtualGateway(None)
    busy = [snap(0, 50, 0.95), snap(1, 50, 0.95)]
    assert policy.pick(SimRequest(1, 0.0, 10, 2, priority=-1), busy) is None
    assert policy.pick(SimRequest(2, 0.0, 10, 2, priority=0), busy) in (0, 1)
    one_free = [snap(0, 50, 0.95, t=2.0), snap(1, 0, 0.1, t=2.0)]
    assert policy.pick(SimRequest(3, 1.0, 10, 2, priority=-1), one_free) == 1
    assert policy.shed == 1


def test_seeded_pickers_repeat_their_choices() -> None:
    from pathlib import Path

    best = (Path(__file__).resolve().parents[2] / "bench" / "profiles" / "best.yaml").read_text()
    snaps = [snap(i, i % 2, 0.1 * i) for i in range(4)]

    def picks(seed: int) -> list[int | None]:
        policy = VirtualGateway(seeded_config(best, seed))
        return [policy.pick(SimRequest(i, 0.0, 10, 2), snaps) for i in range(40)]

    assert picks(1) == picks(1)
    assert picks(1) != picks(2)


NO_PICKER = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins: [{type: queue-scorer}]
schedulingProfiles: [{name: default, plugins: [{pluginRef: queue-scorer}]}]
"""


def test_a_config_without_a_picker_gets_a_seeded_one() -> None:
    snaps = [snap(i, 0, 0.0) for i in range(4)]  # all tied: the picker alone decides

    def picks(seed: int) -> list[int | None]:
        policy = VirtualGateway(seeded_config(NO_PICKER, seed))
        return [policy.pick(SimRequest(i, 0.0, 10, 2), snaps) for i in range(40)]

    assert picks(3) == picks(3)
    assert picks(3) != picks(4)
